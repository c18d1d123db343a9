"""tracker_node's input logic without ROS (ros2_tracker.nodes.inputs): pairing detection messages with images
by stamp, the stamps' order, and the score-range warning."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_tracker.core.tracker import TrackerConfig
from ros2_tracker.nodes.inputs import ScoreRangeWatch, StampOrder, StampPairer


def test_pairer_pairs_by_exact_stamp_in_either_arrival_order():
    p = StampPairer(image_queue_size=5, max_pending=5, max_wait_s=1.0)
    assert p.add_image(1, "img1", 0.0) == []
    assert p.add_detections(1, "det1", 0.0) == [("det1", "img1")]  # image first
    assert p.add_detections(2, "det2", 0.0) == []                   # waits for its image
    assert p.add_image(2, "img2", 0.0) == [("det2", "img2")]


def test_pairer_gives_up_on_lost_images_without_reordering():
    p = StampPairer(image_queue_size=5, max_pending=2, max_wait_s=0.5)
    assert p.add_detections(1, "det1", 0.0) == []
    assert p.add_detections(2, "det2", 0.0) == []
    # a newer image arrived: det1's image was dropped; det2 still has a chance... and gets it
    assert p.add_image(2, "img2", 0.1) == [("det1", None), ("det2", "img2")]
    # waiting too long
    assert p.add_detections(3, "det3", 1.0) == []
    assert p.release(1.4) == [] and p.release(1.5) == [("det3", None)]
    # too many waiting (max_pending=2): the oldest goes without image
    for s in (4, 5):
        assert p.add_detections(s, f"det{s}", 2.0) == []
    assert p.add_detections(6, "det6", 2.0) == [("det4", None)]
    assert len(p) == 2


def test_pairer_bounds_images_and_handles_a_looped_source():
    p = StampPairer(image_queue_size=3, max_pending=0, max_wait_s=1.0)
    for s in range(10):
        p.add_image(s, f"img{s}", 0.0)
    assert p.add_detections(0, "det0", 0.0) == [("det0", None)]  # evicted; max_pending=0: no wait
    assert p.add_detections(8, "det8", 0.0) == [("det8", "img8")]
    p2 = StampPairer(image_queue_size=10, max_pending=5, max_wait_s=1.0)
    p2.add_image(50, "late-loop", 0.0)
    assert p2.add_detections(60, "det60", 0.0) == []
    p2.add_image(1, "img1", 0.1)  # stamps restart: stored images are stale
    assert p2.add_detections(1, "det1", 0.1) == [("det60", None), ("det1", "img1")]


def test_pairer_after_a_loop_back_waits_for_the_new_loop_s_image():
    """A looped bag: the first detection of the new loop comes before its image. The old loop's newest
    image must not make the pairer give that image up in advance (it did: the frame went without its
    image, so without appearance, annotation or camera-motion compensation)."""
    p = StampPairer(image_queue_size=30, max_pending=10, max_wait_s=0.5, tolerance_ns=50)
    for s in range(100, 106):
        p.add_image(s * 1000, f"img{s}", 0.0)
        assert p.add_detections(s * 1000, f"det{s}", 0.0) == [(f"det{s}", f"img{s}")]
    assert p.add_detections(100_000, "det100b", 0.0) == []  # nothing pending: the loop shows in the stamps
    assert p.add_image(100_000, "img100b", 0.001) == [("det100b", "img100b")]
    assert p.add_image(101_000, "img101b", 0.002) == []  # and the new loop goes on as the first did
    assert p.add_detections(101_000, "det101b", 0.002) == [("det101b", "img101b")]


def test_pairer_sorts_late_messages_and_images_within_the_tolerance():
    p = StampPairer(image_queue_size=5, max_pending=5, max_wait_s=1.0, tolerance_ns=50)
    assert p.add_detections(20, "det20", 0.0) == []
    assert p.add_detections(10, "det10", 0.0) == []  # 10 ns late: waits before det20, not a new loop
    assert p.add_image(10, "img10", 0.0) == [("det10", "img10")]
    assert p.add_image(30, "img30", 0.0) == [("det20", None)]  # a newer image came: det20's is given up
    assert p.add_image(25, "img25", 0.0) == []  # a late image is kept, in order, with the newer one
    assert p.add_detections(25, "det25", 0.0) == [("det25", "img25")]
    assert p.add_detections(30, "det30", 0.0) == [("det30", "img30")]
    # beyond the tolerance: a new timeline (looped bag): stored images dropped, pending ones flushed
    p.add_image(40, "img40", 0.0)
    assert p.add_detections(45, "det45", 0.0) == []
    p.add_image(-100, "img-100", 0.1)
    assert p.add_detections(-100, "det-100", 0.1) == [("det45", None), ("det-100", "img-100")]
    p.tolerance_ns = 0  # as the node sets it when late_tolerance_s changes: every step back is a loop
    assert p.add_detections(-90, "det-90", 0.1) == []
    assert p.add_detections(-95, "det-95", 0.1) == [("det-90", None)]


def test_stamp_order_drops_late_messages_and_resets_on_a_new_timeline():
    order = StampOrder(tolerance_ns=500, late_in_a_row=3)
    assert [order.check(s) for s in (1000, 2000, 2000)] == [StampOrder.IN_ORDER] * 3  # equal: in order
    assert order.step_s(1700) == pytest.approx(-300e-9) and order.step_s(2500) == pytest.approx(500e-9)
    assert order.check(1700) == StampOrder.LATE  # 300 ns behind: dropped, 2000 stays the last
    assert order.check(1600) == StampOrder.LATE and order.late == 2
    assert order.check(2100) == StampOrder.IN_ORDER  # the run of late messages ends
    assert order.check(1000) == StampOrder.NEW_TIMELINE  # 1100 ns back: a looped source
    assert order.check(1010) == StampOrder.IN_ORDER  # the new timeline is accepted
    # a short loop (every step back within the tolerance): the third late message in a row resets
    assert [order.check(s) for s in (1200, 1000, 1100, 1050)] == [
        StampOrder.IN_ORDER, StampOrder.LATE, StampOrder.LATE, StampOrder.NEW_TIMELINE]
    order.tolerance_ns = 0  # as the node sets it when late_tolerance_s changes
    assert order.check(1040) == StampOrder.NEW_TIMELINE  # tolerance 0: every step back resets
    order.jump_ns = 1000  # a step forward beyond it (clocks mixed up, a long pause) is a new timeline too
    assert [order.check(s) for s in (2040, 3041, 3041)] == [
        StampOrder.IN_ORDER, StampOrder.NEW_TIMELINE, StampOrder.IN_ORDER]
    assert StampOrder().check(10**18) == StampOrder.IN_ORDER  # the first stamp is never a jump


def test_score_watch_warns_when_no_message_could_start_a_track_and_at_once_for_scores_above_one():
    cfg = TrackerConfig()
    watch = ScoreRangeWatch(patience=3)
    assert watch.check(np.empty(0), cfg) is None  # empty messages do not count
    assert [watch.check(np.array([0.0, 0.3]), cfg) for _ in range(2)] == [None, None]
    assert watch.check(np.empty(0), cfg) is None
    note = watch.check(np.zeros(2), cfg)  # the third non-empty message without a startable score
    assert note and "at most 0.3, below what starts a track" in note
    lower = TrackerConfig(high_score=0.2, new_track_score=0.25)
    assert watch.check(np.array([0.1]), lower) is None  # the 0.3 seen before could start one now
    assert watch.check(np.array([0.9]), cfg) is None  # a confident detection: the detector gives scores
    assert watch.check(np.array([0.2]), cfg) is None  # a weak message after that is normal
    assert "scores reach 12" in watch.check(np.array([12.0, 0.5]), cfg)  # unbounded: at once
    assert "scores reach 12" in ScoreRangeWatch(patience=30).check(np.array([12.0]), cfg)
