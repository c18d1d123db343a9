"""Embedder backends, one module per runtime; :func:`create_embedder` picks one from the config.

Each backend imports its runtime inside its own module, so importing this package costs nothing.
"""

from __future__ import annotations

from ros2_tracker.appearance.config import EmbedderConfig, EmbedderLoadError
from ros2_tracker.appearance.embedder import Embedder

__all__ = ["create_embedder"]


def create_embedder(config: EmbedderConfig) -> Embedder:
    """Build the embedder that ``config.backend`` names.

    Raises:
        EmbedderLoadError: the backend is not available in this installation, or the model cannot
            be loaded (see the backend).
    """
    if config.backend == "onnxruntime":
        try:
            from ros2_tracker.appearance.backends.onnx import OnnxEmbedder
        except ImportError as exc:
            raise EmbedderLoadError(f"backend: onnxruntime is not installed ({exc.name}); "
                                    "pip install onnxruntime") from None
        return OnnxEmbedder(config)
    raise EmbedderLoadError(f"backend: {config.backend!r} is not available here; export the model to ONNX "
                            "and use backend 'onnxruntime'")
