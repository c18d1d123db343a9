"""Appearance embedder running an ONNX re-ID model with ONNX Runtime on the CPU.

Model contract (checked when the model is loaded): one input ``B x 3 x H x W`` float32 (``B`` fixed or
symbolic; ``H, W`` fixed or symbolic, and then taken from ``EmbedderConfig.input_size``), one output
``B x D`` (trailing singleton dimensions, e.g. ``B x D x 1 x 1``, are flattened). OSNet x0.25 MSMT17
(``osnet_x0_25_msmt17.onnx``) is such a model: ``batch x 3 x 256 x 128`` RGB with ImageNet mean/std
to ``batch x 512``. Crops are run in batches of ``batch_size`` (a model with a fixed batch size gets
exactly that many crops per call, the last batch padded); outputs are L2-normalised here, so a model
may or may not normalise them itself.
"""

from __future__ import annotations

import numpy as np

from ros2_tracker.appearance.backends.base import CropEmbedder
from ros2_tracker.appearance.config import EmbedderConfig, EmbedderLoadError
from ros2_tracker.backends.onnxruntime import open_session

__all__ = ["OnnxEmbedder"]


class OnnxEmbedder(CropEmbedder):
    """:class:`~ros2_tracker.appearance.embedder.Embedder` backed by ONNX Runtime (CPU).

    The constructor loads the model, checks its input and output shapes and runs one crop through it
    (so a model that cannot run, or gives another embedding size than ``config.embedding_dim``, fails
    here and not on the first frame). :meth:`embed` is then safe to call from several threads.

    Args:
        config: embedder parameters; ``config.backend`` must be ``onnxruntime`` and
            ``config.model_path`` must name the ONNX file.

    Raises:
        EmbedderLoadError: empty or missing model path, a file that is not a loadable ONNX model,
            input or output shapes that do not fit (wrong rank, not 3 channels, another input size
            than ``config.input_size``, another embedding size than ``config.embedding_dim``).
    """

    _runtime = "onnxruntime"

    def __init__(self, config: EmbedderConfig) -> None:
        if config.backend != "onnxruntime":
            raise EmbedderLoadError(f"backend: OnnxEmbedder runs onnxruntime models, not {config.backend!r}")
        self.config = config
        self._session, self._input_name, self._fixed_batch = _load_session(config)
        self._max_batch = self._fixed_batch or config.batch_size
        self._dim = self._probe()

    def _forward(self, x: np.ndarray) -> np.ndarray:
        """Network output ``(M, D)`` of one batch; a model with a fixed batch size gets it padded."""
        m = len(x)
        if self._fixed_batch and m < self._fixed_batch:
            x = np.concatenate([x, np.zeros((self._fixed_batch - m, *x.shape[1:]), x.dtype)])
        out = self._session.run(None, {self._input_name: x})[0]
        return np.asarray(out, dtype=np.float32).reshape(len(x), -1)[:m]


def _load_session(config: EmbedderConfig):  # -> (ort.InferenceSession, input name, fixed batch or 0)
    """Open the ONNX model and check that its input is ``B x 3 x H x W`` and its output ``B x D``."""
    session, path = open_session(config.model_path, config.num_threads,
                                 what="a re-ID ONNX model, e.g. osnet_x0_25_msmt17.onnx",
                                 error=EmbedderLoadError)
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or not outputs:
        raise EmbedderLoadError(f"model_path: {path}: expected one image input and an embedding output, got "
                                f"{len(inputs)} inputs and {len(outputs)} outputs")
    shape = list(inputs[0].shape)
    h, w = config.input_size
    if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
        raise EmbedderLoadError(f"model_path: {path}: input shape {shape} is not N x 3 x H x W")
    if any(isinstance(d, int) and d != e for d, e in zip(shape[2:], (h, w), strict=True)):
        raise EmbedderLoadError(f"input_size: the model {path.name} takes {shape[2]}x{shape[3]} crops, "
                                f"input_size is {h}x{w} (set input_size / reid_input_size to "
                                f"[{shape[2]}, {shape[3]}])")
    if inputs[0].type not in ("tensor(float)", None):
        raise EmbedderLoadError(f"model_path: {path}: input type {inputs[0].type}, expected tensor(float)")
    out_shape = outputs[0].shape
    if len(out_shape) < 2 or any(d != 1 for d in out_shape[2:]):  # N x D, or N x D x 1 x 1
        raise EmbedderLoadError(f"model_path: {path}: output shape {out_shape} is not N x D (one embedding "
                                "per crop; a detector's or a feature map's output is not)")
    fixed = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else 0
    return session, inputs[0].name, fixed


def fixed_input_size(model_path: str) -> tuple[int, int] | None:
    """The (height, width) an ONNX re-ID model's input fixes, or None (free sizes, or not loadable).
    Read from the graph (no ONNX Runtime session: building one costs ~10 times as much)."""
    import onnx

    try:
        graph = onnx.load(model_path, load_external_data=False).graph
    except Exception:  # not a readable ONNX file (protobuf's DecodeError, OSError, ...)
        return None
    weights = {w.name for w in graph.initializer}  # old exports list their weights as inputs too
    inputs = [i for i in graph.input if i.name not in weights]
    if not inputs:
        return None
    shape = [d.dim_value if d.HasField("dim_value") else 0 for d in inputs[0].type.tensor_type.shape.dim]
    if len(shape) == 4 and all(d > 0 for d in shape[2:]):
        return shape[2], shape[3]
    return None
