"""Offline refinement of recorded tracks: tracklet linking across gaps, then interpolation.

For data processed as a batch (the future is known): identities the online tracker broke are
linked into one (:mod:`.linking`), and boxes are filled in linearly through short gaps
(:mod:`.interpolation`). The input is MOTChallenge result rows (``ros2-tracker track``'s output,
:class:`ros2_tracker.offline.OfflineResult`), optionally with a class and an appearance embedding
per row; the online rows themselves are never changed, only re-labelled (linked ids) and added to
(interpolated boxes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ros2_tracker.refine.config import RefineConfig
from ros2_tracker.refine.interpolation import Interpolated, interpolate_gaps
from ros2_tracker.refine.linking import Link, link_tracklets, summarise_tracklets

__all__ = ["Interpolated", "Link", "RefineConfig", "RefinedTracks", "interpolate_gaps", "refine_tracks"]


@dataclass
class RefinedTracks:
    """Refined MOTChallenge result rows, sorted by frame then id.

    Attributes:
        frames: (M,) int frame numbers. ids: (M,) int identities (after linking).
        boxes_tlwh: (M, 4) boxes [px]. scores: (M,) scores.
        interpolated: (M,) bool, True for boxes added by interpolation.
        id_map: every input id -> its output id.
        links: the accepted links.
        world: (M, 3) 3D positions [m] when the input had them (interpolated rows: linear between the
            gap's ends; NaN where either had none), else None.
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes_tlwh: np.ndarray
    scores: np.ndarray
    interpolated: np.ndarray
    id_map: dict[int, int] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    world: np.ndarray | None = None

    def summary(self) -> dict:
        """Counts for logs and the offline marker file."""
        return {"rows": len(self.frames), "interpolated_rows": int(self.interpolated.sum()),
                "links": len(self.links), "ids_before": len(self.id_map),
                "ids_after": len(set(self.id_map.values()))}


def refine_tracks(frames: np.ndarray, ids: np.ndarray, boxes_tlwh: np.ndarray,
                  scores: np.ndarray | None = None, *, fps: float, config: RefineConfig | None = None,
                  classes: np.ndarray | None = None,
                  embeddings: np.ndarray | None = None, world: np.ndarray | None = None) -> RefinedTracks:
    """Link tracklets across gaps, then interpolate short gaps (each step as ``config`` enables).

    Args:
        frames: (N,) int frame numbers (>= 1).
        ids: (N,) int identities; an id appears at most once per frame.
        boxes_tlwh: (N, 4) boxes, top-left x, y, width, height [px], width and height > 0.
        scores: (N,) scores, or None (all 1).
        fps: frame rate [Hz] of the frame numbers (gaps are bounded in seconds).
        config: parameters (default: :class:`RefineConfig` defaults).
        classes: (N,) int class per row, or None (one class); tracklets of different classes are
            never linked.
        embeddings: (N, D) appearance embedding per row (a row of norm < 0.5: none), or None.
        world: (N, 3) 3D position [m] per row (the MOT format's world columns; NaN: none), or None; carried
            to the output rows.

    Raises:
        ValueError: arrays of mismatched lengths, non-finite or non-positive boxes, frames < 1, a
            repeated (frame, id) pair, or ``fps`` <= 0. The message says which.
    """
    config = config or RefineConfig()
    frames, ids, boxes, scores = _checked(frames, ids, boxes_tlwh, scores, fps)
    classes = None if classes is None else _checked_rows("classes", classes, len(frames)).astype(np.int64)
    if embeddings is not None:
        embeddings = np.asarray(embeddings, dtype=np.float64)
        if embeddings.ndim != 2 or len(embeddings) != len(frames):
            raise ValueError(f"embeddings must be (N, D) with N = {len(frames)} rows, got {embeddings.shape}")
        embeddings = np.nan_to_num(embeddings, nan=0.0, posinf=0.0, neginf=0.0)  # NaN rows: no appearance
    if world is not None:
        world = np.asarray(world, dtype=np.float64)
        if world.shape != (len(frames), 3):
            raise ValueError(f"world must be (N, 3) with N = {len(frames)} rows, got {world.shape}")
        world = np.where(np.isfinite(world).all(axis=1, keepdims=True), world, np.nan)  # a row: all or none
    id_map, links = {int(i): int(i) for i in np.unique(ids)}, []
    if config.link and len(frames):
        tracklets = summarise_tracklets(frames, ids, boxes, fps=fps, config=config, classes=classes,
                                        embeddings=embeddings)
        id_map, links = link_tracklets(tracklets, fps=fps, config=config)
        ids = np.array([id_map[int(i)] for i in ids], dtype=np.int64)
    if config.interpolate:
        out = interpolate_gaps(frames, ids, boxes, scores, fps=fps, max_gap_s=config.max_gap_s,
                               max_height_ratio=config.max_height_ratio, max_velocity=config.max_velocity,
                               world=world)
    else:
        order = np.lexsort((ids, frames))
        out = Interpolated(frames[order], ids[order], boxes[order], scores[order],
                           np.zeros(len(frames), bool), None if world is None else world[order])
    return RefinedTracks(out.frames, out.ids, out.boxes_tlwh, out.scores, out.interpolated, id_map, links,
                         out.world)


def _checked(frames, ids, boxes_tlwh, scores, fps):
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a finite number > 0, got {fps}")
    frames = np.asarray(frames)
    n = len(frames)
    boxes = np.asarray(boxes_tlwh, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.shape != (n, 4):
        raise ValueError(f"boxes_tlwh must be (N, 4) with N = {n} rows, got {boxes.shape}")
    bad = ~np.isfinite(boxes).all(axis=1) | (boxes[:, 2] <= 0) | (boxes[:, 3] <= 0)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} box(es) are NaN/inf or have width or height <= 0, e.g. row "
                         f"{int(np.argmax(bad))}: {boxes[bad][0].tolist()}")
    frames = _checked_rows("frames", frames, n)
    if (frames < 1).any() or (frames != np.round(frames)).any():
        raise ValueError("frames must be integers >= 1")
    ids = _checked_rows("ids", ids, n).astype(np.int64)
    frames = frames.astype(np.int64)
    scores = np.ones(n) if scores is None else _checked_rows("scores", scores, n).astype(np.float64)
    pairs = np.unique(np.stack([frames, ids], axis=1), axis=0) if n else np.empty((0, 2))
    if len(pairs) != n:
        raise ValueError("an id appears more than once in a frame: not a tracking result")
    return frames, ids, boxes, scores


def _checked_rows(name: str, values, n: int) -> np.ndarray:
    a = np.asarray(values)
    if a.shape != (n,):
        raise ValueError(f"{name} must be ({n},), got {a.shape}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a
