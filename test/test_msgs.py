"""The generated ros2_tracker message interfaces: import, constants, CDR round trip, DDS between processes.

Needs the messages built into the venv (``bash scripts/setup.sh``) or a sourced colcon install.
"""

from __future__ import annotations

import array
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from ros2_tracker.core import TrackState
from ros2_tracker.launching import private_domain_id

pytestmark = pytest.mark.ros

msg = pytest.importorskip(
    "ros2_tracker.msg", reason="ros2_tracker.msg is not built: run `bash scripts/setup.sh`"
)
serialization = pytest.importorskip("rclpy.serialization", reason="rclpy is not installed")


def _make_track(track_id: int, n_points: int) -> msg.Track:
    """A Track with every field set to values derived from ``track_id``."""
    t = msg.Track()
    t.id = track_id
    t.class_id = track_id % 3
    t.class_name = f"class-{track_id % 3}"
    t.score = 0.5 + 0.01 * track_id
    t.state = msg.Track.STATE_CONFIRMED if track_id % 2 else msg.Track.STATE_LOST
    t.box = np.array([100.0, 200.0, 30.0, 60.0], dtype=np.float32) + track_id
    t.velocity = np.array([1.5, -2.0, 0.0, 0.25], dtype=np.float32) * track_id
    t.box_variance = np.full(4, 0.5 * track_id, dtype=np.float32)
    t.age = 2.5 * track_id
    t.hits = 10 * track_id
    t.time_since_update = 0.1 * track_id
    t.trajectory_step = 0.2
    centres = np.arange(n_points * 2, dtype=np.float32) + 1000 * track_id
    covariances = np.arange(n_points * 3, dtype=np.float32) * 0.5 + track_id
    # Unbounded float32[] fields: pass array.array, which rclpy copies as one buffer.
    t.trajectory = array.array("f", centres.tobytes())
    t.trajectory_covariance = array.array("f", covariances.tobytes())
    t.position = array.array("f", [0.5 * track_id, -1.0, 3.0 + track_id])
    t.position_velocity = array.array("f", [0.25 * track_id, 0.0, -1.5])
    return t


def _assert_tracks_equal(got: msg.Track, want: msg.Track) -> None:
    for field in ("id", "class_id", "class_name", "state", "hits"):
        assert getattr(got, field) == getattr(want, field), field
    for field in ("score", "age", "time_since_update", "trajectory_step"):
        assert getattr(got, field) == pytest.approx(getattr(want, field)), field
    for field in ("box", "velocity", "box_variance", "trajectory", "trajectory_covariance", "position",
                  "position_velocity"):
        np.testing.assert_array_equal(np.asarray(getattr(got, field)), np.asarray(getattr(want, field)))


def _make_track_array(n_tracks: int = 3, n_points: int = 10) -> msg.TrackArray:
    """A TrackArray of ``n_tracks`` tracks with every field set (flat arrays filled from bytes)."""
    n, k = n_tracks, n_points
    ids = np.arange(1, n + 1)
    out = msg.TrackArray()
    out.header.stamp.sec = 1_700_000_000
    out.header.stamp.nanosec = 123_456_789
    out.header.frame_id = "camera_optical_frame"
    out.ids = array.array("Q", ids.astype(np.uint64).tobytes())
    out.class_ids = array.array("i", (ids % 3).astype(np.int32).tobytes())
    out.class_names = [f"class-{i % 3}" for i in ids.tolist()]
    out.scores = array.array("f", (0.5 + 0.01 * ids).astype(np.float32).tobytes())
    out.states = array.array("B", np.where(ids % 2, 1, 2).astype(np.uint8).tobytes())
    boxes = np.array([100.0, 200.0, 30.0, 60.0]) + ids[:, None]
    out.boxes = array.array("f", boxes.astype(np.float32).tobytes())
    out.velocities = array.array("f", np.full((n, 4), 1.5, np.float32).tobytes())
    out.box_variances = array.array("f", np.full((n, 4), 0.5, np.float32).tobytes())
    out.ages = array.array("f", (2.5 * ids).astype(np.float32).tobytes())
    out.hits = array.array("I", (10 * ids).astype(np.uint32).tobytes())
    out.times_since_update = array.array("f", (0.1 * ids).astype(np.float32).tobytes())
    out.trajectory_step = 0.2
    out.trajectory_length = k
    centres = np.arange(n * k * 2, dtype=np.float32).reshape(n, k, 2) + 1000 * ids[:, None, None]
    out.trajectories = array.array("f", centres.astype(np.float32).tobytes())
    out.trajectory_covariances = array.array("f", np.arange(n * k * 3, dtype=np.float32).tobytes())
    positions = np.column_stack([0.1 * ids, -0.2 * ids, 2.0 + ids]).astype(np.float32)
    positions[-1] = np.nan  # a track without a position this frame
    out.positions = array.array("f", positions.tobytes())
    out.position_velocities = array.array("f", (positions * -0.5).tobytes())
    return out


