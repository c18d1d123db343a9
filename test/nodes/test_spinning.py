"""spin_until_shutdown: a node's spin loop ends when its context is shut down, however that happens; and
SkipCounter, the nodes' count of skipped inputs by kind."""

from __future__ import annotations

import os
import threading
import time

import pytest

rclpy = pytest.importorskip("rclpy", reason="needs rclpy (the ROS 2 wheels of scripts/setup.sh)")


def test_a_stop_before_the_spin_starts_is_a_clean_stop(ros_env, monkeypatch):
    """SIGINT between the node's start and its spin (a launcher stopping a graph it just started): making
    the executor on the shut-down context raised RCLError, a traceback and exit 1."""
    from rclpy.context import Context

    from ros2_tracker.nodes.spinning import spin_until_shutdown

    monkeypatch.setenv("ROS_LOG_DIR", ros_env["ROS_LOG_DIR"])
    context = Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("spin_late", context=context)
    try:
        context.handle.shutdown()  # as rclpy's signal handler does
        spin_until_shutdown(node)  # returns
    finally:
        node.destroy_node()


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


_SIGNAL_WHILE_BUILDING = """
import os, signal, sys, time, importlib
import rclpy.node
declare = rclpy.node.Node.declare_parameters
def declare_parameters(self, *args, **kwargs):  # the signal comes while the node declares its parameters
    if not getattr(rclpy.node, "_signalled", False):
        rclpy.node._signalled = True
        os.kill(os.getpid(), getattr(signal, sys.argv[2]))
        time.sleep(0.05)
    return declare(self, *args, **kwargs)
rclpy.node.Node.declare_parameters = declare_parameters
sys.exit(importlib.import_module("ros2_tracker.nodes." + sys.argv[1]).main(sys.argv[3:]))
"""


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("module,args", [
    ("tracker_node", []), ("replay_node", ["-p", "source:=SEQ"]),
])
def test_a_signal_while_a_node_is_built_is_a_clean_stop(ros_env, tmp_path, module, args, signame):
    """A launcher's Ctrl-C or SIGTERM can come while a node is still declaring parameters: rclpy's handler
    shuts the context down and the next parameter-event publish raised ("context is invalid"), exit 1 with
    a traceback, which a launcher reports as a failed node."""
    import subprocess
    import sys

    seq = tmp_path / "seq"
    (seq / "det").mkdir(parents=True)
    (seq / "det" / "det.txt").write_text("1,-1,10,10,20,40,0.9\n")
    argv = [a.replace("SEQ", str(seq)) for a in args]
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_WHILE_BUILDING, module, signame, "--ros-args",
                           *argv], env=ros_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr


def test_a_missing_pip_only_module_is_one_fatal_line_and_exit_2(ros_env, tmp_path):
    """A robot's `rosdep install` brings none of the pip-only modules: recorder_node died with a
    ModuleNotFoundError traceback when mcap was missing."""
    import subprocess
    import sys

    hide = tmp_path / "hide" / "mcap"
    hide.mkdir(parents=True)  # an `mcap` that is not installed, as on a robot without the pip step
    (hide / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'mcap'\", name='mcap')\n")
    env = {**ros_env, "PYTHONPATH": os.pathsep.join([str(hide.parent), ros_env.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "ros2_tracker.nodes.recorder_node", "--ros-args", "-p",
                           f"output:={tmp_path / 'bag'}", "-p", "topics:=[tracks]"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "the Python module mcap is not installed (pip install mcap;" in proc.stderr


def test_a_missing_module_of_our_own_keeps_its_traceback(ros_env, tmp_path):
    """Only the pip-only dependencies are "not installed": a module of the package missing (a broken
    install, a bad import) was reported as `pip install ros2_tracker.…`, its traceback hidden."""
    import subprocess
    import sys

    hide = tmp_path / "hide" / "mcap"
    hide.mkdir(parents=True)
    (hide / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'ros2_tracker.io.gone'\", "
                                      "name='ros2_tracker.io.gone')\n")
    env = {**ros_env, "PYTHONPATH": os.pathsep.join([str(hide.parent), ros_env.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "ros2_tracker.nodes.recorder_node", "--ros-args", "-p",
                           f"output:={tmp_path / 'bag'}", "-p", "topics:=[tracks]"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode not in (0, 2) and "Traceback" in proc.stderr, proc.stderr
    assert "ros2_tracker.io.gone" in proc.stderr and "pip install" not in proc.stderr


def test_a_namespace_rcl_refuses_is_one_fatal_line_and_exit_2(ros_env):
    """`launch tracker namespace:=cam1/`: rcl refuses a namespace ending in '/' when the node is made; that
    was a 22-line RCLError traceback and exit 1."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "ros2_tracker.nodes.tracker_node", "--ros-args", "-r",
                           "__ns:=/cam1/"], env=ros_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "cannot start: error creating node: invalid node namespace: namespace must not end with a '/'" \
        in proc.stderr


def test_skip_counter_warns_for_each_new_kind_at_once_and_throttles_the_rest():
    """detector_node and sot_node: a per-call-site throttle showed one bad-image reason per window, so a
    second kind of bad image within it went unsaid; the last words count by kind."""
    from ros2_tracker.nodes.spinning import SkipCounter

    skips = SkipCounter(every_s=5.0, kinds=3)
    assert skips.last_words("image(s) skipped") == []
    assert skips.add("unsupported image encoding '32FC1'", now=0.0)
    assert skips.add("data has 10 bytes, expected 48 (bgr8)", now=0.1)  # a new kind: at once
    assert not skips.add("data has 11 bytes, expected 48 (bgr8)", now=0.2)  # same kind (numbers aside)
    assert not skips.add("unsupported image encoding '32FC1'", now=4.9)
    assert skips.add("unsupported image encoding '32FC1'", now=5.2)  # the window has passed
    assert not skips.add("data has 12 bytes, expected 48 (bgr8)", now=5.3)
    assert skips.add("third kind", now=5.4) and skips.add("a fourth", now=5.5)  # past `kinds`: "other"
    assert not skips.add("a fifth", now=5.6)
    assert skips.total == 9
    assert skips.last_words("image(s) skipped") == [
        "9 image(s) skipped in all: 3 x unsupported image encoding '32FC1'; 3 x data has # bytes, expected # "
        "(bgr8); 2 x other; 1 x third kind"]
