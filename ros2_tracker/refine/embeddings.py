"""Appearance for refinement: keep the embeddings online tracking computed, and give one per result row.

Online tracking embeds each frame's *detections*; the refinement needs an embedding per *result row*
(a track's box in a frame). :class:`EmbeddingRecorder` wraps the per-frame feature source the tracker
uses, so nothing is computed twice; :meth:`EmbeddingRecorder.row_embeddings` then gives each result
row the embedding of the detection its track was matched to in that frame (``TrackSet.det_indices``), or
a zero row (no appearance: a lost track's predicted box, a frame without embeddings). An earlier version
guessed the detection by overlap with the row's box, which gave crowded rows another person's embedding
and coasting rows a passer-by's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["EmbeddingRecorder"]


class EmbeddingRecorder:
    """A feature source (``features(frame, boxes_xyxy) -> (D, E) or None``) that keeps what it returns.

    Args:
        source: the wrapped feature source (e.g. :class:`ros2_tracker.offline.SequenceAppearance`).
    """

    def __init__(self, source: Callable[[int, np.ndarray], np.ndarray | None]) -> None:
        self.source = source
        self._frames: dict[int, np.ndarray] = {}
        self.dim = 0

    def __call__(self, frame: int, boxes_xyxy: np.ndarray) -> np.ndarray | None:
        """Embeddings of ``boxes_xyxy`` in ``frame`` from the wrapped source (kept when not None)."""
        feats = self.source(frame, boxes_xyxy)
        if feats is not None and len(feats):
            self._frames[frame] = np.asarray(feats)
            self.dim = self.dim or int(np.asarray(feats).shape[1])
        return feats

    def row_embeddings(self, frames: np.ndarray, det_indices: np.ndarray) -> np.ndarray | None:
        """(N, E) embedding per result row (zero rows where none), or None when nothing was recorded.

        Args:
            frames: (N,) frame numbers of the result rows.
            det_indices: (N,) the detection (row of that frame's boxes given to the source) each row's
                track was matched to, -1 for none (``OfflineResult.det_indices``).
        """
        if not self.dim:
            return None
        out = np.zeros((len(frames), self.dim), dtype=np.float32)
        for row, (frame, det) in enumerate(zip(np.asarray(frames).tolist(), np.asarray(det_indices).tolist(),
                                                 strict=True)):
            feats = self._frames.get(int(frame))
            if feats is not None and 0 <= det < len(feats):
                out[row] = feats[det]
        return out
