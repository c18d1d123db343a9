"""Run the core tracker over MOTChallenge detections (no ROS): the ``track`` command's engine.

With a :class:`SequenceAppearance` (a frame source plus an embedder), each frame's detections also
get appearance embeddings, computed outside the tracker's clock and passed as ``features``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ros2_tracker.core.boxes import tlwh_to_xyxy, valid_box_mask, xyxy_to_tlwh
from ros2_tracker.core.track import TrackSet
from ros2_tracker.core.tracker import Tracker
from ros2_tracker.io.mot import MotRows
from ros2_tracker.io.video import FrameCursor

if TYPE_CHECKING:
    from ros2_tracker.appearance.embedder import Embedder
    from ros2_tracker.io.video import FrameSource

__all__ = ["FeatureSource", "OfflineResult", "SequenceAppearance", "track_mot_detections"]


@dataclass
class OfflineResult:
    """MOTChallenge result rows plus the time spent inside ``Tracker.update``.

    Attributes:
        frames, ids, boxes_tlwh, scores: result rows (confirmed tracks matched in that frame, and lost
            ones within the tracker's ``report_lost_s``: ``core.track.reported_mask``).
        update_seconds: total wall time inside the tracker's update calls.
        n_frames: frames processed (empty ones included).
        det_indices: (N,) the detection (row of that frame's input) each row's track was matched to,
            -1 for a lost track's predicted box; None where the tracker gives none (Tracktor).
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes_tlwh: np.ndarray
    scores: np.ndarray
    update_seconds: float
    n_frames: int
    det_indices: np.ndarray | None = None


FrameCallback = Callable[[int, TrackSet, Tracker], None]
FeatureSource = Callable[[int, np.ndarray], "np.ndarray | None"]
"""``features(frame, boxes_xyxy (D, 4)) -> (D, E) embeddings or None`` (None: no appearance this frame)."""


class SequenceAppearance:
    """Embeddings of each frame's detections, from the frame's image: a :data:`FeatureSource`.

    Frames must be asked for in increasing order (the source is read once, front to back). A frame
    gets no appearance (None, so the tracker associates it by motion only) when its image is missing
    or unreadable, when the embedder fails on it, or when a box the tracker keeps gives no usable crop
    (e.g. a box entirely outside the image). The last case is conservative: the tracker itself treats
    an all-zero row as "no appearance" for that one detection, so the frame's other embeddings could
    be kept.

    Args:
        source: the sequence's frames (MOT frame numbers, 1-based), or a cursor over them shared with
            another per-frame consumer (e.g. ``track --cmc``), so each image is decoded once.
        embedder: the appearance model.

    Attributes:
        frames: the :class:`~ros2_tracker.io.video.FrameCursor` it reads from.
        embed_seconds: wall time inside ``embedder.embed`` [s].
        read_seconds: wall time reading and decoding images [s] (the cursor's).
        embedded_frames: frames whose detections got embeddings (frames without detections excluded).
        frames_without_appearance: frames with detections that got none (see above).
        invalid_boxes: detections without a usable crop.
        problems: the first few reasons for frames without appearance.
    """

    max_problems = 5

    def __init__(self, source: FrameSource | FrameCursor, embedder: Embedder) -> None:
        self.embedder = embedder
        self.frames = source if isinstance(source, FrameCursor) else FrameCursor(source)
        self.last_image: np.ndarray | None = None
        self.embed_seconds = 0.0
        self.embedded_frames = 0
        self.frames_without_appearance = 0
        self.invalid_boxes = 0
        self.problems: list[str] = []

    def __call__(self, frame: int, boxes_xyxy: np.ndarray) -> np.ndarray | None:
        """``(D, E)`` float32 embeddings of ``boxes_xyxy`` in image ``frame``, or None (see the class)."""
        image, why = self._image(frame)
        self.last_image = image
        n = len(boxes_xyxy)
        if n == 0:
            return np.zeros((0, self.embedder.dim), dtype=np.float32)
        if image is None:
            return self._without(why)
        t0 = time.perf_counter()
        try:
            feats = self.embedder.embed(image, boxes_xyxy)
        except Exception as exc:  # a failing model must not stop tracking; the reason is kept
            return self._without(f"frame {frame}: embedder failed: {type(exc).__name__}: {exc}")
        finally:
            self.embed_seconds += time.perf_counter() - t0
        bad = (np.linalg.norm(feats, axis=1) < 0.5) & valid_box_mask(boxes_xyxy)
        if bad.any():
            self.invalid_boxes += int(bad.sum())
            return self._without(f"frame {frame}: {int(bad.sum())} box(es) without a usable crop")
        self.embedded_frames += 1
        return feats

    def _without(self, why: str) -> None:
        self.frames_without_appearance += 1
        if len(self.problems) < self.max_problems:
            self.problems.append(why)
        return None

    @property
    def read_seconds(self) -> float:
        """Wall time reading and decoding images [s] (of the shared cursor, whoever asked first)."""
        return self.frames.read_seconds

    def _image(self, frame: int) -> tuple[np.ndarray | None, str]:
        f = self.frames.at(frame)
        if f is None:
            return None, f"frame {frame}: no image (the source ended)"
        if f.number != frame:
            return None, f"frame {frame}: no image"
        return f.image, f.error


def track_mot_detections(dets: MotRows, tracker: Tracker, fps: float, *, last_frame: int | None = None,
                         on_frame: FrameCallback | None = None,
                         progress: Callable[[int], None] | None = None,
                         features: FeatureSource | None = None) -> OfflineResult:
    """Feed every frame 1..last_frame (empty frames included) to ``tracker`` at stamp (frame-1)/fps.

    With ``features``, each frame's detections get ``features(frame, boxes_xyxy)`` as appearance
    embeddings (computed outside the timed update; None leaves that frame to motion only).
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    last = max(dets.last_frame, last_frame or 0)
    report_lost_s = tracker.config.report_lost_s
    boxes_xyxy = tlwh_to_xyxy(dets.boxes_tlwh) if len(dets) else np.empty((0, 4))
    out_f, out_i, out_b, out_s, out_d = [], [], [], [], []
    total = 0.0
    clock = time.perf_counter
    for frame, idx in dets.by_frame(1, last):
        b, s = boxes_xyxy[idx], dets.scores[idx]
        f = features(frame, b) if features is not None else None
        t0 = clock()
        tracks = tracker.update(b, s, stamp=(frame - 1) / fps, features=f)
        total += clock() - t0
        rep = tracks.reported(report_lost_s)
        if len(rep):
            out_f.append(np.full(len(rep), frame))
            out_i.append(rep.ids)
            out_b.append(xyxy_to_tlwh(rep.boxes_xyxy))
            out_s.append(rep.scores)
            out_d.append(rep.det_indices)
        if on_frame is not None:
            on_frame(frame, tracks, tracker)
        if progress is not None:
            progress(frame)
    def cat(xs, shape):
        return (np.concatenate(xs) if xs else np.empty(shape))
    return OfflineResult(cat(out_f, (0,)).astype(np.int64), cat(out_i, (0,)).astype(np.int64),
                         cat(out_b, (0, 4)), cat(out_s, (0,)), total, last, cat(out_d, (0,)).astype(np.int64))
