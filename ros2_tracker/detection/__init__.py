"""Object detection on images (YOLOX with ONNX Runtime), ROS-free.

``DetectorConfig`` and ``Detections`` import nothing heavy; ``YoloxDetector`` and ``detect_sequence``
(OpenCV, ONNX Runtime) are imported on first use, so a node can declare its parameters without them.
"""

from __future__ import annotations

from typing import Any

from ros2_tracker.detection.config import Detections, DetectorConfig

__all__ = ["Detections", "DetectorConfig", "ModelLoadError", "YoloxDetector", "detect_sequence"]

_LAZY = {"ModelLoadError", "YoloxDetector", "detect_sequence"}


def __getattr__(name: str) -> Any:
    """Import the OpenCV/ONNX Runtime parts on first use (PEP 562)."""
    if name in _LAZY:
        from ros2_tracker.detection import yolox

        return getattr(yolox, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
