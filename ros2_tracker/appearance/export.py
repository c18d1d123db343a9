"""ONNX export of the PyTorch re-ID embedder, with an output-parity check in ONNX Runtime.

The exported graph takes ``images``: ``(N, 3, H, W)`` float32, RGB, ImageNet-normalised (what
:func:`ros2_tracker.appearance.embedder.to_network_input` makes), with a dynamic batch ``N``, and
gives ``embeddings``: ``(N, D)`` float32 L2-normalised rows, so the ONNX Runtime embedder backend
loads it exactly like OSNet (``EmbedderConfig(model_path=..., input_size=[H, W])``). The file also
carries metadata (``ros2_tracker.input_size``, ``ros2_tracker.preprocessing``,
``ros2_tracker.embedding_dim``).

:func:`export_onnx` uses torch's ``torch.export``-based exporter (needs ``onnx`` and ``onnxscript``),
then runs random inputs with a batch size other than the one traced through both the model and ONNX
Runtime and reports the largest absolute difference (:class:`ExportReport`); above ``atol`` it
raises :class:`ExportParityError` and removes the file.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["ExportError", "ExportParityError", "ExportReport", "export_onnx", "onnx_parity"]

INPUT_NAME = "images"
OUTPUT_NAME = "embeddings"


class ExportError(RuntimeError):
    """The model could not be exported or the exported file could not be run."""


class ExportParityError(ExportError):
    """ONNX Runtime's output differs from PyTorch's by more than the tolerance."""


class ExportReport(NamedTuple):
    """Result of an export.

    Attributes:
        path: the ONNX file.
        input_shape: ``(3, H, W)`` of one input crop (the batch is dynamic).
        embedding_dim: D.
        max_abs_diff: largest ``|onnxruntime - torch|`` over the parity batches.
        max_norm_error: largest ``| ||e|| - 1 |`` of ONNX Runtime's embeddings.
        batch_sizes: the batch sizes checked.
    """

    path: Path
    input_shape: tuple[int, int, int]
    embedding_dim: int
    max_abs_diff: float
    max_norm_error: float
    batch_sizes: tuple[int, ...]


def export_onnx(model, path: str | Path, *, opset: int = 18, atol: float = 1e-4,
                check_batches: tuple[int, ...] = (1, 5), seed: int = 0) -> ExportReport:
    """Export a :class:`~ros2_tracker.appearance.torch_model.ReidEmbeddingNet` to ONNX and check it.

    Args:
        model: the model (any device; exported from a CPU copy in eval mode, the original is untouched).
        path: ONNX file to write.
        opset: ONNX opset version.
        atol: largest accepted absolute difference between ONNX Runtime and PyTorch outputs.
        check_batches: batch sizes of the parity check (the trace uses batch 2).
        seed: seed of the random parity inputs.

    Returns:
        The export report.

    Raises:
        ExportError: the exporter failed (e.g. ``onnx``/``onnxscript`` missing).
        ExportParityError: the outputs differ by more than ``atol``.
    """
    import copy

    import torch

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    cpu_model = copy.deepcopy(model).cpu().eval()
    h, w = cpu_model.input_size
    example = torch.randn(2, 3, h, w, generator=torch.Generator().manual_seed(seed))
    batch = torch.export.Dim("batch", min=1, max=4096)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(cpu_model, (example,), dynamo=True, opset_version=opset,
                                        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                        dynamic_shapes=({0: batch},), verbose=False)
            program.model.metadata_props.update(_metadata((h, w), cpu_model.config.embedding_dim))
            program.save(str(p))
    except ImportError as exc:
        raise ExportError(f"ONNX export needs the onnx and onnxscript packages ({exc.name} missing)") \
            from None
    except Exception as exc:
        raise ExportError(f"ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    diff, norm_err = onnx_parity(cpu_model, p, check_batches, seed=seed + 1)
    report = ExportReport(p, (3, h, w), cpu_model.config.embedding_dim, diff, norm_err, tuple(check_batches))
    if not diff <= atol:
        p.unlink(missing_ok=True)
        raise ExportParityError(f"{p}: ONNX Runtime output differs from PyTorch by {diff:.3g} > {atol:g}")
    return report


def _metadata(size_hw: tuple[int, int], dim: int) -> dict[str, str]:
    """ONNX ``metadata_props`` describing the input and output contract."""
    return {
        "ros2_tracker.input_size": f"{size_hw[0]},{size_hw[1]}",
        "ros2_tracker.preprocessing": "RGB, (x/255 - mean)/std, mean=0.485,0.456,0.406, "
                                      "std=0.229,0.224,0.225",
        "ros2_tracker.embedding_dim": str(dim),
        "ros2_tracker.output": "L2-normalised embeddings",
    }


def onnx_parity(model, path: str | Path, batch_sizes: tuple[int, ...] = (1, 5), seed: int = 1,
                num_threads: int = 1) -> tuple[float, float]:
    """Run random inputs through the model and an ONNX file; return the output differences.

    Args:
        model: the PyTorch model (evaluated on a CPU copy in eval mode).
        path: ONNX file (NCHW input).
        batch_sizes: batch sizes to run.
        seed: seed of the inputs.
        num_threads: ONNX Runtime intra-op threads.

    Returns:
        ``(max |onnx - torch|, max | ||onnx row|| - 1 |)``.

    Raises:
        ExportError: ONNX Runtime cannot load or run the file.
    """
    import copy

    import onnxruntime as ort
    import torch

    cpu_model = copy.deepcopy(model).cpu().eval()
    h, w = cpu_model.input_size
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads
    try:
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportError(f"{path}: ONNX Runtime cannot load it ({str(exc).splitlines()[0]})") from None
    name = session.get_inputs()[0].name
    rng = np.random.default_rng(seed)
    diff = norm_err = 0.0
    for n in batch_sizes:
        x = rng.standard_normal((n, 3, h, w)).astype(np.float32)
        with torch.no_grad():
            ref = cpu_model(torch.from_numpy(x)).numpy()
        out = session.run(None, {name: x})[0]
        if out.shape != ref.shape:
            raise ExportError(f"{path}: ONNX output shape {out.shape} for batch {n}, "
                              f"PyTorch gives {ref.shape}")
        diff = max(diff, float(np.abs(out - ref).max()))
        norm_err = max(norm_err, float(np.abs(np.linalg.norm(out, axis=1) - 1.0).max()))
    return diff, norm_err
