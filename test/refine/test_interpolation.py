"""Interpolation: real ground-truth gaps filled exactly linearly; never past max_gap_s, nor implausible."""

import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.io.mot import read_mot
from ros2_tracker.refine import interpolate_gaps

FPS = 25.0  # TUD-Campus


def _gt_track():
    """The longest ground-truth track of TUD-Campus (every frame present)."""
    gt = read_mot(require_shared("data", "TUD-Campus", "gt", "gt.txt"), validate_boxes=False)
    keep = gt.ids == np.bincount(gt.ids).argmax()
    return gt.frames[keep], gt.ids[keep], gt.boxes_tlwh[keep], np.ones(int(keep.sum()))


def _cxcywh(tlwh):
    return np.column_stack([tlwh[:, 0] + tlwh[:, 2] / 2, tlwh[:, 1] + tlwh[:, 3] / 2, tlwh[:, 2], tlwh[:, 3]])


@pytest.mark.data
def test_fills_a_real_gap_exactly_linearly():
    frames, ids, boxes, scores = _gt_track()
    hole = (frames > frames[5]) & (frames < frames[5] + 10)  # 9 missing frames: a 0.4 s gap
    out = interpolate_gaps(frames[~hole], ids[~hole], boxes[~hole], scores[~hole], fps=FPS, max_gap_s=1.0)
    assert out.interpolated.sum() == hole.sum()
    assert out.frames[out.interpolated].tolist() == frames[hole].tolist()
    # expected: straight lines in centre and size between the boxes on either side of the hole
    before, after = _cxcywh(boxes[5:6])[0], _cxcywh(boxes[np.flatnonzero(hole)[-1] + 1:][:1])[0]
    t = (frames[hole] - frames[5])[:, None] / 10.0
    np.testing.assert_allclose(_cxcywh(out.boxes_tlwh[out.interpolated]), before + t * (after - before),
                               atol=1e-9)
    # the observed rows come back unchanged
    np.testing.assert_array_equal(out.boxes_tlwh[~out.interpolated], boxes[~hole])


@pytest.mark.data
@pytest.mark.parametrize("missing,max_gap_s,filled", [
    (24, 1.0, True),    # 25 frames between the ends = exactly 1.0 s at 25 Hz: filled
    (25, 1.0, False),   # 1.04 s: longer than max_gap_s, left empty
    (5, 0.2, False),    # 0.24 s > 0.2 s
    (4, 0.2, True),
])
def test_never_fills_a_gap_longer_than_max_gap_s(missing, max_gap_s, filled):
    frames, ids, boxes, scores = _gt_track()
    assert len(frames) > missing + 12 and np.all(np.diff(frames) == 1)
    hole = (frames > frames[10]) & (frames <= frames[10] + missing)
    out = interpolate_gaps(frames[~hole], ids[~hole], boxes[~hole], scores[~hole], fps=FPS,
                           max_gap_s=max_gap_s)
    assert out.interpolated.sum() == (missing if filled else 0)


def _two_boxes(h1, x1, gap=5):
    frames = np.array([1, 1 + gap])
    boxes = np.array([[100.0, 100, 40, 100], [x1, 100, 0.4 * h1, h1]])
    return frames, np.array([7, 7]), boxes, np.array([0.9, 0.5])


@pytest.mark.parametrize("h1,x1,filled", [
    (100, 120, True),    # same size, 20 px in 0.5 s (0.4 box heights/s)
    (200, 120, False),   # height doubles: a partial detection or another person at one end
    (100, 400, False),   # 300 px in 0.5 s = 6 box heights/s: not one person walking
])
def test_implausible_gaps_are_not_filled(h1, x1, filled):
    out = interpolate_gaps(*_two_boxes(h1, x1), fps=10.0, max_gap_s=1.0, max_height_ratio=1.5,
                           max_velocity=2.0)
    assert out.interpolated.sum() == (4 if filled else 0)


def test_scores_are_interpolated_and_identities_never_mixed():
    frames, ids, boxes, scores = _two_boxes(100, 120)
    # a second identity with a gap of its own, interleaved in time
    frames = np.concatenate([frames, [2, 4]])
    ids = np.concatenate([ids, [3, 3]])
    boxes = np.concatenate([boxes, [[300.0, 50, 20, 50], [310, 50, 20, 50]]])
    scores = np.concatenate([scores, [1.0, 1.0]])
    out = interpolate_gaps(frames, ids, boxes, scores, fps=10.0, max_gap_s=1.0)
    new = out.interpolated
    assert sorted(zip(out.frames[new].tolist(), out.ids[new].tolist(), strict=True)) == [
        (2, 7), (3, 3), (3, 7), (4, 7), (5, 7)]
    np.testing.assert_allclose(out.scores[new & (out.ids == 7)], [0.82, 0.74, 0.66, 0.58])
    assert np.all(np.diff(out.frames) >= 0)  # sorted by frame


def test_empty_input():
    out = interpolate_gaps(np.empty(0, int), np.empty(0, int), np.empty((0, 4)), np.empty(0), fps=10.0,
                           max_gap_s=1.0)
    assert len(out.frames) == 0 and out.boxes_tlwh.shape == (0, 4)
