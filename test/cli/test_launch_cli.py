"""``ros2-tracker launch``: the tracker launch file's node really runs and answers; Ctrl-C stops it all.

The CLI runs as a subprocess on a private ROS_DOMAIN_ID; this test talks to the node it started over
DDS from its own rclpy context (publishes detections, waits for the tracks with the same stamp).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "ros2_tracker.cli.main"]


def _started_pids(text: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"\[launch\] started (\w+) \(pid (\d+)\)", text)}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_unknown_launch_argument_exits_2_listing_the_valid_ones(ros_env):
    res = subprocess.run([*CLI, "launch", "pipeline", "foo:=1"], env=ros_env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "foo" in lines[0]
    assert "valid: source, rate, camera" in lines[0] and "use_detector" in lines[0]


def test_pipeline_without_a_source_or_camera_exits_2(ros_env):
    res = subprocess.run([*CLI, "launch", "pipeline"], env=ros_env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and "source:=PATH" in res.stderr


@pytest.mark.parametrize("order", ["options_first", "options_between"])
def test_dry_run_prints_the_node_commands_from_the_launch_file(ros_env, order):
    argv = (["--dry-run", "pipeline", "source:=/seq", "record:=true", "namespace:=cam1"]
            if order == "options_first" else ["pipeline", "source:=/seq", "--dry-run", "record:=true",
                                              "namespace:=cam1"])  # argparse alone stops at the option
    res = subprocess.run([*CLI, "launch", *argv], env=ros_env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    commands = dict(line.split(": ", 1) for line in res.stdout.splitlines())
    assert set(commands) == {"replay", "tracker", "recorder"}
    # the package's own config: the source tree's here, install/.../share/ros2_tracker/'s under colcon
    params = Path(re.search(r"--params-file (\S+)", commands["tracker"]).group(1))
    assert params.parts[-2:] == ("config", "tracker.yaml")
    assert params.read_text() == (REPO / "config" / "tracker.yaml").read_text()
    assert "-m ros2_tracker.nodes recorder_node" in commands["recorder"]
    assert "__ns:=/cam1" in commands["recorder"]


def test_launch_tracker_answers_detections_and_sigint_stops_everything(ros_env, tmp_path):
    rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
    msgs = pytest.importorskip("ros2_tracker.msg",
                               reason="ros2_tracker.msg is not built: bash scripts/setup.sh")
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import Header

    from ros2_tracker.nodes.conversions import arrays_to_detections, seconds_to_stamp, stamp_to_ns

    log = (tmp_path / "cli.log").open("w+")
    cli = subprocess.Popen([*CLI, "launch", "tracker", "namespace:=cam7"], env=ros_env, stdout=log,
                           stderr=subprocess.STDOUT, text=True)
    ctx = Context()
    rclpy.init(context=ctx, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    try:
        node = rclpy.create_node("launch_cli_test", context=ctx)
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        pub = node.create_publisher(msgs.Detection2DArray, "/cam7/detections", reliable)
        got: dict[int, object] = {}
        node.create_subscription(msgs.TrackArray, "/cam7/tracks",
                                 lambda m: got.setdefault(stamp_to_ns(m.header.stamp), m), reliable)
        end = time.monotonic() + 45
        while pub.get_subscription_count() == 0 and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        assert pub.get_subscription_count() > 0, "the launched tracker never subscribed to /cam7/detections"
        for k in range(5):  # one person walking right, 10 Hz: confirmed after min_hits frames
            box = np.array([[100.0 + 5 * k, 50.0, 140.0 + 5 * k, 150.0]])
            header = Header(stamp=seconds_to_stamp(0.1 * k), frame_id="camera")
            stamp = stamp_to_ns(header.stamp)
            # frame 0 again every 5 s until answered: the tracker's /tracks publisher may match this
            # subscription after its answer to it went out (matched here is not matched there)
            msg = arrays_to_detections(box, np.array([0.9]), np.array([0]), header, msgs)
            pub.publish(msg)
            resend = time.monotonic() + 5.0
            while stamp not in got and time.monotonic() < end:
                if k == 0 and time.monotonic() >= resend:
                    pub.publish(msg)
                    resend = time.monotonic() + 5.0
                executor.spin_once(timeout_sec=0.05)
            assert stamp in got, f"no tracks for frame {k}"
        last = got[stamp_to_ns(seconds_to_stamp(0.4))]
        assert len(last.ids) == 1 and last.states[0] == msgs.TrackArray.STATE_CONFIRMED
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)

    pids = _started_pids((tmp_path / "cli.log").read_text())
    assert set(pids) == {"tracker"} and _alive(pids["tracker"])
    t0 = time.monotonic()
    cli.send_signal(signal.SIGINT)  # as Ctrl-C
    assert cli.wait(timeout=15) == 0
    assert time.monotonic() - t0 < 5.0
    assert not _alive(pids["tracker"])
    log.seek(0)
    text = log.read()
    assert "tracker: exit code 0 (sent SIGINT)" in text
    assert "[tracker] " in text  # the node's own output, prefixed


@pytest.mark.slow
def test_launched_pipeline_records_every_frame_from_the_first(ros_env, tmp_path):
    """record:=true: the replay waits for the recorder's recorder/ready, so the bag starts with frame 1 (it
    waited for one subscriber, the tracker, and the recorder, which subscribes once it has seen each topic's
    publisher, missed the first frames: 3 of 300 at rate 1, about 50 at rate 10)."""
    pytest.importorskip("mcap", reason="mcap is not installed (pip install mcap)")
    pytest.importorskip("rosbags", reason="rosbags is not installed (pip install rosbags)")  # the recorder
    pytest.importorskip("ros2_tracker.msg", reason="ros2_tracker.msg is not built: bash scripts/setup.sh")
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    import ros2_tracker.msg as msgs
    from ros2_tracker.io.bag import BagWriter, cdr_header_stamp_ns, read_bag
    from ros2_tracker.nodes.conversions import arrays_to_detections, ns_to_stamp

    n = 60
    source = tmp_path / "source"
    stamps = [1_000_000_000 + round(k * 1e9 / 30) for k in range(n)]
    with BagWriter(source, {"/detections": "ros2_tracker/msg/Detection2DArray"}) as bag:
        for k, stamp in enumerate(stamps):
            boxes = np.array([[100.0 + 3 * k, 50, 140 + 3 * k, 150], [400 - 2 * k, 60, 440 - 2 * k, 160]])
            msg = arrays_to_detections(boxes, np.full(2, 0.9), np.zeros(2, np.int64),
                                       Header(stamp=ns_to_stamp(stamp), frame_id="camera"), msgs)
            bag.write("/detections", serialize_message(msg), stamp)
    out = tmp_path / "bag"
    res = subprocess.run([*CLI, "launch", "pipeline", f"source:={source}", "rate:=10", "record:=true",
                          f"bag:={out}"], env=ros_env, capture_output=True, text=True, timeout=120)
    # the recorder asks only for what this graph publishes (it waited max_wait_s for a detector's timing)
    assert "not recording" not in res.stdout + res.stderr
    assert res.returncode == 0, res.stdout + res.stderr
    got: dict[str, list[int]] = {"/detections": [], "/tracks": []}
    for m in read_bag(out):
        if m.topic in got:
            got[m.topic].append(cdr_header_stamp_ns(m.data))
    assert sorted(got["/detections"]) == stamps and sorted(got["/tracks"]) == stamps, res.stdout


@pytest.mark.parametrize("how", ["SIGKILL to launch", "hangup"])
def test_nodes_stop_cleanly_when_launch_dies_or_the_terminal_closes(ros_env, tmp_path, how):
    """Killing `ros2-tracker launch` (SIGKILL, out of memory) left its nodes running for ever, in sessions of
    their own, a recorder's bag never closed; a hangup (the terminal closed) was forwarded as SIGHUP, which
    killed the nodes outright. Now the nodes get SIGTERM when launch dies, SIGINT on a hangup: clean stops."""
    log_path = tmp_path / "cli.log"
    with log_path.open("w") as log:
        # a hangup handled as a terminal's shell leaves it (under nohup, launch keeps it ignored, by design)
        cli = subprocess.Popen([*CLI, "launch", "tracker"], env=ros_env, stdout=log, stderr=subprocess.STDOUT,
                               text=True, preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
    try:
        end = time.monotonic() + 45
        while "tracking /detections" not in log_path.read_text() and time.monotonic() < end:
            time.sleep(0.1)
        pids = _started_pids(log_path.read_text())
        assert set(pids) == {"tracker"} and _alive(pids["tracker"]), log_path.read_text()
        cli.send_signal(signal.SIGKILL if how == "SIGKILL to launch" else signal.SIGHUP)
        cli.wait(timeout=15)
        end = time.monotonic() + 10
        while _alive(pids["tracker"]) and time.monotonic() < end:
            time.sleep(0.1)
        assert not _alive(pids["tracker"]), "the tracker node outlived the launch command"
        if how == "hangup":
            text = log_path.read_text()
            assert "tracker: exit code 0 (sent SIGINT)" in text and "Traceback" not in text, text
    finally:
        if cli.poll() is None:
            cli.kill()
        for pid in _started_pids(log_path.read_text()).values():
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
