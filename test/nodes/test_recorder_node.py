"""recorder_node in this process (real rclpy and DDS, a private context): its timers run on wall time, so
with use_sim_time it records before any /clock is published; a run-time change of ``topics`` is refused."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
pytest.importorskip("mcap", reason="mcap is not installed (pip install mcap): the recorder writes MCAP")
pytest.importorskip("rosbags", reason="rosbags is not installed (pip install rosbags): the recorder takes "
                    "the message definitions it embeds from it")

from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.node import Node  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from ros2_tracker.io.bag import read_bag  # noqa: E402
from ros2_tracker.nodes.recorder_node import RecorderNode  # noqa: E402


@pytest.fixture
def context(ros_env, monkeypatch):
    monkeypatch.setenv("ROS_LOG_DIR", ros_env["ROS_LOG_DIR"])
    ctx = Context()
    rclpy.init(context=ctx, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    yield ctx
    ctx.try_shutdown()


def test_recorder_with_sim_time_records_before_any_clock_and_refuses_a_topics_change(context, tmp_path):
    bag = tmp_path / "bag"
    recorder = RecorderNode(context=context, parameter_overrides=[
        Parameter("output", value=str(bag)), Parameter("topics", value=["/chatter"]),
        Parameter("use_sim_time", value=True), Parameter("discovery_period_s", value=0.05)])
    talker = Node("talker", context=context)
    pub = talker.create_publisher(String, "/chatter", 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(recorder)
    executor.add_node(talker)
    try:
        end = time.monotonic() + 10.0  # no /clock at all: ROS-time timers would never discover the topic
        while recorder.received < 5 and time.monotonic() < end:
            pub.publish(String(data=f"hello {recorder.received}"))
            executor.spin_once(timeout_sec=0.05)
        assert recorder.received >= 5, "the recorder never subscribed: its discovery timer did not run"
        result = recorder.set_parameters([Parameter("topics", value=["/other"])])[0]
        assert not result.successful and "read at start" in result.reason
        assert recorder.get_parameter("topics").value == ["/chatter"]
        recorder.drain(executor)
    finally:
        recorder.close()
        executor.shutdown()
        talker.destroy_node()
        recorder.destroy_node()
    assert sum(1 for m in read_bag(bag) if m.topic == "/chatter") == recorder.received


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_a_signal_as_soon_as_the_bag_exists_still_closes_it_whole(ros_env, tmp_path, signame):
    """The bag is created while the node is built: a stop request then (a launcher's Ctrl-C) must close it
    with its summary and metadata.yaml, not leave a half file that read_bag refuses (and whose folder
    blocks the next run)."""
    import os
    import signal
    import subprocess
    import sys

    bag = tmp_path / "bag"
    proc = subprocess.Popen([sys.executable, "-m", "ros2_tracker.nodes.recorder_node", "--ros-args",
                             "-p", f"output:={bag}", "-p", "topics:=[detections]"], env=ros_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    end = time.monotonic() + 30
    while not bag.exists() and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.0005)
    os.kill(proc.pid, getattr(signal, signame))
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert (bag / "metadata.yaml").is_file() and list(read_bag(bag)) == [], out


def test_a_recorder_started_under_nohup_keeps_recording_through_a_hangup(ros_env, tmp_path):
    """Its own hangup handler (a stop request) replaced the ignore that ``nohup`` had set."""
    import signal
    import subprocess
    import sys

    bag = tmp_path / "bag"
    proc = subprocess.Popen([sys.executable, "-m", "ros2_tracker.nodes.recorder_node", "--ros-args",
                             "-p", f"output:={bag}", "-p", "topics:=[detections]"], env=ros_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    end = time.monotonic() + 30
    while not bag.exists() and time.monotonic() < end and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(0.5)
    proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    alive = proc.poll() is None
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    assert alive, out
    assert proc.returncode == 0 and (bag / "metadata.yaml").is_file(), out


def test_without_output_each_namespace_records_into_a_bag_of_its_own(context, tmp_path, monkeypatch):
    """The launch file's default bag, tracks_bag, was one folder for every namespace: a second camera's
    recorder (or a second launch in the same directory) failed on it and its graph ran unrecorded."""
    monkeypatch.chdir(tmp_path)
    recorders = [RecorderNode(context=context, namespace=ns,
                              parameter_overrides=[Parameter("topics", value=["detections"])])
                 for ns in ("/cam1", "/cam2", "/")]
    try:
        names = [r.output for r in recorders]
    finally:
        for r in recorders:
            r.close()
            r.destroy_node()
    assert names[0].startswith("tracks_cam1_20") and names[1].startswith("tracks_cam2_20")
    assert names[2].startswith("tracks_20") and len(names[2]) == len("tracks_YYYY_MM_DD-HH_MM_SS")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("tracks")) == sorted(names)
    assert all((tmp_path / n / "metadata.yaml").is_file() for n in names)


def test_an_invalid_topic_name_is_refused_before_the_bag_exists(context, tmp_path):
    """A refused start left an empty bag folder (a 0-byte .mcap) behind, and the next start, with the topic
    fixed, refused to overwrite it."""
    from rclpy.impl.implementation_singleton import rclpy_implementation

    bag = tmp_path / "bag"
    with pytest.raises(rclpy_implementation.RCLError, match="topic name"):
        RecorderNode(context=context, parameter_overrides=[Parameter("output", value=str(bag)),
                                                           Parameter("topics", value=["bad topic"])])
    assert not bag.exists()
    recorder = RecorderNode(context=context, parameter_overrides=[Parameter("output", value=str(bag)),
                                                                  Parameter("topics", value=["/chatter"])])
    recorder.close()
    recorder.destroy_node()
    assert (bag / "metadata.yaml").is_file()