_TRACK_ARRAY_FIELDS = {
    "header": "std_msgs/Header",
    "ids": "sequence<uint64>",
    "class_ids": "sequence<int32>",
    "class_names": "sequence<string>",
    "scores": "sequence<float>",
    "states": "sequence<uint8>",
    "boxes": "sequence<float>",
    "velocities": "sequence<float>",
    "box_variances": "sequence<float>",
    "ages": "sequence<float>",
    "hits": "sequence<uint32>",
    "times_since_update": "sequence<float>",
    "trajectory_step": "float",
    "trajectory_length": "uint32",
    "trajectories": "sequence<float>",
    "trajectory_covariances": "sequence<float>",
    "positions": "sequence<float>",
    "position_velocities": "sequence<float>",
}


def _assert_track_arrays_equal(got: msg.TrackArray, want: msg.TrackArray) -> None:
    assert got.header.stamp.sec == want.header.stamp.sec
    assert got.header.stamp.nanosec == want.header.stamp.nanosec
    assert got.header.frame_id == want.header.frame_id
    assert list(got.class_names) == list(want.class_names)
    assert got.trajectory_length == want.trajectory_length
    assert got.trajectory_step == pytest.approx(want.trajectory_step)
    for field, kind in _TRACK_ARRAY_FIELDS.items():
        if kind.startswith("sequence<") and field != "class_names":
            g, w = getattr(got, field), getattr(want, field)
            assert isinstance(g, array.array) and g.typecode == w.typecode, field
            assert g.tobytes() == w.tobytes(), field


def test_state_constants_match_core_track_state():
    for cls in (msg.Track, msg.TrackArray):
        assert cls.STATE_TENTATIVE == TrackState.TENTATIVE.value
        assert cls.STATE_CONFIRMED == TrackState.CONFIRMED.value
        assert cls.STATE_LOST == TrackState.LOST.value
    assert len(TrackState) == 3


def test_messages_have_the_documented_fields():
    track_fields = msg.Track.get_fields_and_field_types()
    assert track_fields["id"] == "uint64"
    assert track_fields["box"] == "float[4]"
    assert track_fields["trajectory"] == "sequence<float>"
    assert track_fields["trajectory_covariance"] == "sequence<float>"
    assert track_fields["position"] == "sequence<float>"
    assert track_fields["position_velocity"] == "sequence<float>"
    # a structure of arrays: no nested message per track
    assert msg.TrackArray.get_fields_and_field_types() == _TRACK_ARRAY_FIELDS
    assert msg.Detection2D.get_fields_and_field_types() == {
        "id": "string",
        "bbox": "float[4]",
        "class_id": "int32",
        "score": "float",
    }
    assert msg.Detection2DArray.get_fields_and_field_types() == {
        "header": "std_msgs/Header",
        "detections": "sequence<ros2_tracker/Detection2D>",
    }


def test_track_round_trips_through_cdr():
    original = _make_track(5, n_points=10)
    restored = serialization.deserialize_message(serialization.serialize_message(original), msg.Track)
    _assert_tracks_equal(restored, original)
    assert len(restored.trajectory) == 20 and len(restored.trajectory_covariance) == 30


