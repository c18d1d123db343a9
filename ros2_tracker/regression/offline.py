"""Run :class:`~ros2_tracker.regression.tracktor.Tracktor` over a sequence's frames (no ROS): the engine of
``ros2-tracker track --tracker tracktor``.

Frame ``f`` of the source (MOT numbering, 1-based) is tracked at stamp ``(f - 1) / fps``, with that
frame's public detections when given (private mode otherwise). Results are the core's offline rows, so the
MOTChallenge writer and the evaluation work unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ros2_tracker.core.boxes import tlwh_to_xyxy, xyxy_to_tlwh
from ros2_tracker.io.mot import MotRows
from ros2_tracker.io.video import FrameSourceError
from ros2_tracker.offline import OfflineResult

if TYPE_CHECKING:
    from ros2_tracker.core.track import TrackSet
    from ros2_tracker.io.video import FrameSource
    from ros2_tracker.regression.tracktor import Tracktor

__all__ = ["track_sequence"]


def _detections_by_frame(dets: MotRows | None, last: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    if dets is None:
        return {}
    boxes = tlwh_to_xyxy(dets.boxes_tlwh) if len(dets) else np.empty((0, 4))
    return {f: (boxes[i], dets.scores[i]) for f, i in dets.by_frame(1, last) if len(i)}


def track_sequence(tracktor: Tracktor, source: FrameSource, fps: float, *, detections: MotRows | None = None,
                   last_frame: int = 0, progress: Callable[[int], None] | None = None,
                   on_frame: Callable[[int, np.ndarray, TrackSet], None] | None = None) -> OfflineResult:
    """Track frames ``1..last_frame`` (all when 0) of ``source``.

    Args:
        tracktor: the tracker (its timing attributes accumulate).
        source: frames in order.
        fps: frame rate [Hz] giving the stamps.
        detections: public detections (MOT rows); None = private mode.
        last_frame: stop after this frame (0 = the whole source).
        progress: called with each frame number.
        on_frame: called with (frame, image, tracks) after each step (e.g. to draw).

    Returns:
        Result rows of the active tracks; ``update_seconds`` is the time inside ``Tracktor.step`` (the
        networks and camera-motion compensation included).

    Raises:
        FrameSourceError: a frame's image is missing or cannot be decoded.
        ValueError: fps <= 0.
    """
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    by_frame = _detections_by_frame(detections, max(last_frame, detections.last_frame if detections else 0))
    empty = (np.empty((0, 4)), np.empty(0))
    out_f, out_i, out_b, out_s = [], [], [], []
    total, n = 0.0, 0
    for frame in source.frames(max_frames=last_frame):
        if frame.image is None:
            raise FrameSourceError(frame.error or f"frame {frame.number}: no image")
        boxes, scores = by_frame.get(frame.number, empty) if detections is not None else (None, None)
        t0 = time.perf_counter()
        tracks = tracktor.step(frame.image, stamp=(frame.number - 1) / fps, detections_xyxy=boxes,
                               detection_scores=scores)
        total += time.perf_counter() - t0
        n = frame.number
        rep = tracks.confirmed_and_updated()
        if len(rep):
            out_f.append(np.full(len(rep), frame.number))
            out_i.append(rep.ids)
            out_b.append(xyxy_to_tlwh(rep.boxes_xyxy))
            out_s.append(rep.scores)
        if on_frame is not None:
            on_frame(frame.number, frame.image, tracks)
        if progress is not None:
            progress(frame.number)

    def cat(xs, shape):
        return np.concatenate(xs) if xs else np.empty(shape)

    return OfflineResult(cat(out_f, (0,)).astype(np.int64), cat(out_i, (0,)).astype(np.int64),
                         cat(out_b, (0, 4)), cat(out_s, (0,)), total, n)
