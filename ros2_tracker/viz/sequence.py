"""Annotated video of a tracked sequence: the sequence's frames (or a blank canvas) with tracks drawn."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ros2_tracker.io.sequence import SequenceInfo
from ros2_tracker.io.video import read_image

__all__ = ["FrameTracks", "write_tracking_video"]


@dataclass(frozen=True)
class FrameTracks:
    """What to draw on one frame.

    Attributes:
        frame: 1-based frame number.
        ids: (N,) track ids.
        boxes_xyxy: (N, 4) boxes [px].
        states: (N,) ``TrackState`` values.
        trajectories: (N, K, 2) predicted centres [px] or None.
        trajectory_cov: (N, K, 3) covariances [px^2] or None.
    """

    frame: int
    ids: np.ndarray
    boxes_xyxy: np.ndarray
    states: np.ndarray
    trajectories: np.ndarray | None = None
    trajectory_cov: np.ndarray | None = None


def write_tracking_video(path: str | Path, info: SequenceInfo, snapshots: Iterable[FrameTracks], *,
                         progress: Callable[[int], None] | None = None) -> Path:
    """Write an annotated video; frames without an image file get a grey canvas of the sequence size.

    Returns the path actually written (``.mp4``, or ``.avi`` when mp4 is unavailable).
    """
    import cv2

    from ros2_tracker.viz.draw import draw_tracks
    from ros2_tracker.viz.video import VideoWriter

    size = _frame_size(info)
    blank = np.full((size[1], size[0], 3), 96, dtype=np.uint8)
    with VideoWriter(path, info.fps) as video:
        for snap in snapshots:
            img = read_image(info.frame_path(snap.frame)) if info.has_images else None
            if img is None or (img.shape[1], img.shape[0]) != size:
                img = blank if img is None else cv2.resize(img, size)
            drawn = draw_tracks(img, snap.ids, snap.boxes_xyxy, snap.states, snap.trajectories,
                                snap.trajectory_cov)
            cv2.putText(drawn, f"{info.name}  frame {snap.frame}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                        (255, 255, 255), 1, cv2.LINE_AA)
            video.write(drawn)
            if progress is not None:
                progress(snap.frame)
        return Path(video.path)


def _frame_size(info: SequenceInfo) -> tuple[int, int]:
    """(width, height) of the video: the first image's (the boxes are in its pixels, whatever seqinfo.ini
    says or leaves out), else seqinfo.ini's imWidth x imHeight, else 640 x 480."""
    if info.has_images:
        first = read_image(info.frame_path(1))
        if first is not None:
            return first.shape[1], first.shape[0]
    return info.width or 640, info.height or 480
