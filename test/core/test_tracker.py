"""Tracker behaviour: lifecycle, ids, classes, stamps, trajectories, bad input."""

import warnings

import numpy as np
import pytest

from ros2_tracker.core import StampError, Tracker, TrackerConfig, TrackState, score_scale_warning
from ros2_tracker.core.config import ConfigError


def box(cx, cy, w=40.0, h=100.0):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def test_confirmation_after_min_hits_and_constant_velocity_following():
    t = Tracker(TrackerConfig(min_hits=3, confirm_first_frame=False))
    states = []
    for k in range(10):
        ts = t.update(np.array([box(100 + 10 * k, 200)]), np.array([0.9]), stamp=k * 0.1)
        states.append(int(ts.states[0]))
    assert states[:2] == [TrackState.TENTATIVE] * 2 and states[2] == TrackState.CONFIRMED
    assert ts.ids.tolist() == [1]
    assert ts.velocities[0, 0] == pytest.approx(100.0, rel=0.1)  # 10 px per 0.1 s


def test_lost_track_coasts_then_is_removed_and_ids_are_never_reused():
    t = Tracker(TrackerConfig(max_lost_s=0.6, min_hits=1))
    for k in range(5):
        t.update(np.array([box(100 + 10 * k, 200)]), stamp=k * 0.1)
    ts = t.update(np.empty((0, 4)), stamp=0.5)  # empty frame: the track must age
    assert ts.states.tolist() == [TrackState.LOST]
    assert ts.boxes_xyxy[0, 0] == pytest.approx(box(150, 200)[0], abs=10)  # predicted, not frozen
    assert ts.boxes_xyxy[0, 0] > box(140, 200)[0]
    t.update(np.empty((0, 4)), stamp=0.95)
    assert len(t) == 1
    t.update(np.empty((0, 4)), stamp=1.05)  # 0.65 s without detection > max_lost_s
    assert len(t) == 0
    ts = t.update(np.array([box(150, 200)]), stamp=1.1)
    assert ts.ids.tolist() == [2]


def test_lost_track_recovers_its_id_after_a_short_occlusion():
    t = Tracker(TrackerConfig(min_hits=1))
    for k in range(10):
        t.update(np.array([box(100 + 8 * k, 200)]), stamp=k * 0.1)
    for k in range(10, 14):  # occluded for 0.4 s, keeps walking
        t.update(np.empty((0, 4)), stamp=k * 0.1)
    ts = t.update(np.array([box(100 + 8 * 14, 200)]), stamp=1.4)
    assert ts.ids.tolist() == [1] and ts.states.tolist() == [TrackState.CONFIRMED]


def _crossing(penalty, dense_limit=None):
    """A walks right; B walks left towards A and is occluded (no detection) from frame 8. In frame 10
    A's detection, 4 px behind A's prediction, sits right on B's coasting prediction."""
    import ros2_tracker.core.tracker as mod

    t = Tracker(TrackerConfig(min_hits=1, lost_match_penalty=penalty))
    limit = mod._DENSE_LIMIT
    try:
        mod._DENSE_LIMIT = limit if dense_limit is None else dense_limit
        for k in range(10):
            dets = [box(100 + 10 * k, 200)] + ([box(296 - 10 * k, 200)] if k < 8 else [])
            t.update(np.array(dets), stamp=k * 0.1)
        return t.update(np.array([box(196, 200)]), stamp=1.0)
    finally:
        mod._DENSE_LIMIT = limit


@pytest.mark.parametrize("dense_limit", [None, 0], ids=["dense", "sparse"])
def test_a_coasting_track_does_not_steal_the_detection_of_a_track_seen_last_frame(dense_limit):
    ts = _crossing(0.3, dense_limit)  # B's IoU with the detection is 1.0, A's 0.82: within the penalty
    assert ts.ids.tolist() == [1, 2] and ts.det_indices.tolist() == [0, -1]
    assert ts.states.tolist() == [TrackState.CONFIRMED, TrackState.LOST]
    ts = _crossing(0.0, dense_limit)  # without the priority the lost track takes it: an identity switch
    assert ts.det_indices.tolist() == [-1, 0]


def test_a_lone_lost_track_still_matches_down_to_match_iou_despite_the_penalty():
    for penalty in (0.0, 1.0):
        t = Tracker(TrackerConfig(min_hits=1, lost_match_penalty=penalty, match_iou=0.2))
        for k in range(5):
            t.update(np.array([box(100, 200)]), stamp=k * 0.1)
        t.update(np.empty((0, 4)), stamp=0.5)
        ts = t.update(np.array([box(122, 200)]), stamp=0.6)  # IoU 18 / 62 = 0.29
        assert ts.det_indices.tolist() == [0] and ts.ids.tolist() == [1]
    t = Tracker(TrackerConfig(min_hits=1, lost_match_penalty=1.0, match_iou=0.2))
    for k in range(5):
        t.update(np.array([box(100, 200)]), stamp=k * 0.1)
    t.update(np.empty((0, 4)), stamp=0.5)
    ts = t.update(np.array([box(128, 200)]), stamp=0.6)  # IoU 12 / 68 = 0.18: below match_iou
    assert ts.ids.tolist() == [1, 2] and ts.det_indices.tolist() == [-1, 0]  # a new track instead


def test_dropped_frames_use_the_real_time_step():
    a, b = Tracker(TrackerConfig(min_hits=1)), Tracker(TrackerConfig(min_hits=1))
    for k in range(6):
        a.update(np.array([box(100 + 10 * k, 200)]), stamp=k * 0.1)
        if k % 2 == 0:  # b sees every other frame only
            b.update(np.array([box(100 + 10 * k, 200)]), stamp=k * 0.1)
    va, vb = a.tracks().velocities[0, 0], b.tracks().velocities[0, 0]
    assert va == pytest.approx(100, rel=0.15) and vb == pytest.approx(100, rel=0.2)


@pytest.mark.parametrize("dense_limit", [None, 0], ids=["dense", "sparse"])
def test_classes_never_mix(dense_limit, monkeypatch):
    import ros2_tracker.core.tracker as mod

    if dense_limit is not None:  # the crowded-frame path (above _DENSE_LIMIT pairs) gates classes too
        monkeypatch.setattr(mod, "_DENSE_LIMIT", dense_limit)
    t = Tracker(TrackerConfig(min_hits=1))
    t.update(np.array([box(100, 200)]), classes=np.array([0]), stamp=0.0)
    ts = t.update(np.array([box(101, 200)]), classes=np.array([2]), stamp=0.1)
    assert len(ts) == 2
    assert sorted(ts.classes.tolist()) == [0, 2]
    assert ts.select(ts.classes == 0).states.tolist() == [TrackState.LOST]


