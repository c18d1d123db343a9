"""Tracklet linking across gaps: one identity for the pieces of a track the online tracker broke.

Each identity of a result file is a *tracklet*. Every ordered pair (earlier ``a``, later ``b``) with
``a`` ending strictly before ``b`` starts, a gap of at most ``link_max_gap_s`` and the same class is a
candidate link. Its cost fuses

* motion consistency: ``a``'s last box centre moved through the gap at the constant velocity fitted
  over the ends of both tracklets (least squares over ``velocity_window_s`` of boxes at ``a``'s end
  and ``b``'s start, weighted by how many boxes each fit had) misses ``b``'s first centre by ``e``
  box heights; the motion cost is ``e / (motion_gate + motion_gate_per_s * gap_s)``, gated below 1,
  so the allowed error grows with the gap as constant-velocity uncertainty does;
* appearance: the cosine distance ``d`` of the tracklets' mean embeddings, cost
  ``d / appearance_gate``, gated below 1;

as ``(1 - w) * motion + w * appearance``. A pair of which one tracklet has no embedding is linked by
motion alone only with ``link_without_appearance`` (off by default: see :class:`RefineConfig`). One
optimal assignment of tracklet ends (rows) to tracklet starts (columns) with dummy nodes
(:func:`ros2_tracker.core.assignment.assign`) picks the links, so a tracklet may stay unlinked and
links to at most one successor and one predecessor. Links form chains (time strictly increases along
them, so there are no cycles); every chain takes the id of its earliest tracklet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ros2_tracker.core.assignment import assign, assign_sparse
from ros2_tracker.refine.config import RefineConfig

__all__ = ["Link", "Tracklets", "candidate_pairs", "link_cost_matrix", "link_costs", "link_tracklets",
           "summarise_tracklets"]

_MIN_EMBEDDING_NORM = 0.5  # rows whose embedding is (near) zero carry no appearance
_DENSE_MAX = 1000  # more tracklets than this: the sparse assignment (no T x T matrix)


@dataclass(frozen=True)
class Link:
    """One accepted link: ``later_id`` continues ``earlier_id`` after ``gap_s`` seconds."""

    earlier_id: int
    later_id: int
    gap_s: float
    cost: float


@dataclass(frozen=True)
class Tracklets:
    """Per-tracklet summary used to score links (T tracklets, sorted by id).

    Attributes:
        ids: (T,) ids. classes: (T,) class of each tracklet (its most frequent row class).
        first, last: (T,) first and last frame. counts: (T,) number of boxes.
        start, end: (T, 3) centre x, y and height [px] of the first / last box.
        v_start, v_end: (T, 2) fitted centre velocity at the start / end [px/s].
        w_start, w_end: (T,) weight of those fits (boxes in the fit - 1; 0: no velocity known).
        embeddings: (T, D) L2-normalised mean embedding, a zero row where none; None without embeddings.
    """

    ids: np.ndarray
    classes: np.ndarray
    first: np.ndarray
    last: np.ndarray
    counts: np.ndarray
    start: np.ndarray
    end: np.ndarray
    v_start: np.ndarray
    v_end: np.ndarray
    w_start: np.ndarray
    w_end: np.ndarray
    embeddings: np.ndarray | None


def summarise_tracklets(frames: np.ndarray, ids: np.ndarray, boxes_tlwh: np.ndarray, *, fps: float,
                        config: RefineConfig, classes: np.ndarray | None = None,
                        embeddings: np.ndarray | None = None) -> Tracklets:
    """Ends, velocities and mean appearance of every identity of the result rows.

    Args:
        frames: (N,) frame numbers.
        ids: (N,) identities (one row per id and frame).
        boxes_tlwh: (N, 4) boxes [px].
        fps: frame rate [Hz].
        config: ``velocity_window_s`` and ``max_velocity`` are used.
        classes: (N,) class per row, or None (one class).
        embeddings: (N, D) appearance per row (rows of norm < 0.5: none), or None.
    """
    order = np.lexsort((frames, ids))
    f, k, b = np.asarray(frames)[order], np.asarray(ids)[order], np.asarray(boxes_tlwh, float)[order]
    cls = np.zeros(len(f), np.int64) if classes is None else np.asarray(classes)[order]
    centres = np.concatenate([b[:, :2] + 0.5 * b[:, 2:], b[:, 3:4]], axis=1)  # cx, cy, h
    uniq, first_idx, counts = np.unique(k, return_index=True, return_counts=True)
    last_idx = first_idx + counts - 1
    spans = [slice(i, i + c) for i, c in zip(first_idx, counts, strict=True)]
    t = f / fps
    fits_end = [_fit(t[s], centres[s], config, at_end=True) for s in spans]
    fits_start = [_fit(t[s], centres[s], config, at_end=False) for s in spans]
    emb = None
    if embeddings is not None:
        e = np.asarray(embeddings, dtype=np.float64)[order]
        emb = np.stack([_mean_embedding(e[s]) for s in spans]).reshape(len(spans), e.shape[1]) if spans \
            else np.zeros((0, e.shape[1]))
    return Tracklets(
        ids=uniq, classes=np.array([_mode(cls[s]) for s in spans], np.int64),
        first=f[first_idx], last=f[last_idx], counts=counts, start=centres[first_idx], end=centres[last_idx],
        v_start=np.array([v for v, _ in fits_start]).reshape(-1, 2),
        v_end=np.array([v for v, _ in fits_end]).reshape(-1, 2),
        w_start=np.array([w for _, w in fits_start], float), w_end=np.array([w for _, w in fits_end], float),
        embeddings=emb)


def _fit(t: np.ndarray, centres: np.ndarray, config: RefineConfig, *,
         at_end: bool) -> tuple[np.ndarray, float]:
    """Least-squares centre velocity [px/s] over the end (or start) window, and its weight."""
    window = (t >= t[-1] - config.velocity_window_s) if at_end else (t <= t[0] + config.velocity_window_s)
    idx = np.flatnonzero(window)
    if len(idx) < 2:  # the window holds one box: use the two boxes nearest the end
        idx = np.arange(len(t))[-2:] if at_end else np.arange(len(t))[:2]
    if len(idx) < 2:
        return np.zeros(2), 0.0
    tt = t[idx] - t[idx].mean()
    v = (tt[:, None] * (centres[idx, :2] - centres[idx, :2].mean(axis=0))).sum(axis=0) / (tt ** 2).sum()
    limit = config.max_velocity * float(centres[idx, 2].mean())
    speed = float(np.hypot(*v))
    if speed > limit:
        v = v * (limit / speed)
    return v, float(len(idx) - 1)


def _mean_embedding(e: np.ndarray) -> np.ndarray:
    ok = np.linalg.norm(e, axis=1) >= _MIN_EMBEDDING_NORM
    if not ok.any():
        return np.zeros(e.shape[1])
    m = (e[ok] / np.linalg.norm(e[ok], axis=1, keepdims=True)).mean(axis=0)
    n = np.linalg.norm(m)
    return m / n if n > 0 else m


def _mode(values: np.ndarray) -> int:
    u, c = np.unique(values, return_counts=True)
    return int(u[np.argmax(c)])


def candidate_pairs(tr: Tracklets, *, fps: float, config: RefineConfig) -> tuple[np.ndarray, np.ndarray]:
    """Every (earlier, later) pair whose start follows the earlier's end within ``link_max_gap_s``.

    Found by sorting starts once (``O(T log T + P)`` for P pairs), so long recordings with thousands of
    tracklets never build a T x T matrix.

    Returns:
        ``(rows, cols)``: (P,) indices of the earlier and the later tracklet.
    """
    order = np.argsort(tr.first, kind="stable")
    firsts = tr.first[order]
    lo = np.searchsorted(firsts, tr.last, side="right")  # strictly after the end: no overlap
    hi = np.searchsorted(firsts, tr.last + config.link_max_gap_s * fps * (1 + 1e-9), side="right")
    counts = hi - lo
    rows = np.repeat(np.arange(len(tr.ids)), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return rows, order[np.repeat(lo, counts) + offsets]


def link_costs(tr: Tracklets, *, fps: float,
               config: RefineConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The allowed links and their costs, in [0, 1): every term is normalised by its gate (see the module).

    Returns:
        ``(rows, cols, costs)``: (P,) earlier tracklet index, later tracklet index, cost.
    """
    rows, cols = candidate_pairs(tr, fps=fps, config=config)
    h_end, h_start = tr.end[rows, 2], tr.start[cols, 2]
    ok = (tr.classes[rows] == tr.classes[cols]) & (tr.counts[rows] >= config.min_tracklet_boxes)
    ok &= (tr.counts[cols] >= config.min_tracklet_boxes)
    ok &= np.maximum(h_end, h_start) <= config.max_height_ratio * np.minimum(h_end, h_start)
    rows, cols = rows[ok], cols[ok]
    cost = _motion_cost(tr, rows, cols, (tr.first[cols] - tr.last[rows]) / fps, config)
    keep = cost < 1.0
    rows, cols, cost = rows[keep], cols[keep], cost[keep]
    emb = tr.embeddings if tr.embeddings is not None else np.zeros((len(tr.ids), 1))
    cost = _fuse_appearance(cost, emb, rows, cols, config)
    keep = cost < 1.0
    return rows[keep], cols[keep], cost[keep]


