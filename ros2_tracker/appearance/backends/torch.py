"""Appearance embedder running the project's PyTorch re-ID network (a ``train-reid`` checkpoint), CPU or CUDA.

Model contract: a checkpoint written by :func:`ros2_tracker.appearance.torch_model.save_checkpoint`
(loaded with ``weights_only=True``): MobileNetV2 + embedding head, ``(N, 3, H, W)`` RGB ImageNet-normalised
crops to ``(N, D)`` unit rows. Its ``(H, W)`` must equal ``EmbedderConfig.input_size``. On a CUDA device
the network runs in FP16 when ``precision`` is ``fp16`` (weights and inputs ``.half()``), FP32 otherwise;
the CPU always runs FP32. Crops go through the same pipeline as every backend
(:mod:`ros2_tracker.appearance.embedder`), so the same checkpoint exported to ONNX
(:func:`ros2_tracker.appearance.export.export_onnx`) gives the same embeddings with ``onnxruntime``.

:class:`CropEmbedder` is the part every non-ONNX-Runtime backend shares (crops, batching, probing,
normalisation); a backend only supplies ``_forward`` on one preprocessed batch. torch is imported when
an embedder is built, not at import.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ros2_tracker.appearance.config import EmbedderConfig, EmbedderLoadError
from ros2_tracker.appearance.embedder import extract_crops, scatter_rows, to_network_input
from ros2_tracker.core.appearance import normalise

__all__ = ["CropEmbedder", "TorchEmbedder"]


class CropEmbedder:
    """Crop pipeline, batching and checks shared by the torch and TensorRT embedders.

    Subclasses set ``config`` and ``_max_batch`` and implement ``_forward(x) -> (M, D) float32`` for one
    preprocessed ``(M, 3, H, W)`` float32 batch of at most ``_max_batch`` crops, then call :meth:`_probe`.
    """

    config: EmbedderConfig
    _max_batch: int
    _dim: int
    _runtime = "?"

    @property
    def name(self) -> str:
        """``<runtime>:<model file name>``."""
        return f"{self._runtime}:{Path(self.config.model_path).name}"

    @property
    def dim(self) -> int:
        """Embedding size D."""
        return self._dim

    def embed(self, image_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Embeddings of the boxes of one image (see the ``Embedder`` protocol).

        Args:
            image_bgr: ``(H, W, 3)`` uint8 BGR image.
            boxes_xyxy: ``(N, 4)`` boxes [px]; boxes without a usable crop get zero rows.

        Returns:
            ``(N, D)`` float32, unit rows (zero rows for invalid boxes and for non-finite outputs).

        Raises:
            ValueError: the image is not ``(H, W, 3)`` uint8 or the boxes are not ``(N, 4)``.
        """
        cfg = self.config
        crops, valid = extract_crops(image_bgr, boxes_xyxy, cfg.input_size, cfg.min_crop_size)
        if not len(crops):
            return np.zeros((len(valid), self._dim), dtype=np.float32)
        return scatter_rows(self.embed_crops(crops), valid, self._dim)

    def embed_crops(self, crops_bgr: np.ndarray) -> np.ndarray:
        """``(M, h, w, 3)`` uint8 BGR crops already of the input size -> ``(M, D)`` unit float32 rows."""
        cfg = self.config
        return normalise(self._run(to_network_input(crops_bgr, cfg.mean, cfg.std, cfg.rgb)))

    def _run(self, x: np.ndarray) -> np.ndarray:
        step = min(self._max_batch, self.config.batch_size)
        outs = [np.asarray(self._forward(x[i:i + step]), np.float32).reshape(len(x[i:i + step]), -1)
                for i in range(0, len(x), step)]
        return np.concatenate(outs) if len(outs) > 1 else outs[0]

    def _forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _probe(self) -> int:
        """Run one grey crop; returns the embedding size and checks it against ``config.embedding_dim``."""
        h, w = self.config.input_size
        crop = np.full((1, h, w, 3), 128, dtype=np.uint8)
        out = self._run(to_network_input(crop, self.config.mean, self.config.std, self.config.rgb))
        dim = int(out.shape[1])
        if self.config.embedding_dim and dim != self.config.embedding_dim:
            raise EmbedderLoadError(f"embedding_dim: {self.config.model_path} gives {dim}-dimensional "
                                    f"embeddings, expected {self.config.embedding_dim}")
        return dim


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
