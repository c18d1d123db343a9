"""tracker_node end to end: the node runs as its own process, this test talks to it over DDS.

The test publishes Detection2DArray messages of two walking boxes (and images, with ``use_images``),
frame by frame, waiting for each TrackArray (lock-step, so nothing depends on timing), and checks
tracks, trajectories, markers, timing, bad input, start-up and run-time parameter validation.
The node's input logic without a graph: test_inputs.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
msgs = pytest.importorskip("ros2_tracker.msg",
                           reason="ros2_tracker.msg is not built: run `bash scripts/setup.sh`")

from rclpy.context import Context  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from ros_graph import TrackerNodeClient, stop_node  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ros2_tracker.nodes.conversions import (  # noqa: E402
    arrays_to_detections,
    seconds_to_stamp,
    stamp_to_ns,
    track_array_to_arrays,
    vision_msgs_available,
)
from ros2_tracker.nodes.image_conversions import bgr_to_image_msg  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
FPS = 30.0
T0 = 100.0  # first stamp [s]
W, H = 320, 240
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


# ------------------------------------------------------------------------------- node process
def truth(k: int) -> np.ndarray:
    """Two walking people (xyxy px) at frame k: A right at 90 px/s, B left at 60 px/s."""
    return np.array([[20 + 3.0 * k, 60, 60 + 3.0 * k, 160], [260 - 2.0 * k, 40, 290 - 2.0 * k, 110]])


class Harness(TrackerNodeClient):
    """The test's side of the graph: publishes inputs and collects everything the node sends."""

    def __init__(self, context: Context, use_images: bool) -> None:
        super().__init__(context, "tracker_node_test", markers=True, annotated_images=use_images)
        self.use_images = use_images

    def wait_for_node(self, proc: subprocess.Popen, log: Path) -> None:
        super().wait_for_node(proc, log, timeout=20.0, images=self.use_images, markers=True)

    def frame(self, stamp_s: float, boxes: np.ndarray, scores=None, image: Image | bool | None = True):
        """Publish one frame (image first, as a detector pipeline would) and wait for its tracks."""
        h = Header(frame_id="camera", stamp=seconds_to_stamp(stamp_s))
        img = None
        if self.use_images and image is not False:
            img = image if isinstance(image, Image) else bgr_to_image_msg(
                np.full((H, W, 3), 90, np.uint8), Image, "bgr8", h)
            img.header = Header(frame_id="camera_image", stamp=h.stamp)  # a detector that did not copy it
        scores = np.full(len(boxes), 0.9) if scores is None else scores
        det = arrays_to_detections(boxes, scores, np.zeros(len(boxes), int), h, msgs)
        return self.publish_frame(det, img, 5.0)

    def set_parameter(self, name: str, value: float | str):
        return super().set_parameter(name, value, 5.0)


@pytest.fixture
def graph(tracker_node_graph):
    """tracker_node processes and a private rclpy context (see conftest.tracker_node_graph)."""
    return tracker_node_graph


def marker_display(marker_arrays) -> dict:
    """What RViz would show after these MarkerArrays: (ns, id) -> marker."""
    shown: dict = {}
    for ma in marker_arrays:
        for m in ma.markers:
            if m.action == m.DELETE:
                shown.pop((m.ns, m.id), None)
            elif m.action == m.DELETEALL:  # RViz2: only its own namespace
                for key in [k for k in shown if not m.ns or k[0] == m.ns]:
                    del shown[key]
            else:
                shown[(m.ns, m.id)] = m
    return shown


