"""Message <-> array conversions and RViz markers, with the real message classes (no ROS graph)."""

from __future__ import annotations

import array
import math

import numpy as np
import pytest

from ros2_tracker.core import Tracker, TrackerConfig, TrackState
from ros2_tracker.nodes.conversions import (
    _TRACK_FIELDS,
    _class_number,
    _has_slot_layout,
    arrays_to_detections,
    detections_to_arrays,
    ns_to_stamp,
    published_tracks,
    seconds_to_stamp,
    stamp_to_ns,
    stamp_to_seconds,
    track_array_to_arrays,
    track_array_to_track_list,
    track_list_to_track_array,
    tracks_to_msg,
    vision_msgs_available,
)

pytestmark = pytest.mark.ros

builtin = pytest.importorskip("builtin_interfaces.msg", reason="ROS 2 message wheels are not installed")
std_msgs = pytest.importorskip("std_msgs.msg", reason="ROS 2 message wheels are not installed")
serialization = pytest.importorskip("rclpy.serialization", reason="rclpy is not installed")
msgs = pytest.importorskip("ros2_tracker.msg",
                           reason="ros2_tracker.msg is not built: run `bash scripts/setup.sh`")


def header(stamp_s: float = 12.5, frame_id: str = "camera") -> object:
    return std_msgs.Header(stamp=seconds_to_stamp(stamp_s), frame_id=frame_id)


def over_the_wire(msg):
    """Serialise to CDR and back, as a subscriber would receive it."""
    return serialization.deserialize_message(serialization.serialize_message(msg), type(msg))


# ---------------------------------------------------------------------------------------- stamps
def test_stamp_round_trip_is_exact_to_the_nanosecond():
    rng = np.random.default_rng(0)
    secs = rng.integers(0, 2**22, 2000)
    nsecs = rng.integers(0, 10**9, 2000)
    for sec, nsec in zip(secs.tolist(), nsecs.tolist(), strict=True):
        stamp = builtin.Time(sec=sec, nanosec=nsec)
        back = seconds_to_stamp(stamp_to_seconds(stamp))
        assert (back.sec, back.nanosec) == (sec, nsec)


@pytest.mark.parametrize("seconds,sec,nanosec", [
    (0.0, 0, 0), (1 / 30, 0, 33_333_333), (2 / 30, 0, 66_666_667), (0.9999999999, 1, 0),
    (-0.5, -1, 500_000_000), (1_700_000_000.25, 1_700_000_000, 250_000_000),
])
def test_seconds_to_stamp_rounds_to_nearest_ns_and_carries(seconds, sec, nanosec):
    s = seconds_to_stamp(seconds)
    assert (s.sec, s.nanosec) == (sec, nanosec)


def test_integer_nanoseconds_are_exact_for_epoch_stamps():
    stamp = builtin.Time(sec=1_754_000_123, nanosec=999_999_999)
    ns = stamp_to_ns(stamp)
    assert ns == 1_754_000_123_999_999_999
    back = ns_to_stamp(ns)
    assert (back.sec, back.nanosec) == (stamp.sec, stamp.nanosec)
    with pytest.raises(ValueError, match="finite"):
        seconds_to_stamp(math.nan)


# ------------------------------------------------------------------------------------ detections
def test_detections_round_trip_through_cdr():
    boxes = np.array([[10.0, 20.0, 50.0, 120.0], [300.5, 40.25, 340.5, 100.75]])
    msg = arrays_to_detections(boxes, np.array([0.9, 0.35]), np.array([0, 2]), header(3.25), msgs)
    assert isinstance(msg, msgs.Detection2DArray)
    np.testing.assert_allclose(msg.detections[0].bbox, [30.0, 70.0, 40.0, 100.0])  # cx, cy, w, h
    det = detections_to_arrays(over_the_wire(msg))
    np.testing.assert_allclose(det.boxes_xyxy, boxes, atol=1e-4)
    assert det.boxes_xyxy.dtype == np.float64 and det.boxes_xyxy.shape == (2, 4)
    np.testing.assert_allclose(det.scores, [0.9, 0.35], atol=1e-6)
    assert det.classes.tolist() == [0, 2] and det.classes.dtype == np.int64
    assert det.stamp_s == 3.25 and det.invalid == 0


def test_invalid_detections_are_dropped_and_counted_not_raised():
    d = msgs.Detection2D
    good = d(bbox=np.array([50, 50, 10, 20], np.float32), class_id=1, score=0.8)
    bad = [
        d(bbox=np.array([np.nan, 50, 10, 20], np.float32), score=0.8),
        d(bbox=np.array([50, 50, np.inf, 20], np.float32), score=0.8),
        d(bbox=np.array([50, 50, 0, 20], np.float32), score=0.8),
        d(bbox=np.array([50, 50, 10, -5], np.float32), score=0.8),
        d(bbox=np.array([50, 50, 10, 20], np.float32), score=float("nan")),
    ]
    msg = msgs.Detection2DArray(header=header(), detections=[bad[0], good, *bad[1:]])
    det = detections_to_arrays(msg)
    assert det.invalid == 5
    np.testing.assert_allclose(det.boxes_xyxy, [[45, 40, 55, 60]])
    assert det.classes.tolist() == [1]


