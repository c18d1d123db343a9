"""User errors: reported as one line on stderr with exit status 2, never a traceback."""

from __future__ import annotations

__all__ = ["USER_ERRORS", "UserError", "check_frames_option", "require_modules"]


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


def metrics_unavailable() -> str | None:
    """Why the metrics cannot be computed here (trackeval, pip-only, not installed), or None: the commands
    that track and then score say so and skip the scores instead of failing after the whole run."""
    import importlib.util

    try:
        missing = importlib.util.find_spec("trackeval") is None
    except (ImportError, ValueError):
        missing = True
    return "trackeval is not installed (pip install trackeval): metrics skipped" if missing else None


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


def _user_errors() -> tuple[type[BaseException], ...]:
    from ros2_tracker.core.config import ConfigError
    from ros2_tracker.io.files import OutputWriteError
    from ros2_tracker.io.mot import MotFormatError

    # a path that is missing, a folder, not writable: the user's to fix (other OSErrors keep their traceback)
    return (UserError, ConfigError, MotFormatError, FileNotFoundError, IsADirectoryError, NotADirectoryError,
            PermissionError, FileExistsError, OutputWriteError)


USER_ERRORS = _user_errors()
