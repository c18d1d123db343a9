"""Vectorised association costs between T tracks and D detections, each a (T, D) matrix.

All boxes are (N, 4) xyxy in pixels. Costs are "lower is better"; a pair that must never
match gets ``np.inf``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "centre_distance",
    "footpoints",
    "gate_classes",
    "ground_distance",
    "ground_distance_pairs",
    "iou_matrix",
    "iou_pairs",
    "overlapping_pairs",
]


# xyxy coordinate rows (4, N) -> (cx, cy, w / 2, h / 2) rows
_CENTRE_HALF = np.array([[0.5, 0.0, 0.5, 0.0], [0.0, 0.5, 0.0, 0.5], [-0.5, 0.0, 0.5, 0.0],
                         [0.0, -0.5, 0.0, 0.5]])


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """(A, B) intersection over union of two box sets."""
    a = np.asarray(a_xyxy, dtype=np.float64)
    b = np.asarray(b_xyxy, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    at, bt = a.T.copy(), b.T.copy()
    return _iou_of_rows(at[:, :, None], bt[:, None, :])


def iou_pairs(a_xyxy: np.ndarray, b_xyxy: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """IoU of the listed pairs (a[rows[k]], b[cols[k]]) only: (K,)."""
    return _iou_of_rows(a_xyxy.T.take(rows, axis=1), b_xyxy.T.take(cols, axis=1))


def _iou_of_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes given as xyxy coordinate rows: ``a`` and ``b`` of shapes (4, ...) that broadcast together
    (``iou_matrix``: (4, A, 1) against (4, 1, B); ``iou_pairs``: (4, K) against (4, K)). Contiguous coordinate
    rows, x and y in one call, are several times cheaper than strided (N, 2) column slices (a thousand
    pairs: 35 vs 89 us; a 30 x 25 matrix: 11 vs 22 us)."""
    wh = np.minimum(a[2:], b[2:])
    wh -= np.maximum(a[:2], b[:2])
    np.maximum(wh, 0.0, out=wh)
    inter = wh[0] * wh[1]
    da, db = a[2:] - a[:2], b[2:] - b[:2]  # (w, h)
    union = da[0] * da[1] + db[0] * db[1]
    union -= inter
    np.maximum(union, 1e-12, out=union)
    inter /= union
    return inter


def overlapping_pairs(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (rows, cols) of boxes that may overlap, without an A x B matrix.

    Sort and sweep: centres sorted along the axis where boxes are most spread out (relative to
    their size); each box of ``a`` takes the boxes of ``b`` whose centres are within the largest
    possible half-extents along that axis (two binary searches), then along the other axis.
    Exact for IoU > 0 (every overlapping pair is returned); near-linear for scenes that are not
    one dense pile. Used for crowded frames.
    """
    if len(a_xyxy) == 0 or len(b_xyxy) == 0:
        return np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
    # (cx, cy, w/2, h/2) as contiguous rows (4, N): NumPy reduces and gathers a (N, 4) array's columns several
    # times more slowly (a thousand boxes: 26 us for one max over axis 0, 3 us for the same over rows)
    a, b = _CENTRE_HALF.dot(a_xyxy.T), _CENTRE_HALF.dot(b_xyxy.T)
    top_a, top_b, bottom_b = a.max(axis=1).tolist(), b.max(axis=1).tolist(), b.min(axis=1).tolist()
    reach = [top_a[2] + top_b[2] + 1e-6, top_a[3] + top_b[3] + 1e-6]  # farthest centres of overlapping boxes
    spread = [(top_b[k] - bottom_b[k] + 1e-6) / reach[k] for k in range(2)]
    ax = 0 if spread[0] >= spread[1] else 1  # sweep along the axis with the most room between boxes
    other = 1 - ax
    order = b[ax].argsort(kind="stable")
    keys = b[ax].take(order)
    lo = keys.searchsorted(a[ax] - reach[ax], "left")
    count = keys.searchsorted(a[ax] + reach[ax], "right") - lo
    rows = np.repeat(np.arange(a.shape[1]), count)
    cols = order.take(np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count - lo, count))
    keep = np.abs(a[other].take(rows) - b[other].take(cols)) < reach[other]
    return rows.compress(keep), cols.compress(keep)


def centre_distance(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """(A, B) Euclidean distance between box centres [px]."""
    ca = 0.5 * (a_xyxy[:, :2] + a_xyxy[:, 2:])
    cb = 0.5 * (b_xyxy[:, :2] + b_xyxy[:, 2:])
    return np.linalg.norm(ca[:, None, :] - cb[None, :, :], axis=2)


def footpoints(boxes_xyxy: np.ndarray) -> np.ndarray:
    """(N, 2) bottom-centre image points: where an upright object touches the ground."""
    return np.stack([0.5 * (boxes_xyxy[:, 0] + boxes_xyxy[:, 2]), boxes_xyxy[:, 3]], axis=1)


def ground_distance(a_xyxy: np.ndarray, b_xyxy: np.ndarray, image_to_ground: np.ndarray) -> np.ndarray:
    """(A, B) distance on the ground plane [m] between the boxes' foot points.

    Args:
        a_xyxy: (A, 4) boxes [px].
        b_xyxy: (B, 4) boxes [px].
        image_to_ground: 3x3 homography mapping image pixels (u, v, 1) to ground metres (x, y, 1); a foot
            point it puts above the horizon (w <= 0) is infinitely far from everything.
    """
    ga = _apply_homography(image_to_ground, footpoints(a_xyxy))
    gb = _apply_homography(image_to_ground, footpoints(b_xyxy))
    with np.errstate(invalid="ignore"):  # inf - inf: both above the horizon
        return _far_if_undefined(np.linalg.norm(ga[:, None, :] - gb[None, :, :], axis=2))


def ground_distance_pairs(a_xyxy: np.ndarray, b_xyxy: np.ndarray, image_to_ground: np.ndarray) -> np.ndarray:
    """(K,) ground-plane distance [m] between the foot points of paired rows a[k], b[k]."""
    ga = _apply_homography(image_to_ground, footpoints(a_xyxy))
    gb = _apply_homography(image_to_ground, footpoints(b_xyxy))
    with np.errstate(invalid="ignore"):
        return _far_if_undefined(np.linalg.norm(ga - gb, axis=1))


def _far_if_undefined(distance: np.ndarray) -> np.ndarray:
    """Distances with NaN (two points above the horizon: inf - inf) as inf: a point not on the ground is
    near nothing, so a distance gate keeps it out instead of letting NaN compare False and pass."""
    distance[np.isnan(distance)] = np.inf
    return distance


def _apply_homography(h: np.ndarray, pts: np.ndarray) -> np.ndarray:
    p = np.c_[pts, np.ones(len(pts))] @ np.asarray(h, dtype=np.float64).T
    w = p[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = p[:, :2] / w
    out[~np.isfinite(out).all(axis=1) | (w[:, 0] <= 0)] = np.inf  # points above the horizon
    return out


def gate_classes(cost: np.ndarray, track_classes: np.ndarray, det_classes: np.ndarray) -> np.ndarray:
    """Set the cost of every pair of different classes to inf (in place) and return it."""
    if cost.size:
        cost[track_classes[:, None] != det_classes[None, :]] = np.inf
    return cost
