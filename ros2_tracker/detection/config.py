"""Detector parameters (validated, frozen) and the detector's output type; no heavy imports.

The detector node declares its ROS parameters from :class:`DetectorConfig`, so this module must stay
importable without onnxruntime or OpenCV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ros2_tracker.core.config import ConfigBase, ConfigError, param

__all__ = ["COCO_NUM_CLASSES", "Detections", "DetectorConfig"]

COCO_NUM_CLASSES = 80
"""Number of classes of the COCO-trained YOLOX models (person = 0)."""


@dataclass(frozen=True)
class DetectorConfig(ConfigBase):
    """Parameters of :class:`~ros2_tracker.detection.yolox.YoloxDetector`."""

    model_path: str = param("", "YOLOX ONNX model file (e.g. yolox_nano.onnx); must be set", read_only=True)
    input_size: int = param(416, "Square network input size; must match the model and be a multiple of 32",
                            low=32, high=4096, unit="px", read_only=True)
    score_threshold: float = param(0.3, "Minimum score (objectness x class probability) of a detection",
                                   low=0.0, high=1.0)
    nms_iou: float = param(0.45, "Boxes of the same class overlapping more than this IoU are suppressed",
                           low=0.0, high=1.0)
    # param() gives lists a default_factory, so the default is not shared between instances
    classes: list[int] = param([0], "COCO class ids to keep (0 = person); empty = all 80 classes")
    max_detections: int = param(100, "At most this many detections per image (highest scores first)",
                                low=1, high=10000)
    decoded_output: bool = param(False, "True for a model exported with decoding inside the graph "
                                 "(YOLOX --decode_in_inference): boxes are then cx, cy, w, h in input pixels",
                                 read_only=True)
    num_threads: int = param(1, "ONNX Runtime intra-op threads (0 = ONNX Runtime's default: all cores)",
                             low=0, high=256, read_only=True)

    def check(self) -> None:
        """Cross-field checks: input size a multiple of 32, class ids integers in [0, 79], unique."""
        if self.input_size % 32:
            raise ConfigError(f"input_size: {self.input_size} is not a multiple of 32 (the largest stride)")
        ids = []
        for c in self.classes:
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < COCO_NUM_CLASSES:
                raise ConfigError(f"classes: {c!r} is not a COCO class id in [0, {COCO_NUM_CLASSES - 1}]")
            ids.append(int(c))
        if len(set(ids)) != len(ids):
            raise ConfigError(f"classes: duplicate class ids in {ids}")
        object.__setattr__(self, "classes", ids)


class Detections(NamedTuple):
    """Detections of one image, sorted by decreasing score.

    Attributes:
        boxes_xyxy: (N, 4) float32 boxes x1, y1, x2, y2 in pixels of the original image, clipped to it.
        scores: (N,) float32 objectness x class probability, in [0, 1].
        classes: (N,) int64 COCO class ids (0 = person).
    """

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __len__(self) -> int:  # a NamedTuple's len() would count its fields
        return len(self.scores)

    @staticmethod
    def empty() -> Detections:
        """No detections (correctly shaped and typed)."""
        return Detections(np.empty((0, 4), np.float32), np.empty(0, np.float32), np.empty(0, np.int64))