def link_cost_matrix(tr: Tracklets, *, fps: float, config: RefineConfig) -> np.ndarray:
    """(T, T) cost of linking tracklet i's end (row) to tracklet j's start (column); inf: never.

    A dense view of :func:`link_costs`, for inspection (T x T memory).
    """
    cost = np.full((len(tr.ids), len(tr.ids)), np.inf)
    rows, cols, c = link_costs(tr, fps=fps, config=config)
    cost[rows, cols] = c
    return cost


def _motion_cost(tr: Tracklets, rows: np.ndarray, cols: np.ndarray, gap_s: np.ndarray,
                 config: RefineConfig) -> np.ndarray:
    w_end, w_start = tr.w_end[rows, None], tr.w_start[cols, None]
    total = w_end + w_start
    v = (w_end * tr.v_end[rows] + w_start * tr.v_start[cols]) / np.where(total > 0, total, 1.0)
    predicted = tr.end[rows, :2] + v * gap_s[:, None]
    error = np.linalg.norm(predicted - tr.start[cols, :2], axis=1)
    height = 0.5 * (tr.end[rows, 2] + tr.start[cols, 2])
    gate = config.motion_gate + config.motion_gate_per_s * gap_s
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.nan_to_num(error / height / gate, nan=np.inf)


def _fuse_appearance(motion: np.ndarray, emb: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                     config: RefineConfig, chunk: int = 16384) -> np.ndarray:
    has = np.linalg.norm(emb, axis=1) > 0
    both = has[rows] & has[cols]
    distance = np.ones(len(rows))
    for k in range(0, len(rows), chunk):  # chunks: (P, D) pair embeddings would not fit long recordings
        r, c = rows[k:k + chunk], cols[k:k + chunk]
        distance[k:k + chunk] = 1.0 - np.einsum("ij,ij->i", emb[r], emb[c])
    appearance = distance / config.appearance_gate
    w = config.appearance_weight
    fused = np.where(appearance < 1.0, (1 - w) * motion + w * appearance, np.inf)
    # a pair without appearance is judged by motion alone, or never linked
    return np.where(both, fused, motion if config.link_without_appearance else np.inf)


