"""Embedder parameters (validated, frozen) and the embedder's load error; no heavy imports.

Nodes and the CLI build :class:`EmbedderConfig` from YAML or options, so this module must stay
importable without onnxruntime, OpenCV or torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from ros2_tracker.core.config import ConfigBase, ConfigError, param

__all__ = ["BACKENDS", "IMAGENET_MEAN", "IMAGENET_STD", "PRECISIONS", "EmbedderConfig", "EmbedderLoadError",
           "reid_parameter_error"]

BACKENDS = ("onnxruntime", "torch", "tensorrt")
"""Backend names: ``onnxruntime`` (ONNX file, CPU), ``torch`` (``train-reid`` checkpoint, CPU or CUDA),
``tensorrt`` (ONNX file compiled to a cached engine on a CUDA GPU; falls back to ``onnxruntime``)."""
PRECISIONS = ("fp32", "fp16", "int8")
"""Arithmetic of the GPU backends (``int8``: TensorRT only, calibrated on ``calibration_dir``)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""ImageNet channel means (RGB, for values scaled to 0..1), as used by torchreid's OSNet."""
IMAGENET_STD = (0.229, 0.224, 0.225)
"""ImageNet channel standard deviations (RGB, for values scaled to 0..1)."""


class EmbedderLoadError(ConfigError):
    """The embedder cannot be built: missing or corrupt model file, wrong input or embedding size,
    or a backend that is not available in this installation. The message says which and where."""


@dataclass(frozen=True)
class EmbedderConfig(ConfigBase):
    """Parameters of an appearance embedder (crops in, L2-normalised embeddings out).

    The network input is ``N x 3 x H x W`` float32: each crop is resized to ``input_size`` (no
    aspect-ratio padding, as in torchreid), converted to RGB when ``rgb``, scaled to 0..1 and
    normalised with ``mean``/``std`` per channel (in the network's channel order).
    """

    backend: str = param("onnxruntime", "Inference runtime: onnxruntime (ONNX, CPU), torch (train-reid "
                         "checkpoint), tensorrt (ONNX -> cached engine on a CUDA GPU, else onnxruntime "
                         "with a warning)", choices=BACKENDS, read_only=True)
    model_path: str = param("", "Re-ID model file (ONNX for onnxruntime and tensorrt, a train-reid .pt "
                            "checkpoint for torch), NCHW input; must be set", read_only=True)
    device: str = param("auto", "torch/tensorrt device: auto (CUDA when present), cpu, cuda or cuda:N",
                        read_only=True)
    precision: str = param("fp16", "torch/tensorrt arithmetic on a CUDA device: fp32, fp16 or int8 "
                           "(tensorrt only); the CPU always runs fp32", choices=PRECISIONS, read_only=True)
    engine_cache_dir: str = param("~/.cache/ros2_tracker/engines", "tensorrt: folder of the cached "
                                  "engines (rebuilt when the model, TensorRT, GPU or precision change)",
                                  read_only=True)
    calibration_dir: str = param("", "tensorrt int8: folder of person crops (images) from real frames "
                                 "for calibration", read_only=True)
    input_size: list[int] = param([256, 128], "Network input height and width; must match the model's "
                                  "input when the model fixes it", unit="px", read_only=True)
    batch_size: int = param(32, "Most crops per inference call (a model with a fixed batch size uses "
                            "its own)", low=1, high=4096)
    num_threads: int = param(1, "Runtime intra-op threads (0 = the runtime's default: all cores)",
                             low=0, high=256, read_only=True)
    mean: list[float] = param(list(IMAGENET_MEAN), "Per-channel mean subtracted from 0..1 pixel "
                              "values (network channel order)", read_only=True)
    std: list[float] = param(list(IMAGENET_STD), "Per-channel standard deviation dividing 0..1 pixel "
                             "values (network channel order)", read_only=True)
    rgb: bool = param(True, "The network takes RGB (true) or BGR (false) channel order", read_only=True)
    embedding_dim: int = param(0, "Embedding size the model must produce (0 = whatever it gives); "
                               "checked when the model is loaded", low=0, high=1 << 20, read_only=True)
    min_crop_size: float = param(2.0, "Boxes narrower or lower than this inside the image give no "
                                 "embedding", low=1.0, high=10000.0, unit="px")

    def check(self) -> None:
        """Cross-field checks: two positive input sizes, three means and three positive stds, a device."""
        if self.device not in ("auto", "cpu", "cuda") and not (
                self.device.startswith("cuda:") and self.device[5:].isdigit()):
            raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {self.device!r}")
        size = self.input_size
        if len(size) != 2 or not all(_is_int(v) and v > 0 for v in size):
            raise ConfigError(f"input_size: expected [height, width], two positive integers, got {size!r}")
        object.__setattr__(self, "input_size", [int(v) for v in size])
        for name, low in (("mean", -math.inf), ("std", 0.0)):
            vals = getattr(self, name)
            if len(vals) != 3 or not all(_is_number(v) and math.isfinite(v) and v > low for v in vals):
                more = " > 0" if low == 0.0 else ""
                raise ConfigError(f"{name}: expected three finite numbers{more}, got {vals!r}")
            object.__setattr__(self, name, [float(v) for v in vals])


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v: object) -> bool:
    return _is_number(v) and float(v).is_integer()  # type: ignore[arg-type]


def reid_parameter_error(exc: ConfigError, fields: Iterable[str], fallback: str) -> ConfigError:
    """An embedder's error as the error of the node parameter behind it: a message that starts with one of
    ``fields`` (the embedder fields the node has as ``reid_<field>``: ``model_path: <file>: ...``) gets the
    ``reid_`` prefix; any other (its runtime not installed) is put under ``fallback``, the parameter to
    change."""
    text = str(exc)
    if text.split(":", 1)[0].split(" ", 1)[0] in set(fields):
        return ConfigError(f"reid_{text}")
    return ConfigError(f"{fallback}: {text}")