@pytest.mark.parametrize("score,state", [(0.05, TrackState.LOST), (0.15, TrackState.CONFIRMED)])
def test_detections_below_low_score_are_ignored_even_on_a_track(score, state):
    t = Tracker(TrackerConfig(low_score=0.1))
    for k in range(3):
        t.update(np.array([box(100, 200)]), np.array([0.9]), stamp=0.1 * k)
    ts = t.update(np.array([box(100, 200)]), np.array([score]), stamp=0.3)  # exactly on the track
    assert ts.states.tolist() == [state] and ts.det_indices.tolist() == [0 if score > 0.1 else -1]


def test_tentative_tracks_match_at_tentative_match_iou():
    """A fast object's second box overlaps its first by IoU 0.11: below match_iou 0.5, above
    tentative_match_iou 0.05, so the tentative track takes it and is confirmed (same id)."""
    t = Tracker(TrackerConfig(match_iou=0.5, tentative_match_iou=0.05, confirm_first_frame=False))
    t.update(np.array([box(100, 200)]), stamp=0.0)
    ts = t.update(np.array([box(132, 200)]), stamp=0.1)
    assert ts.ids.tolist() == [1] and ts.states.tolist() == [TrackState.CONFIRMED]
    t = Tracker(TrackerConfig(match_iou=0.5, tentative_match_iou=0.2, confirm_first_frame=False))
    t.update(np.array([box(100, 200)]), stamp=0.0)
    assert t.update(np.array([box(132, 200)]), stamp=0.1).ids.tolist() == [2]  # restarted


def test_low_score_detections_extend_but_never_start_tracks():
    t = Tracker(TrackerConfig(min_hits=1))
    ts = t.update(np.array([box(100, 200)]), np.array([0.3]), stamp=0.0)
    assert len(ts) == 0
    t.update(np.array([box(300, 200)]), np.array([0.9]), stamp=0.1)
    ts = t.update(np.array([box(302, 200)]), np.array([0.3]), stamp=0.2)
    assert ts.det_indices.tolist() == [0] and ts.states.tolist() == [TrackState.CONFIRMED]


def _weak_and_neighbour(association, dense_limit=None, features=False):
    """A walks right; in frame 5 A is only weakly detected (score 0.3) where predicted, while a
    confident detection of someone else overlaps A's prediction at IoU 0.33."""
    import ros2_tracker.core.tracker as mod

    t = Tracker(TrackerConfig(min_hits=1, low_score_association=association))
    feats = (lambda n: np.tile([1.0, 0.0], (n, 1))) if features else (lambda n: None)
    limit = mod._DENSE_LIMIT
    try:
        mod._DENSE_LIMIT = limit if dense_limit is None else dense_limit
        for k in range(5):
            t.update(np.array([box(100 + 10 * k, 200)]), np.array([0.9]), stamp=k * 0.1, features=feats(1))
        # the neighbour's detection comes first, so column order cannot decide it
        dets = np.array([box(170, 200), box(150, 200)])  # IoU with A's prediction (150): 20/60 = 0.33
        return t.update(dets, np.array([0.9, 0.3]), stamp=0.5, features=feats(2))
    finally:
        mod._DENSE_LIMIT = limit


@pytest.mark.parametrize("path", ["dense", "sparse", "appearance", "appearance-sparse"])
def test_joint_low_score_association_keeps_a_weakly_detected_track_on_its_own_detection(path):
    kw = {"dense_limit": 0 if path.endswith("sparse") else None, "features": path.startswith("appearance")}
    ts = _weak_and_neighbour("joint", **kw)
    assert ts.ids.tolist() == [1, 2] and ts.det_indices.tolist() == [1, 0]  # A keeps the weak one
    assert ts.states[0] == TrackState.CONFIRMED  # and the neighbour starts a track of its own
    ts = _weak_and_neighbour("second_stage", **kw)  # ByteTrack's order: A takes the neighbour's
    assert ts.ids.tolist() == [1] and ts.det_indices.tolist() == [0]


@pytest.mark.parametrize("dense_limit", [None, 0], ids=["dense", "sparse"])
@pytest.mark.parametrize("association", ["joint", "second_stage"])
def test_low_score_detections_extend_confirmed_tracks_only_above_their_iou(association, dense_limit):
    import ros2_tracker.core.tracker as mod

    limit = mod._DENSE_LIMIT
    try:
        mod._DENSE_LIMIT = limit if dense_limit is None else dense_limit
        t = Tracker(TrackerConfig(min_hits=1, low_score_association=association, low_score_match_iou=0.5))
        for k in range(3):
            t.update(np.array([box(100, 200)]), np.array([0.9]), stamp=k * 0.1)
        ts = t.update(np.array([box(118, 200)]), np.array([0.3]), stamp=0.3)  # IoU 22 / 58 = 0.38
        assert ts.states.tolist() == [TrackState.LOST] and ts.det_indices.tolist() == [-1]
        ts = t.update(np.array([box(100, 200)]), np.array([0.3]), stamp=0.4)  # IoU 1, but lost
        assert ts.states.tolist() == [TrackState.LOST] and ts.det_indices.tolist() == [-1]
        ts = t.update(np.array([box(100, 200)]), np.array([0.9]), stamp=0.5)  # a confident one does
        assert ts.states.tolist() == [TrackState.CONFIRMED] and ts.ids.tolist() == [1]
        ts = t.update(np.array([box(106, 200)]), np.array([0.3]), stamp=0.6)  # IoU 34 / 46 = 0.74
        assert ts.states.tolist() == [TrackState.CONFIRMED] and ts.det_indices.tolist() == [0]
    finally:
        mod._DENSE_LIMIT = limit

def _five_walkers(jitter, pan_px=0.0, frames=60, seed=0):
    """Five people walking at constant velocities (10 fps), detected every frame with Gaussian box noise of
    ``jitter`` x box height; the camera pans sinusoidally by up to ``pan_px`` (period 2 s)."""
    rng = np.random.default_rng(seed)
    starts = np.array([[100.0 + 150 * i, 300.0] for i in range(5)])
    vel = rng.uniform(-40, 40, size=(5, 2))
    for k in range(frames):
        c = starts + vel * k * 0.1 + [pan_px * np.sin(np.pi * k * 0.1), 0.0]
        truth = np.hstack([c - np.array([20, 50]), c + np.array([20, 50])])
        yield k * 0.1, truth + rng.normal(0, jitter * 100, size=truth.shape)


