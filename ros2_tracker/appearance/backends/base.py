"""The crop pipeline, batching and checks that every appearance backend shares.

:class:`CropEmbedder` implements :meth:`embed` (crops from the image, one zero row per box without a
usable crop), :meth:`embed_crops` (preprocessing, batches of at most ``_max_batch`` crops, L2
normalisation) and :meth:`_probe` (one grey crop at start-up: the model runs and has the configured
embedding size). A backend (ONNX Runtime, torch, TensorRT) supplies only ``_forward`` on one
preprocessed batch. numpy only: each backend imports its runtime itself.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ros2_tracker.appearance.config import EmbedderConfig, EmbedderLoadError
from ros2_tracker.appearance.embedder import extract_crops, scatter_rows, to_network_input
from ros2_tracker.core.appearance import normalise

__all__ = ["CropEmbedder"]


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
        boxes = np.asarray(boxes_xyxy)
        step = self._batch()
        if boxes.ndim != 2 or len(boxes) <= step:  # (a bad shape is reported by extract_crops)
            return self._embed_boxes(image_bgr, boxes_xyxy)
        # a batch at a time: crops and network inputs of a few thousand boxes would take gigabytes at once
        return np.concatenate([self._embed_boxes(image_bgr, boxes[i:i + step])
                               for i in range(0, len(boxes), step)])

    def _embed_boxes(self, image_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
        cfg = self.config
        crops, valid = extract_crops(image_bgr, boxes_xyxy, cfg.input_size, cfg.min_crop_size)
        if not len(crops):
            return np.zeros((len(valid), self._dim), dtype=np.float32)
        return scatter_rows(self.embed_crops(crops), valid, self._dim)

    def embed_crops(self, crops_bgr: np.ndarray) -> np.ndarray:
        """``(M, h, w, 3)`` uint8 BGR crops already of the input size -> ``(M, D)`` unit float32 rows (a
        batch at a time)."""
        cfg = self.config
        step = self._batch()
        return normalise(np.concatenate([self._run(to_network_input(crops_bgr[i:i + step], cfg.mean, cfg.std,
                                                                      cfg.rgb))
                                         for i in range(0, len(crops_bgr), step)]))

    def _batch(self) -> int:
        """Crops per network call: ``batch_size``, at most what the model takes."""
        return max(1, min(self._max_batch, self.config.batch_size))

    def _run(self, x: np.ndarray) -> np.ndarray:
        """``(M, D)`` float32 rows of one preprocessed batch of at most :meth:`_batch` crops (the callers
        split larger sets)."""
        return np.asarray(self._forward(x), np.float32).reshape(len(x), -1)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _probe(self) -> int:
        """Run one grey crop; returns the embedding size and checks it against ``config.embedding_dim``."""
        h, w = self.config.input_size
        crop = np.full((1, h, w, 3), 128, dtype=np.uint8)
        path = self.config.model_path
        try:
            out = self._run(to_network_input(crop, self.config.mean, self.config.std, self.config.rgb))
        except EmbedderLoadError:
            raise
        except Exception as exc:  # runtimes raise private exception types (ORT: Fail, InvalidArgument, ...)
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EmbedderLoadError(f"model_path: {path}: the model does not run on a 1x3x{h}x{w} input "
                                    f"(check input_size): {detail}") from None
        dim = int(out.shape[1])
        if dim < 1:
            raise EmbedderLoadError(f"model_path: {path}: the model gives empty embeddings")
        if self.config.embedding_dim and dim != self.config.embedding_dim:
            raise EmbedderLoadError(f"embedding_dim: {self.config.model_path} gives {dim}-dimensional "
                                    f"embeddings, expected {self.config.embedding_dim}")
        return dim
