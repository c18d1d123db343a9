"""Embedder backends, one module per runtime; :func:`create_embedder` picks one from the config.

Each backend imports its runtime inside its own module, so importing this package costs nothing.
"""

from __future__ import annotations

from ros2_tracker.appearance.config import EmbedderConfig, EmbedderLoadError
from ros2_tracker.appearance.embedder import Embedder

__all__ = ["create_embedder"]


def create_embedder(config: EmbedderConfig) -> Embedder:
    """Build the embedder that ``config.backend`` names, falling back along ``tensorrt -> onnxruntime``.

    ``onnxruntime`` and ``tensorrt`` load the ONNX file of ``config.model_path``; ``torch`` loads a
    ``train-reid`` checkpoint. When TensorRT, a CUDA device or the engine build is not available,
    ``tensorrt`` falls back to ``onnxruntime`` with one
    :class:`~ros2_tracker.backends.selection.BackendFallbackWarning` saying why (see
    :mod:`ros2_tracker.backends.selection`).

    Raises:
        EmbedderLoadError: no backend of the chain can run here, or the model cannot be loaded (see the
            backend).
    """
    from ros2_tracker.backends.selection import BackendUnavailable, create_with_fallback

    if config.backend == "torch":
        builders = {"torch": lambda choice: _torch(config, choice.device)}
    else:
        builders = {"onnxruntime": lambda choice: _onnx(config),
                    "tensorrt": lambda choice: _tensorrt(config, choice.device)}
    try:
        embedder, _ = create_with_fallback(config.backend, builders, device=config.device,
                                           what=f"re-ID embedder ({config.backend})")
    except BackendUnavailable as exc:
        raise EmbedderLoadError(str(exc)) from None
    return embedder


def _onnx(config: EmbedderConfig) -> Embedder:
    from ros2_tracker.appearance.backends.onnx import OnnxEmbedder

    return OnnxEmbedder(config.replace(backend="onnxruntime"))


def _torch(config: EmbedderConfig, device: str) -> Embedder:
    from ros2_tracker.appearance.backends.torch import TorchEmbedder

    return TorchEmbedder(config, device)


def _tensorrt(config: EmbedderConfig, device: str) -> Embedder:
    from ros2_tracker.appearance.backends.tensorrt import TensorRTEmbedder

    return TensorRTEmbedder(config, device)
