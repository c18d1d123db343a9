"""Appearance embedder running an ONNX re-ID model as a TensorRT engine on a CUDA GPU.

The ONNX file is the one the ``onnxruntime`` backend loads (same contract: one ``B x 3 x H x W`` float32
input, one ``B x D`` output; OSNet x0.25 is such a model). The engine is built by
:meth:`ros2_tracker.backends.tensorrt.TensorRTEngine.from_onnx` with a dynamic crop batch (profile
``1 / batch_size / batch_size`` crops when the ONNX batch is symbolic), in ``config.precision`` (INT8
calibrated on the person crops of ``config.calibration_dir``), and cached in ``config.engine_cache_dir``.

The input size is checked against the ONNX file before any build (:class:`EmbedderLoadError`). When
TensorRT or a CUDA device is missing, or the build fails (out of GPU memory included), the constructor
raises :class:`~ros2_tracker.backends.selection.BackendUnavailable` and
:func:`~ros2_tracker.appearance.backends.create_embedder` falls back to ONNX Runtime with one warning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ros2_tracker.appearance.backends.base import CropEmbedder
from ros2_tracker.appearance.config import EmbedderConfig, EmbedderLoadError
from ros2_tracker.appearance.embedder import to_network_input
from ros2_tracker.io.video import read_image

__all__ = ["TensorRTEmbedder", "calibration_batches", "engine_shapes"]

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def engine_shapes(onnx_path: str | Path, config: EmbedderConfig) -> tuple[str, dict]:
    """The input name and the ``{name: (min, opt, max)}`` profile for an embedder's ONNX model.

    A symbolic batch gets ``1 .. config.batch_size`` crops (opt = the most); a fixed one keeps its size.

    Raises:
        EmbedderLoadError: a missing or unreadable file, not one ``B x 3 x H x W`` input, or an input size
            other than ``config.input_size``.
    """
    from ros2_tracker.backends.tensorrt import EngineInputError, make_profile, onnx_inputs

    try:
        inputs = onnx_inputs(onnx_path)
    except EngineInputError as exc:
        raise EmbedderLoadError(f"model_path: {exc}") from None
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise EmbedderLoadError(f"model_path: {onnx_path}: expected one N x 3 x H x W input, got "
                                f"{[(i.name, i.shape) for i in inputs]}")
    spec = inputs[0]
    h, w = config.input_size
    batch = spec.shape[0] if spec.shape[0] > 0 else 0
    lo, hi = (batch, batch) if batch else (1, config.batch_size)
    shapes = {spec.name: ((lo, 3, h, w), (hi, 3, h, w), (hi, 3, h, w))}
    try:
        return spec.name, make_profile(inputs, shapes)
    except EngineInputError as exc:
        raise EmbedderLoadError(f"input_size: {h}x{w} does not fit the model: {exc}") from None


def calibration_batches(folder: str | Path, config: EmbedderConfig, batch: int,
                        max_batches: int = 16) -> list[np.ndarray]:
    """INT8 calibration input from a folder of person crops: each image resized to the input size.

    Args:
        folder: images (jpg/png/bmp), each one crop of a person from real frames.
        config: the embedder parameters (input size, mean/std, channel order).
        batch: crops per batch (the engine's opt batch); a last partial batch is dropped.
        max_batches: most batches used.

    Returns:
        ``(batch, 3, H, W)`` float32 arrays.

    Raises:
        EmbedderLoadError: no folder, or fewer readable images than one batch.
    """
    import cv2

    root = Path(folder).expanduser()
    if not str(folder) or not root.is_dir():
        raise EmbedderLoadError(f"calibration_dir: {folder!r} is not a folder; precision int8 needs person "
                                "crops from real frames to calibrate on")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)[: batch * max_batches]
    h, w = config.input_size
    crops = [cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
             for img in (read_image(p) for p in files) if img is not None]
    if len(crops) < batch:
        raise EmbedderLoadError(f"calibration_dir: {root} has {len(crops)} readable images, int8 "
                                f"calibration needs at least {batch}")
    x = to_network_input(np.stack(crops), config.mean, config.std, config.rgb)
    return [x[i:i + batch] for i in range(0, len(x) - batch + 1, batch)]


class TensorRTEmbedder(CropEmbedder):
    """:class:`~ros2_tracker.appearance.embedder.Embedder` backed by a cached TensorRT engine.

    Args:
        config: embedder parameters; ``config.model_path`` names the ONNX file.
        device: CUDA device string, e.g. ``"cuda:0"`` (default: ``config.device``, ``auto`` = 0).

    Raises:
        EmbedderLoadError: missing or unreadable ONNX file, input or embedding size mismatch, int8
            without calibration crops.
        BackendUnavailable: no TensorRT, no CUDA device, the build failed (incl. out of GPU memory), or a
            corrupt engine could not be replaced (the factory then falls back to ONNX Runtime).
    """

    _runtime = "tensorrt"

    def __init__(self, config: EmbedderConfig, device: str | None = None) -> None:
        from ros2_tracker.backends.tensorrt import TensorRTEngine

        self.config = config
        if not config.model_path:
            raise EmbedderLoadError("model_path is not set: give a re-ID ONNX model, e.g. "
                                    "osnet_x0_25_msmt17.onnx")
        onnx_path = Path(config.model_path).expanduser()
        self._input, profile = engine_shapes(onnx_path, config)
        self._max_batch = profile[self._input][2][0]
        calib = None
        if config.precision == "int8":
            calib = calibration_batches(config.calibration_dir, config, profile[self._input][1][0])
        dev = device or config.device
        index = int(dev.split(":")[1]) if dev.startswith("cuda:") else 0
        self._engine = TensorRTEngine.from_onnx(onnx_path, config.engine_cache_dir, config.precision,
                                                shapes=profile, calibration=calib, device=index)
        self._output = self._engine.output_names[0]
        self._dim = self._probe()

    @property
    def engine_path(self) -> Path:
        """The cached engine file."""
        return self._engine.path

    def _forward(self, x: np.ndarray) -> np.ndarray:
        m = len(x)
        lo = self._engine.profile[self._input][0][0]
        if m < lo:  # a fixed-batch model: pad the last chunk
            x = np.concatenate([x, np.zeros((lo - m, *x.shape[1:]), x.dtype)])
        return self._engine.infer({self._input: x})[self._output][:m]
