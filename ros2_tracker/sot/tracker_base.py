"""The single-target tracker interface shared by every backend (NanoTrack, GOTURN-style, MDNet-style,
ROLO-style, OpenCV's own trackers).

``init(frame, box)`` starts on a box, ``update(frame) -> SotResult`` follows it into the next frame.
Boxes are image pixels in xyxy form; frames are ``(H, W, 3)`` uint8 BGR; the confidence is in [0, 1]
(each backend maps its own score there), so the follower's tracking / uncertain / lost logic and the
cycle-consistency check work the same for every backend.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

__all__ = ["SingleTargetTracker", "SotResult"]


class SotResult(NamedTuple):
    """One frame's answer.

    Attributes:
        box_xyxy: (4,) float64 target box in image pixels.
        confidence: backend confidence in [0, 1].
    """

    box_xyxy: np.ndarray
    confidence: float


@runtime_checkable
class SingleTargetTracker(Protocol):
    """Follow one target: ``init`` on a box, then ``update`` once per frame."""

    @property
    def name(self) -> str:
        """Short description, e.g. ``"nano:onnxruntime (nanotrack_v2)"``."""
        ...

    def init(self, frame_bgr: np.ndarray, box_xyxy: np.ndarray) -> None:
        """Start on ``box_xyxy`` (4,) in ``frame_bgr``; raises ``ValueError`` for an unusable box."""
        ...

    def update(self, frame_bgr: np.ndarray) -> SotResult:
        """The target's box in the next frame and the backend's confidence."""
        ...