def link_tracklets(tr: Tracklets, *, fps: float, config: RefineConfig) -> tuple[dict[int, int], list[Link]]:
    """Solve the link assignment and resolve chains.

    Returns:
        ``id_map`` (old id -> new id, for every tracklet; a chain takes its earliest tracklet's id)
        and the accepted links, in order of the earlier tracklet's end.
    """
    n = len(tr.ids)
    id_map = {int(i): int(i) for i in tr.ids}
    rows, cols, costs = link_costs(tr, fps=fps, config=config)
    if not len(rows):
        return id_map, []
    matches = _assign_links(n, rows, cols, costs)
    successor = np.full(n, -1)
    successor[matches[:, 0]] = matches[:, 1]
    has_predecessor = np.zeros(n, bool)
    has_predecessor[matches[:, 1]] = True
    for root in np.flatnonzero(~has_predecessor):
        j = successor[root]
        while j >= 0:
            id_map[int(tr.ids[j])] = int(tr.ids[root])
            j = successor[j]
    cost_of = {(int(r), int(c)): float(x) for r, c, x in zip(rows, cols, costs, strict=True)}
    ordered = sorted(matches.tolist(), key=lambda m: (tr.last[m[0]], m[0]))
    return id_map, [Link(int(tr.ids[i]), int(tr.ids[j]), float((tr.first[j] - tr.last[i]) / fps),
                         cost_of[i, j]) for i, j in ordered]


def _assign_links(n: int, rows: np.ndarray, cols: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Optimal one-to-one links (ends to starts, dummy nodes at cost 1): (M, 2) index pairs."""
    if n <= _DENSE_MAX:
        cost = np.full((n, n), np.inf)
        cost[rows, cols] = costs
        return assign(cost, 1.0).matches
    return assign_sparse(n, n, rows, cols, costs, 1.0).matches  # same problem, no n x n matrix
