"""Appearance in association: fused costs, embedding memory, re-identification of lost tracks."""

import numpy as np
import pytest

from ros2_tracker.core import ConfigError, Tracker, TrackerConfig, TrackState
from ros2_tracker.core.appearance import cosine_distance, ema_update, normalise, unoccluded


def box(cx, cy, w=40.0, h=100.0):
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def unit(*v):
    a = np.asarray(v, dtype=np.float32)
    return a / np.linalg.norm(a)


A, B, C = unit(1, 0, 0, 0.1), unit(0, 1, 0, 0.1), unit(0, 0, 1, 0.1)


def test_helpers():
    f = normalise(np.array([[3.0, 4.0], [0.0, 0.0], [np.nan, 1.0]]))
    assert f[0].tolist() == pytest.approx([0.6, 0.8]) and f[1:].tolist() == [[0, 0], [0, 0]]
    assert cosine_distance(f[:1], f[:1])[0, 0] == pytest.approx(0.0, abs=1e-6)
    m = ema_update(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), 0.9)
    assert np.linalg.norm(m) == pytest.approx(1.0) and m[0, 0] > m[0, 1]
    assert unoccluded(np.array([box(0, 0), box(5, 0), box(300, 0)]), 0.3).tolist() == [False, False, True]


@pytest.mark.parametrize("scale", [1e-23, 1e-30, 1e20, 1e30])
def test_embeddings_of_any_finite_scale_are_normalised(scale):
    """float32 squares underflow below ~1e-19 and overflow above ~1e19: such rows read as missing."""
    f = normalise(np.array([[3.0, 4.0]], dtype=np.float32) * np.float32(scale))
    assert f.dtype == np.float32 and f[0].tolist() == pytest.approx([0.6, 0.8])


def test_lost_track_is_reidentified_far_away_after_max_lost_s():
    cfg = TrackerConfig(min_hits=1, max_lost_s=0.5, reid_max_age_s=5.0)
    t = Tracker(cfg)
    for k in range(10):
        t.update(np.array([box(100 + 5 * k, 200), box(500, 200)]), features=np.stack([A, B]), stamp=k * 0.1)
    for k in range(10, 30):  # person A leaves for 2 s (> max_lost_s): dormant, not reported
        ts = t.update(np.array([box(500, 200)]), features=B[None], stamp=k * 0.1)
    assert ts.ids.tolist() == [2]
    ts = t.update(np.array([box(300, 300), box(500, 200)]), features=np.stack([A, B]), stamp=3.0)
    assert sorted(ts.ids.tolist()) == [1, 2]  # A is back, far from where it was predicted
    assert ts.select(ts.ids == 1).states.tolist() == [TrackState.CONFIRMED]


def test_a_different_person_at_the_same_place_gets_a_new_id():
    t = Tracker(TrackerConfig(min_hits=1, max_lost_s=0.5))
    for k in range(5):
        t.update(np.array([box(100, 200)]), features=A[None], stamp=k * 0.1)
    for k in range(5, 8):
        t.update(np.empty((0, 4)), features=np.empty((0, 4)), stamp=k * 0.1)
    ts = t.update(np.array([box(100, 200)]), features=C[None], stamp=0.8)  # same box, other person
    assert 2 in ts.ids.tolist() and ts.select(ts.ids == 1).states.tolist() == [TrackState.LOST]


def test_appearance_resolves_a_crossing():
    """Two people swap places behind each other; boxes alone would swap their ids."""
    t = Tracker(TrackerConfig(min_hits=1, appearance_weight=0.5))
    for k in range(6):
        t.update(np.array([box(100 + 20 * k, 200), box(300 - 20 * k, 200)]), features=np.stack([A, B]),
                 stamp=k * 0.1)
    # both stop at the crossing point and turn back: IoU is ambiguous, appearance is not
    ts = t.update(np.array([box(205, 200), box(195, 200)]), features=np.stack([B, A]), stamp=0.6)
    assert ts.ids[ts.det_indices == 0].tolist() == [2] and ts.ids[ts.det_indices == 1].tolist() == [1]


def test_dormant_tracks_expire_after_reid_max_age():
    t = Tracker(TrackerConfig(min_hits=1, max_lost_s=0.2, reid_max_age_s=1.0))
    t.update(np.array([box(100, 200)]), features=A[None], stamp=0.0)
    t.update(np.empty((0, 4)), features=np.empty((0, 4)), stamp=0.9)
    assert len(t) == 1 and len(t.tracks()) == 0  # dormant: kept, not reported
    t.update(np.empty((0, 4)), features=np.empty((0, 4)), stamp=1.1)
    assert len(t) == 0


def test_feature_dimension_change_is_a_clear_error():
    t = Tracker()
    t.update(np.array([box(100, 200)]), features=A[None], stamp=0.0)
    with pytest.raises(ValueError, match="dimensions"):
        t.update(np.array([box(100, 200)]), features=np.ones((1, 7)), stamp=0.1)


def test_without_features_nothing_changes():
    a, b = Tracker(), Tracker()
    rng = np.random.default_rng(0)
    for k in range(20):
        d = np.array([box(100 + 3 * k, 200), box(300, 200 + 2 * k)]) + rng.normal(size=(2, 4))
        ta, tb = a.update(d, stamp=k * 0.1), b.update(d, stamp=k * 0.1)
        assert ta.ids.tolist() == tb.ids.tolist()


def test_reid_threshold_must_be_stricter():
    with pytest.raises(ConfigError, match="reid_threshold"):
        TrackerConfig(reid_threshold=0.5, appearance_threshold=0.3)


def test_zero_feature_rows_mean_no_appearance():
    t = Tracker(TrackerConfig(min_hits=1))
    for k in range(5):
        t.update(np.array([box(100 + 2 * k, 200)]), features=A[None], stamp=k * 0.1)
    # the detection has no crop (zero row): motion alone keeps the id, and the memory is untouched
    ts = t.update(np.array([box(110, 200)]), features=np.zeros((1, 4)), stamp=0.5)
    assert ts.ids.tolist() == [1] and ts.det_indices.tolist() == [0]
    assert cosine_distance(t._emb[:1], A[None])[0, 0] == pytest.approx(0.0, abs=1e-5)
    ts = t.update(np.array([box(112, 200), box(400, 200)]), features=np.stack([A, np.zeros(4)]), stamp=0.6)
    assert len(ts) == 2 and not t._has_emb[1]  # a new track from a zero row has no memory


def test_trajectories_cover_exactly_the_reported_tracks_and_memories_can_be_forgotten():
    t = Tracker(TrackerConfig(min_hits=1, max_lost_s=0.2, reid_max_age_s=5.0))
    t.update(np.array([box(100, 200), box(400, 200)]), features=np.stack([A, B]), stamp=0.0)
    t.update(np.array([box(400, 200)]), features=B[None], stamp=0.5)  # track 1 is now dormant
    tr, ts = t.predict_trajectories(), t.tracks()
    assert tr.ids.tolist() == ts.ids.tolist() == [2] and len(tr.centres) == 1
    t.forget_appearance()  # the dormant track 1 was kept for re-identification only: it goes too
    assert not t._has_emb.any() and len(t) == 1
    assert t.tracks().ids.tolist() == t.predict_trajectories().ids.tolist() == [2]
    ts = t.update(np.array([box(100, 200), box(400, 200)]), stamp=0.6)  # where track 1 was: a new id
    assert ts.ids.tolist() == [2, 3] and ts.det_indices.tolist() == [1, 0]
