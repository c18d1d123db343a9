"""Camera-motion compensation for the core tracker over a sequence (the ``track --cmc`` engine).

:class:`SequenceMotion` is a feature source for :func:`ros2_tracker.offline.track_mot_detections`: called
once per frame just before ``Tracker.update``, it reads the frame's image, estimates the camera motion since
the previous frame (:class:`~ros2_tracker.cmc.ecc.EccAligner`) and moves the tracker's tracks by it with
``Tracker.apply_camera_motion``; then it returns the wrapped feature source's embeddings (or None). Given
the appearance source's :class:`~ros2_tracker.io.video.FrameCursor`, each image is decoded once for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ros2_tracker.cmc.ecc import EccAligner
    from ros2_tracker.core.tracker import Tracker
    from ros2_tracker.io.video import FrameCursor, FrameSource
    from ros2_tracker.offline import FeatureSource

__all__ = ["SequenceMotion"]


class SequenceMotion:
    """Per-frame camera-motion compensation of a tracker, chained before an optional feature source.

    Frames must be asked for in increasing order. A missing image resets the aligner (the next frame gets
    the identity warp) and is counted in ``frames_without_image``.

    Args:
        tracker: the tracker whose tracks are moved.
        aligner: the motion estimator (its ``seconds`` is the cost of compensation).
        source: the frames (MOT numbering).
        features: optional feature source (e.g. :class:`~ros2_tracker.offline.SequenceAppearance`), called
            after the motion step; its result is returned.
    """

    def __init__(self, tracker: Tracker, aligner: EccAligner, source: FrameSource | FrameCursor,
                 features: FeatureSource | None = None) -> None:
        from ros2_tracker.io.video import FrameCursor

        self.tracker = tracker
        self.aligner = aligner
        self.features = features
        self.frames = source if isinstance(source, FrameCursor) else FrameCursor(source)
        self.frames_without_image = 0

    def __call__(self, frame: int, boxes_xyxy: np.ndarray) -> np.ndarray | None:
        """Move the tracks by the motion up to ``frame``; the appearance source's features (or None)."""
        image = self._image(frame)
        if image is None:
            self.frames_without_image += 1
            self.aligner.reset()
        else:
            # the detections' pixels move by themselves: they are left out of the alignment
            self.tracker.apply_camera_motion(self.aligner.estimate(image, boxes_xyxy))
        return self.features(frame, boxes_xyxy) if self.features is not None else None

    def _image(self, frame: int) -> np.ndarray | None:
        f = self.frames.at(frame)
        return f.image if f is not None and f.number == frame else None
