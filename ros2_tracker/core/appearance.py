"""Appearance helpers for association: cosine distances, embedding memory, occlusion test.

Embeddings are float vectors (N, E), L2-normalised by :func:`normalise`. A track remembers an
exponential moving average of its detections' embeddings, updated only from confident detections
that no other detection overlaps (an occluded crop shows somebody else).
"""

from __future__ import annotations

import numpy as np

from ros2_tracker.core.costs import iou_matrix

__all__ = ["cosine_distance", "cosine_distance_pairs", "ema_update", "normalise", "unoccluded"]


def normalise(features: np.ndarray) -> np.ndarray:
    """(N, E) rows scaled to unit length (float32); all-zero or non-finite rows become zeros. Any scale
    works: the norm is taken in float64 (float32 squares underflow below ~1e-19 and overflow above ~1e19)."""
    f = np.asarray(features, dtype=np.float64)
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    ok = np.isfinite(norm) & (norm > 0)
    return np.where(ok, f / np.where(ok, norm, 1.0), 0.0).astype(np.float32)


def cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) cosine distance 1 - a.b of unit vectors, in [0, 2]; rows of zeros are at distance 1."""
    return np.clip(1.0 - a @ b.T, 0.0, 2.0).astype(np.float64)


def cosine_distance_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(K,) cosine distance 1 - a[k].b[k] of paired unit vectors (rows of ``a`` and ``b``), in [0, 2]: the
    entries of :func:`cosine_distance` for listed pairs only (crowded frames)."""
    return np.clip(1.0 - np.einsum("ke,ke->k", a, b), 0.0, 2.0).astype(np.float64)


def ema_update(memory: np.ndarray, features: np.ndarray, momentum: float) -> np.ndarray:
    """New unit-length memories ``momentum * memory + (1 - momentum) * features`` (row-wise)."""
    return normalise(momentum * memory + (1.0 - momentum) * features)


def unoccluded(boxes_xyxy: np.ndarray, max_iou: float) -> np.ndarray:
    """(N,) True where a box overlaps no other box of the set by more than ``max_iou``."""
    n = len(boxes_xyxy)
    if n < 2:
        return np.ones(n, dtype=bool)
    iou = iou_matrix(boxes_xyxy, boxes_xyxy)
    np.fill_diagonal(iou, 0.0)
    return iou.max(axis=1) <= max_iou
