"""OpenCV's own single-target tracker behind :class:`~ros2_tracker.sot.tracker_base.SingleTargetTracker`.

- :class:`MilTracker`: ``cv2.TrackerMIL`` (Babenko et al. 2009), which reports no score: confidence
  is 1.0 when it reports the target found and 0.0 otherwise.

NanoTrack v2 is :mod:`ros2_tracker.sot.nanotrack` (ONNX Runtime; not ``cv2.TrackerNano``, whose size
penalty is wrong in OpenCV 4.x). OpenCV is imported when a tracker is built. :class:`_OpenCvTracker`
holds the input checks, box conversion (OpenCV takes integer ``(x, y, w, h)`` rectangles), and the
frame size fixed at ``init``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ros2_tracker.sot.inputs import check_frame, check_start_box
from ros2_tracker.sot.tracker_base import SotResult

__all__ = ["MilTracker"]


class _OpenCvTracker:
    """Shared part of the OpenCV trackers: checks, xyxy <-> OpenCV rectangles, last box."""

    _name = "opencv"
    _min_side = 0.0  # smallest start box side [px] the backend can start on (beyond MIN_BOX_SIZE)

    def __init__(self) -> None:
        self._tracker: Any = None
        self._image_hw: tuple[int, int] | None = None
        self._last = np.zeros(4)

    @property
    def name(self) -> str:
        """Backend description."""
        return self._name

    def _create(self) -> Any:
        raise NotImplementedError

    def init(self, frame_bgr: np.ndarray, box_xyxy: np.ndarray) -> None:
        """Start on ``box_xyxy`` (4,) [px] in ``frame_bgr`` ``(H, W, 3)`` uint8.

        Raises:
            ValueError: bad frame, or a box outside the image, of zero size or too small.
        """
        import cv2

        frame = check_frame(frame_bgr)
        box = check_start_box(box_xyxy, frame.shape[:2])
        if min(box[2] - box[0], box[3] - box[1]) < self._min_side:
            raise ValueError(f"{self.name}: the start box must be at least {self._min_side:g} px on each "
                             f"side inside the image, got {box[2] - box[0]:.1f} x {box[3] - box[1]:.1f}")
        x1, y1 = int(np.floor(box[0])), int(np.floor(box[1]))
        rect = (x1, y1, max(1, int(np.ceil(box[2])) - x1), max(1, int(np.ceil(box[3])) - y1))
        self._tracker = self._create()
        try:
            self._tracker.init(frame, rect)
        except cv2.error as exc:  # e.g. MIL on a box spanning the image: no room for its samples
            self._tracker = None
            detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else "OpenCV error"
            raise ValueError(f"{self.name}: cannot start on this box ({detail})") from None
        self._image_hw = (frame.shape[0], frame.shape[1])
        self._last = box

    def update(self, frame_bgr: np.ndarray) -> SotResult:
        """The target's box in this frame (the last one, at confidence 0, when OpenCV lost it).

        Raises:
            RuntimeError: called before :meth:`init`.
            ValueError: bad frame or one of another size than the start frame.
        """
        if self._tracker is None:
            raise RuntimeError(f"{self.name}: update() before init()")
        frame = check_frame(frame_bgr, self._image_hw)
        ok, rect = self._tracker.update(frame)
        if not ok:
            return SotResult(self._last.copy(), 0.0)
        x, y, w, h = (float(v) for v in rect)
        self._last = np.array([x, y, x + w, y + h])
        return SotResult(self._last.copy(), self._confidence())

    def _confidence(self) -> float:
        return 1.0


class MilTracker(_OpenCvTracker):
    """``cv2.TrackerMIL``: online multiple-instance boosting; confidence 1.0 (found) or 0.0 (lost).

    Args:
        num_threads: OpenCV threads (0 = OpenCV's default).
    """

    _min_side = 8.0  # OpenCV's MIL never returns from init on a 4 x 4 box (5 x 5 works): a margin above it

    def __init__(self, num_threads: int = 1) -> None:
        super().__init__()
        import cv2

        if num_threads > 0:
            cv2.setNumThreads(num_threads)
        self._name = "mil:opencv"

    def _create(self) -> Any:
        import cv2

        return cv2.TrackerMIL_create()
