"""The embedder interface and the crop pipeline shared by every backend.

An :class:`Embedder` turns the detection boxes of one image into appearance embeddings:
``embed(image_bgr, boxes_xyxy) -> (N, D) float32``, one L2-normalised row per box. A box that gives
no usable crop (non-finite, outside the image, or thinner than ``min_crop_size`` once clipped to the
image) gets a row of zeros instead: :func:`valid_rows` (or :class:`EmbeddingResult`) tells them
apart, so a caller can leave those detections without appearance instead of crashing.

Backends share the crop pipeline below, so every runtime sees the same pixels:

1. :func:`crop_regions`: boxes clipped to the image, rounded outwards to whole pixels, validity mask;
2. :func:`extract_crops`: each region resized to the network's ``(H, W)`` (bilinear, aspect not kept);
3. :func:`to_network_input`: ``(M, 3, H, W)`` float32, RGB (or BGR), ``(x / 255 - mean) / std``.

OpenCV is imported by the functions that resize, not at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "Embedder",
    "EmbeddingResult",
    "crop_regions",
    "embed_result",
    "extract_crops",
    "scatter_rows",
    "to_network_input",
    "valid_rows",
]


@runtime_checkable
class Embedder(Protocol):
    """Appearance model: image crops in, L2-normalised embeddings out.

    Attributes:
        name: short description, e.g. ``"onnxruntime:osnet_x0_25_msmt17.onnx"``.
        dim: embedding size D.
    """

    @property
    def name(self) -> str:
        """Short description of the model and runtime."""
        ...

    @property
    def dim(self) -> int:
        """Embedding size D."""
        ...

    def embed(self, image_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> np.ndarray:
        """Embeddings of the boxes of one image.

        Args:
            image_bgr: ``(H, W, 3)`` uint8 BGR image.
            boxes_xyxy: ``(N, 4)`` boxes x1, y1, x2, y2 in pixels of ``image_bgr`` (may reach outside).

        Returns:
            ``(N, D)`` float32; unit rows, and all-zero rows for boxes without a usable crop.
        """
        ...


class EmbeddingResult(NamedTuple):
    """Embeddings of one image's boxes and which of them are real.

    Attributes:
        features: ``(N, D)`` float32, unit rows where ``valid``, zeros elsewhere.
        valid: ``(N,)`` bool, False for boxes that gave no usable crop.
    """

    features: np.ndarray
    valid: np.ndarray

    @property
    def all_valid(self) -> bool:
        """True when every box has an embedding (also for zero boxes)."""
        return bool(self.valid.all())


def valid_rows(features: np.ndarray) -> np.ndarray:
    """``(N,)`` bool: rows of an embedder's output that are embeddings (unit length), not zero rows."""
    f = np.asarray(features, dtype=np.float32)
    if f.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {f.shape}")
    return np.linalg.norm(f, axis=1) > 0.5


def embed_result(embedder: Embedder, image_bgr: np.ndarray, boxes_xyxy: np.ndarray) -> EmbeddingResult:
    """Run ``embedder`` and return its output with the validity mask."""
    features = embedder.embed(image_bgr, boxes_xyxy)
    return EmbeddingResult(features, valid_rows(features))


def crop_regions(image_hw: tuple[int, int], boxes_xyxy: np.ndarray,
                 min_size: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Integer pixel regions of the boxes inside the image.

    Args:
        image_hw: image ``(height, width)`` [px].
        boxes_xyxy: ``(N, 4)`` boxes x1, y1, x2, y2 [px]; any values (NaN, inf, reversed corners,
            outside the image) are accepted.
        min_size: a box whose part inside the image is narrower or lower than this [px] is invalid.

    Returns:
        ``(regions, valid)``: ``(N, 4)`` int64 ``x1, y1, x2, y2`` (exclusive end) rounded outwards and
        clipped to the image, zeros where invalid; ``(N,)`` bool validity.

    Raises:
        ValueError: ``boxes_xyxy`` is not ``(N, 4)``.
    """
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        else:
            raise ValueError(f"boxes_xyxy must be (N, 4), got shape {boxes.shape}")
    h, w = int(image_hw[0]), int(image_hw[1])
    finite = np.isfinite(boxes).all(axis=1)
    b = np.where(finite[:, None], boxes, 0.0)
    x1 = np.clip(b[:, 0], 0, w)
    y1 = np.clip(b[:, 1], 0, h)
    x2 = np.clip(b[:, 2], 0, w)
    y2 = np.clip(b[:, 3], 0, h)
    valid = finite & (x2 - x1 >= min_size) & (y2 - y1 >= min_size)
    regions = np.stack([np.floor(x1), np.floor(y1), np.ceil(x2), np.ceil(y2)], axis=1).astype(np.int64)
    regions[~valid] = 0
    return regions, valid


def extract_crops(image_bgr: np.ndarray, boxes_xyxy: np.ndarray, size_hw: Sequence[int],
                  min_size: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Crops of the valid boxes, each resized to ``size_hw`` (bilinear, aspect ratio not kept).

    Args:
        image_bgr: ``(H, W, 3)`` uint8 image.
        boxes_xyxy: ``(N, 4)`` boxes [px].
        size_hw: network input ``(height, width)`` [px].
        min_size: see :func:`crop_regions`.

    Returns:
        ``(crops, valid)``: ``(M, h, w, 3)`` uint8 crops of the ``M = valid.sum()`` valid boxes in box
        order, and the ``(N,)`` validity mask.

    Raises:
        ValueError: the image is not ``(H, W, 3)`` uint8, or the boxes are not ``(N, 4)``.
    """
    import cv2

    if not isinstance(image_bgr, np.ndarray) or image_bgr.dtype != np.uint8 or image_bgr.ndim != 3 \
            or image_bgr.shape[2] != 3:
        what = image_bgr.shape if isinstance(image_bgr, np.ndarray) else type(image_bgr).__name__
        raise ValueError(f"image must be an (H, W, 3) uint8 BGR array, got {what}")
    regions, valid = crop_regions(image_bgr.shape[:2], boxes_xyxy, min_size)
    h, w = int(size_hw[0]), int(size_hw[1])
    idx = np.flatnonzero(valid)
    crops = np.empty((len(idx), h, w, 3), dtype=np.uint8)
    for k, i in enumerate(idx):
        x1, y1, x2, y2 = regions[i]
        crops[k] = cv2.resize(image_bgr[y1:y2, x1:x2], (w, h), interpolation=cv2.INTER_LINEAR)
    return crops, valid


def to_network_input(crops_bgr: np.ndarray, mean: Sequence[float], std: Sequence[float],
                     rgb: bool = True) -> np.ndarray:
    """``(M, h, w, 3)`` uint8 BGR crops -> ``(M, 3, h, w)`` float32 ``(x / 255 - mean) / std``.

    ``mean`` and ``std`` are per channel in the network's order (RGB when ``rgb``).
    """
    x = crops_bgr[..., ::-1] if rgb else crops_bgr
    scale = 1.0 / (255.0 * np.asarray(std, dtype=np.float32))
    shift = np.asarray(mean, dtype=np.float32) / np.asarray(std, dtype=np.float32)
    out = x.astype(np.float32) * scale - shift
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def scatter_rows(features: np.ndarray, valid: np.ndarray, dim: int) -> np.ndarray:
    """``(N, dim)`` float32 with the ``M = valid.sum()`` rows of ``features`` at the valid positions."""
    out = np.zeros((len(valid), dim), dtype=np.float32)
    out[valid] = features
    return out
