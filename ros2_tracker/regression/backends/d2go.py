"""The pretrained D2Go Faster R-CNN (FBNetV3A backbone, C4 RoI head, int8 TorchScript) as a BoxRegressor.

The archive is detectron2's ``GeneralizedRCNN`` traced for mobile: ``archive.model.model`` holds the
``backbone``, the RPN ``proposal_generator`` and the ``roi_heads`` (``box_pooler``, ``box_head``,
``box_predictor``). :meth:`D2GoRegressor.encode` runs the backbone once per frame (BGR, short side
scaled to ``regressor_short_side``, detectron2's pixel mean subtracted); :meth:`D2GoRegressor.regress`
feeds given boxes to the RoI heads and decodes the class's deltas with detectron2's box coder (weights
10, 10, 5, 5); :meth:`D2GoRegressor.detect` runs the archive's own RPN and RoI heads (score > 0.05,
NMS 0.5, 100 boxes). torch and torchvision (whose ops the archive uses) are imported here only.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ros2_tracker.regression.config import RegressorConfig, RegressorLoadError
from ros2_tracker.regression.regressor import Regression

__all__ = ["D2GoFeatures", "D2GoRegressor", "decode_deltas"]

_BOX_CODER_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
_SCALE_CLAMP = math.log(1000.0 / 16)  # detectron2's limit on exp() of width/height deltas
_REQUIRED = ("backbone", "proposal_generator", "roi_heads", "roi_heads.box_pooler", "roi_heads.box_head",
             "roi_heads.box_predictor", "pixel_mean", "pixel_std")


class D2GoFeatures(NamedTuple):
    """Backbone output of one frame (pass back to :meth:`D2GoRegressor.regress` / ``detect``).

    Attributes:
        features: (1, C, h, w) float tensor of the backbone.
        scale: network pixels per image pixel (the short side's, for both axes: each resized side is rounded,
            so at 640x480 -> 427x320 a box at the right edge is up to 0.5 px off; per-axis scales were
            tried, and on TUD-Campus three more identity switches came with them, 49.0 -> 46.0 HOTA with
            Tracktor: on 71 frames a sub-pixel change moves single events either way, so it was not kept).
        image_size: (2,) int64 tensor (height, width) of the scaled image.
        image_hw: (height, width) of the original image [px].
    """

    features: Any
    scale: float
    image_size: Any
    image_hw: tuple[int, int]


def decode_deltas(boxes_xyxy: np.ndarray, deltas: np.ndarray,
                  weights: tuple[float, float, float, float] = _BOX_CODER_WEIGHTS) -> np.ndarray:
    """Apply Faster R-CNN box deltas ``(dx, dy, dw, dh)`` (N, 4) to (N, 4) xyxy boxes (detectron2's coder)."""
    w = boxes_xyxy[:, 2] - boxes_xyxy[:, 0]
    h = boxes_xyxy[:, 3] - boxes_xyxy[:, 1]
    cx = boxes_xyxy[:, 0] + 0.5 * w
    cy = boxes_xyxy[:, 1] + 0.5 * h
    dx, dy = deltas[:, 0] / weights[0], deltas[:, 1] / weights[1]
    dw = np.minimum(deltas[:, 2] / weights[2], _SCALE_CLAMP)
    dh = np.minimum(deltas[:, 3] / weights[3], _SCALE_CLAMP)
    pcx, pcy = cx + dx * w, cy + dy * h
    pw, ph = w * np.exp(dw), h * np.exp(dh)
    return np.stack([pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph], axis=1)


def _clip(boxes: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    out = boxes.copy()
    out[:, 0::2] = np.clip(out[:, 0::2], 0.0, image_hw[1])
    out[:, 1::2] = np.clip(out[:, 1::2], 0.0, image_hw[0])
    return out


def _load_archive(path: Path) -> Any:
    """The archive's ``GeneralizedRCNN`` module, or a clear error."""
    import torch
    import torchvision  # noqa: F401  (registers torchvision::nms / roi_align used by the archive)

    if not path.is_file():
        raise RegressorLoadError(f"regressor_model_path: {path}: file not found")
    try:
        with warnings.catch_warnings():  # the archive is TorchScript; its deprecation is not news here
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*is deprecated",
                                    category=FutureWarning)
            archive = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError/ValueError of many kinds for bad archives
        why = str(exc).split(".")[0].splitlines()[0] if str(exc) else ""
        raise RegressorLoadError(f"regressor_model_path: {path}: not a TorchScript archive "
                                 f"({type(exc).__name__}: {why[:120]})") from None
    model = getattr(getattr(archive, "model", None), "model", None)
    missing = [name for name in _REQUIRED if model is None or not _has(model, name)]
    if missing:
        raise RegressorLoadError(f"regressor_model_path: {path}: not a D2Go Faster R-CNN archive "
                                 f"(model.model lacks {', '.join(missing)})")
    return model.eval()


def _has(module: Any, dotted: str) -> bool:
    for part in dotted.split("."):
        if not hasattr(module, part):
            return False
        module = getattr(module, part)
    return True


class D2GoRegressor:
    """D2Go Faster R-CNN RoI heads on given boxes; see the module docstring.

    Args:
        config: model path, input scale, class and threads.

    Raises:
        RegressorLoadError: missing file, not TorchScript, or not this architecture (checked by
            attributes and by running the heads once on a blank frame: one class score column per
            COCO class plus background, four deltas per class).
    """

    def __init__(self, config: RegressorConfig) -> None:
        import torch

        self.config = config
        if config.regressor_num_threads:
            torch.set_num_threads(config.regressor_num_threads)
        self._torch = torch
        path = Path(config.regressor_model_path)
        self._model = _load_archive(path)
        self._mean = self._model.pixel_mean.float()
        self._std = self._model.pixel_std.float()
        self._name = f"d2go:{path.stem}"
        self._num_classes = self._probe(path)

    @property
    def name(self) -> str:
        """Model file stem and runtime."""
        return self._name

    def _probe(self, path: Path) -> int:
        """Run the heads on one box of a blank frame; check the output shapes; return the class count."""
        s = self.config.regressor_short_side
        feats = self.encode(np.zeros((s, s, 3), dtype=np.uint8))
        try:
            deltas, logits = self._heads(feats, np.array([[0.0, 0.0, s / 2, s / 2]]))
        except Exception as exc:
            raise RegressorLoadError(f"regressor_model_path: {path}: the RoI heads do not run on this "
                                     f"archive's features ({type(exc).__name__})") from None
        k = logits.shape[1] - 1
        if k < 1 or deltas.shape[1] not in (4, 4 * k):
            raise RegressorLoadError(f"regressor_model_path: {path}: unexpected box predictor outputs "
                                     f"{tuple(logits.shape)} scores, {tuple(deltas.shape)} deltas")
        if self.config.regressor_class_index >= k:
            raise RegressorLoadError(f"regressor_class_index: {self.config.regressor_class_index} but the "
                                     f"model has {k} classes")
        return k

    def encode(self, image_bgr: np.ndarray) -> D2GoFeatures:
        """Backbone features of one ``(H, W, 3)`` uint8 BGR frame.

        Raises:
            ValueError: not an (H, W, 3) image.
        """
        import cv2

        if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or min(image_bgr.shape[:2]) < 1:
            raise ValueError(f"expected an (H, W, 3) BGR image, got shape {image_bgr.shape}")
        h, w = image_bgr.shape[:2]
        scale = self.config.regressor_short_side / min(h, w)
        sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
        small = cv2.resize(image_bgr, (sw, sh), interpolation=cv2.INTER_LINEAR)
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(small.transpose(2, 0, 1))).float()
        x = ((x - self._mean) / self._std)[None]
        with torch.inference_mode():
            feats = self._model.backbone(x)
        return D2GoFeatures(feats, scale, torch.tensor([sh, sw]), (h, w))

    def _heads(self, feats: D2GoFeatures, boxes_xyxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw (N, 4K or 4) deltas and (N, K+1) class logits of boxes given in image pixels."""
        torch = self._torch
        rois = torch.from_numpy((boxes_xyxy * feats.scale).astype(np.float32))
        heads = self._model.roi_heads
        with torch.inference_mode():
            deltas, logits = heads.box_predictor(heads.box_head(heads.box_pooler(feats.features, rois)))
        return deltas.numpy().astype(np.float64), logits.numpy().astype(np.float64)

    def regress(self, features: D2GoFeatures, boxes_xyxy: np.ndarray) -> Regression:
        """Regress (N, 4) xyxy image-pixel boxes; returns clipped boxes and the class probability."""
        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        if not len(boxes):
            return Regression(np.empty((0, 4)), np.empty(0))
        if not np.isfinite(boxes).all():
            raise ValueError("boxes must be finite")
        deltas, logits = self._heads(features, boxes)
        logits -= logits.max(axis=1, keepdims=True)
        prob = np.exp(logits)
        prob /= prob.sum(axis=1, keepdims=True)
        c = self.config.regressor_class_index
        d = deltas[:, 4 * c:4 * c + 4] if deltas.shape[1] > 4 else deltas
        scaled = decode_deltas(boxes * features.scale, d) / features.scale
        return Regression(_clip(scaled, features.image_hw), prob[:, c])

    def detect(self, features: D2GoFeatures) -> Regression:
        """The archive's own detections of the class (RPN → RoI heads → per-class NMS), image pixels."""
        torch = self._torch
        with torch.inference_mode(), warnings.catch_warnings():  # the archive's anchor code predates it
            warnings.filterwarnings("ignore", message=".*torch.meshgrid.*indexing", category=UserWarning)
            proposals = self._model.proposal_generator(features.features, features.image_size)
            boxes, classes, scores = self._model.roi_heads(features.features, proposals, features.image_size)
        keep = (classes == self.config.regressor_class_index).numpy()
        b = boxes.numpy().astype(np.float64)[keep] / features.scale
        return Regression(_clip(b, features.image_hw), scores.numpy().astype(np.float64)[keep])