@pytest.mark.parametrize("jitter, expected", [(0.005, (0.03, 0.05)), (0.05, (0.1, 0.1))])
def test_adaptive_measurement_noise_follows_the_detectors_precision(jitter, expected):
    t = Tracker()
    assert t.measurement_noise == 0.1  # starts at measurement_noise
    for stamp, dets in _five_walkers(jitter):
        t.update(dets, stamp=stamp)
    lo, hi = expected  # a precise detector: lower, never below the floor; a noisy one: the configured bound
    assert lo <= t.measurement_noise <= hi
    adapted = t.measurement_noise
    t.set_config(t.config.replace(max_lost_s=2.0))  # a run-time parameter change keeps the estimate
    assert t.measurement_noise == adapted
    t.reset()
    assert t.measurement_noise == 0.1
    fixed = Tracker(TrackerConfig(adaptive_measurement_noise=False))
    for stamp, dets in _five_walkers(jitter):
        fixed.update(dets, stamp=stamp)
    assert fixed.measurement_noise == 0.1


def test_a_precise_detector_under_a_panning_camera_keeps_its_identities():
    """Smoothing fit for a jittery detector makes a precise detector's tracks lag behind a panning camera
    until they lose their people; the adapted noise keeps all five. Without camera_motion_gain, which
    would follow the pan for both."""
    ids = {}
    for adaptive in (True, False):
        t = Tracker(TrackerConfig(adaptive_measurement_noise=adaptive, camera_motion_gain=0.0))
        seen = set()
        for stamp, dets in _five_walkers(0.005, pan_px=50.0):
            seen |= set(t.update(dets, stamp=stamp).ids.tolist())
        ids[adaptive] = len(seen)
    assert ids[True] == 5 and ids[False] > 10


def _walker_with_partial_detections(config, frames=60, seed=0):
    """One person (40 x 100 px) walking right at 10 fps, detected with 2 px box noise; every sixth frame
    the detector sees only the upper 45 % (head and shoulders). Returns the ids seen and the reported box
    heights from frame 10 on."""
    rng = np.random.default_rng(seed)
    t, ids, heights = Tracker(config), set(), []
    for k in range(frames):
        x = 100.0 + 5.0 * k
        det = np.array([[x, 200.0, x + 40.0, 300.0]]) + rng.normal(0.0, 2.0, size=(1, 4))
        if k % 6 == 5:
            det[0, 3] = det[0, 1] + 45.0
        ts = t.update(det, stamp=k * 0.1)
        ids |= set(ts.ids.tolist())
        heights.append(ts.boxes_xyxy[0, 3] - ts.boxes_xyxy[0, 1])
    return ids, np.array(heights[10:])


def test_robust_update_keeps_partial_detections_from_shrinking_a_track():
    ids, robust = _walker_with_partial_detections(TrackerConfig())
    _, plain = _walker_with_partial_detections(TrackerConfig(robust_update_sigma=0.0))
    assert ids == {1}  # the partial detections still extend the track
    assert robust.min() > 70 and np.abs(robust - 100).mean() < 10
    assert plain.min() < 60 and np.abs(plain - 100).mean() > 18  # without it the box halves each time


def test_min_measurement_noise_must_not_exceed_measurement_noise():
    with pytest.raises(ConfigError, match="min_measurement_noise"):
        TrackerConfig(measurement_noise=0.05, min_measurement_noise=0.06)


def test_backwards_stamp_raises_and_reset_recovers():
    t = Tracker()
    t.update(np.array([box(100, 200)]), stamp=5.0)
    with pytest.raises(StampError):
        t.update(np.array([box(100, 200)]), stamp=4.0)
    t.reset()
    ts = t.update(np.array([box(100, 200)]), stamp=0.0)
    assert ts.ids.tolist() == [2]  # ids keep counting after a reset


def test_invalid_boxes_are_dropped_and_counted():
    t = Tracker(TrackerConfig(min_hits=1))
    dets = np.array([box(100, 200), [np.nan, 0, 10, 10], [10, 10, 5, 50], [0, 0, np.inf, 5]])
    ts = t.update(dets, np.array([0.9, 0.9, 0.9, 0.9]), stamp=0.0)
    assert len(ts) == 1 and t.dropped_detections == 3
    ts = t.update(np.array([box(100, 200)]), np.array([np.nan]), stamp=0.1)
    assert t.dropped_detections == 4


def test_det_indices_name_the_callers_rows_when_invalid_ones_are_dropped():
    t = Tracker(TrackerConfig(min_hits=1))
    nan = [np.nan, 0, 10, 10]
    ts = t.update(np.array([nan, box(100, 200), nan, box(400, 200)]), stamp=0.0)
    assert ts.ids.tolist() == [1, 2] and ts.det_indices.tolist() == [1, 3]  # new tracks
    ts = t.update(np.array([box(402, 200), nan, box(101, 200)]), stamp=0.1)
    assert ts.ids.tolist() == [1, 2] and ts.det_indices.tolist() == [2, 0]  # matched ones


def test_max_detections_keeps_the_highest_scoring_and_counts_the_rest():
    t = Tracker(TrackerConfig(min_hits=1, max_detections=3))
    dets = np.array([box(100 + 100 * i, 200) for i in range(6)])
    ts = t.update(dets, np.array([0.7, 0.9, 0.8, 0.95, 0.6, 0.9]), stamp=0.0)
    assert ts.det_indices.tolist() == [1, 3, 5] and t.excess_detections == 3  # 0.95, 0.9, 0.9 kept
    dets[0] = np.nan  # an invalid row does not count against the limit
    ts = t.update(dets, np.array([0.99, 0.7, 0.8, 0.95, 0.6, 0.9]), stamp=0.1)
    assert sorted(ts.det_indices.tolist()) == [-1, 2, 3, 5] and t.excess_detections == 5
    assert t.dropped_detections == 1


def test_a_frame_of_ten_thousand_piled_boxes_is_capped():
    # a detector without non-maximum suppression: every box overlaps every other; uncapped, the second
    # update's assignment of 10,000 tracks to 10,000 detections takes tens of seconds and gigabytes
    rng = np.random.default_rng(0)
    pile = np.tile(box(500, 300), (10_000, 1)) + rng.normal(0, 2, (10_000, 4))
    t = Tracker(TrackerConfig(max_detections=200))
    for k in range(2):
        ts = t.update(pile + rng.normal(0, 1, pile.shape), rng.uniform(0.5, 1, 10_000), stamp=0.1 * k)
    assert len(ts) <= 400 and t.excess_detections == 2 * 9_800
    with pytest.raises(ConfigError, match="max_detections"):
        TrackerConfig(max_detections=0)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="same length"):
        Tracker().update(np.array([box(1, 2)]), np.array([0.9, 0.8]), stamp=0.0)
    # a detector's (D, 5) [x1, y1, x2, y2, score] rows were read as five boxes of four numbers
    with pytest.raises(ValueError, match=r"expected shape \(D, 4\), got \(4, 5\)"):
        Tracker().update(np.c_[np.array([box(100 * k, 200) for k in range(4)]), np.full(4, 0.9)], stamp=0.0)
    assert len(Tracker(TrackerConfig(min_hits=1)).update(np.array(box(1, 2)), stamp=0.0)) == 1  # one (4,) box


