"""Run the core tracker over MOTChallenge detections (no ROS): the ``track`` command's engine."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ros2_tracker.core.boxes import tlwh_to_xyxy, xyxy_to_tlwh
from ros2_tracker.core.track import TrackSet
from ros2_tracker.core.tracker import Tracker
from ros2_tracker.io.mot import MotRows

__all__ = ["OfflineResult", "track_mot_detections"]


@dataclass
class OfflineResult:
    """MOTChallenge result rows plus the time spent inside ``Tracker.update``.

    Attributes:
        frames, ids, boxes_tlwh, scores: result rows (confirmed tracks matched in that frame).
        update_seconds: total wall time inside the tracker's update calls.
        n_frames: frames processed (empty ones included).
    """

    frames: np.ndarray
    ids: np.ndarray
    boxes_tlwh: np.ndarray
    scores: np.ndarray
    update_seconds: float
    n_frames: int


FrameCallback = Callable[[int, TrackSet, Tracker], None]


def track_mot_detections(dets: MotRows, tracker: Tracker, fps: float, *, last_frame: int | None = None,
                         on_frame: FrameCallback | None = None,
                         progress: Callable[[int], None] | None = None) -> OfflineResult:
    """Feed every frame 1..last_frame (empty frames included) to ``tracker`` at stamp (frame-1)/fps."""
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    last = max(dets.last_frame, last_frame or 0)
    boxes_xyxy = tlwh_to_xyxy(dets.boxes_tlwh) if len(dets) else np.empty((0, 4))
    out_f, out_i, out_b, out_s = [], [], [], []
    total = 0.0
    clock = time.perf_counter
    for frame, idx in dets.by_frame(1, last):
        b, s = boxes_xyxy[idx], dets.scores[idx]
        t0 = clock()
        tracks = tracker.update(b, s, stamp=(frame - 1) / fps)
        total += clock() - t0
        rep = tracks.confirmed_and_updated()
        if len(rep):
            out_f.append(np.full(len(rep), frame))
            out_i.append(rep.ids)
            out_b.append(xyxy_to_tlwh(rep.boxes_xyxy))
            out_s.append(rep.scores)
        if on_frame is not None:
            on_frame(frame, tracks, tracker)
        if progress is not None:
            progress(frame)
    def cat(xs, shape):
        return (np.concatenate(xs) if xs else np.empty(shape))
    return OfflineResult(cat(out_f, (0,)).astype(np.int64), cat(out_i, (0,)).astype(np.int64),
                         cat(out_b, (0, 4)), cat(out_s, (0,)), total, last)
