"""Video files of annotated frames (OpenCV): MPEG-4 ``.mp4``, falling back to Motion-JPEG ``.avi``."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from ros2_tracker.io.files import OutputWriteError

__all__ = ["VideoWriter"]

_CODECS = {".mp4": "mp4v", ".avi": "MJPG"}


class VideoWriter:
    """Write BGR frames to a video file; use as a context manager.

    The codec follows the suffix: ``.mp4`` is written with ``mp4v``; when this OpenCV build cannot
    open that, the file is written as Motion-JPEG next to it with the suffix ``.avi`` instead
    (:attr:`path` says which). ``.avi`` is always Motion-JPEG. The file is opened at the first
    frame when ``frame_size`` is not given. Every frame must have the same size; OpenCV would drop
    mismatching frames silently, so this class raises instead.

    Args:
        path: output file, ``.mp4`` or ``.avi`` (parent folders are created).
        fps: frame rate [Hz] written into the file.
        frame_size: (width, height) [px]; taken from the first frame when None.

    Attributes:
        path: the file actually written (the ``.avi`` fallback when ``.mp4`` was unavailable).
        frames_written: frames written so far.

    Raises:
        ValueError: unknown suffix or fps <= 0.
    """

    def __init__(self, path: str | Path, fps: float, frame_size: tuple[int, int] | None = None) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in _CODECS:
            raise ValueError(f"{self.path}: video suffix must be one of {', '.join(_CODECS)}")
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps}")
        self.fps = float(fps)
        self.frame_size = frame_size
        self.frames_written = 0
        self._writer: cv2.VideoWriter | None = None
        self._closed = False
        if frame_size is not None:
            self._open(frame_size)

    def _open(self, size: tuple[int, int]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tried = []
        candidates = [(self.path, _CODECS[self.path.suffix.lower()])]
        if self.path.suffix.lower() == ".mp4":
            candidates.append((self.path.with_suffix(".avi"), "MJPG"))
        for path, codec in candidates:
            writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), self.fps,
                                     (int(size[0]), int(size[1])))
            if writer.isOpened():
                self._writer, self.path, self.frame_size = writer, path, (int(size[0]), int(size[1]))
                return
            writer.release()
            tried.append(f"{path.name} ({codec})")
        raise OutputWriteError(f"OpenCV could not open a video writer for {', '.join(tried)} in "
                               f"{self.path.parent} (folder not writable, or the file may not be replaced?)")

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 BGR frame (or (H, W) uint8 grey)."""
        img = np.asarray(frame)
        if img.dtype != np.uint8 or img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] != 3):
            raise ValueError(f"expected an (H, W, 3) or (H, W) uint8 frame, got {img.shape} {img.dtype}")
        if img.ndim == 2:
            img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        size = (img.shape[1], img.shape[0])
        if self._closed:
            raise ValueError(f"{self.path}: writer is closed")
        if self._writer is None:
            self._open(size)
        if size != self.frame_size:
            raise ValueError(f"{self.path}: frame is {size[0]}x{size[1]}, the video is "
                             f"{self.frame_size[0]}x{self.frame_size[1]}")  # type: ignore[index]
        self._writer.write(np.ascontiguousarray(img))  # type: ignore[union-attr]
        self.frames_written += 1

    def close(self) -> None:
        """Finish the file (idempotent); no frames can be written afterwards."""
        self._closed = True
        if self._writer is not None:
            self._writer.release()
            self._writer = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