def test_a_rejected_update_changes_nothing():
    t = Tracker()
    t.update(np.array([box(100, 200)]), stamp=1.0, features=np.ones((1, 8)))
    before = (t.dropped_detections, t.tracks().ids.tolist(), t.tracks().boxes_xyxy.copy())
    nan_and_other_size = (np.array([[np.nan, 0, 10, 10]]), np.ones((1, 16)))
    with pytest.raises(StampError):  # late, with an invalid box and features of another size
        t.update(nan_and_other_size[0], stamp=0.5, features=np.ones((1, 7)))
    with pytest.raises(ValueError, match="dimensions"):
        t.update(*nan_and_other_size[:1], stamp=1.1, features=nan_and_other_size[1])
    assert (t.dropped_detections, t.tracks().ids.tolist()) == before[:2]
    np.testing.assert_array_equal(t.tracks().boxes_xyxy, before[2])
    fresh = Tracker()
    with pytest.raises(StampError):
        fresh.update(np.array([box(100, 200)]), stamp=float("nan"), features=np.ones((1, 7)))
    fresh.update(np.array([box(100, 200)]), stamp=0.0, features=np.ones((1, 16)))  # 7 was never taken


@pytest.mark.parametrize("features", [False, True])
def test_a_track_is_never_matched_past_its_age_however_long_the_gap_between_updates(features):
    """Lifetimes follow the stamps: a still person detected again 10 s after the last update (a stalled
    detector, a paused bag) gets a new track, as with an empty frame in between."""
    cfg = TrackerConfig(max_lost_s=1.5, reid_max_age_s=5.0)
    ids = []
    for gap_frames in ([], [5.0]):
        t = Tracker(cfg)
        for k in range(5):
            t.update(np.array([box(100, 200)]), stamp=0.1 * k, features=E[:1] if features else None)
        for s in gap_frames:
            t.update(np.empty((0, 4)), stamp=s, features=np.empty((0, 8)) if features else None)
        ts = t.update(np.array([box(100, 200)]), stamp=10.0, features=E[:1] if features else None)
        ids.append(ts.ids.tolist())
    assert ids == [[2], [2]]
    t = Tracker(cfg)  # within its age the same gap keeps the id
    for k in range(5):
        t.update(np.array([box(100, 200)]), stamp=0.1 * k)
    assert t.update(np.array([box(100, 200)]), stamp=1.8).ids.tolist() == [1]


def test_trajectories_follow_velocity_and_horizon():
    t = Tracker(TrackerConfig(min_hits=1, trajectory_horizon_s=1.0, trajectory_step_s=0.25))
    for k in range(10):
        t.update(np.array([box(100 + 5 * k, 200)]), stamp=k * 0.1)
    tr = t.predict_trajectories()
    assert tr.times_s.tolist() == [0.25, 0.5, 0.75, 1.0]
    assert tr.centres[0, -1, 0] == pytest.approx(145 + 50, abs=5)
    assert np.all(np.diff(tr.covariances[0, :, 0]) > 0)


def test_no_state_shared_between_instances():
    a, b = Tracker(TrackerConfig(min_hits=1)), Tracker(TrackerConfig(min_hits=1))
    a.update(np.array([box(100, 200), box(300, 200)]), stamp=0.0)
    assert b.update(np.array([box(100, 200)]), stamp=0.0).ids.tolist() == [1]


def test_many_objects_use_the_sparse_path_with_the_same_result():
    rng = np.random.default_rng(3)
    centres = rng.uniform(0, 5000, size=(300, 2))
    dense, sparse = Tracker(TrackerConfig(min_hits=1)), Tracker(TrackerConfig(min_hits=1))
    import ros2_tracker.core.tracker as mod

    for k in range(5):
        c = centres + k * 3 + rng.normal(size=centres.shape)
        boxes = np.array([box(x, y) for x, y in c])
        limit = mod._DENSE_LIMIT
        try:
            mod._DENSE_LIMIT = 10**9
            d = dense.update(boxes, stamp=k * 0.1)
        finally:
            mod._DENSE_LIMIT = limit
        s = sparse.update(boxes, stamp=k * 0.1)
        assert d.ids.tolist() == s.ids.tolist() and d.det_indices.tolist() == s.det_indices.tolist()
    assert len(s) == 300 and s.ids.max() == 300


def test_set_config_keeps_tracks_and_applies_new_thresholds():
    t = Tracker(TrackerConfig(min_hits=1))
    t.update(np.array([box(100, 200)]), stamp=0.0)
    t.set_config(TrackerConfig(min_hits=1, new_track_score=0.95))
    ts = t.update(np.array([box(101, 200), box(400, 200)]), np.array([0.9, 0.9]), stamp=0.1)
    assert ts.ids.tolist() == [1]  # kept; the 0.9 detection no longer starts a track
    with pytest.raises(TypeError):
        t.set_config({"min_hits": 1})


def test_first_frame_tracks_are_confirmed_at_once_only_after_start_or_reset():
    t = Tracker(TrackerConfig(min_hits=3))
    ts = t.update(np.array([box(100, 200)]), stamp=0.0)
    assert ts.states.tolist() == [TrackState.CONFIRMED]
    ts = t.update(np.array([box(100, 200), box(400, 200)]), stamp=0.1)
    assert ts.select(ts.ids == 2).states.tolist() == [TrackState.TENTATIVE]
    t.reset()
    assert t.update(np.array([box(100, 200)]), stamp=0.0).states.tolist() == [TrackState.CONFIRMED]


def test_trackset_replace_swaps_one_field_whatever_the_number_of_tracks():
    tracker = Tracker()
    ts = tracker.update(np.array([box(100, 100), box(300, 100), box(500, 100)]), stamp=0.0)
    assert len(ts) == 3  # len() counts tracks: namedtuple's own _replace would trip over it
    boxes = ts.boxes_xyxy + 1.0
    moved = ts._replace(boxes_xyxy=boxes)
    assert len(moved) == 3 and moved.boxes_xyxy is boxes and moved.ids is ts.ids
    with pytest.raises(TypeError, match="11 arrays"):
        type(ts)._make(list(ts)[:3])


def test_score_scale_warning_only_for_scores_above_one_with_probability_thresholds():
    assert score_scale_warning(0.99, TrackerConfig()) is None
    assert score_scale_warning(float("nan"), TrackerConfig()) is None
    note = score_scale_warning(117.9, TrackerConfig())
    assert note and "117.9" in note and "0.5 / 0.1 / 0.6" in note
    own_range = TrackerConfig(high_score=30.0, low_score=5.0, new_track_score=40.0)
    assert score_scale_warning(117.9, own_range) is None


