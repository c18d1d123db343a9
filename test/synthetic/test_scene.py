"""Synthetic scene: determinism, geometry, occlusion, detection noise rates, MOT folder, tracker sanity."""

import numpy as np
import pytest

from ros2_tracker.core import ConfigError, Tracker
from ros2_tracker.io.mot import read_mot
from ros2_tracker.io.sequence import read_sequence_info
from ros2_tracker.offline import track_mot_detections
from ros2_tracker.synthetic import SceneConfig, generate_scene
from ros2_tracker.synthetic.scene import visibility


@pytest.fixture(scope="module")
def scene():
    return generate_scene(SceneConfig(seed=3))


@pytest.fixture(scope="module")
def long_scene():
    """A long scene for rate estimates (no rendering, so it is cheap)."""
    return generate_scene(SceneConfig(seed=11, num_frames=1500))


@pytest.mark.parametrize("changes", [
    {"num_frames": 0},
    {"fps": 0.0},
    {"min_box_height": 210.0},
    {"min_speed": 2.0, "max_speed": 1.0},
    {"miss_rate": 1.5},
    {"miss_rate": 0.8, "miss_burst_frames": 2.0},  # at most 2 of 3 frames: 0.667 was measured for 0.8
    {"min_detect_visibility": 0.7, "full_detect_visibility": 0.6},
    {"max_box_height": 400.0},
    {"occluder_width": 700.0},
    {"seed": -1},
])
def test_config_rejects_invalid_values(changes):
    with pytest.raises(ConfigError):
        SceneConfig(**changes)


def _arrays(s):
    return [*s.gt, *s.detections]


def test_same_seed_gives_identical_scene_and_different_seeds_differ(scene):
    again = generate_scene(SceneConfig(seed=3))
    for a, b in zip(_arrays(scene), _arrays(again), strict=True):
        np.testing.assert_array_equal(a, b)
    other = generate_scene(SceneConfig(seed=4))
    assert (len(other.gt.frames) != len(scene.gt.frames)
            or not np.array_equal(other.gt.boxes_tlwh, scene.gt.boxes_tlwh))
    assert not np.array_equal(other.detections.scores[:20], scene.detections.scores[:20])


def test_detection_noise_settings_leave_the_motion_unchanged(scene):
    noisier = generate_scene(SceneConfig(seed=3, miss_rate=0.3, false_positives_per_frame=2.0))
    np.testing.assert_array_equal(noisier.gt.boxes_tlwh, scene.gt.boxes_tlwh)
    assert len(noisier.detections.frames) != len(scene.detections.frames)


def test_boxes_are_people_sized_in_perspective_and_mostly_inside_the_image(scene):
    c = scene.config
    g = scene.gt_rows()
    b = g.boxes_tlwh
    assert b[:, 3].min() >= c.min_box_height - 1 and b[:, 3].max() <= c.max_box_height + 1
    assert np.median(b[:, 2] / b[:, 3]) == pytest.approx(c.aspect_ratio, abs=0.03)
    bottom = b[:, 1] + b[:, 3]
    assert np.corrcoef(bottom, b[:, 3])[0, 1] > 0.95  # lower in the image = bigger
    cx, cy = b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2
    inside = (cx >= 0) & (cx < c.width) & (cy >= 0) & (cy < c.height)
    assert inside.mean() > 0.9  # the rest are people entering or leaving at a side edge
    assert ((b[:, 0] + b[:, 2] > 0) & (b[:, 0] < c.width)).all()
    assert (b[:, 1] >= 0).all() and (bottom <= c.height).all()


