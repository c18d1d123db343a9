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

from pathlib import Path

import numpy as np

from ros2_tracker.appearance.config import EmbedderConfig, EmbedderLoadError
from ros2_tracker.appearance.embedder import extract_crops, scatter_rows, to_network_input
from ros2_tracker.backends.onnxruntime import open_session
from ros2_tracker.core.appearance import normalise

__all__ = ["OnnxEmbedder"]


class OnnxEmbedder:
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

    def __init__(self, config: EmbedderConfig) -> None:
        if config.backend != "onnxruntime":
            raise EmbedderLoadError(f"backend: OnnxEmbedder runs onnxruntime models, not {config.backend!r}")
        self.config = config
        self._session, self._input_name, self._fixed_batch = _load_session(config)
        self._dim = self._probe()

    @property
    def name(self) -> str:
        """``onnxruntime:<model file name>``."""
        return f"onnxruntime:{Path(self.config.model_path).name}"

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
        x = to_network_input(crops_bgr, cfg.mean, cfg.std, cfg.rgb)
        return normalise(self._run(x))

    def _run(self, x: np.ndarray) -> np.ndarray:
        """Network output ``(M, D)`` of a preprocessed batch, in chunks of the batch size."""
        n = len(x)
        step = self._fixed_batch or self.config.batch_size
        outs = []
        for start in range(0, n, step):
            chunk = x[start:start + step]
            m = len(chunk)
            if self._fixed_batch and m < step:
                chunk = np.concatenate([chunk, np.zeros((step - m, *chunk.shape[1:]), chunk.dtype)])
            out = self._session.run(None, {self._input_name: chunk})[0]
            outs.append(np.asarray(out, dtype=np.float32).reshape(len(chunk), -1)[:m])
        return np.concatenate(outs) if len(outs) > 1 else outs[0]

    def _probe(self) -> int:
        """Run one grey crop; returns the embedding size and checks it against the config."""
        h, w = self.config.input_size
        crop = np.full((1, h, w, 3), 128, dtype=np.uint8)
        path = self.config.model_path
        try:
            out = self._run(to_network_input(crop, self.config.mean, self.config.std, self.config.rgb))
        except Exception as exc:  # ORT raises private exception types (Fail, InvalidArgument, ...)
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EmbedderLoadError(f"model_path: {path}: the model does not run on a 1x3x{h}x{w} input "
                                    f"(check input_size): {detail}") from None
        dim = out.shape[1]
        if dim < 1:
            raise EmbedderLoadError(f"model_path: {path}: the model gives empty embeddings")
        if self.config.embedding_dim and dim != self.config.embedding_dim:
            raise EmbedderLoadError(f"embedding_dim: {path} gives {dim}-dimensional embeddings, "
                                    f"expected {self.config.embedding_dim}")
        return int(dim)


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
                                f"input_size is {h}x{w}")
    if inputs[0].type not in ("tensor(float)", None):
        raise EmbedderLoadError(f"model_path: {path}: input type {inputs[0].type}, expected tensor(float)")
    out_shape = outputs[0].shape
    if len(out_shape) < 2:
        raise EmbedderLoadError(f"model_path: {path}: output shape {out_shape} is not N x D")
    fixed = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else 0
    return session, inputs[0].name, fixed