def test_score_scale_warning_when_no_detection_can_start_a_track():
    """A file without scores (-1) or messages with the score left at 0 would track nothing, silently."""
    note = score_scale_warning(-1.0, TrackerConfig())
    assert note and "at most -1" in note and "nothing is tracked" in note
    assert TrackerConfig().start_score == 0.6  # new_track_score above high_score
    assert score_scale_warning(0.59, TrackerConfig()) is not None
    assert score_scale_warning(0.6, TrackerConfig()) is None
    assert score_scale_warning(0.0, TrackerConfig(high_score=0.0, low_score=0.0, new_track_score=0.0)) is None
    assert TrackerConfig(high_score=0.7, new_track_score=0.2).start_score == 0.7
    boxes = np.array([[10.0, 10, 50, 90], [200, 10, 240, 90]])
    tracker = Tracker()
    for k in range(5):  # what the warning is about: below start_score no track ever starts
        assert len(tracker.update(boxes + k, np.full(2, 0.59), stamp=0.1 * k)) == 0


def test_reported_tracks_are_the_matched_confirmed_ones_and_lost_ones_within_report_lost_s():
    from ros2_tracker.core.track import reported_mask

    states = np.array([TrackState.TENTATIVE, TrackState.CONFIRMED, TrackState.LOST, TrackState.LOST,
                       TrackState.LOST])
    since = np.array([0.0, 0.0, 0.04, 0.12, 0.08 + 0.04])  # 0.08 + 0.04 != 0.12 in floating point
    assert reported_mask(states, since).tolist() == [False, True, False, False, False]
    assert reported_mask(states, since, 0.12).tolist() == [False, True, True, True, True]
    assert reported_mask(states, since, 0.1).tolist() == [False, True, True, False, False]


def test_a_missed_frame_is_reported_at_the_predicted_box_only_with_report_lost_s():
    from ros2_tracker.core.boxes import xyxy_to_tlwh
    from ros2_tracker.io.mot import MotRows
    from ros2_tracker.offline import track_mot_detections

    frames = [f for f in range(1, 11) if f not in (5, 8, 9)]  # misses: one frame, then two
    tlwh = xyxy_to_tlwh(np.array([box(100 + 10 * f, 200) for f in frames]))
    dets = MotRows(np.array(frames), np.full(len(frames), -1), tlwh, np.full(len(frames), 0.9),
                   np.empty((len(frames), 0)))
    plain = track_mot_detections(dets, Tracker(TrackerConfig()), 10.0)
    assert plain.frames.tolist() == frames
    coasting = track_mot_detections(dets, Tracker(TrackerConfig(report_lost_s=0.1)), 10.0)
    assert coasting.frames.tolist() == sorted([*frames, 5, 8])  # 9: two frames lost, beyond 0.1 s
    assert set(coasting.ids.tolist()) == {1}
    at5 = coasting.boxes_tlwh[coasting.frames.tolist().index(5)]
    assert 122 < at5[0] < 132  # predicted on: frame 4's box was at x = 120, frame 5's would be at 130
    with pytest.raises(ConfigError, match="report_lost_s"):
        TrackerConfig(report_lost_s=-0.1)


def _panning_walkers(gain, n_walkers=4, hidden=3, frames=40, fps=25.0, gate=0.0, hide_from=20, accel=20.0,
                     top=300.0):
    """``n_walkers`` people walking at constant speeds, filmed by a camera that starts panning at frame 10
    (gaining ``accel`` px/s per frame up to ``top``); walker ``hidden`` is not detected from frame
    ``hide_from`` on. Returns the tracker and, per frame from then, the hidden walker's true and tracked box
    x (left edge)."""
    t = Tracker(TrackerConfig(camera_motion_gain=gain, camera_motion_gate=gate, max_lost_s=2.0))
    pan, speed, out = 0.0, 0.0, []
    for k in range(frames):
        if k >= 10:
            speed = min(speed + accel, top)  # px/s
        pan += speed / fps
        truth = np.array([box(100 + 120 * i + (8 + 4 * i) * k / fps * 10 - pan, 150 + 30 * i)
                          for i in range(n_walkers)])
        shown = np.ones(n_walkers, dtype=bool)
        if k >= hide_from and hidden < n_walkers:
            shown[hidden] = False
        ts = t.update(truth[shown], np.full(shown.sum(), 0.9), stamp=k / fps)
        if k >= hide_from and hidden < n_walkers:
            row = ts.ids.tolist().index(hidden + 1)
            out.append((truth[hidden, 0], ts.boxes_xyxy[row, 0]))
    return t, np.array(out)


def test_camera_motion_gain_lets_a_lost_track_follow_a_panning_image():
    _, off = _panning_walkers(0.0)
    _, on = _panning_walkers(0.5)
    lag_off, lag_on = np.abs(off[-1, 0] - off[-1, 1]), np.abs(on[-1, 0] - on[-1, 1])
    assert lag_off > 40  # 0.8 s after the walker's last detection, the plain prediction is far behind
    assert lag_on < lag_off / 3


def test_camera_motion_needs_three_settled_matched_tracks():
    # two walkers: two settled matched tracks are not enough to tell a camera's motion from theirs
    a, _ = _panning_walkers(0.0, n_walkers=2, hidden=2)
    b, _ = _panning_walkers(0.5, n_walkers=2, hidden=2)
    assert len(b) == 2
    np.testing.assert_array_equal(a.tracks().boxes_xyxy, b.tracks().boxes_xyxy)


def _static_camera_walkers(gain, gate, seed=0):
    """Five people walking left and right past a static camera, with 2 px detection jitter; one is hidden
    for 10 of 60 frames. Returns the tracker."""
    rng = np.random.default_rng(seed)
    t = Tracker(TrackerConfig(camera_motion_gain=gain, camera_motion_gate=gate))
    start = rng.uniform(100, 500, 5)
    speed = np.array([40.0, -35.0, 25.0, -50.0, 30.0])  # px/s
    for k in range(60):
        truth = np.array([box(start[i] + speed[i] * k / 25.0, 150 + 25 * i) for i in range(5)])
        truth += rng.normal(0.0, 2.0, truth.shape)
        shown = np.ones(5, dtype=bool)
        shown[2] = not 30 <= k < 40
        t.update(truth[shown], np.full(shown.sum(), 0.9), stamp=k / 25.0)
    return t


