"""The training commands' check for their optional dependencies (torch, torchvision)."""

import pytest

from ros2_tracker.cli.errors import UserError, require_modules


def test_missing_module_is_a_user_error_naming_the_command_and_the_module():
    require_modules("train-x", "json")  # installed: nothing happens
    with pytest.raises(UserError, match=r"^train-x needs json and no_such_module_zz "
                                        r"\(no_such_module_zz is not installed\)$"):
        require_modules("train-x", "json", "no_such_module_zz")
