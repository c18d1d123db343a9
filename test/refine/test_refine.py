"""refine_tracks end to end: config, bad input, and metrics against online tracking on real sequences."""

import numpy as np
import pytest
from conftest import REPO, require_shared

from ros2_tracker.core.config import ConfigError
from ros2_tracker.io.mot import read_mot, write_results
from ros2_tracker.io.params import load_config, load_ros_yaml
from ros2_tracker.refine import RefineConfig, refine_tracks


def test_config_file_equals_the_defaults():
    assert load_ros_yaml(REPO / "config" / "refine.yaml") == RefineConfig().to_dict()
    assert load_config(RefineConfig, REPO / "config" / "refine.yaml") == RefineConfig()


@pytest.mark.parametrize("field,value,needle", [
    ("max_gap_s", -1.0, "max_gap_s"),
    ("link_max_gap_s", float("nan"), "NaN"),
    ("appearance_gate", 0.0, "appearance_gate"),
    ("appearance_weight", 1.5, "out of range"),
    ("max_height_ratio", 0.5, "max_height_ratio"),
    ("min_tracklet_boxes", 0, "min_tracklet_boxes"),
    ("link", "yes", "true/false"),
])
def test_config_rejects_bad_values(field, value, needle):
    with pytest.raises(ConfigError, match=needle):
        RefineConfig(**{field: value})


def test_config_rejects_gates_that_can_never_pass():
    with pytest.raises(ConfigError, match="motion_gate"):
        RefineConfig(motion_gate=0.0, motion_gate_per_s=0.0)
    RefineConfig(motion_gate=0.0, motion_gate_per_s=0.0, link=False)  # fine when linking is off


def _rows(n=4):
    frames = np.arange(1, n + 1)
    return frames, np.ones(n, int), np.tile([10.0, 10, 20, 50], (n, 1)), np.ones(n)


@pytest.mark.parametrize("change,needle", [
    (lambda r: (r[0], r[1], np.where(np.arange(4)[:, None] == 2, np.nan, r[2]), r[3]), "NaN"),
    (lambda r: (r[0], r[1], r[2] * [1, 1, 1, -1], r[3]), "width or height"),
    (lambda r: (r[0], r[1], r[2][:3], r[3]), r"\(N, 4\)"),
    (lambda r: (r[0], r[1][:3], r[2], r[3]), "ids"),
    (lambda r: (r[0] - 1, r[1], r[2], r[3]), ">= 1"),
    (lambda r: (np.ones(4, int), r[1], r[2], r[3]), "more than once"),
    (lambda r: (r[0], r[1], r[2], r[3][:2]), "scores"),
])
def test_bad_rows_give_a_clear_error(change, needle):
    with pytest.raises(ValueError, match=needle):
        refine_tracks(*change(_rows()), fps=10.0)


def test_bad_fps_and_embeddings():
    with pytest.raises(ValueError, match="fps"):
        refine_tracks(*_rows(), fps=0.0)
    with pytest.raises(ValueError, match="embeddings"):
        refine_tracks(*_rows(), fps=10.0, embeddings=np.zeros((3, 8)))


def test_empty_result_and_nan_embeddings():
    empty = refine_tracks(np.empty(0, int), np.empty(0, int), np.empty((0, 4)), fps=25.0)
    assert len(empty.frames) == 0 and empty.links == []
    emb = np.full((4, 8), np.nan)  # no appearance at all: treated as none, not an error
    out = refine_tracks(*_rows(), fps=10.0, embeddings=emb)
    assert len(out.frames) == 4


