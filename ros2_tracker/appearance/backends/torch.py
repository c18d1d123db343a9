"""Appearance embedder running the project's PyTorch re-ID network (a ``train-reid`` checkpoint), CPU or CUDA.

Model contract: a checkpoint written by :func:`ros2_tracker.appearance.torch_model.save_checkpoint`
(loaded with ``weights_only=True``): MobileNetV2 + embedding head, ``(N, 3, H, W)`` RGB ImageNet-normalised
crops to ``(N, D)`` unit rows. Its ``(H, W)`` must equal ``EmbedderConfig.input_size``. On a CUDA device
the network runs in FP16 when ``precision`` is ``fp16`` (weights and inputs ``.half()``), FP32 otherwise;
the CPU always runs FP32. Crops go through the same pipeline as every backend
(:mod:`ros2_tracker.appearance.embedder`), so the same checkpoint exported to ONNX
(:func:`ros2_tracker.appearance.export.export_onnx`) gives the same embeddings with ``onnxruntime``.

The crop pipeline, batching and probing come from
:class:`~ros2_tracker.appearance.backends.base.CropEmbedder`; torch is imported when an embedder is built,
not at import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ros2_tracker.appearance.backends.base import CropEmbedder
from ros2_tracker.appearance.config import EmbedderConfig, EmbedderLoadError

__all__ = ["TorchEmbedder"]


class TorchEmbedder(CropEmbedder):
    """:class:`~ros2_tracker.appearance.embedder.Embedder` running a ``train-reid`` checkpoint with PyTorch.

    Args:
        config: embedder parameters; ``config.model_path`` names the checkpoint (``.pt``).
        device: torch device string (``"cpu"``, ``"cuda:0"``); default: from ``config.device``.

    Raises:
        EmbedderLoadError: unset, missing or unreadable checkpoint, a checkpoint that is not a re-ID
            model, another input size than ``config.input_size``, another embedding size than
            ``config.embedding_dim``, or ``precision: int8`` (TensorRT only).
    """

    _runtime = "torch"

    def __init__(self, config: EmbedderConfig, device: str | None = None) -> None:
        import torch

        from ros2_tracker.appearance.torch_model import CheckpointError, load_checkpoint
        from ros2_tracker.backends.torch_cuda import select_device

        self.config = config
        if not config.model_path:
            raise EmbedderLoadError("model_path is not set: give a train-reid checkpoint (.pt)")
        if config.precision == "int8":
            raise EmbedderLoadError("precision: int8 needs backend tensorrt; use fp16 or fp32 with torch")
        self._device = torch.device(device) if device else select_device(config.device)[0]
        try:
            model, _ = load_checkpoint(Path(config.model_path).expanduser(), self._device)
        except CheckpointError as exc:
            raise EmbedderLoadError(f"model_path: {exc}") from None
        if list(model.input_size) != list(config.input_size):
            raise EmbedderLoadError(f"input_size: the checkpoint's model takes {model.input_size[0]}x"
                                    f"{model.input_size[1]} crops, input_size is {config.input_size[0]}x"
                                    f"{config.input_size[1]}")
        self._fp16 = config.precision == "fp16" and self._device.type == "cuda"
        self._model = model.half() if self._fp16 else model
        self._max_batch = config.batch_size
        self._dim = self._probe()

    @property
    def device(self) -> Any:
        """The torch device the network runs on."""
        return self._device

    def _forward(self, x: np.ndarray) -> np.ndarray:
        import torch

        t = torch.from_numpy(x).to(self._device, torch.float16 if self._fp16 else torch.float32)
        with torch.inference_mode():
            return self._model(t).float().cpu().numpy()
