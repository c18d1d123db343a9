"""Appearance for refinement: keep the embeddings online tracking computed, and give one per result row.

Online tracking embeds each frame's *detections*; the refinement needs an embedding per *result row*
(a track's box in a frame). :class:`EmbeddingRecorder` wraps the per-frame feature source the tracker
uses, so nothing is computed twice; :meth:`EmbeddingRecorder.row_embeddings` then gives each result
row the embedding of the detection it overlaps most in its frame (IoU at least ``min_iou``), or a
zero row (no appearance).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ros2_tracker.core.boxes import tlwh_to_xyxy
from ros2_tracker.core.costs import iou_matrix

__all__ = ["EmbeddingRecorder"]


class EmbeddingRecorder:
    """A feature source (``features(frame, boxes_xyxy) -> (D, E) or None``) that keeps what it returns.

    Args:
        source: the wrapped feature source (e.g. :class:`ros2_tracker.offline.SequenceAppearance`).
        min_iou: a result row takes a detection's embedding only at this IoU or more.
    """

    def __init__(self, source: Callable[[int, np.ndarray], np.ndarray | None], *,
                 min_iou: float = 0.5) -> None:
        self.source = source
        self.min_iou = min_iou
        self._frames: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.dim = 0

    def __call__(self, frame: int, boxes_xyxy: np.ndarray) -> np.ndarray | None:
        """Embeddings of ``boxes_xyxy`` in ``frame`` from the wrapped source (kept when not None)."""
        feats = self.source(frame, boxes_xyxy)
        if feats is not None and len(feats):
            self._frames[frame] = (np.asarray(boxes_xyxy, dtype=np.float64).copy(), np.asarray(feats))
            self.dim = self.dim or int(np.asarray(feats).shape[1])
        return feats

    def row_embeddings(self, frames: np.ndarray, boxes_tlwh: np.ndarray) -> np.ndarray | None:
        """(N, E) embedding per result row (zero rows where none), or None when nothing was recorded.

        Args:
            frames: (N,) frame numbers of the result rows.
            boxes_tlwh: (N, 4) result boxes [px].
        """
        if not self.dim:
            return None
        out = np.zeros((len(frames), self.dim), dtype=np.float32)
        boxes_xyxy = tlwh_to_xyxy(np.asarray(boxes_tlwh, dtype=np.float64).reshape(-1, 4))
        frames = np.asarray(frames)
        order = np.argsort(frames, kind="stable")
        uniq, starts = np.unique(frames[order], return_index=True)
        for frame, rows in zip(uniq, np.split(order, starts[1:]), strict=True):
            kept = self._frames.get(int(frame))
            if kept is None:
                continue
            iou = iou_matrix(boxes_xyxy[rows], kept[0])
            best = iou.argmax(axis=1)
            ok = iou[np.arange(len(rows)), best] >= self.min_iou
            out[rows[ok]] = kept[1][best[ok]]
        return out
