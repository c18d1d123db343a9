"""How ``ros2-tracker replay`` judges its nodes' exits once every frame was tracked (no ROS needed)."""

from __future__ import annotations

import signal

from ros2_tracker.cli.replay import _judge_exits

STOPPED = {"replay": 0, "detector": -signal.SIGINT, "tracker": 0, "recorder": 0}
SENT = {"replay": [], "detector": ["SIGINT"], "tracker": ["SIGINT"], "recorder": ["SIGINT"]}


def test_nodes_that_stopped_on_sigint_are_a_clean_run():
    assert _judge_exits(STOPPED, SENT) == ("", [])


def test_a_node_killed_in_the_stop_after_the_recorder_closed_the_bag_is_a_warning_not_a_failure():
    """Seen once on a loaded CI: the detector ignored SIGINT and SIGTERM after a complete replay of 12
    frames, every message recorded, and the replay failed on its SIGKILL."""
    codes = {**STOPPED, "detector": -signal.SIGKILL}
    sent = {**SENT, "detector": ["SIGINT", "SIGTERM", "SIGKILL"]}
    failed, warnings = _judge_exits(codes, sent)
    assert failed == ""
    assert warnings == ["detector did not stop on SIGINT and was killed (SIGKILL; its Python stacks are in "
                        "the log): the recording is complete"]
    assert _judge_exits({**codes, "detector": -signal.SIGTERM}, sent)[0] == ""


def test_what_costs_the_run_something_fails_it():
    killed = {**SENT, "recorder": ["SIGINT", "SIGTERM", "SIGKILL"]}
    # the recorder killed: its bag has no summary, maybe not its last messages
    assert _judge_exits({**STOPPED, "recorder": -signal.SIGKILL}, killed)[0] == "recorder exited with code -9"
    # and then a node killed beside it is not excused either
    codes = {**STOPPED, "recorder": -signal.SIGKILL, "detector": -signal.SIGKILL}
    assert _judge_exits(codes, {**killed, "detector": ["SIGINT", "SIGTERM", "SIGKILL"]})[0] == (
        "detector exited with code -9")
    # a crash (exit 1, or killed by a signal nobody sent: out of memory) is a failure
    assert _judge_exits({**STOPPED, "tracker": 1}, SENT)[0] == "tracker exited with code 1"
    assert _judge_exits({**STOPPED, "tracker": -signal.SIGKILL}, {**SENT, "tracker": []})[0] == (
        "tracker exited with code -9")