def test_track_array_round_trips_through_cdr():
    original = _make_track_array(n_tracks=3, n_points=10)
    data = serialization.serialize_message(original)
    restored = serialization.deserialize_message(data, msg.TrackArray)
    _assert_track_arrays_equal(restored, original)
    # N*K*2 centres, track-major: the last track's last point is its last two values
    assert len(restored.trajectories) == 3 * 10 * 2 and len(restored.trajectory_covariances) == 3 * 10 * 3
    assert restored.trajectories[-1] == pytest.approx(3000 + 59)
    assert list(restored.ids) == [1, 2, 3] and list(restored.states) == [1, 2, 1]


def test_flat_track_array_is_compact():
    """100 tracks with 10-point paths: one buffer per field, ~28 kB, no per-track overhead."""
    data = serialization.serialize_message(_make_track_array(n_tracks=100, n_points=10))
    # per track: id, class id, score, state, 3 x float32[4], age, hits, since, 10 x (2 + 3) float32, a
    # "class-i" string (4-byte length + 8 bytes), a position and its velocity (3 float32 each)
    payload = 100 * (8 + 4 + 4 + 1 + 3 * 16 + 4 + 4 + 4 + 10 * 5 * 4 + 12 + 2 * 3 * 4)
    assert payload <= len(data) <= payload + 200


def test_detection_array_round_trips_through_cdr():
    original = msg.Detection2DArray()
    original.header.frame_id = "cam"
    for i in range(4):
        d = msg.Detection2D(id=f"d{i}", class_id=i, score=0.25 * i)
        d.bbox = np.array([10.0 * i, 20.0, 5.0, 8.0], dtype=np.float32)
        original.detections.append(d)
    restored = serialization.deserialize_message(
        serialization.serialize_message(original), msg.Detection2DArray
    )
    assert [d.id for d in restored.detections] == ["d0", "d1", "d2", "d3"]
    assert [d.class_id for d in restored.detections] == [0, 1, 2, 3]
    np.testing.assert_allclose([d.score for d in restored.detections], [0.0, 0.25, 0.5, 0.75])
    np.testing.assert_array_equal(restored.detections[3].bbox, [30.0, 20.0, 5.0, 8.0])


_PUBLISHER = textwrap.dedent(
    """
    import sys, time
    import rclpy
    from rclpy.serialization import deserialize_message
    from ros2_tracker.msg import TrackArray

    with open(sys.argv[1], "rb") as f:   # the message to send, serialised by the test
        payload = f.read()
    rclpy.init()
    node = rclpy.create_node("test_msgs_publisher")
    pub = node.create_publisher(TrackArray, "tracks", 10)
    msg = deserialize_message(payload, TrackArray)
    deadline = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:   # until the test kills us: discovery takes a moment
        pub.publish(msg)
        time.sleep(0.05)
    node.destroy_node()
    rclpy.shutdown()
    """
)


def test_track_array_crosses_dds_between_processes(tmp_path, monkeypatch):
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    domain_id = private_domain_id(os.getpid())  # this process's own: parallel runs must not hear each other
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_LOG_DIR=str(tmp_path / "pub-log"))
    monkeypatch.setenv("ROS_LOG_DIR", str(tmp_path / "sub-log"))
    sent = _make_track_array(n_tracks=3, n_points=20)
    timeout_s = 20.0

    payload = tmp_path / "sent.cdr"
    payload.write_bytes(serialization.serialize_message(sent))
    stderr_path = tmp_path / "publisher.stderr"
    with stderr_path.open("wb") as stderr:
        publisher = subprocess.Popen(
            [sys.executable, "-c", _PUBLISHER, str(payload), str(timeout_s)], stderr=stderr, env=env
        )
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    try:
        node = rclpy.create_node("test_msgs_subscriber", context=context)
        received: list[msg.TrackArray] = []
        node.create_subscription(msg.TrackArray, "tracks", received.append, 10)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + timeout_s
        while not received and time.monotonic() < deadline and publisher.poll() is None:
            executor.spin_once(timeout_sec=0.1)
        executor.shutdown()
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
        publisher.kill()
        publisher.wait(timeout=10)

    stderr_text = stderr_path.read_text(errors="replace")
    assert received, f"no TrackArray received over DDS in {timeout_s} s; publisher stderr:\n{stderr_text}"
    _assert_track_arrays_equal(received[0], sent)