def test_camera_motion_gate_keeps_a_static_camera_unchanged_and_opens_for_a_pan():
    off = _static_camera_walkers(0.0, 0.0).tracks()
    gated = _static_camera_walkers(0.5, 0.6).tracks()
    ungated = _static_camera_walkers(0.5, 0.0).tracks()
    np.testing.assert_array_equal(gated.boxes_xyxy, off.boxes_xyxy)  # people walk both ways: gate shut
    assert not np.array_equal(ungated.boxes_xyxy, off.boxes_xyxy)
    # a pan that keeps speeding up moves every innovation one way: after about a second of it the gate opens
    # and the track lost then follows the image
    pan = {"frames": 80, "hide_from": 50, "accel": 8.0, "top": 1000.0}
    _, plain = _panning_walkers(0.0, **pan)
    tracker, opened = _panning_walkers(0.5, gate=0.6, **pan)
    assert abs(opened[-1, 0] - opened[-1, 1]) < abs(plain[-1, 0] - plain[-1, 1]) / 3
    assert tracker.camera_motion_applied  # still open on the last frame


def _jittered_pan(config, pan_from=30, frames=90, hide_from=None, seed=0):
    """Five people walking both ways past a camera that pans faster and faster from frame ``pan_from`` on,
    detected with 2 px jitter (25 fps); with ``hide_from``, person 2 is not detected from that frame on.
    Returns the tracker, its ``camera_motion_weight`` and ``camera_motion_applied`` per update, and (with
    ``hide_from``) the hidden person's true and tracked left edge on the last frame."""
    rng = np.random.default_rng(seed)
    t = Tracker(config)
    start, speed = rng.uniform(100, 500, 5), np.array([40.0, -35.0, 25.0, -50.0, 30.0])
    weights, applied = [], []
    for k in range(frames):
        pan = 0.0 if k < pan_from else 0.4 * (k - pan_from) ** 2
        truth = np.array([box(start[i] + speed[i] * k / 25.0 - pan, 150 + 25 * i) for i in range(5)])
        shown = np.ones(5, dtype=bool)
        shown[2] = hide_from is None or k < hide_from
        ts = t.update(truth[shown] + rng.normal(0.0, 2.0, (shown.sum(), 4)), np.full(shown.sum(), 0.9),
                      stamp=k / 25.0)
        weights.append(t.camera_motion_weight)
        applied.append(t.camera_motion_applied)
    hidden = None
    if hide_from is not None:
        hidden = truth[2, 0], ts.boxes_xyxy[ts.ids.tolist().index(3), 0]
    return t, np.array(weights), applied, hidden


def test_camera_motion_applied_says_when_the_gate_was_open():
    # the defaults (gain 0.5, gate 0.6): two seconds of a static camera, then two of a pan speeding up
    t, _, opened, _ = _jittered_pan(TrackerConfig(), pan_from=50, frames=100)
    # five people only: their median innovation now and then stands out of its noise by chance
    assert sum(opened[:50]) <= 5 and sum(opened[50:]) > 35
    t.reset()
    assert not t.camera_motion_applied and t.camera_motion_weight == 0.0


def test_camera_motion_weight_follows_a_pan_while_the_whiteness_gate_stays_shut():
    # camera_motion_gate 1: the whiteness test never opens, so whatever moves the tracks is the weight of the
    # common motion against its noise: about 0 before the pan, towards 1 once the pan dominates, and
    # a person lost during the pan is predicted where the image took them
    _, weights, _, (truth, tracked) = _jittered_pan(
        TrackerConfig(camera_motion_gain=0.5, camera_motion_gate=1.0, max_lost_s=2.0), hide_from=60)
    _, _, _, (_, plain) = _jittered_pan(
        TrackerConfig(camera_motion_gain=0.0, camera_motion_gate=1.0, max_lost_s=2.0), hide_from=60)
    assert weights[:25].max() == 0.0  # the estimate's warm-up: a second of updates with settled tracks
    assert weights[:30].mean() < 0.1 and weights[40:].mean() > 0.6
    assert abs(tracked - truth) < abs(plain - truth) / 3


def test_camera_motion_survives_a_message_a_microsecond_after_the_last():
    # the gain moves velocities by a share of the common innovation per second: per the typical time step,
    # not per a near-zero one, or a pixel of detector noise becomes hundreds of thousands of px/s
    rng = np.random.default_rng(0)
    start, speed = rng.uniform(100, 500, 5), np.array([40.0, -35.0, 25.0, -50.0, 30.0])
    t = Tracker(TrackerConfig(camera_motion_gate=0.0))  # the gain always applied
    for k in range(60):
        pan = 0.0 if k < 20 else 0.4 * (k - 20) ** 2
        truth = np.array([box(start[i] + speed[i] * k / 25.0 - pan, 150 + 25 * i) for i in range(5)])
        t.update(truth + rng.normal(0.0, 2.0, truth.shape), np.full(5, 0.9), stamp=k / 25.0)
    t.update(truth + rng.normal(0.0, 2.0, truth.shape), np.full(5, 0.9), stamp=59 / 25.0 + 1e-6)
    assert t.camera_motion_applied
    ts = t.update(np.empty((0, 4)), stamp=60 / 25.0)
    assert len(ts) == 5 and np.abs(ts.velocities[:, :2]).max() < 2000  # the pan itself: 32 px/frame
    assert np.all(np.abs(ts.boxes_xyxy[:, 0] - truth[:, 0]) < 150)


def test_camera_motion_time_step_forgets_a_gap_in_the_stamps():
    # the gain's velocity share is per the typical time step: a two-second gap (a paused bag) must not
    # inflate it, while a real change of frame rate (25 -> 10 Hz) takes over
    rng = np.random.default_rng(0)
    start = rng.uniform(100, 500, 5)
    t = Tracker(TrackerConfig(camera_motion_gate=0.0))
    stamps = [k / 25.0 for k in range(30)] + [2.0 + 29 / 25.0 + k / 25.0 for k in range(5)]
    for s in stamps:
        truth = np.array([box(start[i], 150 + 25 * i) for i in range(5)])
        t.update(truth + rng.normal(0.0, 2.0, truth.shape), np.full(5, 0.9), stamp=s)
    assert t._common_motion.typical_dt == pytest.approx(1 / 25.0, rel=0.3)
    for k in range(1, 31):
        t.update(truth + rng.normal(0.0, 2.0, truth.shape), np.full(5, 0.9), stamp=stamps[-1] + k / 10.0)
    assert t._common_motion.typical_dt == pytest.approx(1 / 10.0, rel=0.1)


def test_a_stamp_jumping_a_day_ahead_retires_the_old_tracks_and_tracking_goes_on():
    # a source whose clock jumps forward (sim time -> wall time, a bag's gap): the prediction over the gap
    # must stay finite, the old tracks go (lost longer than max_lost_s) and the same people get new tracks
    t = Tracker()
    people = np.array([box(100 + 150 * i, 200) for i in range(4)])
    for k in range(10):
        t.update(people + 3.0 * k * np.array([1, 0, 1, 0]), np.full(4, 0.9), stamp=k / 25.0)
    old = set(t.tracks().ids.tolist())
    assert len(old) == 4
    later = 86_400.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or invalid-value warnings from the huge step
        for k in range(5):
            ts = t.update(people, np.full(4, 0.9), stamp=later + k / 25.0)
    assert np.all(np.isfinite(ts.boxes_xyxy)) and np.all(np.isfinite(ts.box_variances))
    assert not old & set(ts.ids.tolist()) and len(ts) == 4
    assert np.all(ts.states == TrackState.CONFIRMED)
    np.testing.assert_allclose(ts.boxes_xyxy, people, atol=2.0)


