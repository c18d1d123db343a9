"""User errors: reported as one line on stderr with exit status 2, never a traceback."""

from __future__ import annotations

import errno
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "USER_ERRORS",
    "UserError",
    "check_frames_option",
    "check_output_files",
    "is_user_os_error",
    "require_modules",
]

# OSErrors of a path or a file system the user chose (besides the subclasses in USER_ERRORS): a read-only
# file system, a full disk or quota, a name too long, a loop of links
_USER_ERRNOS = frozenset({errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENAMETOOLONG, errno.ELOOP,
                          errno.EACCES, errno.EPERM})


class UserError(Exception):
    """Bad input from the user (file, option, value); the message says what and where."""


def check_frames_option(value: int | None, option: str = "--frames") -> None:
    """A frame-count option: None (not given) or 1 to ``io.mot.MAX_FRAME``.

    Raises:
        UserError: out of that range (every frame up to it is processed: a huge one never ends).
    """
    from ros2_tracker.io.mot import MAX_FRAME

    if value is not None and not 1 <= value <= MAX_FRAME:
        raise UserError(f"{option} must be between 1 and {MAX_FRAME:,}, got {value}")


def check_output_files(outputs: Mapping[str, Path | str | None],
                         inputs: Mapping[str, Path | str | None]) -> None:
    """Refuse, before anything runs, an output file that is one of the inputs or another output, or that
    cannot be written where it is asked for (a folder, below a file, a read-only place).

    Args:
        outputs: option name (e.g. ``"--output"``) -> the file it writes (None: not given).
        inputs: option name -> the file it reads (None: not given).

    Raises:
        UserError: naming both options; a results file written over the detections or a config, or two
            outputs into one file, would lose data without a word.
    """
    seen: list[tuple[str, Path]] = [(k, Path(v)) for k, v in inputs.items() if v is not None]
    for option, value in outputs.items():
        if value is None:
            continue
        path = Path(value)
        for other, earlier in seen:
            if _same_file(path, earlier):
                role = "another output" if other in outputs else "an input"
                raise UserError(f"{option} {value}: the same file as {other} {earlier} ({role}); it would be "
                                "overwritten")
        seen.append((option, path))
    _check_writable(outputs)


def _check_writable(outputs: Mapping[str, Path | str | None]) -> None:
    """Each output file can be created where it is asked for (its folders are made as needed): not a folder
    itself, below a folder, not a file, and in a writable place; checked before the work, not after it."""
    for option, value in outputs.items():
        if value is None:
            continue
        path = Path(value)
        if path.is_dir():
            raise UserError(f"{option} {value}: a folder; give a file name")
        ancestor = path.parent
        while not ancestor.exists() and ancestor != ancestor.parent:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise UserError(f"{option} {value}: {ancestor} is a file, not a folder")
        if not os.access(path if path.exists() else ancestor, os.W_OK):
            raise UserError(f"{option} {value}: not writable here ({path if path.exists() else ancestor})")


def _same_file(a: Path, b: Path) -> bool:
    """The same file: one inode when both exist (links, different spellings), else the same absolute path."""
    try:
        if a.exists() and b.exists():
            return a.samefile(b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def metrics_unavailable() -> str | None:
    """Why the metrics cannot be computed here (trackeval, pip-only, not installed), or None: the commands
    that track and then score say so and skip the scores instead of failing after the whole run."""
    import importlib.util

    try:
        missing = importlib.util.find_spec("trackeval") is None
    except (ImportError, ValueError):
        missing = True
    return "trackeval is not installed (pip install trackeval): metrics skipped" if missing else None


def check_scoring_ground_truth(gt_path: Path, num_frames: int | None = None) -> None:
    """The ground truth a command will score its run against (frames 1..``num_frames``), checked before the
    run: with trackeval installed, every check of ``evaluate_sequence``, else the reader's (the ids plot
    reads it too). A malformed file is refused at once, not after a long replay.

    Raises:
        MotFormatError: as the scoring after the run would.
    """
    if metrics_unavailable() is None:
        from ros2_tracker.eval.metrics import check_ground_truth

        check_ground_truth(gt_path, num_frames=num_frames)
    else:
        from ros2_tracker.io.mot import read_mot

        read_mot(gt_path, validate_boxes=False, note_unsorted=False)


def require_modules(command: str, *modules: str) -> None:
    """Import ``modules`` (e.g. torch for the training commands, which the rest of the CLI does without).

    Raises:
        UserError: one is not installed; the message names the command and the missing module.
    """
    import importlib

    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise UserError(f"{command} needs {' and '.join(modules)} ({exc.name or name} is not "
                            "installed)") from None


def is_user_os_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an OSError of the user's paths or file system (read-only, full, a name too long)
    that :data:`USER_ERRORS`' classes do not cover: reported like them, as one line and exit status 2."""
    return isinstance(exc, OSError) and exc.errno in _USER_ERRNOS


def _user_errors() -> tuple[type[BaseException], ...]:
    from ros2_tracker.core.config import ConfigError
    from ros2_tracker.io.files import OutputWriteError
    from ros2_tracker.io.mot import MotFormatError

    # a path that is missing, a folder, not writable: the user's to fix (other OSErrors keep their traceback)
    return (UserError, ConfigError, MotFormatError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
            PermissionError, FileExistsError, OutputWriteError)


USER_ERRORS = _user_errors()
