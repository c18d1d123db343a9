"""spin_until_shutdown: a node's spin loop ends when its context is shut down, however that happens."""

from __future__ import annotations

import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs rclpy (the ROS 2 wheels of scripts/setup.sh)")


def test_spin_stops_when_the_context_is_shut_down_without_waking_the_executor(ros_env, monkeypatch):
    """rclpy's signal handler shuts the context down from C++, where no Python on-shutdown callback
    wakes the executor; an unbounded ``rclpy.spin`` then could sleep on (a node alive after SIGTERM: 10
    of 700 stops in a stress loop). The bounded wait notices within its poll period."""
    from rclpy.context import Context

    from ros2_tracker.nodes.spinning import spin_until_shutdown

    monkeypatch.setenv("ROS_LOG_DIR", ros_env["ROS_LOG_DIR"])
    context = Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("spin_check", context=context)
    node.create_timer(30.0, lambda: None)  # something to wait on, never due in this test
    ticks = []
    node.create_timer(0.05, lambda: ticks.append(time.monotonic()))
    spinner = threading.Thread(target=spin_until_shutdown, args=(node,), daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 5.0
        while len(ticks) < 3 and time.monotonic() < deadline:  # callbacks run while it spins
            time.sleep(0.02)
        assert len(ticks) >= 3, "timer callbacks did not run"
        context.handle.shutdown()  # the C-level shutdown alone, as on SIGINT/SIGTERM
        spinner.join(2.0)
        assert not spinner.is_alive(), "spin_until_shutdown did not return after the context shut down"
    finally:
        node.destroy_node()
        context.try_shutdown()
