"""ONNX export of the motion model, with an output-parity check in ONNX Runtime.

The graph takes ``history``: (N, G, F) float32 (:func:`ros2_tracker.motion.features.encode_history`)
with a dynamic batch N and gives ``prediction``: (N, T, 5). The file carries the model's time grid
and sizes as metadata (``ros2_tracker.motion.*``), which the runtime
(:class:`ros2_tracker.motion.onnx_predictor.OnnxMotionPredictor`) checks at load time.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ros2_tracker.backends.onnxruntime import add_onnx_metadata
from ros2_tracker.motion.features import NUM_FEATURES, NUM_OUTPUTS

__all__ = ["INPUT_NAME", "METADATA_KEY", "OUTPUT_NAME", "ExportError", "ExportReport", "export_onnx",
           "onnx_parity"]

INPUT_NAME = "history"
OUTPUT_NAME = "prediction"
METADATA_KEY = "ros2_tracker.motion.config"
FORMAT_KEY = "ros2_tracker.motion.format"
FORMAT = f"features={NUM_FEATURES};outputs={NUM_OUTPUTS};residual-to-cv;v2"


class ExportError(RuntimeError):
    """The model could not be exported, or ONNX Runtime disagrees with PyTorch."""


class ExportReport(NamedTuple):
    """Result of an export: the file, the largest |onnxruntime - torch| and the batch sizes checked."""

    path: Path
    max_abs_diff: float
    batch_sizes: tuple[int, ...]


def export_onnx(model, path: str | Path, *, atol: float = 1e-4, check_batches: tuple[int, ...] = (1, 7, 100),
                seed: int = 0) -> ExportReport:
    """Export a :class:`~ros2_tracker.motion.model.MotionPredictorNet` and check parity.

    Raises:
        ExportError: the exporter failed, or outputs differ by more than ``atol`` (the file is removed).
    """
    import torch

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    net = copy.deepcopy(model).cpu().eval()
    gen = torch.Generator().manual_seed(seed)
    example = torch.randn(3, net.config.history_steps, NUM_FEATURES, generator=gen)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (example,), str(p), dynamo=False, opset_version=17,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_axes={INPUT_NAME: {0: "tracks"}, OUTPUT_NAME: {0: "tracks"}})
        add_onnx_metadata(p, {METADATA_KEY: json.dumps(asdict(net.config)), FORMAT_KEY: FORMAT})
    except ImportError as exc:
        raise ExportError(f"ONNX export needs the onnx package ({exc.name} missing)") from None
    except Exception as exc:
        raise ExportError(f"ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") from None
    diff = onnx_parity(net, p, check_batches, seed=seed + 1)
    if not diff <= atol:
        p.unlink(missing_ok=True)
        raise ExportError(f"{p}: ONNX Runtime output differs from PyTorch by {diff:.3g} > {atol:g}")
    return ExportReport(p, diff, tuple(check_batches))



def onnx_parity(model, path: str | Path, batch_sizes: tuple[int, ...] = (1, 7, 100), seed: int = 1) -> float:
    """Largest |ONNX Runtime - PyTorch| over random valid-looking inputs of the given batch sizes."""
    import onnxruntime as ort
    import torch

    net = copy.deepcopy(model).cpu().eval()
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ExportError(f"{path}: ONNX Runtime cannot load it ({str(exc).splitlines()[0]})") from None
    rng = np.random.default_rng(seed)
    diff = 0.0
    for n in batch_sizes:
        x = rng.standard_normal((n, net.config.history_steps, NUM_FEATURES)).astype(np.float32)
        x[..., 0] = rng.random((n, net.config.history_steps)) < 0.8
        with torch.no_grad():
            ref = net(torch.from_numpy(x)).numpy()
        out = session.run(None, {INPUT_NAME: x})[0]
        if out.shape != ref.shape:
            raise ExportError(f"{path}: ONNX output shape {out.shape} for batch {n}, "
                              f"PyTorch gives {ref.shape}")
        diff = max(diff, float(np.abs(out - ref).max()))
    return diff
