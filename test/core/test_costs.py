"""Box conversions and association costs."""

import numpy as np
import pytest

from ros2_tracker.core.boxes import cxcywh_to_xyxy, tlwh_to_xyxy, valid_box_mask, xyxy_to_cxcywh, xyxy_to_tlwh
from ros2_tracker.core.costs import (
    centre_distance,
    ground_distance,
    iou_matrix,
    iou_pairs,
    overlapping_pairs,
)


def test_box_round_trips():
    b = np.array([[10.0, 20.0, 30.0, 60.0]])
    assert xyxy_to_cxcywh(b).tolist() == [[20.0, 40.0, 20.0, 40.0]]
    assert cxcywh_to_xyxy(xyxy_to_cxcywh(b)) == pytest.approx(b)
    assert tlwh_to_xyxy(xyxy_to_tlwh(b)) == pytest.approx(b)
    assert valid_box_mask(np.array([[0, 0, 1, 1], [0, 0, 0, 1], [np.nan, 0, 1, 1]])).tolist() == [
        True, False, False]


def test_valid_box_mask_rejects_every_kind_of_bad_box_without_warnings():
    import warnings

    boxes = np.array([[0, 0, 10, 10], [0, 0, 0, 10], [np.nan, 0, 1, 1], [0, 0, np.inf, 1], [-np.inf, 0, 1, 1],
                      [5, 5, 4, 9], [0, 0, 1, 1e-9], [-50, -40, -10, -5.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # inf - inf inside must stay silent
        assert valid_box_mask(boxes).tolist() == [True, False, False, False, False, False, True, True]
        scores = np.array([1, 1, 1, 1, 1, 1, np.nan, 0.5])
        ok = valid_box_mask(boxes, scores)
        assert ok.tolist() == [True, False, False, False, False, False, False, True]
        assert valid_box_mask(np.empty((0, 4)), np.empty(0)).tolist() == []
        # finite corners whose width overflows, and a box a billion pixels away: garbage, rejected silently
        far = np.array([[-1e308, 0, 1e308, 10], [1e9, 1e9, 1e9 + 5, 1e9 + 5], [0, 0, 1e9, 1e9]])
        assert valid_box_mask(far).tolist() == [False, False, True]
        assert valid_box_mask(far, np.array([1e300, 1.0, np.inf])).tolist() == [False, False, False]


def test_iou_known_values():
    a = np.array([[0.0, 0.0, 10.0, 10.0]])
    b = np.array([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    assert iou_matrix(a, b)[0] == pytest.approx([1.0, 50 / 150, 0.0])
    assert iou_matrix(a, np.empty((0, 4))).shape == (1, 0)
    assert centre_distance(a, b)[0, 1] == pytest.approx(5.0)


@pytest.mark.parametrize("n,spread", [(3, 100), (50, 3000), (200, 300), (1000, 9000)])
def test_overlapping_pairs_finds_every_overlap(n, spread):
    rng = np.random.default_rng(n)
    a = rng.random((n, 4)) * spread
    a[:, 2:] = a[:, :2] + 50 + rng.random((n, 2)) * 100
    b = a + rng.random((n, 4)) * 30 - 15
    rows, cols = overlapping_pairs(a, b)
    pairs = set(zip(rows.tolist(), cols.tolist(), strict=True))
    assert len(pairs) == len(rows)  # no duplicates
    overlapping = set(map(tuple, np.argwhere(iou_matrix(a, b) > 0).tolist()))
    assert overlapping <= pairs
    assert iou_pairs(a, b, rows, cols) == pytest.approx(iou_matrix(a, b)[rows, cols])


def test_ground_distance_with_a_homography():
    # camera looking down: ground metres = pixels / 100 (a pure scale homography)
    h = np.diag([0.01, 0.01, 1.0])
    a = np.array([[0.0, 0.0, 100.0, 300.0]])  # foot point (50, 300) -> (0.5, 3.0) m
    b = np.array([[300.0, 0.0, 400.0, 300.0]])  # foot point (350, 300) -> (3.5, 3.0) m
    assert ground_distance(a, b, h)[0, 0] == pytest.approx(3.0)
