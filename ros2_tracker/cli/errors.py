"""User errors: reported as one line on stderr with exit status 2, never a traceback."""

from __future__ import annotations

__all__ = ["USER_ERRORS", "UserError"]


class UserError(Exception):
    """Bad input from the user (file, option, value); the message says what and where."""


def _user_errors() -> tuple[type[BaseException], ...]:
    from ros2_tracker.core.config import ConfigError
    from ros2_tracker.io.mot import MotFormatError

    return (UserError, ConfigError, MotFormatError, FileNotFoundError)


USER_ERRORS = _user_errors()