def test_people_enter_and_leave_and_occlusions_hide_them(scene):
    c = scene.config
    trajectories = scene.trajectories()
    assert len(trajectories) > c.num_objects  # people who left were replaced by new identities
    firsts = [t.frames[0] for t in trajectories.values()]
    lasts = [t.frames[-1] for t in trajectories.values()]
    assert sum(f > 1 for f in firsts) >= 3 and sum(f < c.num_frames for f in lasts) >= 3
    gaps = 0
    for t in trajectories.values():
        np.testing.assert_array_equal(np.diff(t.frames), 1)  # trajectories are contiguous
        seen = np.flatnonzero(t.visibility >= c.gt_min_visibility)
        gaps += int((np.diff(seen) > 1).sum()) if len(seen) else 0
    assert gaps >= 3  # visible, hidden, visible again: a tracker must bridge occlusions
    hidden = scene.gt.visibility == 0
    assert hidden.any()
    # some fully hidden person is behind the pillar (deeper, horizontally under it)
    occ = scene.occluder_xyxy
    centre_x = scene.gt.boxes_tlwh[:, 0] + scene.gt.boxes_tlwh[:, 2] / 2
    deeper = scene.gt.ground_xz[:, 1] > scene.occluder_depth_m
    behind = hidden & deeper & (centre_x > occ[0]) & (centre_x < occ[2])
    assert behind.any()


def test_trajectories_match_ground_truth_rows(scene):
    t = scene.trajectories()
    assert sum(len(v.frames) for v in t.values()) == len(scene.gt.frames)
    some = next(iter(t.values()))
    np.testing.assert_allclose(some.centres, some.boxes_tlwh[:, :2] + some.boxes_tlwh[:, 2:] / 2)
    np.testing.assert_allclose(some.times_s, (some.frames - 1) / scene.config.fps)


def test_visibility_of_boxes_behind_a_nearer_box_and_the_image_border():
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [-5, 0, 5, 10]], dtype=float)
    vis, vis_box = visibility(boxes[:2], np.array([5.0, 2.0]), boxes[:2], np.array([5.0, 2.0]), 100, 100)
    assert vis[0] == pytest.approx(0.5) and vis[1] == 1.0  # the far box is half covered
    np.testing.assert_allclose(vis_box[0], [0, 0, 5, 10])
    vis, _ = visibility(boxes[2:], np.array([1.0]), np.empty((0, 4)), np.empty(0), 100, 100)
    assert vis[0] == pytest.approx(0.5)  # half outside the image


def test_misses_false_positives_and_scores_follow_the_configuration(long_scene):
    c, g, d = long_scene.config, long_scene.gt, long_scene.detections
    visible = g.visibility >= c.full_detect_visibility
    detected_keys = set(zip(d.frames[d.source_ids > 0].tolist(), d.source_ids[d.source_ids > 0].tolist(),
                            strict=True))
    found = np.array([(f, i) in detected_keys for f, i in zip(g.frames.tolist(), g.ids.tolist(),
                                                               strict=True)])
    assert 1 - found[visible].mean() == pytest.approx(c.miss_rate, abs=0.025)
    assert not found[g.visibility < c.min_detect_visibility].any()
    fp = d.source_ids == -1
    assert fp.sum() / c.num_frames == pytest.approx(c.false_positives_per_frame, rel=0.15)
    true_scores = {(f, i): s for f, i, s in zip(d.frames.tolist(), d.source_ids.tolist(), d.scores.tolist(),
                                                 strict=True) if i > 0}
    vis_of = {(f, i): v for f, i, v in zip(g.frames.tolist(), g.ids.tolist(), g.visibility.tolist(),
                                            strict=True)}
    clear = [s for k, s in true_scores.items() if vis_of[k] >= c.full_detect_visibility]
    occluded = [s for k, s in true_scores.items() if vis_of[k] < 0.4]
    assert np.mean(clear) == pytest.approx(c.true_score_mean, abs=0.05)
    assert np.mean(occluded) < np.mean(clear) - 0.2
    assert np.mean(d.scores[fp]) == pytest.approx(c.false_positive_score_mean, abs=0.05)
    assert ((d.scores > 0) & (d.scores < 1)).all()
    assert (np.diff(d.frames) >= 0).all()