# ---------------------------------------------------------------- appearance: every gate, every path
E = np.eye(8)  # unit embeddings: person k looks like E[k]


def _looks_like_0(distance):
    """A unit embedding at this cosine distance from E[0]."""
    c = 1.0 - distance
    return (c * E[0] + np.sqrt(1 - c * c) * E[1])[None]


def _seen_then_back(distance, where, after_s, max_lost_s=1.5):
    """Person 0 stands at x=100 for five frames (10 Hz), is not detected, and is back at ``where`` after
    ``after_s`` looking ``distance`` away from before; the ids of the last update."""
    t = Tracker(TrackerConfig(max_lost_s=max_lost_s, reid_max_age_s=5.0))
    for k in range(5):
        t.update(np.array([box(100, 200)]), np.array([0.9]), stamp=0.1 * k, features=E[:1])
    stamps = np.arange(0.5, 0.4 + after_s, 0.1)
    for s in stamps:
        t.update(np.empty((0, 4)), np.empty(0), stamp=s, features=np.empty((0, 8)))
    ts = t.update(np.array([box(where, 200)]), np.array([0.9]), stamp=0.4 + after_s,
                  features=_looks_like_0(distance))
    return ts.select(ts.det_indices >= 0).ids.tolist()


def test_far_from_its_prediction_a_lost_track_is_reidentified_only_below_reid_threshold():
    # 400 px away, 0.5 s later: appearance alone decides, at reid_threshold (0.2), not appearance_threshold
    assert _seen_then_back(0.1, 500, 0.5) == [1]
    assert _seen_then_back(0.25, 500, 0.5) == [2]
    assert _seen_then_back(0.25, 100, 0.5) == [1]  # near the prediction appearance_threshold (0.3) holds


def test_a_dormant_track_is_reidentified_only_below_reid_threshold_even_at_its_prediction():
    # lost longer than max_lost_s (0.5 s): kept for re-identification only, at the strict threshold
    assert _seen_then_back(0.1, 100, 1.0, max_lost_s=0.5) == [1]
    assert _seen_then_back(0.25, 100, 1.0, max_lost_s=0.5) == [2]


def test_appearance_is_not_learned_from_an_occluded_detection():
    """Person 1 stands in front of person 0 (IoU 0.6) for 15 frames and 0's crop shows part of 1 (cosine
    distance 0.2 from 0's look, towards 1's): 0's memory must not drift towards 1, or 0, back alone far away
    and looking a little different the other way (0.15 from before), would not be recognised."""
    t = Tracker(TrackerConfig(reid_max_age_s=5.0))
    t.update(np.array([box(100, 200)]), np.array([0.9]), stamp=0.0, features=E[:1])
    for k in range(1, 16):
        t.update(np.array([box(100, 200), box(110, 200)]), np.full(2, 0.9), stamp=0.1 * k,
                 features=np.concatenate([_looks_like_0(0.2), E[1:2]]))
    for k in range(16, 20):
        t.update(np.empty((0, 4)), np.empty(0), stamp=0.1 * k, features=np.empty((0, 8)))
    back = (0.85 * E[0] - np.sqrt(1 - 0.85**2) * E[1])[None]
    ts = t.update(np.array([box(500, 200)]), np.array([0.9]), stamp=2.0, features=back)
    assert ts.select(ts.det_indices >= 0).ids.tolist() == [1]


def _side_by_side_then_swapped(features):
    """A and B stand side by side for three frames; in the fourth the detector's box with A's appearance lies
    on B's spot and B's on A's (2 px towards each other): IoU alone says swap, appearance says keep."""
    a, b = np.array(box(120, 140)), np.array(box(140, 140))
    t = Tracker(TrackerConfig())
    for k in range(3):
        t.update(np.stack([a, b]), np.array([0.9, 0.9]), stamp=k * 0.1, features=E[:2] if features else None)
    step = np.array([2.0, 0.0, 2.0, 0.0])
    swapped = np.stack([b - step, a + step])
    return t.update(swapped, np.array([0.9, 0.9]), stamp=0.3, features=E[:2] if features else None)


@pytest.mark.parametrize("dense_limit", [None, 0], ids=["dense", "sparse"])
def test_appearance_vetoes_an_iou_swap_on_crowded_frames_too(dense_limit, monkeypatch):
    import ros2_tracker.core.tracker as mod

    if dense_limit is not None:  # 0: every frame takes the crowded path (overlapping pairs, sparse solver)
        monkeypatch.setattr(mod, "_DENSE_LIMIT", dense_limit)
    ts = _side_by_side_then_swapped(features=False)
    assert ts.ids.tolist() == [1, 2] and ts.det_indices.tolist() == [1, 0]  # motion alone: swapped
    ts = _side_by_side_then_swapped(features=True)
    assert ts.ids.tolist() == [1, 2] and ts.det_indices.tolist() == [0, 1]  # A keeps A's detection
    assert ts.states.tolist() == [TrackState.CONFIRMED] * 2


def _random_walkers_with_appearance(seed, frames=40, people=30):
    """People walking in a 1000 x 600 image, each with a noisy embedding of their own; detections drop
    out, and some crops come without an embedding (zero rows)."""
    rng = np.random.default_rng(seed)
    pos = rng.uniform([50, 100], [950, 500], (people, 2))
    vel = rng.normal(0, 40, (people, 2))
    looks = rng.normal(size=(people, 16))
    out = []
    for k in range(frames):
        pos = pos + vel * 0.1
        seen = rng.random(people) > 0.15
        centres = pos[seen] + rng.normal(0, 2, (int(seen.sum()), 2))
        boxes = np.array([box(x, y) for x, y in centres]).reshape(-1, 4)
        feats = looks[seen] + rng.normal(0, 0.3, (int(seen.sum()), 16))
        feats[rng.random(len(feats)) < 0.1] = 0.0
        out.append((boxes, rng.uniform(0.3, 1.0, len(boxes)), feats, k * 0.1))
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_appearance_matching_is_the_same_on_the_dense_and_the_crowded_path(seed, monkeypatch):
    """The crowded path costs only pairs whose boxes can overlap; with appearance it must still give
    exactly the dense path's matches (it used to fall back to IoU alone above the dense limit)."""
    import ros2_tracker.core.tracker as mod

    frames = _random_walkers_with_appearance(seed)
    runs = []
    for limit in (mod._DENSE_LIMIT, 0):
        monkeypatch.setattr(mod, "_DENSE_LIMIT", limit)
        t = Tracker(TrackerConfig())
        runs.append([t.update(b, s, stamp=st, features=f) for b, s, f, st in frames])
    for dense, sparse in zip(*runs, strict=True):
        assert dense.ids.tolist() == sparse.ids.tolist()
        assert dense.det_indices.tolist() == sparse.det_indices.tolist()
        np.testing.assert_allclose(dense.boxes_xyxy, sparse.boxes_xyxy, rtol=0, atol=1e-9)
    assert sum(int((ts.det_indices >= 0).sum()) for ts in runs[0]) > 500  # the scene did exercise matching


