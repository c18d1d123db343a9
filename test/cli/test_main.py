"""The CLI's own rules: a user error is one line on stderr and exit status 2."""

from __future__ import annotations

import pytest

pytest.importorskip("trackeval", reason="trackeval is not installed (pip-only: pip install trackeval)")

from ros2_tracker.cli import evaluate
from ros2_tracker.cli.errors import UserError
from ros2_tracker.cli.main import main


def test_a_multi_line_user_error_is_printed_as_its_first_line_with_exit_2(monkeypatch, capsys):
    def fails(_args):
        raise UserError("the file is bad\n  (details a user does not need on the terminal)")

    monkeypatch.setattr(evaluate, "run", fails)
    assert main(["evaluate", "--gt", "g.txt", "--results", "r.txt"]) == 2
    err = capsys.readouterr().err
    assert err == "ros2-tracker evaluate: error: the file is bad\n"