@pytest.mark.slow
@pytest.mark.parametrize("use_images", [False, True], ids=["detections", "with_images"])
def test_node_tracks_walking_people_and_survives_bad_input(graph, use_images):
    start, context = graph
    proc, log = start(f"use_images:={str(use_images).lower()}", "image_qos:=reliable", "image_wait_s:=0.3",
                      "max_lost_s:=0.3")
    h = Harness(context, use_images)
    h.wait_for_node(proc, log)

    # 1. 30 frames of two walking people: stable ids, boxes near the truth, trajectories
    arrays = [track_array_to_arrays(h.frame(T0 + k / FPS, truth(k), image=not (use_images and k == 12)))
              for k in range(30)]
    ids = arrays[-1].ids.tolist()
    assert len(ids) == 2 and all(a.ids.tolist() == ids for a in arrays[1:])  # stable from frame 1 on
    last = arrays[-1]
    order = np.argsort(last.boxes_xyxy[:, 0])
    np.testing.assert_allclose(last.boxes_xyxy[order], truth(29), atol=3.0)
    assert last.states.tolist() == [1, 1] and last.stamp_s == pytest.approx(T0 + 29 / FPS)
    # horizon 2.0 s / step 0.2 s
    assert last.trajectories.shape == (2, 10, 2) and last.trajectory_step_s == pytest.approx(0.2)
    for cov in last.trajectory_covariances:
        assert np.all(np.diff(cov[:, 0]) > 0) and np.all(np.diff(cov[:, 2]) > 0)  # uncertainty grows
    a_row = int(order[0])
    a_centre_x = last.boxes_xyxy[a_row, [0, 2]].mean()
    assert last.trajectories[a_row][-1, 0] == pytest.approx(a_centre_x + 180, abs=20)  # 90 px/s for 2 s
    assert h.spin_until(lambda: len(h.timing) >= 30)
    timing = json.loads(h.timing[-1].data)
    assert timing["stage"] == "tracker" and 0 < timing["seconds"] < 1 and timing["stamp"] > T0
    if use_images:  # annotated images: paired by stamp, the frame without image was still tracked
        assert h.spin_until(lambda: len(h.images) >= 29)
        stamps = {stamp_to_ns(m.header.stamp) for m in h.images}
        assert stamp_to_ns(seconds_to_stamp(T0 + 12 / FPS)) not in stamps and len(stamps) == 29
        assert (h.images[-1].width, h.images[-1].height, h.images[-1].encoding) == (W, H, "bgr8")
        assert h.images[-1].header.frame_id == "camera_image"  # the annotated image keeps its own header

    # 2. B leaves: lost (faded marker), then removed (its markers are deleted); C appears: tentative
    #    tracks are not published (publish_tentative is false), so C shows up one frame later
    k0 = 30
    c_box = np.array([[150.0, 180, 180, 230]])
    seen = [track_array_to_arrays(h.frame(T0 + k / FPS, np.vstack([truth(k)[:1], c_box])))
            for k in range(k0, k0 + 15)]
    assert set(seen[0].ids.tolist()) == set(ids)  # A, B lost; C is tentative: not published
    (c_id,) = set(seen[1].ids.tolist()) - set(ids)  # confirmed at its 2nd hit
    assert c_id > max(ids) and all(c_id in s.ids.tolist() for s in seen[1:])
    b_id = next(i for i in ids if i != ids[a_row])
    assert h.spin_until(lambda: b_id not in {key[1] for key in marker_display(h.markers)})
    faded = [m.color.a for ma in h.markers for m in ma.markers if m.id == b_id and m.action == m.ADD
             and m.ns == "tracks/box"]
    assert faded[0] == 1.0 and min(faded) < 0.5
    h.spin_until(lambda: False, 0.3)
    shown = marker_display(h.markers)
    assert {key[1] for key in shown} == {ids[a_row], c_id}
    assert {key[0] for key in shown} == {"tracks/box", "tracks/label", "tracks/path"}

    # 3. bad input: the node logs, keeps running and answers the next good message
    k = k0 + 15
    with_nan = np.vstack([truth(k)[:1], c_box, [[np.nan, 5, 10, 20]], [[50, 50, 40, 60]]])  # NaN, width < 0
    live = sorted([ids[a_row], c_id])
    unbounded = np.array([12.0, 0.9, 0.9, 0.9])  # a score > 1: thresholds assume [0, 1], the node warns
    assert sorted(track_array_to_arrays(h.frame(T0 + k / FPS, with_nan, unbounded)).ids.tolist()) == live
    empty = track_array_to_arrays(h.frame(T0 + (k + 1) / FPS, np.empty((0, 4))))
    assert sorted(empty.ids.tolist()) == live and empty.states.tolist() == [2, 2]  # lost: the update ran
    if use_images:
        bad = bgr_to_image_msg(np.zeros((H, W, 3), np.uint8), Image, "bgr8")
        bad.height = H + 7  # data no longer matches step * height
        h.frame(T0 + (k + 2) / FPS, truth(k + 2)[:1], image=bad)
    # a late message (half a frame behind the last tracked one) is dropped: no TrackArray for it, and
    # the next frame still has the same tracks (the tracker was not reset)
    late_stamp = seconds_to_stamp(T0 + (k + 0.5) / FPS)
    h.det_pub.publish(arrays_to_detections(truth(k)[:1], np.full(1, 0.9), np.zeros(1, int),
                                           Header(frame_id="camera", stamp=late_stamp), msgs))
    kept = track_array_to_arrays(h.frame(T0 + (k + 3) / FPS, np.vstack([truth(k + 3)[:1], c_box])))
    assert sorted(kept.ids.tolist()) == live
    assert stamp_to_ns(late_stamp) not in {stamp_to_ns(t.header.stamp) for t in h.tracks}
    back = track_array_to_arrays(h.frame(T0 + 1.0, truth(0)[:1]))  # 0.6 s back (> late_tolerance_s): reset
    assert not set(back.ids.tolist()) & set(live)  # the old tracks are gone
    again = track_array_to_arrays(h.frame(T0 + 1.0 + 1 / FPS, truth(1)[:1]))
    assert len(again.ids) == 1 and again.ids[0] > c_id  # a new track: ids are never reused

    # 4. run-time parameters: out of range rejected, valid accepted and used without losing tracks
    r = h.set_parameter("match_iou", 1.5)
    assert not r.successful and "match_iou" in r.reason
    r = h.set_parameter("low_score", 0.9)
    assert not r.successful and "high_score" in r.reason
    r = h.set_parameter("max_lost_s", "abc")  # what `ros2 param set /tracker_node max_lost_s abc` sends
    assert not r.successful
    assert r.reason == "max_lost_s: expected a floating-point number, got a string ('abc')"
    assert h.set_parameter("trajectory_horizon_s", 1.0).successful
    after = track_array_to_arrays(h.frame(T0 + 1.0 + 2 / FPS, truth(2)[:1]))
    assert after.ids.tolist() == again.ids.tolist() and after.trajectories.shape == (1, 5, 2)
    # more detections than max_detections: the strongest are tracked (the weaker ones start no track)
    assert h.set_parameter("max_detections", 1).successful
    for j in (3, 4):
        crowd = np.vstack([truth(j)[:1], [[200, 20, 230, 90]], [[20, 150, 50, 220]]])
        capped = track_array_to_arrays(h.frame(T0 + 1.0 + j / FPS, crowd, np.array([0.9, 0.8, 0.7])))
    assert capped.ids.tolist() == again.ids.tolist() and capped.states.tolist() == [1]
    # a step forward longer than any track may coast (a publisher on another clock): a new timeline
    ahead = [track_array_to_arrays(h.frame(T0 + 121.0 + j / FPS, truth(j)[:1])) for j in (0, 1)]
    assert len(ahead[1].ids) == 1 and ahead[1].ids[0] > capped.ids[0]
    # a run-time max_lost_s longer than the step moves the threshold with it: the same step keeps the track
    assert h.set_parameter("max_lost_s", 200.0).successful
    kept = track_array_to_arrays(h.frame(T0 + 241.0, truth(2)[:1]))
    assert kept.ids.tolist() == ahead[1].ids.tolist()

    assert proc.poll() is None, "tracker_node died"
    drawn = [m for ma in h.markers for m in ma.markers if m.action == m.ADD]
    # marker_lifetime_s: RViz drops them 2 s after the last message: a node or stream that stops leaves none
    assert drawn and all((m.lifetime.sec, m.lifetime.nanosec) == (2, 0) for m in drawn)
    assert stop_node(proc, log) == 0, log.read_text()
    text = log.read_text()
    assert "dropped 2 of 4 detections" in text
    assert "detection scores reach 12" in text and "ROS parameters of this node" in text
    assert "s behind the last tracked ones: dropped as late (1 so far" in text
    assert "3 detections at stamp" in text and "more than max_detections (1): tracking the 1 highest" in text
    assert "time went backwards by 0.600 s" in text and "resetting the tracker (1 so far)" in text
    # 121 - 1 - 4/30 s after the last tracked stamp
    assert "time jumped 119.867 s ahead" in text and "longer than any track may coast" in text
    # throttled lines may leave some out: each says how many so far, and the node's last words the totals
    assert "resetting the tracker (2 so far)" in text
    if use_images:
        assert "cannot use the image at stamp" in text and "(1 so far): " in text and "data has" in text
        assert "in all: 2 tracker reset(s)" in text
        assert "1 unusable image(s) in all: 1 x data has # bytes" in text
    else:
        assert "in all: 2 tracker reset(s)" in text
    assert "Failed to publish log message to rosout" not in text  # said after the node, not through it


