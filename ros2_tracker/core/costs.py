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
    "iou_matrix",
]


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """(A, B) intersection over union of two box sets."""
    a = np.asarray(a_xyxy, dtype=np.float64)
    b = np.asarray(b_xyxy, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / np.maximum(union, 1e-12)


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
        image_to_ground: 3x3 homography mapping image pixels (u, v, 1) to ground metres (x, y, 1).
    """
    ga = _apply_homography(image_to_ground, footpoints(a_xyxy))
    gb = _apply_homography(image_to_ground, footpoints(b_xyxy))
    return np.linalg.norm(ga[:, None, :] - gb[None, :, :], axis=2)


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