def test_empty_detection_array_gives_empty_arrays_with_the_stamp():
    det = detections_to_arrays(msgs.Detection2DArray(header=header(7.0)))
    assert det.boxes_xyxy.shape == (0, 4) and det.scores.shape == (0,) and det.classes.shape == (0,)
    assert det.stamp_s == 7.0 and det.invalid == 0


def test_arrays_to_detections_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same length"):
        arrays_to_detections(np.zeros((2, 4)), np.ones(3), None, header(), msgs)


@pytest.mark.skipif(not vision_msgs_available(),
                    reason="vision_msgs is not installed: it is not on PyPI (it comes with a ROS 2 "
                           "distribution), so this pip set-up cannot test the optional vision_msgs input")
def test_vision_msgs_detections_are_read():  # pragma: no cover - needs a ROS 2 distribution
    from vision_msgs.msg import Detection2D, Detection2DArray, ObjectHypothesisWithPose

    d = Detection2D()
    d.bbox.center.position.x, d.bbox.center.position.y = 30.0, 70.0
    d.bbox.size_x, d.bbox.size_y = 40.0, 100.0
    nan, low, high = ObjectHypothesisWithPose(), ObjectHypothesisWithPose(), ObjectHypothesisWithPose()
    nan.hypothesis.class_id, nan.hypothesis.score = "3", float("nan")  # first: max() must not pick it
    low.hypothesis.class_id, low.hypothesis.score = "person", 0.3
    high.hypothesis.class_id, high.hypothesis.score = "17", 0.9
    d.results = [nan, low, high]
    boxes_only = Detection2D()  # no hypothesis: an unscored box
    boxes_only.bbox.center.position.x, boxes_only.bbox.center.position.y = 100.0, 50.0
    boxes_only.bbox.size_x, boxes_only.bbox.size_y = 20.0, 60.0
    det = detections_to_arrays(over_the_wire(Detection2DArray(header=header(), detections=[d, boxes_only])))
    np.testing.assert_allclose(det.boxes_xyxy, [[10, 20, 50, 120], [90, 20, 110, 80]])
    assert det.scores.tolist() == pytest.approx([0.9, 1.0]) and det.classes.tolist() == [17, -1]


def test_vision_msgs_shaped_detections_take_each_ones_best_finite_hypothesis():
    """The vision_msgs path runs here too, on objects of vision_msgs' shape (the package is not on PyPI):
    each detection's best finite hypothesis gives its score and class, whatever the order."""
    from types import SimpleNamespace as S

    def det(cx, cy, w, h, *hyps):
        bbox = S(center=S(position=S(x=cx, y=cy)), size_x=w, size_y=h)
        return S(bbox=bbox, results=[S(hypothesis=S(class_id=c, score=s)) for c, s in hyps])

    msg = S(header=header(), detections=[
        det(30.0, 70.0, 40.0, 100.0, ("3", float("nan")), ("person", 0.3), ("17", 0.9), ("5", 0.6)),
        det(100.0, 50.0, 20.0, 60.0),  # no hypothesis: an unscored box
        det(200.0, 50.0, 20.0, 60.0, ("2", 0.4), ("8", 0.7))])
    d = detections_to_arrays(msg)
    np.testing.assert_allclose(d.boxes_xyxy, [[10, 20, 50, 120], [90, 20, 110, 80], [190, 20, 210, 80]])
    assert d.scores.tolist() == pytest.approx([0.9, 1.0, 0.7]) and d.classes.tolist() == [17, -1, 8]


def test_vision_msgs_class_names_get_ids_of_their_own_and_are_never_mixed():
    """Classes given by name ("person", "bicycle") get ids -2, -3, ... from the node's table, kept for its
    life; numbered ones keep their number; without a table a name reads as -1 (unknown). A person whose
    detector flips to "bicycle" is then a new track, as with numbered classes."""
    from types import SimpleNamespace as S

    def msg(*names):
        dets = [S(bbox=S(center=S(position=S(x=100.0, y=100.0)), size_x=40.0, size_y=100.0),
                  results=[S(hypothesis=S(class_id=n, score=0.9))]) for n in names]
        return S(header=header(), detections=dets)

    table: dict[str, int] = {}
    assert detections_to_arrays(msg("person", "7", "bicycle", "person"), table).classes.tolist() == \
        [-2, 7, -3, -2]
    assert detections_to_arrays(msg("bicycle"), table).classes.tolist() == [-3]
    assert table == {"person": -2, "bicycle": -3}
    assert detections_to_arrays(msg("person")).classes.tolist() == [-1]
    tracker = Tracker()
    for k, name in enumerate(["person", "person", "person", "bicycle"]):
        d = detections_to_arrays(msg(name), table)
        tracks = tracker.update(d.boxes_xyxy, d.scores, d.classes, stamp=0.1 * k)
    assert tracks.ids.tolist() == [1, 2] and tracks.classes.tolist() == [-2, -3]
    out = tracks_to_msg(tracks, None, header(), msgs, class_names={v: k for k, v in table.items()})
    assert list(out.class_names) == ["person", "bicycle"]