def test_misses_come_in_bursts(long_scene):
    c, g, d = long_scene.config, long_scene.gt, long_scene.detections
    detected = set(zip(d.frames.tolist(), d.source_ids.tolist(), strict=True))
    runs = []
    for pid in np.unique(g.ids):
        rows = (g.ids == pid) & (g.visibility >= c.full_detect_visibility)
        miss = np.array([(f, pid) not in detected for f in g.frames[rows].tolist()])
        edges = np.diff(np.concatenate([[0], miss.astype(int), [0]]))
        runs += (np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).tolist()
    assert np.mean(runs) > 1.3  # independent misses at 8% would give runs of about 1.09


def test_written_folder_is_a_readable_mot_sequence(scene, tmp_path):
    root = scene.write_mot(tmp_path / "SYN-03", render=False)
    info = read_sequence_info(root)
    c = scene.config
    assert (info.name, info.fps, info.length, info.width, info.height) == (
        "synthetic-3", c.fps, c.num_frames, c.width, c.height)
    assert info.image_ext == ".jpg" and info.image_dir == root / "img1" and not info.has_images
    gt = read_mot(info.gt_path)
    expected = scene.gt_rows()
    assert len(gt) == int((scene.gt.visibility >= c.gt_min_visibility).sum()) == len(expected)
    np.testing.assert_allclose(gt.boxes_tlwh, expected.boxes_tlwh, atol=0.006)
    np.testing.assert_array_equal(gt.ids, expected.ids)
    assert (gt.scores == 1).all() and (gt.extra == -1).all()
    det = read_mot(info.detection_path())
    assert len(det) == len(scene.detections.frames) and (det.ids == -1).all()
    np.testing.assert_allclose(det.scores, scene.detections.scores, atol=6e-5)
    np.testing.assert_array_equal(det.frames, scene.detections.frames)


def test_tracker_follows_the_synthetic_people(scene):
    result = track_mot_detections(scene.detection_rows(), Tracker(), scene.config.fps,
                                  last_frame=scene.num_frames)
    gt = scene.gt_rows()
    n_gt = len(np.unique(gt.ids))
    n_tracks = len(np.unique(result.ids))
    assert n_gt // 2 <= n_tracks <= 4 * n_gt
    # most visible people are covered by a reported track box in most frames
    covered = 0
    for frame in range(1, scene.num_frames + 1):
        g = gt.boxes_tlwh[gt.frames == frame]
        r = result.boxes_tlwh[result.frames == frame]
        if len(g) and len(r):
            covered += int((_iou_tlwh(g, r).max(axis=1) >= 0.5).sum())
    assert covered / len(gt) > 0.6


def _iou_tlwh(a, b):
    a0, a1 = a[:, None, :2], a[:, None, :2] + a[:, None, 2:]
    b0, b1 = b[None, :, :2], b[None, :, :2] + b[None, :, 2:]
    inter = np.clip(np.minimum(a1, b1) - np.maximum(a0, b0), 0, None).prod(axis=2)
    return inter / (a[:, None, 2:].prod(axis=2) + b[None, :, 2:].prod(axis=2) - inter)


def test_empty_scene_and_ground_homography():
    s = generate_scene(SceneConfig(num_objects=0, num_frames=5, false_positives_per_frame=0.0))
    assert len(s.gt.frames) == 0 and len(s.detections.frames) == 0 and s.trajectories() == {}
    h = generate_scene(SceneConfig(num_frames=3)).camera.image_to_ground()
    scene = generate_scene(SceneConfig(num_frames=3))
    b = scene.gt.boxes_tlwh
    foot = np.stack([b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3], np.ones(len(b))], axis=1)
    ground = foot @ h.T
    np.testing.assert_allclose(ground[:, :2] / ground[:, 2:], scene.gt.ground_xz, atol=1e-6)
