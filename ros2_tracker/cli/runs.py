"""Default output folders of the commands that write a run: ``runs/<prefix>-<date>-<time>``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

from ros2_tracker.cli.errors import UserError

__all__ = ["new_run_folder", "output_folder"]


@contextlib.contextmanager
def output_folder(out: Path) -> Iterator[Path]:
    """``out`` for a command that creates it: if the command fails (any exception) before writing anything
    there, a folder it made is removed again, so a typo in a data path leaves no empty ``--out`` behind."""
    made = not out.exists()
    try:
        yield out
    except BaseException:
        if made and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise


def new_run_folder(prefix: str, root: Path = Path("runs")) -> Path:
    """A new, empty ``root/<prefix>-<date>-<time>`` folder, created here; ``-2``, ``-3``, ... are added when
    another run started in the same second (two runs must never share a bag, a log or results).

    Raises:
        UserError: no new folder could be made (a thousand runs in one second, or ``root`` not writable).
    """
    base = root / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
    base.parent.mkdir(parents=True, exist_ok=True)
    for k in range(1, 1000):
        folder = base if k == 1 else base.with_name(f"{base.name}-{k}")
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue
    raise UserError(f"{base}: could not create a new run folder (1,000 exist); use --out")
