"""The box-regressor interface of Tracktor: a two-stage detector's RoI heads applied to given boxes.

A :class:`BoxRegressor` encodes a frame once (backbone, FPN) and then regresses and scores any set of
boxes on those features (RoI pooling, box head, box predictor), which is what Tracktor needs: last
frame's track boxes go in as proposals, the regression head moves them, the classification score says
whether there is still an object of the class. ``detect`` runs the detector's own proposal stage
(RPN) for new objects. State is explicit: the features of a frame are a value the caller holds, not
hidden state of the regressor (Tracktor's ``load_image`` was).

Backends (one module per runtime): ``backends/d2go.py`` (pretrained D2Go Faster R-CNN, TorchScript,
CPU), ``backends/torchvision_frcnn.py`` (torchvision Faster R-CNN trained by ``train-detector``; torch,
ONNX Runtime, TensorRT).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

__all__ = ["BoxRegressor", "Regression"]


class Regression(NamedTuple):
    """Regressed boxes and their scores for one class.

    Attributes:
        boxes_xyxy: (N, 4) float64 boxes in image pixels (x1, y1, x2, y2), clipped to the image.
        scores: (N,) float64 probability of the class in [0, 1].
    """

    boxes_xyxy: np.ndarray
    scores: np.ndarray


@runtime_checkable
class BoxRegressor(Protocol):
    """Encode a frame once, then regress and score any boxes on it (and detect new objects)."""

    @property
    def name(self) -> str:
        """Short description of the model and runtime, e.g. ``"d2go:fbnetv3a_C4_int8"``."""
        ...

    def encode(self, image_bgr: np.ndarray) -> Any:
        """Features of one ``(H, W, 3)`` uint8 BGR frame (opaque to the caller; pass to the methods below)."""
        ...

    def regress(self, features: Any, boxes_xyxy: np.ndarray) -> Regression:
        """Regress ``(N, 4)`` boxes (image pixels, xyxy) with the box head; ``N = 0`` gives empty arrays."""
        ...

    def detect(self, features: Any) -> Regression:
        """The detector's own detections of the class (RPN proposals → heads → NMS), image pixels."""
        ...
