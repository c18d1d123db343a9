"""Appearance embeddings for association: the :class:`Embedder` interface, crops, config, backends.

``create_embedder(EmbedderConfig(model_path=...))`` gives an embedder whose ``embed(image_bgr,
boxes_xyxy)`` returns one L2-normalised row per box, ready for ``Tracker.update(..., features=...)``.
Runtimes (onnxruntime, OpenCV) are imported only when an embedder is built.
"""

from ros2_tracker.appearance.backends import create_embedder
from ros2_tracker.appearance.config import EmbedderConfig, EmbedderLoadError
from ros2_tracker.appearance.embedder import (
    Embedder,
    EmbeddingResult,
    crop_regions,
    embed_result,
    extract_crops,
    to_network_input,
    valid_rows,
)

__all__ = [
    "Embedder",
    "EmbedderConfig",
    "EmbedderLoadError",
    "EmbeddingResult",
    "create_embedder",
    "crop_regions",
    "embed_result",
    "extract_crops",
    "to_network_input",
    "valid_rows",
]
