"""Files written whole (a reader sees the old file or the new one, never a part of it), and the error
of an output that cannot be written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

__all__ = ["OutputWriteError", "naming_write_errors", "write_atomically", "write_text"]


class OutputWriteError(OSError):
    """A library (OpenCV) could not write an output file: a folder that is not writable, a full disk, a
    file that may not be replaced. The message names the file; the CLI shows it as one line."""


@contextmanager
def naming_write_errors(path: str | Path) -> Iterator[None]:
    """Give an OSError raised inside without a file name the name ``path``: ``write()`` and ``close()`` on a
    full disk raise ``[Errno 28] No space left on device`` and say nothing of which output it was. The
    error keeps its errno and class (ENOSPC, EDQUOT, ... are still what they were)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def write_text(path: str | Path, text: str) -> None:
    """``Path(path).write_text(text)`` whose write errors name ``path`` (:func:`naming_write_errors`)."""
    with naming_write_errors(path):
        Path(path).write_text(text)


def write_atomically(path: str | Path, data: bytes | Callable[[BinaryIO], None]) -> Path:
    """Write ``data`` (bytes, or a function writing into a binary file) to ``path`` through a temporary file
    of its own in the same folder, then a rename: a reader never sees a partial file, and two writers of one
    path never take each other's temporary file. The folder must exist. Returns the path."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(data, bytes | bytearray | memoryview):
                f.write(data)
            else:
                data(f)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