def test_node_warns_when_detections_carry_no_usable_score_and_keeps_running(graph):
    """A detector that leaves Detection2D.score at 0: nothing can start a track, so the node says why."""
    start, context = graph
    proc, log = start()
    h = Harness(context, False)
    h.wait_for_node(proc, log)
    for k in range(30):
        assert len(track_array_to_arrays(h.frame(T0 + k / FPS, truth(k), np.zeros(2))).ids) == 0
    for k in range(30, 32):  # scored detections: tracks start as usual
        tracks = track_array_to_arrays(h.frame(T0 + k / FPS, truth(k)))
    assert len(tracks.ids) == 2
    assert stop_node(proc, log) == 0, log.read_text()
    text = log.read_text()
    assert text.count("detection scores are at most 0, below what starts a track") == 1, text
    assert "ROS parameters of this node" in text and "Traceback" not in text


def test_sigusr1_writes_every_threads_stack_to_the_log_and_the_node_goes_on(graph):
    """Where a node hangs: ``kill -USR1`` (the launch/replay supervisor's, before it kills a node that ignored
    SIGINT and SIGTERM) writes its Python stacks to stderr (run_node registers faulthandler for it)."""
    import signal
    import time

    start, context = graph
    proc, log = start()
    h = Harness(context, False)
    h.wait_for_node(proc, log)
    proc.send_signal(signal.SIGUSR1)
    end = time.monotonic() + 10.0
    while "in run_node" not in log.read_text() and time.monotonic() < end:
        time.sleep(0.05)
    # faulthandler's "File .., line N in run_node" (then in spin_until_shutdown, or still in the node's
    # __init__: its endpoints, which wait_for_node waits for, come before its last start-up lines)
    assert "(most recent call first)" in log.read_text() and "in run_node" in log.read_text(), log.read_text()
    assert track_array_to_arrays(h.frame(T0, truth(0))).ids.tolist() == [1, 2]  # still tracking
    assert track_array_to_arrays(h.frame(T0 + 1 / FPS, truth(1))).ids.tolist() == [1, 2]
    assert stop_node(proc, log) == 0, log.read_text()


