"""Linear interpolation of boxes through short gaps within each identity (offline, vectorised).

A gap of identity k is a pair of consecutive rows of k at frames ``f0 < f1`` with ``f1 - f0 > 1``;
its length is ``(f1 - f0) / fps`` seconds. Gaps no longer than ``max_gap_s`` get one box per missing
frame, linear in centre and size (so the interpolated boxes are exactly those of constant-velocity
motion between the two observed boxes); longer gaps are left empty. So are gaps across which the box
is implausible as one object moving at constant velocity: its height changes by more than
``max_height_ratio``, or its centre moves faster than ``max_velocity`` box heights per second. Those
are the marks of an identity switch or of a partial detection at one end, where filled-in boxes
would mostly be false positives.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Interpolated", "interpolate_gaps"]


class Interpolated(NamedTuple):
    """Result rows of :func:`interpolate_gaps`, sorted by frame then id.

    Attributes:
        frames: (M,) int frame numbers.
        ids: (M,) int identities.
        boxes_tlwh: (M, 4) float boxes [px].
        scores: (M,) float scores (interpolated rows: linear between the two ends).
        interpolated: (M,) bool, True for rows added here.
        world: (M, 3) float positions [m] when given (interpolated rows: linear between the two ends, NaN
            where either end has none), else None.
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes_tlwh: np.ndarray
    scores: np.ndarray
    interpolated: np.ndarray
    world: np.ndarray | None = None


def interpolate_gaps(frames: np.ndarray, ids: np.ndarray, boxes_tlwh: np.ndarray, scores: np.ndarray,
                     *, fps: float, max_gap_s: float, max_height_ratio: float = np.inf,
                     max_velocity: float = np.inf, world: np.ndarray | None = None) -> Interpolated:
    """Fill every gap of at most ``max_gap_s`` seconds within an identity with linear boxes.

    Args:
        frames: (N,) int frame numbers (>= 1); an id appears at most once per frame.
        ids: (N,) int identities.
        boxes_tlwh: (N, 4) boxes, top-left x, y, width, height [px].
        scores: (N,) scores.
        fps: frame rate [Hz] (> 0), to turn frame gaps into seconds.
        max_gap_s: longest gap filled [s] (time between the boxes before and after it).
        max_height_ratio: gaps whose end boxes' heights differ by more than this factor are not filled.
        max_velocity: gaps across which the centre moves faster than this [box heights/s, mean height
            of the two ends] are not filled.
        world: (N, 3) each row's 3D position [m] (the MOT format's world columns; NaN: none), or None.

    Returns:
        The input rows plus the interpolated ones, sorted by frame then id.
    """
    frames = np.asarray(frames, dtype=np.int64)
    ids = np.asarray(ids, dtype=np.int64)
    boxes = np.asarray(boxes_tlwh, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.lexsort((frames, ids))
    f, k, b, s = frames[order], ids[order], boxes[order], scores[order]
    df = np.diff(f)
    # frame gaps to seconds with a relative tolerance so that e.g. 10 frames at 10 Hz count as 1.0 s
    fill = (k[1:] == k[:-1]) & (df > 1) & (df <= max_gap_s * fps * (1 + 1e-9))
    starts = np.flatnonzero(fill)
    starts = starts[_plausible(b[starts], b[starts + 1], df[starts] / fps, max_height_ratio, max_velocity)]
    missing = df[starts] - 1
    rep = np.repeat(starts, missing)
    step = np.arange(len(rep)) - np.repeat(np.cumsum(missing) - missing, missing) + 1
    t = (step / df[rep])[:, None]
    centre_size0, centre_size1 = _cxcywh(b[rep]), _cxcywh(b[rep + 1])
    new_boxes = _tlwh(centre_size0 + t * (centre_size1 - centre_size0))
    new_scores = s[rep] + t[:, 0] * (s[rep + 1] - s[rep])
    out_f = np.concatenate([f, f[rep] + step])
    out_k = np.concatenate([k, k[rep]])
    final = np.lexsort((out_k, out_f))
    out_w = None
    if world is not None:  # NaN at either end gives NaN: no position is made up
        w = np.asarray(world, dtype=np.float64).reshape(-1, 3)[order]
        out_w = np.concatenate([w, w[rep] + t * (w[rep + 1] - w[rep])])[final]
    return Interpolated(out_f[final], out_k[final], np.concatenate([b, new_boxes])[final],
                        np.concatenate([s, new_scores])[final],
                        np.concatenate([np.zeros(len(f), bool), np.ones(len(rep), bool)])[final], out_w)


def _plausible(before: np.ndarray, after: np.ndarray, gap_s: np.ndarray, max_height_ratio: float,
               max_velocity: float) -> np.ndarray:
    """(G,) bool: the two end boxes (tlwh) fit one object at constant velocity through the gap."""
    h0, h1 = before[:, 3], after[:, 3]
    same_size = np.maximum(h0, h1) <= max_height_ratio * np.minimum(h0, h1)
    shift = np.linalg.norm(_cxcywh(after)[:, :2] - _cxcywh(before)[:, :2], axis=1)
    return same_size & (shift <= max_velocity * 0.5 * (h0 + h1) * gap_s)


def _cxcywh(tlwh: np.ndarray) -> np.ndarray:
    return np.concatenate([tlwh[:, :2] + 0.5 * tlwh[:, 2:], tlwh[:, 2:]], axis=1)


def _tlwh(cxcywh: np.ndarray) -> np.ndarray:
    return np.concatenate([cxcywh[:, :2] - 0.5 * cxcywh[:, 2:], cxcywh[:, 2:]], axis=1)
