"""Box formats and box validation.

Formats (all float arrays of shape (N, 4), pixels):
- ``tlwh``: top-left x, top-left y, width, height (MOTChallenge files);
- ``xyxy``: x1, y1, x2, y2;
- ``cxcywh``: centre x, centre y, width, height (the Kalman state's measured part).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "cxcywh_to_xyxy",
    "tlwh_to_xyxy",
    "valid_box_mask",
    "xyxy_to_cxcywh",
    "xyxy_to_tlwh",
]


def tlwh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N,4) tlwh -> (N,4) xyxy."""
    b = np.asarray(boxes, dtype=np.float64)
    out = b.copy()
    out[:, 2:] += b[:, :2]
    return out


def xyxy_to_tlwh(boxes: np.ndarray) -> np.ndarray:
    """(N,4) xyxy -> (N,4) tlwh."""
    b = np.asarray(boxes, dtype=np.float64)
    out = b.copy()
    out[:, 2:] -= b[:, :2]
    return out


# Linear maps between formats: one small matrix product is cheaper than four slice operations
# (``ndarray.dot`` rather than ``@``: for a frame's few dozen rows its call overhead is a third).
_XYXY_TO_CXCYWH = np.array([[0.5, 0.0, -1.0, 0.0], [0.0, 0.5, 0.0, -1.0], [0.5, 0.0, 1.0, 0.0],
                            [0.0, 0.5, 0.0, 1.0]])
_CXCYWH_TO_XYXY = np.array([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0], [-0.5, 0.0, 0.5, 0.0],
                            [0.0, -0.5, 0.0, 0.5]])


def xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """(N,4) xyxy -> (N,4) centre x, centre y, width, height."""
    return np.asarray(boxes, dtype=np.float64).dot(_XYXY_TO_CXCYWH)


def cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N,4) centre x, centre y, width, height -> (N,4) xyxy."""
    return np.asarray(boxes, dtype=np.float64).dot(_CXCYWH_TO_XYXY)


_SIZE = np.array([[-1.0, 0.0], [0.0, -1.0], [1.0, 0.0], [0.0, 1.0]])  # xyxy -> (w, h)


# valid_box_mask: a box whose absolute coordinates sum to more than 4e9 px is garbage (no image is a billion
# pixels wide), and its centre, size and squared size would overflow or strain float64 later. The sum is taken
# in billions of pixels, so that even the largest floats cannot overflow it.
_PER_BILLION = np.full(4, 1e-9)
_MAX_ABS_SUM = 4.0


def valid_box_mask(boxes_xyxy: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray:
    """True for boxes that are finite, within about a billion pixels of the origin, with positive width and
    height (and a finite score)."""
    b = np.asarray(boxes_xyxy, dtype=np.float64)
    # NaN/inf anywhere -> a NaN/inf sum, which fails the bound (row sums as one small product: no axis reduce)
    finite = np.abs(b).dot(_PER_BILLION) <= _MAX_ABS_SUM
    if scores is not None:
        finite &= np.isfinite(scores)
    if np.count_nonzero(finite) == len(finite):
        return _positive_size(b)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf, 1e308 - -1e308: a box rejected anyway
        return _positive_size(b) & finite


def _positive_size(b: np.ndarray) -> np.ndarray:
    """True for (N, 4) xyxy boxes with positive width and height."""
    size = b.dot(_SIZE)
    return np.minimum(size[:, 0], size[:, 1]) > 0