def test_with_sim_time_and_no_clock_a_detection_whose_image_never_comes_is_still_tracked(graph):
    """use_sim_time at the end of a bag: /clock has stopped. The wait for a lost image is wall time
    (image_wait_s), so the last detections are tracked without it instead of waiting for ever."""
    start, context = graph
    proc, log = start("use_images:=true", "use_sim_time:=true", "image_wait_s:=0.3", "image_qos:=reliable")
    h = Harness(context, True)
    h.wait_for_node(proc, log)
    first = track_array_to_arrays(h.frame(T0, truth(0)))  # no /clock at all
    assert len(first.ids) == 2  # the first frame's tracks are confirmed at once
    h.frame(T0 + 1 / FPS, truth(1))
    last = track_array_to_arrays(h.frame(T0 + 2 / FPS, truth(2), image=False))  # its image never comes
    assert last.ids.tolist() == first.ids.tolist()
    assert proc.poll() is None and stop_node(proc, log) == 0, log.read_text()


def test_a_misspelt_parameter_is_named_in_a_warning(graph):
    """rclpy ignores a parameter the node does not have: `-p max_lost_sec:=0.1` (for max_lost_s) left the
    tracks coasting 1 s, unsaid."""
    start, context = graph
    proc, log = start("max_lost_sec:=0.1", "qos_overrides./tracks.publisher.depth:=5")
    h = Harness(context, False)
    h.wait_for_node(proc, log)
    assert stop_node(proc, log) == 0, log.read_text()
    text = log.read_text()
    assert "ignoring parameter(s) max_lost_sec: not parameters of tracker_node" in text, text


def test_a_jump_ahead_longer_than_any_track_may_coast_resets_the_tracker(graph):
    """A paused source or another clock: the stamps jump 120 s ahead. The node starts over, so the people
    in the first frame after the jump are confirmed at once (the first frame after a reset), with new ids,
    and it says why."""
    start, context = graph
    proc, log = start()
    h = Harness(context, False)
    h.wait_for_node(proc, log)
    before = [track_array_to_arrays(h.frame(T0 + k / FPS, truth(k))) for k in range(5)][-1]
    after = track_array_to_arrays(h.frame(T0 + 120.0, truth(5)))
    assert len(before.ids) == 2 and len(after.ids) == 2 and not set(before.ids) & set(after.ids)
    assert after.states.tolist() == [1, 1]
    assert stop_node(proc, log) == 0, log.read_text()
    assert "time jumped 119.867 s ahead" in log.read_text()


@pytest.mark.parametrize(("sign", "bird"), [(1, False), (-1, False), (1, True)],
                         ids=["as_given", "negated", "a_bird_first"])
