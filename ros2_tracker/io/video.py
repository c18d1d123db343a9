"""Frame sources for replay: a MOTChallenge image folder or a video file, frames numbered like MOT.

Frame numbers are 1-based as in MOTChallenge files: in a video, decoded frame ``f - 1`` is MOT frame
``f`` (checked on PETS09-S2L1's ``vtest.avi`` against its ``det.txt``). A frame that cannot be read
comes out as a :class:`Frame` with ``image=None`` and the reason, so a player can log it and go on.
OpenCV is imported by the functions that decode, not at import.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ros2_tracker.io.mot import MAX_FRAME, MotFormatError
from ros2_tracker.io.sequence import SequenceInfo, read_sequence_info

__all__ = ["VIDEO_SUFFIXES", "Frame", "FrameCursor", "FrameSource", "FrameSourceError", "ImageFolderSource",
           "VideoSource", "open_frame_source", "read_image", "sequence_of_video"]

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv")
"""File suffixes taken for video files (anything OpenCV can open is accepted by :class:`VideoSource`)."""

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
DEFAULT_FPS = 30.0
"""Frame rate assumed when neither the caller, seqinfo.ini nor the video says [Hz]."""


def read_image(path: str | Path) -> np.ndarray | None:
    """An image file as ``(H, W, 3)`` uint8 BGR, its pixels as stored (EXIF orientation ignored: boxes,
    ground truth and messages refer to the stored pixels, as cv_bridge and image_transport decode them);
    None when it cannot be read."""
    import cv2

    try:
        return cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:  # e.g. a header claiming more pixels than CV_IO_MAX_IMAGE_PIXELS (2**30)
        return None


class FrameSourceError(ValueError):
    """The source is missing or cannot be opened; the message names it and says why."""


@dataclass(frozen=True)
class Frame:
    """One frame of a source.

    Attributes:
        number: MOT frame number (1-based).
        image: ``(H, W, 3)`` uint8 BGR, or None when the frame could not be read.
        error: why ``image`` is None ("" otherwise).
    """

    number: int
    image: np.ndarray | None
    error: str = ""


class FrameSource:
    """Base of frame sources: frames in order, their rate and (when known) their number.

    Attributes:
        name: source name (sequence name or file stem).
        fps: frame rate [Hz].
        fps_origin: where ``fps`` came from (``parameter``, ``seqinfo.ini``, ``video``, ``default``).
        length: number of frames, 0 when unknown.
        sequence: the MOTChallenge folder the source belongs to, when there is one.
    """

    name: str
    fps: float
    fps_origin: str
    length: int
    sequence: SequenceInfo | None

    def frames(self, max_frames: int = 0) -> Iterator[Frame]:
        """Yield frames 1, 2, ... (at most ``max_frames`` when > 0)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the source (idempotent)."""


class FrameCursor:
    """Forward access to a source's frames by number: the source is read once, front to back.

    ``at(n)`` reads up to frame ``n`` and returns it; asking for the same frame again returns it without
    reading, so several per-frame consumers (camera-motion compensation, appearance) can share one cursor
    and decode each image once.

    Attributes:
        read_seconds: wall time spent reading and decoding [s].
    """

    def __init__(self, source: FrameSource) -> None:
        self._frames: Iterator[Frame] = iter(source.frames())
        self._pending: Frame | None = None
        self.read_seconds = 0.0

    def at(self, number: int) -> Frame | None:
        """The first frame numbered ``number`` or later (a later one when ``number`` has no frame), or
        None when the source ended before it. Numbers must not decrease between calls."""
        t0 = time.perf_counter()
        try:
            f = self._pending
            while f is None or f.number < number:
                f = next(self._frames, None)
                if f is None:
                    self._pending = None
                    return None
            self._pending = f
            return f
        finally:
            self.read_seconds += time.perf_counter() - t0


class ImageFolderSource(FrameSource):
    """Frames from a MOTChallenge sequence folder (``img1/`` + ``seqinfo.ini``) or a folder of images.

    In a folder without ``seqinfo.ini`` (frames in ``img1/`` if it exists, else in the folder) the
    frame number is the number in each file name (``000001.jpg`` is frame 1), or else the position in
    sorted order.

    Args:
        folder: sequence folder, or a folder of image files.
        fps: frame rate [Hz]; 0 = from seqinfo.ini, else :data:`DEFAULT_FPS`.

    Raises:
        FrameSourceError: no such folder, or no image in it.
    """

    def __init__(self, folder: str | Path, fps: float = 0.0) -> None:
        root = Path(folder)
        if not root.is_dir():
            raise FrameSourceError(f"{root}: no such folder")
        self.sequence = None
        if (root / "seqinfo.ini").is_file():
            try:
                self.sequence = read_sequence_info(root)
            except MotFormatError as exc:
                raise FrameSourceError(str(exc)) from None
        if self.sequence is not None:
            self.name = self.sequence.name
            self._paths = self._mot_paths(self.sequence)
        else:  # a MOT folder without seqinfo.ini (frames in img1/), or the image folder itself
            self.name = root.name
            self._paths = self._folder_paths(root / "img1" if (root / "img1").is_dir() else root)
        if not self._paths:
            where = self.sequence.image_dir if self.sequence is not None else root
            raise FrameSourceError(f"{where}: no image files")
        self.length = max(self._paths)
        self.fps, self.fps_origin = _pick_fps(fps, self.sequence)

    @staticmethod
    def _mot_paths(seq: SequenceInfo) -> dict[int, Path]:
        if seq.length > 0 and seq.has_images:
            return {k: seq.frame_path(k) for k in range(1, seq.length + 1)}
        return ImageFolderSource._folder_paths(seq.image_dir) if seq.image_dir.is_dir() else {}

    @staticmethod
    def _folder_paths(folder: Path) -> dict[int, Path]:
        """Frame number -> file: the last number in each file name (000001.jpg; gaps are missing frames;
        a numbering from 0 is shifted to start at 1), unless the names are not distinct frame numbers up to
        ``MAX_FRAME`` (no numbers, repeats, timestamps such as 1700000000000.png): then the files are
        numbered 1.. in name order."""
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        numbers = [re.search(r"(\d+)(?!.*\d)", p.stem) for p in files]
        values = [int(m.group(1)) for m in numbers if m]
        if files and len(values) == len(files) == len(set(values)) and max(values) < MAX_FRAME:
            shift = 1 if min(values) == 0 else 0
            return {v + shift: p for v, p in zip(values, files, strict=True)}
        return {k + 1: p for k, p in enumerate(files)}

    def frames(self, max_frames: int = 0) -> Iterator[Frame]:
        """Frames 1..length; a missing or undecodable file gives ``image=None`` with the reason."""
        last = self.length if max_frames <= 0 else min(self.length, max_frames)
        for k in range(1, last + 1):
            path = self._paths.get(k)
            if path is None or not path.is_file():
                yield Frame(k, None, f"frame {k}: image file missing ({path or 'no file with that number'})")
                continue
            image = read_image(path)
            yield Frame(k, image, "" if image is not None else f"frame {k}: cannot decode {path}")


class VideoSource(FrameSource):
    """Frames decoded from a video file with OpenCV (``cv2.VideoCapture``).

    The frame rate is, in order: ``fps`` when > 0, ``seqinfo.ini`` of a MOTChallenge folder the video
    lies in (``<seq>/video/x.avi`` or ``<seq>/x.avi``; its frame numbers are then the sequence's), the
    video's own rate, or :data:`DEFAULT_FPS`.

    Args:
        path: video file.
        fps: frame rate [Hz]; 0 = automatic (above).

    Raises:
        FrameSourceError: no such file, or OpenCV cannot open it or decode its first frame.
    """

    def __init__(self, path: str | Path, fps: float = 0.0) -> None:
        import cv2

        self.path = Path(path)
        if not self.path.is_file():
            raise FrameSourceError(f"{self.path}: no such video file")
        if _is_text(self.path):  # FFmpeg would "play" it, rendering the text as frames
            raise FrameSourceError(f"{self.path}: a text file, not a video")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise FrameSourceError(f"{self.path}: OpenCV cannot open it as a video (unknown format, codec "
                                   "missing or damaged file)")
        ok, first = self._cap.read()  # FFmpeg "opens" many a file it cannot decode (random bytes named .png)
        if not ok or first is None:
            self.close()
            raise FrameSourceError(f"{self.path}: OpenCV cannot decode a frame of it (not a video, or a "
                                   "damaged file)")
        self._first: np.ndarray | None = first  # handed out by frames()
        self.name = self.path.stem
        self.sequence = sequence_of_video(self.path)
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.length = max(count, 0)
        video_fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps, self.fps_origin = _pick_fps(fps, self.sequence, video_fps)

    def frames(self, max_frames: int = 0) -> Iterator[Frame]:
        """Decode frames in order; a failure before the announced end gives one error frame, then stops."""
        k = 0
        while self._cap is not None and (max_frames <= 0 or k < max_frames):
            if self._first is not None:  # decoded when the video was opened
                ok, image, self._first = True, self._first, None
            else:
                ok, image = self._cap.read()
            k += 1
            if not ok or image is None:
                if self.length and k <= self.length:
                    yield Frame(k, None, f"frame {k}: video decoding failed before its announced end "
                                f"({self.length} frames): {self.path} is damaged or truncated")
                return
            yield Frame(k, image)

    def close(self) -> None:
        """Release the capture."""
        self._first = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def sequence_of_video(path: str | Path) -> SequenceInfo | None:
    """The MOTChallenge sequence a video belongs to (``seqinfo.ini`` beside it or one folder up)."""
    p = Path(path).resolve()
    for cand in (p.parent, p.parent.parent):
        if (cand / "seqinfo.ini").is_file():
            try:
                return read_sequence_info(cand)
            except MotFormatError:
                return None
    return None


def _pick_fps(fps: float, seq: SequenceInfo | None, video_fps: float = 0.0) -> tuple[float, str]:
    if fps > 0:
        return float(fps), "parameter"
    if seq is not None and seq.fps_known:
        return seq.fps, "seqinfo.ini"
    if video_fps > 0:
        return video_fps, "video"
    return DEFAULT_FPS, "default"


def _is_text(path: Path) -> bool:
    """Whether the file starts as text (UTF-8, no NUL byte in its first 4 KiB): every video container's
    header is binary."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    if not head or b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut at the 4 KiB boundary is still text
    return True


def open_frame_source(path: str | Path, fps: float = 0.0) -> FrameSource:
    """A MOTChallenge/image folder or a video file as a :class:`FrameSource`.

    Raises:
        FrameSourceError: the path does not exist, or is neither a folder of images nor a readable video.
    """
    p = Path(path)
    if p.is_dir():
        return ImageFolderSource(p, fps)
    if p.is_file():
        return VideoSource(p, fps)
    raise FrameSourceError(f"{p}: no such file or folder")