def _fragment(gt, fps, gap_frames=6):
    """Online-like rows from ground truth: every track loses ``gap_frames`` in its middle and comes back
    with a new id (an occlusion the online tracker did not bridge)."""
    frames, ids, boxes = [], [], []
    next_id = int(gt.ids.max()) + 1
    for k in np.unique(gt.ids):
        idx = np.flatnonzero(gt.ids == k)
        f = gt.frames[idx]
        mid = f[len(f) // 2]
        hole = (f > mid) & (f <= mid + gap_frames)
        after = f > mid + gap_frames
        new = np.where(after, next_id, k) if hole.any() and after.sum() >= 3 else np.full(len(f), k)
        next_id += 1
        frames.append(f[~hole]), ids.append(new[~hole]), boxes.append(gt.boxes_tlwh[idx][~hole])
    return np.concatenate(frames), np.concatenate(ids), np.concatenate(boxes)


@pytest.mark.data
@pytest.mark.parametrize("sequence", ["PETS09-S3MF1", "TUD-Campus"])
def test_gt_derived_gaps_offline_beats_online(sequence, tmp_path):
    """Ground-truth tracks with a gap and a new id after it: the answer (one id, the gap filled) is known."""
    pytest.importorskip("trackeval", reason="trackeval is not installed (pip install trackeval)")
    from ros2_tracker.eval.metrics import evaluate_sequence
    from ros2_tracker.io.sequence import read_sequence_info

    root = require_shared("data", sequence)
    fps = read_sequence_info(root).fps
    gt_path = root / "gt" / "gt.txt"
    gt = read_mot(gt_path, validate_boxes=False)
    keep = gt.scores > 0
    gt = type(gt)(gt.frames[keep], gt.ids[keep], gt.boxes_tlwh[keep], gt.scores[keep], gt.extra[keep])
    frames, ids, boxes = _fragment(gt, fps, gap_frames=max(2, round(0.3 * fps)))
    write_results(tmp_path / "online.txt", frames, ids, boxes)
    refined = refine_tracks(frames, ids, boxes, fps=fps, config=RefineConfig(link_without_appearance=True))
    write_results(tmp_path / "offline.txt", refined.frames, refined.ids, refined.boxes_tlwh)
    on = evaluate_sequence(gt_path, tmp_path / "online.txt", name=sequence)
    off = evaluate_sequence(gt_path, tmp_path / "offline.txt", name=sequence)
    assert len(refined.links) > 0
    assert off.HOTA > on.HOTA and off.IDF1 > on.IDF1 and off.MOTA >= on.MOTA
    assert off.IDSW <= on.IDSW and off.FN < on.FN


@pytest.mark.data
def test_real_tracker_output_is_not_made_worse(tmp_path):
    """Online tracking of TUD-Campus (Faster R-CNN detections), then refinement with default parameters."""
    pytest.importorskip("trackeval", reason="trackeval is not installed (pip install trackeval)")
    from ros2_tracker.core.tracker import Tracker, TrackerConfig
    from ros2_tracker.eval.metrics import evaluate_sequence
    from ros2_tracker.offline import track_mot_detections

    root = require_shared("data", "TUD-Campus")
    dets = read_mot(root / "det" / "det_frcnn.txt")
    res = track_mot_detections(dets, Tracker(TrackerConfig()), 25.0, last_frame=71)
    write_results(tmp_path / "online.txt", res.frames, res.ids, res.boxes_tlwh, res.scores)
    refined = refine_tracks(res.frames, res.ids, res.boxes_tlwh, res.scores, fps=25.0)
    write_results(tmp_path / "offline.txt", refined.frames, refined.ids, refined.boxes_tlwh, refined.scores)
    on = evaluate_sequence(root / "gt" / "gt.txt", tmp_path / "online.txt")
    off = evaluate_sequence(root / "gt" / "gt.txt", tmp_path / "offline.txt")
    assert refined.interpolated.sum() > 0
    assert off.HOTA >= on.HOTA and off.IDF1 >= on.IDF1 and off.IDSW <= on.IDSW
    # the online rows are all still there, unchanged (ids may only be relabelled by links)
    kept = ~refined.interpolated
    assert kept.sum() == len(res.frames)