def test_ground_homography_given_with_the_opposite_sign_is_turned_round(graph, sign, bird):
    """A homography is defined up to scale, sign included: 9 numbers with w < 0 at the people's feet put
    everyone above the horizon, infinitely far apart, and no detection would ever match a track. The node
    turns the sign round once 20 detections' foot points were seen, nearly all behind the camera (with a
    warning), and tracks as usual; a first message holding only a box above the horizon (a bird) does not
    turn a correct one round."""
    start, context = graph
    values = (0.01, 0, 0, 0, 0.01, 0, 0, 0.02, -1)  # 1 px = 1 cm near the horizon, which is row 50
    h9 = ",".join(str(float(sign * v)) for v in values)
    proc, log = start(f"ground_homography:=[{h9}]", "max_ground_distance_m:=0.5")
    h = Harness(context, False)
    h.wait_for_node(proc, log)
    if bird:
        h.frame(T0 - 1 / FPS, np.array([[100.0, 10, 110, 30]]))  # its feet at row 30: w < 0
    arrays = [track_array_to_arrays(h.frame(T0 + k / FPS, truth(k))) for k in range(16)]
    confirmed = [a.ids[a.states == 1].tolist() for a in arrays[-4:]]
    assert all(len(c) == 2 and c == confirmed[-1] for c in confirmed), [(a.ids, a.states) for a in arrays]
    assert stop_node(proc, log) == 0, log.read_text()
    text = log.read_text()
    assert text.count("using it with the opposite sign") == (sign < 0), text


VISION_MSGS = pytest.param(
    "detections_format:=vision_msgs", ["detections_format", "vision_msgs", "not installed"],
    marks=pytest.mark.skipif(vision_msgs_available(), reason="vision_msgs is installed: the node starts"))


@pytest.mark.parametrize("override,expected", [
    ("match_iou:=1.5", ["match_iou", "[0, 0.99]"]),
    ("max_lost_s:=1", ["max_lost_s", "floating-point", "[0, 3600]"]),
    ("image_qos:=fast", ["image_qos", "one of sensor_data, reliable"]),
    ("ground_homography:=[0.01,0,0,0,0.01,0,0,0,1]", ["invalid ROS arguments", "ground_homography",
                                                     "write 0.0, not 0"]),
    VISION_MSGS,
])
def test_invalid_parameter_at_start_up_exits_non_zero_naming_it(graph, override, expected):
    start, _ = graph
    proc, log = start(override)
    assert proc.wait(30) == 2
    text = log.read_text()
    assert all(e in text for e in expected) and "Traceback" not in text, text


@pytest.mark.slow
def test_use_cmc_moves_lost_tracks_with_the_panning_image(graph):
    """Three people standing still; from frame 10 the camera pans (the image moves 6 px left per frame) and
    one of them is no longer detected. With use_cmc the node estimates the pan from the images (ECC) and
    the lost track moves with the image; by constant velocity alone it would stay where it was lost."""
    import cv2

    start, context = graph
    proc, log = start("use_images:=true", "use_cmc:=true", "image_qos:=reliable", "image_wait_s:=0.3",
                      "max_lost_s:=2.0")
    h = Harness(context, True)
    h.wait_for_node(proc, log)
    rng = np.random.default_rng(0)
    world = cv2.GaussianBlur(rng.integers(0, 255, (H, W + 200, 3), dtype=np.uint8), (0, 0), 3)
    people = np.array([[40.0, 60, 80, 160], [140, 50, 175, 140], [230, 70, 270, 170]])  # xyxy, in frame 0
    for k in range(20):
        pan = 6.0 * max(0, k - 9)  # px the camera has moved right
        image = bgr_to_image_msg(np.ascontiguousarray(world[:, int(pan):int(pan) + W]), Image, "bgr8")
        shown = people - [pan, 0, pan, 0]
        tracks = track_array_to_arrays(h.frame(T0 + k / FPS, shown if k < 10 else shown[:2], image=image))
    lost = tracks.states == 2
    assert lost.sum() == 1, tracks.states
    x_lost = tracks.boxes_xyxy[lost][0, 0]
    assert x_lost == pytest.approx(shown[2, 0], abs=8), (x_lost, shown[2, 0], people[2, 0])  # moved ~60 px
    flat = bgr_to_image_msg(np.full((H, W, 3), 90, np.uint8), Image, "bgr8")  # a covered lens: ECC fails
    for k in range(20, 23):
        h.frame(T0 + k / FPS, shown[:2], image=flat)
    assert stop_node(proc, log) == 0, log.read_text()
    text = log.read_text()
    assert "camera-motion compensation: ECC" in text
    assert "camera-motion compensation failed at stamp" in text and "tracks not moved" in text
