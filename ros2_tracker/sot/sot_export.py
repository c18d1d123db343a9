"""Model files of the learned single-target backends: checkpoints and the GOTURN-style ONNX export.

Checkpoints (:func:`save_sot_checkpoint` / :func:`load_sot_checkpoint`) hold only tensors and plain
Python values: a format tag naming the model kind (``goturn``, ``rolo``), a version, the architecture
parameters, the state dict and free-form extras (training config, history). They load with
``torch.load(..., weights_only=True)``; a file of another kind, another program or a broken file gives
a :class:`SotCheckpointError` that says which.

:func:`export_goturn_onnx` writes the GOTURN-style network (two inputs, ``target`` and ``search``, each
``(N, 3, S, S)`` ImageNet-normalised RGB; output ``box`` ``(N, 4)`` in search-window coordinates) with
the input size and context in the ONNX metadata, then checks ONNX Runtime against PyTorch on random
inputs (:func:`goturn_onnx_parity`); above ``atol`` the file is removed and
:class:`SotExportParityError` raised, so a file that exists is one that passed. TensorRT can build an
engine from the same file.

torch, onnx, onnxscript and onnxruntime are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ros2_tracker.backends.onnxruntime import add_onnx_metadata
from ros2_tracker.backends.torch_checkpoint import read_checkpoint, write_checkpoint

__all__ = ["CHECKPOINT_VERSION", "SotCheckpointError", "SotExportError", "SotExportParityError",
           "SotExportReport", "export_goturn_onnx", "goturn_onnx_parity", "load_sot_checkpoint",
           "save_sot_checkpoint"]

CHECKPOINT_VERSION = 1
_FORMAT_PREFIX = "ros2_tracker.sot."


class SotCheckpointError(ValueError):
    """A checkpoint is missing, unreadable, of another kind, or does not fit its model."""


class SotExportError(RuntimeError):
    """The ONNX export failed, or ONNX Runtime cannot run the exported file."""


class SotExportParityError(SotExportError):
    """ONNX Runtime and PyTorch disagree by more than the tolerance."""


class SotExportReport(NamedTuple):
    """What an export produced.

    Attributes:
        path: the ONNX file.
        input_size: crop side S [px].
        max_abs_diff: largest ``|onnx - torch|`` over the parity inputs (search-window units).
        batch_sizes: batch sizes checked.
    """

    path: Path
    input_size: int
    max_abs_diff: float
    batch_sizes: tuple[int, ...]


def save_sot_checkpoint(path: str | Path, kind: str, model_config: Mapping[str, Any], state_dict: Mapping,
                        extra: Mapping[str, Any] | None = None) -> Path:
    """Write a ``weights_only``-loadable checkpoint (atomically replaced).

    Args:
        path: file to write (folders are created).
        kind: model kind, e.g. ``"goturn"`` or ``"rolo"``.
        model_config: architecture parameters (plain values).
        state_dict: the model's tensors (saved on the CPU).
        extra: plain values only (training config, history, metrics).

    Returns:
        The path written.
    """
    payload = {"format": _FORMAT_PREFIX + kind, "version": CHECKPOINT_VERSION, "model": dict(model_config),
               "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
               "extra": dict(extra or {})}
    return write_checkpoint(path, payload)


def load_sot_checkpoint(path: str | Path, kind: str) -> dict[str, Any]:
    """Read a checkpoint of ``kind`` with ``torch.load(..., weights_only=True)``.

    Returns:
        The payload: ``model`` (architecture dict), ``state_dict``, ``extra``.

    Raises:
        SotCheckpointError: missing/unreadable file, not a ros2_tracker SOT checkpoint, another kind
            (the message names it), another version, or no state dict.
    """
    p = Path(path)
    payload = read_checkpoint(p, SotCheckpointError)
    fmt = payload.get("format") if isinstance(payload, Mapping) else None
    if not isinstance(fmt, str) or not fmt.startswith(_FORMAT_PREFIX):
        raise SotCheckpointError(f"{p}: not a ros2_tracker single-target checkpoint (format tag {fmt!r})")
    if fmt != _FORMAT_PREFIX + kind:
        raise SotCheckpointError(f"{p}: a {fmt[len(_FORMAT_PREFIX):]!r} checkpoint, expected {kind!r}")
    if payload.get("version") != CHECKPOINT_VERSION:
        raise SotCheckpointError(f"{p}: checkpoint version {payload.get('version')!r}, this code reads "
                                 f"{CHECKPOINT_VERSION}")
    if not isinstance(payload.get("state_dict"), Mapping) or not isinstance(payload.get("model"), Mapping):
        raise SotCheckpointError(f"{p}: no state_dict/model parameters in the checkpoint")
    return payload


def export_goturn_onnx(model, path: str | Path, *, opset: int = 18, atol: float = 1e-4,
                       check_batches: tuple[int, ...] = (1, 3), seed: int = 0) -> SotExportReport:
    """Export a :class:`~ros2_tracker.sot.goturn.GoturnNet` to ONNX and check it against PyTorch.

    Args:
        model: the network (exported from a CPU copy in eval mode; the original is untouched).
        path: ONNX file to write.
        opset: ONNX opset version.
        atol: largest accepted ``|onnx - torch|``.
        check_batches: batch sizes of the parity check.
        seed: seed of the trace and parity inputs.

    Returns:
        The report.

    Raises:
        SotExportError: the exporter failed (e.g. onnx/onnxscript missing) or ONNX Runtime cannot run it.
        SotExportParityError: the outputs differ by more than ``atol`` (the file is removed).
    """
    import copy

    import torch

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    net = copy.deepcopy(model).cpu().eval()
    s = net.config.input_size
    g = torch.Generator().manual_seed(seed)
    example = (torch.randn(2, 3, s, s, generator=g), torch.randn(2, 3, s, s, generator=g))
    dynamic = {name: {0: "batch"} for name in ("target", "search", "box")}
    try:
        # the TorchScript exporter: this small static graph needs no dynamo, and it exports in well
        # under a second where torch.export takes tens of seconds on a loaded 2-core machine
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(net, example, str(p), dynamo=False, opset_version=opset,
                              input_names=["target", "search"], output_names=["box"], dynamic_axes=dynamic)
        add_onnx_metadata(p, {
            "ros2_tracker.model": "goturn", "ros2_tracker.input_size": str(s),
            "ros2_tracker.context": repr(float(net.config.context)),
            "ros2_tracker.preprocessing": "RGB, (x/255 - mean)/std, ImageNet mean/std",
            "ros2_tracker.output": "box x1,y1,x2,y2 in search-window coordinates (0..1 = window)"})
    except ImportError as exc:
        raise SotExportError(f"ONNX export needs the onnx and onnxscript packages ({exc.name} missing)") \
            from None
    except Exception as exc:
        raise SotExportError(f"ONNX export failed: {type(exc).__name__}: {str(exc).splitlines()[0]}") \
            from None
    diff = goturn_onnx_parity(net, p, check_batches, seed=seed + 1)
    if not diff <= atol:
        p.unlink(missing_ok=True)
        raise SotExportParityError(f"{p}: ONNX Runtime differs from PyTorch by {diff:.3g} > {atol:g}")
    return SotExportReport(p, s, diff, tuple(check_batches))



def goturn_onnx_parity(model, path: str | Path, batch_sizes: tuple[int, ...] = (1, 3), seed: int = 1,
                       num_threads: int = 1) -> float:
    """Largest ``|onnx - torch|`` of the box output on random inputs of the given batch sizes.

    Raises:
        SotExportError: ONNX Runtime cannot load or run the file, or the output shape differs.
    """
    import copy

    import torch

    from ros2_tracker.backends.onnxruntime import open_session

    net = copy.deepcopy(model).cpu().eval()
    s = net.config.input_size
    session, _ = open_session(str(path), num_threads, what="a GOTURN-style ONNX file", error=SotExportError)
    rng = np.random.default_rng(seed)
    diff = 0.0
    for n in batch_sizes:
        t, x = (rng.standard_normal((n, 3, s, s)).astype(np.float32) for _ in range(2))
        with torch.no_grad():
            ref = net(torch.from_numpy(t), torch.from_numpy(x)).numpy()
        out = session.run(None, {"target": t, "search": x})[0]
        if out.shape != ref.shape:
            raise SotExportError(f"{path}: ONNX output shape {out.shape} for batch {n}, PyTorch {ref.shape}")
        diff = max(diff, float(np.abs(out - ref).max()))
    return diff
