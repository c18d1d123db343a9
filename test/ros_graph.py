"""The test's side of a ROS graph around a tracker_node process: publish frames, collect what comes back,
set parameters. Shared by the tracker_node tests (imported as ``from ros_graph import TrackerNodeClient``)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

import ros2_tracker.msg as msgs
from ros2_tracker.nodes.conversions import stamp_to_ns

RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


def stop_node(proc: subprocess.Popen, log: Path, timeout: float = 10.0) -> int:
    """SIGTERM ``proc`` (a node started with PYTHONFAULTHANDLER=1, stderr to ``log``) and return its exit
    status; see :func:`wait_or_dump` for a node that does not exit within ``timeout``."""
    proc.terminate()
    return wait_or_dump(proc, log, timeout, "of SIGTERM")


def wait_or_dump(proc: subprocess.Popen, log: Path, timeout: float, after: str = "") -> int:
    """``proc.wait(timeout)``; a process (started with PYTHONFAULTHANDLER=1, stderr to ``log``) still running
    then gets SIGABRT, so Python writes every thread's stack to its log, and the test fails with that log
    (where it hung), not a bare timeout."""
    import signal

    import pytest

    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        pytest.fail(f"the process did not exit within {timeout:g} s {after}; its log, with the stacks at "
                    f"SIGABRT:\n{log.read_text()[-6000:]}")


def wait_acked(*publishers, timeout: float = 10.0) -> None:
    """Wait until every matched reader has acknowledged all that the reliable ``publishers`` sent: in the
    node's queues before the frames that need them go. Without it, a datagram lost on a loaded machine was
    repaired only at the writer's next heartbeat (3 s by default) and the samples after it waited in order
    behind it: a frame went without the depth images sent before it. Acknowledgements also come with the
    heartbeat: send everything first, then wait once."""
    from rclpy.duration import Duration

    for publisher in publishers:
        assert publisher.wait_for_all_acked(Duration(seconds=timeout)), (
            f"{publisher.topic_name}: not acknowledged within {timeout:g} s")


class TrackerNodeClient:
    """Publishes ``detections`` (and ``image``), collects ``tracks``, ``tracker_node/timing`` and, when asked,
    ``tracks/markers`` and ``tracks/image``; talks to ``tracker_node/set_parameters``."""

    def __init__(self, context: Context, name: str, *, markers: bool = False,
                 annotated_images: bool = False) -> None:
        self.node = Node(name, context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.tracks: list = []
        self.markers: list = []
        self.images: list = []
        self.timing: list = []
        n = self.node
        self.tracks_sub = n.create_subscription(msgs.TrackArray, "tracks", self.tracks.append, RELIABLE)
        self.log: Path | None = None  # the node's log, quoted when it does not answer
        self.timing_sub = n.create_subscription(String, "tracker_node/timing", self.timing.append, 200)
        if markers:
            n.create_subscription(MarkerArray, "tracks/markers", self.markers.append, 100)
        if annotated_images:
            n.create_subscription(Image, "tracks/image", self.images.append,
                                 QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT))
        self.det_pub = n.create_publisher(msgs.Detection2DArray, "detections", RELIABLE)
        self.img_pub = n.create_publisher(Image, "image", RELIABLE)
        self.params = n.create_client(SetParameters, "tracker_node/set_parameters")

    def spin_until(self, predicate, timeout: float = 5.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.01)
        return predicate()

    def wait_for_node(self, proc: subprocess.Popen, log: Path, *, timeout: float, images: bool,
                      markers: bool = False) -> None:
        """Wait until the node subscribes to our inputs, publishes tracks (and markers) and serves
        parameters; fail with its log if it exits or never appears."""
        self.log = log

        def ready():
            assert proc.poll() is None, f"tracker_node exited early:\n{log.read_text()}"
            # both directions matched: our detections reach its reader, its tracks reach our reader (a
            # reliable writer drops what it publishes before discovery has matched the reader)
            # (and its timing: the first frames' timing went to no one once on a loaded CI machine)
            return (self.det_pub.get_subscription_count() > 0 and self.tracks_sub.get_publisher_count() > 0
                    and self.timing_sub.get_publisher_count() > 0
                    and (not markers or self.node.count_publishers("tracks/markers") > 0)
                    and (not images or self.img_pub.get_subscription_count() > 0)
                    and self.params.service_is_ready())
        assert self.spin_until(ready, timeout), f"tracker_node never appeared:\n{log.read_text()}"

    def wait_matched(self, *publishers, timeout: float = 10.0) -> None:
        """Wait until each of our extra ``publishers`` (depth, camera_info, imu) has matched the node's
        subscription; fail with the node's log otherwise."""
        matched = self.spin_until(lambda: all(p.get_subscription_count() > 0 for p in publishers), timeout)
        missing = [p.topic_name for p in publishers if not p.get_subscription_count()]
        assert matched, f"not matched: {missing}; node log:\n{self._log_tail()}"

    def publish_frame(self, detections, image: Image | None, timeout: float):
        """Publish the image (if any) then the detections; return the TrackArray with their stamp.

        The first frame gets at least 15 s (the node's first update pays its cold start, slow on a loaded
        2-core CI) and is sent again every 5 s until answered: discovery can match our writer to the node's
        reader before the node's reader has matched our writer, and a reader drops data from a writer it
        does not know yet (seen about once in ten runs). A frame the node did get twice is harmless there:
        the repeat has the same stamp (dt = 0) and the same boxes."""
        first = not self.tracks
        timeout = max(timeout, 15.0) if first else timeout
        seen = len(self.tracks)
        ns = stamp_to_ns(detections.header.stamp)

        def answer():
            return next((t for t in self.tracks[seen:] if stamp_to_ns(t.header.stamp) == ns), None)

        end = time.monotonic() + timeout
        while True:
            if image is not None:
                self.img_pub.publish(image)
            self.det_pub.publish(detections)
            left = end - time.monotonic()
            if self.spin_until(lambda: answer() is not None, min(left, 5.0) if first else left):
                return answer()
            if time.monotonic() >= end:
                break
        raise AssertionError(f"no TrackArray for stamp {ns * 1e-9:.3f} s within {timeout:g} s; node log:\n"
                             f"{self._log_tail()}")

    def publish_until_logged(self, publish, *texts: str, timeout: float = 15.0) -> None:
        """Call ``publish()`` every 0.2 s until the node's log holds every one of ``texts``: what a node
        must have before the first frame (a camera_info, a first depth image). Even a reliable message can
        be lost while discovery ends (a reader drops data from a writer it does not know yet)."""
        assert self.log is not None, "wait_for_node first"
        end = time.monotonic() + timeout
        while True:
            publish()
            if self.spin_until(lambda: all(t in self.log.read_text() for t in texts), 0.2):
                return
            if time.monotonic() >= end:
                raise AssertionError(f"the node never logged {texts} within {timeout:g} s; node log:\n"
                                     f"{self._log_tail()}")

    def _log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text()[-chars:] if self.log is not None else "(not known)"
        except OSError as e:
            return f"(unreadable: {e})"

    def set_parameter(self, name: str, value: float | int | str, timeout: float):
        """Set one double, integer or string parameter of tracker_node (by the value's Python type);
        returns its SetParametersResult."""
        if isinstance(value, str):
            v = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
        elif isinstance(value, int):
            v = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
        else:
            v = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=float(value))
        future = self.params.call_async(SetParameters.Request(parameters=[ParameterMsg(name=name, value=v)]))
        assert self.spin_until(future.done, timeout), f"no answer to setting {name}"
        return future.result().results[0]