@pytest.mark.parametrize("features", [False, True], ids=["motion", "appearance"])
def test_boxes_that_do_not_overlap_never_match_even_at_match_iou_zero(features):
    t = Tracker(TrackerConfig(match_iou=0.0))
    f = E[:1] if features else None
    t.update(np.array([box(120, 140)]), np.array([0.9]), stamp=0.0, features=f)
    ts = t.update(np.array([box(620, 140)]), np.array([0.9]), stamp=0.1, features=f)  # same look, 500 px away
    assert ts.ids.tolist() == [1, 2] and ts.det_indices.tolist() == [-1, 0]


@pytest.mark.parametrize("features", [False, True], ids=["motion", "appearance"])
def test_the_ground_distance_gate_holds_with_appearance_too(features):
    # 100 m per pixel: a 3 px step of a box that overlaps its track almost fully is 300 m on the ground
    cfg = TrackerConfig(ground_homography=[100.0, 0, 0, 0, 100.0, 0, 0, 0, 1], max_ground_distance_m=2.0)
    t = Tracker(cfg)
    f = E[:1] if features else None
    for k in range(3):
        t.update(np.array([box(120, 140)]), np.array([0.9]), stamp=k * 0.1, features=f)
    ts = t.update(np.array([box(123, 140)]), np.array([0.9]), stamp=0.3, features=f)
    assert ts.ids.tolist() == [1, 2] and ts.det_indices.tolist() == [-1, 0]


def test_the_ground_distance_gate_holds_in_the_motion_gate_stage():
    """A lost track, then a detection beside it (no overlap) inside the Mahalanobis gate but 4.5 m
    away on the ground (10 cm per pixel): not matched; without the homography it is."""
    for homography, expected in (([0.1, 0, 0, 0, 0.1, 0, 0, 0, 1], [1, 2]), ([], [1])):
        t = Tracker(TrackerConfig(ground_homography=homography, max_ground_distance_m=2.0, motion_gate=9.49))
        for k in range(6):
            t.update(np.array([box(300, 100)]), np.array([0.9]), stamp=k / 7)
        for k in range(6, 14):
            ts = t.update(np.empty((0, 4)), stamp=k / 7)  # lost: its prediction's uncertainty grows
        pred = ts.boxes_xyxy[0]
        ts = t.update((pred + np.array([45, 0, 45, 0]))[None], np.array([0.9]), stamp=14 / 7)  # 4.5 m
        assert ts.ids.tolist() == expected, homography


@pytest.mark.parametrize("classes", [[0.5], [np.inf], [2**64], ["a"]])
def test_class_ids_that_are_not_integers_are_refused_before_any_change(classes):
    t = Tracker()
    t.update(np.array([box(100, 200)]), stamp=0.0)
    with pytest.raises(ValueError, match="classes"):
        t.update(np.array([box(100, 200)]), np.array([0.9]), classes=np.array(classes, dtype=object),
                 stamp=0.1)
    assert t.stamp == 0.0 and t.update(np.array([box(100, 200)]), stamp=0.1).ids.tolist() == [1]
    np.testing.assert_array_equal(Tracker().update(np.array([box(1, 2)]), classes=np.array([3.0]),
                                                   stamp=0.0).classes, [3])  # whole floats are fine


def test_trajectory_points_per_track_are_bounded():
    """Each track's message carries every trajectory point: 60 s at 1 ms would be 60,000 per track."""
    assert TrackerConfig(trajectory_horizon_s=10.0, trajectory_step_s=0.01).trajectory_horizon_s == 10.0
    with pytest.raises(ConfigError, match="60,000 points per track; at most 1,000"):
        TrackerConfig(trajectory_horizon_s=60.0, trajectory_step_s=0.001)
    t = Tracker()  # nor when asked for directly
    t.update(np.array([box(100, 200)]), stamp=0.0)
    with pytest.raises(ConfigError, match="6,000,000 points per track"):
        t.predict_trajectories(60.0, 1e-5)
    for horizon, step in ((np.inf, 0.1), (np.nan, 0.1), (1.0, np.nan), (1.0, 0.0)):
        with pytest.raises(ValueError, match="finite"):
            t.predict_trajectories(horizon, step)


def test_a_homography_is_taken_through_the_given_local_warps():
    """``local(homography, centres)``: each track's own warp where the homography alone is not the image's
    motion (a lens); the tracks' rows in order, a NaN row drops its track, a wrong shape is refused before
    anything moves."""
    t = Tracker()
    t.update(np.array([box(100, 200), box(300, 200), box(500, 200)]), stamp=0.0)
    h = np.array([[1.0, 0.0, 10.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # a 10 px shift, as a pinhole's
    seen = []

    def local(homography, centres):
        seen.append((homography.copy(), centres.copy()))
        out = np.zeros((len(centres), 2, 3))
        out[:, 0, 0] = out[:, 1, 1] = 1.0
        out[:, 0, 2] = [5.0, 7.0, 9.0]  # each track its own shift
        out[2] = np.nan  # the third: no place in the image any more
        return out

    with pytest.raises(ValueError, match=r"local gave warps of shape \(1, 2, 3\) for 3 tracks"):
        t.apply_camera_motion(h, lambda hom, c: np.zeros((1, 2, 3)))
    assert t.apply_camera_motion(h, local) == 1
    np.testing.assert_array_equal(seen[0][0], h)
    np.testing.assert_allclose(seen[0][1], [[100, 200], [300, 200], [500, 200]])
    np.testing.assert_allclose(t.tracks().boxes_xyxy, [box(105, 200), box(307, 200)])


def test_a_degenerate_camera_warp_is_refused():
    t = Tracker()
    t.update(np.array([box(100, 200)]), stamp=0.0)
    for warp in (np.zeros((2, 3)), np.array([[1e4, 0, 0], [0, 1e4, 0]])):
        with pytest.raises(ValueError, match="scales areas by"):
            t.apply_camera_motion(warp)
    t.apply_camera_motion(np.array([[1.1, 0, 5], [0, 1.1, -3]]))  # a zoom and a shift are fine
    assert np.isfinite(t.tracks().boxes_xyxy).all()