# ---------------------------------------------------------------------------------------- tracks
def walking_tracker(frames: int = 6, horizon: float = 1.0, step: float = 0.25) -> Tracker:
    """Three boxes moving right at 30 px/s, 10 Hz; the third disappears for the last frame."""
    tracker = Tracker(TrackerConfig(trajectory_horizon_s=horizon, trajectory_step_s=step))
    for k in range(frames):
        x = 3.0 * k
        boxes = np.array([[10 + x, 10, 50 + x, 90], [200 + x, 10, 240 + x, 90], [400 + x, 10, 440 + x, 90]])
        tracker.update(boxes[:2] if k == frames - 1 else boxes, np.full(3 - (k == frames - 1), 0.9),
                       stamp=0.1 * k)
    return tracker


def test_tracks_round_trip_through_cdr():
    tracker = walking_tracker()
    tracks, traj = tracker.tracks(), tracker.predict_trajectories()
    msg = tracks_to_msg(tracks, traj, header(0.5), msgs, class_names={0: "person"})
    assert isinstance(msg, msgs.TrackArray) and msg.header.frame_id == "camera"
    # every unbounded array is array.array (rclpy's one-buffer path), never numpy or lists
    for field, code in [("ids", "Q"), ("class_ids", "i"), ("states", "B"), ("hits", "I"), ("boxes", "f"),
                        ("trajectories", "f"), ("trajectory_covariances", "f")]:
        assert isinstance(getattr(msg, field), array.array) and getattr(msg, field).typecode == code, field
    wire = over_the_wire(msg)
    # the documented flat layout: N*4 boxes (cx, cy, w, h), N*K*2 centres, N*K*3 covariances
    n, k = len(tracks), traj.centres.shape[1]
    assert (len(wire.ids), wire.trajectory_length, len(wire.boxes)) == (n, k, 4 * n)
    assert len(wire.trajectories) == n * k * 2 and len(wire.trajectory_covariances) == n * k * 3
    x1, y1, x2, y2 = tracks.boxes_xyxy[1]
    np.testing.assert_allclose(wire.boxes[4:8], [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], rtol=1e-6)
    np.testing.assert_allclose(wire.trajectories[2 * k:2 * k + 2], traj.centres[1, 0], rtol=1e-6)
    back = track_array_to_arrays(wire)
    assert len(back) == n
    assert back.ids.tolist() == tracks.ids.tolist() and back.ids.dtype == np.int64
    assert back.states.tolist() == tracks.states.tolist()
    assert back.classes.tolist() == tracks.classes.tolist()
    assert back.class_names == ["person"] * 3
    np.testing.assert_allclose(back.scores, tracks.scores, rtol=1e-6)
    np.testing.assert_allclose(back.boxes_xyxy, tracks.boxes_xyxy, atol=1e-3)
    np.testing.assert_allclose(back.velocities, tracks.velocities, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(back.box_variances, tracks.box_variances, rtol=1e-5)
    np.testing.assert_allclose(back.ages_s, tracks.ages_s, atol=1e-6)
    np.testing.assert_allclose(back.time_since_update_s, tracks.time_since_update_s, atol=1e-6)
    assert back.hits.tolist() == tracks.hits.tolist()
    assert back.trajectory_step_s == pytest.approx(0.25)
    assert back.stamp_s == 0.5 and back.frame_id == "camera"
    assert back.trajectories.shape == (3, 4, 2) and back.trajectory_covariances.shape == (3, 4, 3)
    np.testing.assert_allclose(back.trajectories, traj.centres, rtol=1e-6)
    np.testing.assert_allclose(back.trajectory_covariances, traj.covariances, rtol=1e-6)
    # the boxes move right at ~30 px/s: so does the predicted path
    assert np.all(np.diff(back.trajectories[0, :, 0]) > 5)


def test_positions_travel_with_their_tracks_and_stay_empty_without_depth():
    tracker = walking_tracker()
    tracks, traj = tracker.tracks(), tracker.predict_trajectories()
    assert track_array_to_arrays(over_the_wire(tracks_to_msg(tracks, traj, header(), msgs))).positions is None
    positions = np.array([[0.5, -0.25, 3.0], [1.5, 0.75, 6.5], [np.nan, np.nan, np.nan]])
    wire = over_the_wire(tracks_to_msg(tracks, traj, header(), msgs, positions=positions))
    assert isinstance(wire.positions, array.array) and len(wire.positions) == 9
    np.testing.assert_array_equal(track_array_to_arrays(wire).positions, positions)
    # per-object messages carry their own position, and rebuild the same array (compared as bytes: NaN != NaN)
    objects = track_array_to_track_list(wire, msgs)
    np.testing.assert_array_equal(np.asarray(objects[1].position), positions[1])
    cdr = serialization.serialize_message
    assert cdr(track_list_to_track_array(objects, wire.header, msgs)) == cdr(wire)
    assert [cdr(t) for t in track_array_to_track_list(wire, msgs, fast=False)] == [cdr(t) for t in objects]
    objects[0].position = array.array("f")  # some tracks with a position, others without: ambiguous
    with pytest.raises(ValueError, match="position must hold 3 values"):
        track_list_to_track_array(objects, wire.header, msgs)
    with pytest.raises(ValueError, match=r"positions must have shape \(3, 3\)"):
        tracks_to_msg(tracks, traj, header(), msgs, positions=positions[:2])
    wire.positions = wire.positions[:-1]
    with pytest.raises(ValueError, match="positions has 8 values, expected 0 or 9"):
        track_array_to_arrays(wire)


def test_position_velocities_travel_with_their_positions():
    tracker = walking_tracker()
    tracks, traj = tracker.tracks(), tracker.predict_trajectories()
    positions = np.array([[0.5, -0.25, 3.0], [1.5, 0.75, 6.5], [np.nan, np.nan, np.nan]])
    velocities = np.array([[0.1, 0.0, -1.2], [np.nan, np.nan, np.nan], [np.nan, np.nan, np.nan]])
    plain = over_the_wire(tracks_to_msg(tracks, traj, header(), msgs, positions=positions))
    assert track_array_to_arrays(plain).position_velocities is None  # positions alone: no velocities
    wire = over_the_wire(tracks_to_msg(tracks, traj, header(), msgs, positions=positions,
                                       position_velocities=velocities))
    np.testing.assert_array_equal(track_array_to_arrays(wire).position_velocities, np.float32(velocities))
    objects = track_array_to_track_list(wire, msgs)
    np.testing.assert_array_equal(np.asarray(objects[0].position_velocity), np.float32(velocities[0]))
    cdr = serialization.serialize_message
    assert cdr(track_list_to_track_array(objects, wire.header, msgs)) == cdr(wire)
    assert [cdr(t) for t in track_array_to_track_list(wire, msgs, fast=False)] == [cdr(t) for t in objects]
    with pytest.raises(ValueError, match="come with positions, got \\(3, 3\\) without positions"):
        tracks_to_msg(tracks, traj, header(), msgs, position_velocities=velocities)
    with pytest.raises(ValueError, match="position_velocities must have shape \\(3, 3\\)"):
        tracks_to_msg(tracks, traj, header(), msgs, positions=positions, position_velocities=velocities[:2])
    objects[1].position = array.array("f")
    objects[1].position_velocity = array.array("f")
    objects[2].position = array.array("f")
    with pytest.raises(ValueError, match="position must hold 3 values"):
        track_list_to_track_array(objects, wire.header, msgs)
    wire.position_velocities = wire.position_velocities[:3]
    with pytest.raises(ValueError, match="position_velocities has 3 values, expected 0 or as many as "):
        track_array_to_arrays(wire)


def test_class_names_are_left_empty_unless_given():
    tracker = walking_tracker()
    msg = tracks_to_msg(tracker.tracks(), None, header(), msgs)
    assert list(over_the_wire(msg).class_names) == []
    assert track_array_to_arrays(msg).class_names == [""] * 3
    named = tracks_to_msg(tracker.tracks(), None, header(), msgs, class_names={5: "car"})
    assert list(named.class_names) == [""] * 3  # class 0 has no name in the map


def test_class_ids_beyond_int32_become_unknown_not_another_class():
    """TrackArray.class_ids is int32: a vision_msgs string id beyond it used to crash the node (int64
    overflow), and a tracker class beyond it was wrapped to a valid but wrong class (2**32 + 5 -> 5)."""
    assert [_class_number(c) for c in ("17", " 3 ", "person", "-1", "2147483647", "2147483648",
                                       "99999999999999999999", "-2147483649")] == [17, 3, -1, -1, 2147483647,
                                                                                  -1, -1, -1]
    tracker = Tracker(TrackerConfig(min_hits=1))
    ts = tracker.update(np.array([[0, 0, 10, 20], [50, 0, 60, 20], [90, 0, 99, 20.0]]), np.ones(3),
                        np.array([2**32 + 5, 7, -(2**40)]), stamp=0.0)
    msg = over_the_wire(tracks_to_msg(ts, None, header(), msgs))
    assert list(msg.class_ids) == [-1, 7, -1]


def test_track_list_helpers_round_trip_with_the_flat_array():
    tracker = walking_tracker()
    tracks, traj = tracker.tracks(), tracker.predict_trajectories()
    wire = over_the_wire(tracks_to_msg(tracks, traj, header(0.5), msgs, class_names={0: "person"}))
    objects = track_array_to_track_list(wire, msgs)
    assert all(isinstance(t, msgs.Track) for t in objects) and len(objects) == len(tracks)
    t1 = objects[1]
    assert t1.id == tracks.ids[1] and t1.class_name == "person" and t1.state == tracks.states[1]
    np.testing.assert_allclose(t1.box, wire.boxes[4:8])
    assert isinstance(t1.trajectory, array.array) and t1.trajectory.typecode == "f"
    np.testing.assert_allclose(np.reshape(t1.trajectory, (-1, 2)), traj.centres[1], rtol=1e-6)
    np.testing.assert_allclose(np.reshape(t1.trajectory_covariance, (-1, 3)), traj.covariances[1], rtol=1e-6)
    assert t1.trajectory_step == pytest.approx(0.25)
    # the per-object messages are valid on their own, and rebuild the same array
    assert over_the_wire(t1) == t1
    assert track_list_to_track_array(objects, wire.header, msgs) == wire
    slow = track_array_to_track_list(wire, msgs, fast=False)
    assert slow == objects and [over_the_wire(t) for t in slow] == [over_the_wire(t) for t in objects]
    assert _has_slot_layout(msgs.Track, _TRACK_FIELDS)  # else the fast path is silently unused
    empty = track_list_to_track_array([], header(), msgs)
    assert len(empty.ids) == 0 and empty.trajectory_length == 0
    assert track_array_to_track_list(empty, msgs) == []


def test_track_list_with_uneven_trajectories_is_refused():
    tracker = walking_tracker()
    objects = track_array_to_track_list(
        tracks_to_msg(tracker.tracks(), tracker.predict_trajectories(), header(), msgs), msgs)
    objects[0].trajectory = objects[0].trajectory[:2]
    with pytest.raises(ValueError, match="same K points"):
        track_list_to_track_array(objects, header(), msgs)


def test_malformed_track_arrays_are_refused_with_the_field_named():
    tracker = walking_tracker()
    msg = tracks_to_msg(tracker.tracks(), tracker.predict_trajectories(), header(), msgs)
    msg.boxes = msg.boxes[:-1]
    with pytest.raises(ValueError, match="boxes has 11 values, expected 12"):
        track_array_to_arrays(msg)
    msg = tracks_to_msg(tracker.tracks(), tracker.predict_trajectories(), header(), msgs)
    msg.trajectory_length = 5
    with pytest.raises(ValueError, match="trajectories has 24 values, expected 30"):
        track_array_to_track_list(msg, msgs)
    msg = tracks_to_msg(tracker.tracks(), None, header(), msgs)
    msg.class_names = ["a"]
    with pytest.raises(ValueError, match="class_names has 1 entries"):
        track_array_to_arrays(msg)


def test_fast_slot_filling_builds_the_same_detections_as_the_constructors():
    boxes = np.array([[10.0, 20.0, 50.0, 120.0], [300.5, 40.25, 340.5, 100.75]])
    fast = arrays_to_detections(boxes, [0.9, 0.4], [0, 3], header(), msgs)
    slow = arrays_to_detections(boxes, [0.9, 0.4], [0, 3], header(), msgs, fast=False)
    assert fast == slow and over_the_wire(fast) == over_the_wire(slow)


def test_slot_layout_check_refuses_unknown_classes():
    class NotAMessage:
        __slots__ = ("_id",)

    assert not _has_slot_layout(NotAMessage, ("id",))
    assert not _has_slot_layout(msgs.Track, ("id", "class_id"))  # other fields than the class has


def test_tracks_without_trajectories_have_empty_paths():
    tracker = walking_tracker()
    msg = tracks_to_msg(tracker.tracks(), None, header(), msgs)
    assert msg.trajectory_length == 0 and len(msg.trajectories) == 0 and msg.trajectory_step == 0.0
    back = track_array_to_arrays(msg)
    assert back.trajectories.shape == (3, 0, 2) and back.trajectory_covariances.shape == (3, 0, 3)
    assert back.trajectory_step_s == 0.0
    assert all(len(t.trajectory) == 0 for t in track_array_to_track_list(msg, msgs))


def test_uneven_trajectory_times_are_refused():
    tracker = walking_tracker()
    tracks, traj = tracker.tracks(), tracker.predict_trajectories()
    uneven = traj._replace(times_s=traj.times_s ** 2)
    with pytest.raises(ValueError, match="step"):
        tracks_to_msg(tracks, uneven, header(), msgs)
    with pytest.raises(ValueError, match="trajectories hold 2 tracks"):
        tracks_to_msg(tracks, traj._replace(centres=traj.centres[:2]), header(), msgs)


def test_empty_track_set_gives_an_empty_track_array():
    tracker = Tracker()
    msg = over_the_wire(tracks_to_msg(tracker.tracks(), tracker.predict_trajectories(), header(), msgs))
    assert len(msg.ids) == 0 and len(msg.boxes) == 0 and len(msg.trajectories) == 0
    back = track_array_to_arrays(msg)
    assert len(back) == 0 and back.boxes_xyxy.shape == (0, 4)


def test_published_tracks_selects_states_and_keeps_rows_aligned():
    tracker = Tracker(TrackerConfig(min_hits=2))
    tracker.update(np.array([[0, 0, 10, 10], [50, 0, 60, 10.0]]), stamp=0.0)
    tracker.update(np.array([[0, 0, 10, 10], [50, 0, 60, 10.0]]), stamp=0.1)  # both confirmed
    tracker.update(np.array([[0, 0, 10, 10], [200, 0, 210, 10.0]]), stamp=0.2)  # 2 lost, 3 tentative
    tracks, traj = tracker.tracks(), tracker.predict_trajectories()
    assert sorted(tracks.states.tolist()) == [TrackState.TENTATIVE, TrackState.CONFIRMED, TrackState.LOST]
    for lost, tentative, expected in [(False, False, {1}), (True, False, {1, 2}), (True, True, {1, 2, 3})]:
        t, j = published_tracks(tracks, traj, publish_lost=lost, publish_tentative=tentative)
        assert set(t.ids.tolist()) == expected
        assert j.ids.tolist() == t.ids.tolist() and len(j.centres) == len(t)
        for row, tid in enumerate(t.ids.tolist()):
            np.testing.assert_array_equal(j.centres[row], traj.centres[traj.ids.tolist().index(tid)])
    with pytest.raises(ValueError, match="same track ids"):
        published_tracks(tracks.select(np.array([0])), traj, publish_lost=True, publish_tentative=True)


# --------------------------------------------------------------------------------------- markers
viz = pytest.importorskip("visualization_msgs.msg", reason="visualization_msgs is not installed")


def apply(display: dict, marker_array) -> dict:
    """What RViz2 shows after a MarkerArray: (ns, id) -> marker (a DELETEALL clears its own namespace)."""
    for m in marker_array.markers:
        if m.action == m.DELETEALL:
            for key in [k for k in display if not m.ns or k[0] == m.ns]:
                del display[key]
        elif m.action == m.DELETE:
            display.pop((m.ns, m.id), None)
        else:
            display[(m.ns, m.id)] = m
    return display


def test_markers_draw_box_label_and_path_on_the_image_plane():
    from ros2_tracker.nodes.markers import MARKER_NAMESPACES, tracks_to_markers

    tracker = walking_tracker()
    tracks, traj = tracker.tracks(), tracker.predict_trajectories()
    out = tracks_to_markers(tracks, traj, header(0.5, "cam_optical"), scale=0.01)
    cleared = [(viz.Marker.DELETEALL, ns) for ns in MARKER_NAMESPACES]
    assert [(m.action, m.ns) for m in out.markers[:3]] == cleared
    assert len(out.markers) == 3 + 3 * len(tracks)
    by_key = {(m.ns, m.id): m for m in out.markers[3:]}
    tid = int(tracks.ids[0])
    box, label, path = (by_key[(ns, tid)] for ns in MARKER_NAMESPACES)
    assert (box.type, label.type, path.type) == (box.LINE_STRIP, label.TEXT_VIEW_FACING, path.LINE_STRIP)
    assert all(m.header.frame_id == "cam_optical" for m in out.markers)
    x1, y1, x2, y2 = tracks.boxes_xyxy[0]
    pts = [(p.x, p.y) for p in box.points]
    assert len(pts) == 5 and pts[0] == pts[-1]  # closed
    np.testing.assert_allclose(pts[:4], [(x1 * .01, -y1 * .01), (x2 * .01, -y1 * .01),
                                         (x2 * .01, -y2 * .01), (x1 * .01, -y2 * .01)], rtol=1e-9)
    assert label.text == str(tid)
    assert len(path.points) == 1 + traj.centres.shape[1]
    np.testing.assert_allclose([path.points[-1].x, path.points[-1].y],
                               [traj.centres[0, -1, 0] * .01, -traj.centres[0, -1, 1] * .01])
    # colour per id: stable across calls, different between ids
    again = {(m.ns, m.id): m for m in tracks_to_markers(tracks, traj, header(), scale=0.01).markers[3:]}
    c0, c0b = box.color, again[(MARKER_NAMESPACES[0], tid)].color
    assert (c0.r, c0.g, c0.b) == (c0b.r, c0b.g, c0b.b)
    c1 = by_key[(MARKER_NAMESPACES[0], int(tracks.ids[1]))].color
    assert (c0.r, c0.g, c0.b) != (c1.r, c1.g, c1.b)
    # a lifetime: RViz drops the markers of a stream that stopped (default 0: until replaced)
    assert all((m.lifetime.sec, m.lifetime.nanosec) == (0, 0) for m in out.markers)
    timed = tracks_to_markers(tracks, traj, header(), lifetime_s=1.5).markers
    assert all((m.lifetime.sec, m.lifetime.nanosec) == (1, 500_000_000) for m in timed[3:])
    with pytest.raises(ValueError, match="lifetime"):
        tracks_to_markers(tracks, traj, header(), lifetime_s=float("nan"))


def test_position_markers_stand_where_the_tracks_are_in_3d():
    from ros2_tracker.nodes.markers import MARKER_NAMESPACES, POSITION_NAMESPACE, tracks_to_markers

    tracker = walking_tracker()
    tracks, traj = tracker.tracks(), tracker.predict_trajectories()
    assert POSITION_NAMESPACE not in {m.ns for m in tracks_to_markers(tracks, traj, header()).markers}
    positions = np.array([[0.5, -0.25, 3.0], [np.nan, np.nan, np.nan], [1.5, 0.75, 6.5]])
    out = tracks_to_markers(tracks, traj, header(0.5, "cam_optical"), positions=positions)
    cleared = [m.ns for m in out.markers if m.action == viz.Marker.DELETEALL]
    assert cleared == [*MARKER_NAMESPACES, POSITION_NAMESPACE]  # spheres of tracks gone go too
    spheres = {m.id: m for m in out.markers if m.ns == POSITION_NAMESPACE and m.action == viz.Marker.ADD}
    assert set(spheres) == {int(tracks.ids[0]), int(tracks.ids[2])}  # none without a position
    s0 = spheres[int(tracks.ids[0])]
    assert s0.type == viz.Marker.SPHERE and s0.header.frame_id == "cam_optical"
    assert (s0.pose.position.x, s0.pose.position.y, s0.pose.position.z) == (0.5, -0.25, 3.0)
    box = next(m for m in out.markers if m.ns == MARKER_NAMESPACES[0] and m.id == s0.id)
    assert (s0.color.r, s0.color.g, s0.color.b) == (box.color.r, box.color.g, box.color.b)
    with pytest.raises(ValueError, match="positions must have shape"):
        tracks_to_markers(tracks, traj, header(), positions=positions[:2])


def test_velocity_arrows_point_where_the_tracks_go_in_3d():
    from ros2_tracker.nodes.markers import (
        MARKER_NAMESPACES,
        POSITION_NAMESPACE,
        VELOCITY_ARROW_S,
        VELOCITY_NAMESPACE,
        tracks_to_markers,
    )

    tracker = walking_tracker()
    tracks, traj = tracker.tracks(), tracker.predict_trajectories()
    positions = np.array([[0.5, -0.25, 3.0], [np.nan, np.nan, np.nan], [1.5, 0.75, 6.5]])
    velocities = np.array([[0.2, 0.0, -1.0], [np.nan, np.nan, np.nan], [np.nan, np.nan, np.nan]])
    assert VELOCITY_NAMESPACE not in {m.ns for m in tracks_to_markers(tracks, traj, header(),
                                                                         positions=positions).markers}
    out = tracks_to_markers(tracks, traj, header(0.5, "cam_optical"), positions=positions,
                            position_velocities=velocities)
    cleared = [m.ns for m in out.markers if m.action == viz.Marker.DELETEALL]
    assert cleared == [*MARKER_NAMESPACES, POSITION_NAMESPACE, VELOCITY_NAMESPACE]
    arrows = [m for m in out.markers if m.ns == VELOCITY_NAMESPACE and m.action == viz.Marker.ADD]
    assert [m.id for m in arrows] == [int(tracks.ids[0])]  # the only track with a velocity
    (a,) = arrows
    assert a.type == viz.Marker.ARROW and a.header.frame_id == "cam_optical"
    start, end = ((p.x, p.y, p.z) for p in a.points)
    assert start == (0.5, -0.25, 3.0)
    np.testing.assert_allclose(end, positions[0] + VELOCITY_ARROW_S * velocities[0])
    with pytest.raises(ValueError, match="position_velocities need positions"):
        tracks_to_markers(tracks, traj, header(), position_velocities=velocities)
    with pytest.raises(ValueError, match="position_velocities must have shape"):
        tracks_to_markers(tracks, traj, header(), positions=positions, position_velocities=velocities[:2])


def test_distance_labels_give_each_track_its_depth():
    from ros2_tracker.viz.draw import distance_labels

    labels = distance_labels(np.array([7, 12]), np.array([[0.1, 0.2, 3.25], [np.nan] * 3]))
    assert labels == ["7  3.2 m", "12"]
    # with velocities: the speed of those that have one
    labels = distance_labels(np.array([7, 12, 3]), np.array([[0.1, 0.2, 3.25], [np.nan] * 3, [0, 0, 5.0]]),
                             np.array([[0.6, 0.0, -0.8], [0.1, 0.1, 0.1], [np.nan] * 3]))
    assert labels == ["7  3.2 m  1.0 m/s", "12", "3  5.0 m"]


def test_lost_tracks_are_faded():
    from ros2_tracker.nodes.markers import tracks_to_markers

    tracker = walking_tracker()
    tracks = tracker.tracks()
    lost = tracks.states == TrackState.LOST
    assert lost.sum() == 1
    out = tracks_to_markers(tracks, None, header())
    alpha = {m.id: m.color.a for m in out.markers if m.ns == "tracks/box" and m.action == m.ADD}
    assert alpha[int(tracks.ids[lost][0])] < 0.5
    assert all(alpha[int(i)] == 1.0 for i in tracks.ids[~lost])


@pytest.mark.parametrize("every", [1, 3], ids=["every_message", "every_third_message"])
def test_markers_of_vanished_tracks_go_whatever_messages_the_display_missed(every):
    """Each message is the whole display: a viewer that dropped messages (RViz's keep-last queue while
    busy) or a restarted node still shows exactly the live tracks; other publishers' namespaces stay."""
    from ros2_tracker.nodes.markers import tracks_to_markers

    tracker = Tracker(TrackerConfig(min_hits=1, max_lost_s=0.15))
    other = viz.Marker(ns="someone/else", id=1, action=viz.Marker.ADD)
    display: dict = {("someone/else", 1): other}
    for k in range(9):
        boxes = [[10 + k, 10, 50 + k, 90]] + ([[300, 10, 340, 90]] if k < 3 else [])
        tracks = tracker.update(np.array(boxes, float), stamp=0.1 * k)
        out = tracks_to_markers(tracks, tracker.predict_trajectories(), header())
        if k % every == 0:
            apply(display, out)
            assert {key[1] for key in display if key[0] != "someone/else"} == set(tracks.ids.tolist())
    assert ("someone/else", 1) in display
    tracker.reset()  # a reset (e.g. looped bag) clears what was drawn
    assert set(apply(display, tracks_to_markers(tracker.tracks(), None, header()))) == {("someone/else", 1)}


def test_zero_horizon_deletes_path_markers():
    from ros2_tracker.nodes.markers import tracks_to_markers

    tracker = walking_tracker(horizon=0.0)
    tracks, traj = tracker.tracks(), tracker.predict_trajectories()
    assert traj.centres.shape[1] == 0
    out = tracks_to_markers(tracks, traj, header())
    paths = [m for m in out.markers if m.ns == "tracks/path"]
    assert len(paths) == 1 and paths[0].action == paths[0].DELETEALL  # cleared, none drawn
    with pytest.raises(ValueError, match="scale"):
        tracks_to_markers(tracks, traj, header(), scale=0.0)


def _info(seq, gid=b"A"):
    gid_info = {"implementation_identifier": "x", "data": gid}
    return {"publication_sequence_number": seq, "publisher_gid": gid_info}


def test_sequence_gaps_count_what_each_publisher_sent_but_never_arrived():
    from ros2_tracker.nodes.conversions import SequenceGaps

    gaps = SequenceGaps()
    assert [gaps.add(_info(s)) for s in (1, 2, 5, 6)] == [0, 0, 2, 0]
    assert gaps.add(_info(10, b"B")) == 0 and gaps.add(_info(12, b"B")) == 1  # another publisher: its count
    assert gaps.add(_info(1)) == 0 and gaps.add(_info(3)) == 1  # A restarted: counting starts over
    assert gaps.add({"publication_sequence_number": None, "publisher_gid": None}) == 0  # no numbers: nothing
    assert gaps.lost == 4


def test_sequence_gap_reports_add_up_to_every_loss():
    """A node logs losses at most every few seconds; what falls between two lines goes into the next one
    (a throttled log line showed the first of 1,327 lost messages only)."""
    from ros2_tracker.nodes.conversions import SequenceGaps

    gaps = SequenceGaps()
    assert gaps.due(0.0, 2.0) == 0  # nothing lost yet
    gaps.add(_info(1))
    gaps.add(_info(3))  # 1 lost
    assert gaps.due(10.0, 2.0) == 1 and gaps.due(10.5, 2.0) == 0
    gaps.add(_info(10))  # 6 more, within 2 s of the last report: kept for the next
    assert gaps.due(11.0, 2.0) == 0
    gaps.add(_info(20))  # 9 more
    assert gaps.due(12.0, 2.0) == 15 and gaps.lost == 16


def test_sequence_gaps_see_a_full_keep_last_queue_over_dds(ros_env, monkeypatch):
    """A subscription whose queue overflowed (keep last 5, 40 messages before it was read) gets no event
    from DDS: the publishers' sequence numbers show the 35 it never saw."""
    rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
    import time

    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    from ros2_tracker.nodes.conversions import SequenceGaps

    monkeypatch.setenv("ROS_LOG_DIR", ros_env["ROS_LOG_DIR"])
    ctx = Context()
    rclpy.init(context=ctx, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    try:
        node = rclpy.create_node("gaps_check", context=ctx)
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        gaps, got = SequenceGaps(), []
        node.create_subscription(String, "flood", lambda m, info: (got.append(m.data), gaps.add(info)), qos)
        pub = node.create_publisher(String, "flood",
                                    QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE))
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        pub.publish(String(data="0"))
        end = time.monotonic() + 10
        while not got and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        for k in range(1, 41):  # nobody reads meanwhile: the queue keeps the last 5
            pub.publish(String(data=str(k)))
        time.sleep(0.5)
        while len(got) < 6 and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        executor.spin_once(timeout_sec=0.2)
        assert got[0] == "0" and got[1:] == [str(k) for k in range(36, 41)]
        assert gaps.lost == 35
        executor.shutdown()
        node.destroy_node()
    finally:
        ctx.try_shutdown()
