"""ONNX export of the torchvision Faster R-CNN split for Tracktor, with a parity check on a real frame.

Two files (graphs of ``ros2_tracker.regression.backends.torchvision_frcnn``):

* ``frcnn_backbone.onnx``: ``images`` ``(1, 3, H, W)`` float32 (RGB, ImageNet-normalised, ``H`` and ``W``
  dynamic multiples of 32, made by ``prepare_images``) -> ``fpn0, fpn1, fpn2, fpn_pool`` FPN maps
  (strides 8, 16, 32, 64);
* ``frcnn_roi_heads.onnx``: ``fpn0, fpn1, fpn2`` (dynamic sizes) + ``boxes`` ``(N, 4)`` float32 xyxy in
  network-input pixels (dynamic ``N``, 0 included) -> ``scores`` ``(N,)`` person probability and
  ``regressed_boxes`` ``(N, 4)`` (decoded, not clipped).

Both carry metadata: ``ros2_tracker.model_config`` (the ``FrcnnModelConfig`` as JSON: input size,
anchors, ...), ``ros2_tracker.preprocessing`` and ``ros2_tracker.model_sha256`` (hash of the
checkpoint's weights, for engine caches). The default exporter is torch's tracing (TorchScript) one
with torchvision's own ONNX symbolics for RoIAlign: 20 times faster than the ``torch.export``-based one
(``exporter="dynamo"``, needs ``onnxscript``), which gives the same graph within the parity tolerance.
Both need ``onnx``.

Parity (:func:`check_parity`): a real frame goes through PyTorch and ONNX Runtime; the figure is the
largest relative difference ``max |onnx - torch| / max |torch|`` of each output (FPN maps; scores and
boxes of the heads fed the same features, for ``N`` boxes and for ``N = 0``); above ``rtol`` the export
raises :class:`ExportParityError` and removes the files.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ros2_tracker.backends.onnxruntime import add_onnx_metadata

__all__ = ["DetectorExportReport", "ExportError", "ExportParityError", "check_parity", "export_detector_onnx",
           "parity_boxes"]


class ExportError(RuntimeError):
    """The detector could not be exported or the exported files could not be run."""


class ExportParityError(ExportError):
    """ONNX Runtime's outputs differ from PyTorch's by more than the tolerance."""


class DetectorExportReport(NamedTuple):
    """Result of an export.

    Attributes:
        backbone: the backbone+FPN ONNX file.
        roi_heads: the RoI-heads ONNX file.
        max_rel_diff: per output (``fpn0`` .. ``fpn_pool``, ``scores``, ``regressed_boxes``) the largest
            ``|onnx - torch|`` over ``max |torch|``.
        num_boxes: boxes scored in the parity check.
        input_shape: ``(1, 3, H, W)`` of the parity frame's network input.
    """

    backbone: Path
    roi_heads: Path
    max_rel_diff: dict[str, float]
    num_boxes: int
    input_shape: tuple[int, ...]

    @property
    def worst(self) -> float:
        """The largest relative difference over all outputs."""
        return max(self.max_rel_diff.values())

    def summary(self) -> str:
        """One line with the worst difference per output."""
        diffs = ", ".join(f"{k} {v:.1e}" for k, v in self.max_rel_diff.items())
        return (f"ONNX Runtime vs PyTorch, max relative difference on a {self.input_shape[2]}x"
                f"{self.input_shape[3]} frame and {self.num_boxes} boxes: {diffs}")


def _metadata(model: Any) -> dict[str, str]:
    import torch

    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return {
        "ros2_tracker.model_config": json.dumps(model.config.to_dict()),
        "ros2_tracker.preprocessing": "BGR frame resized (short side min_size, long side <= max_size), RGB, "
                                      "(x/255 - mean)/std, mean=0.485,0.456,0.406, std=0.229,0.224,0.225, "
                                      "zero-padded to multiples of 32",
        "ros2_tracker.model_sha256": digest.hexdigest(),
        "ros2_tracker.boxes": "xyxy in network-input pixels; person = class 1",
    }


def _export(module: Any, args: tuple, path: Path, names: tuple[list[str], list[str]], dynamic_axes: dict,
            dynamic_shapes: tuple, metadata: dict[str, str], opset: int, exporter: str) -> None:
    """Export one graph with ``exporter`` (see :func:`export_detector_onnx`) and store the metadata."""
    import torch

    input_names, output_names = names
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            if exporter == "torchscript":
                torch.onnx.export(module, args, str(path), dynamo=False, opset_version=opset,
                                  input_names=input_names, output_names=output_names,
                                  dynamic_axes=dynamic_axes)
                add_onnx_metadata(path, metadata)
                return
            program = torch.onnx.export(module, args, dynamo=True, opset_version=max(opset, 18),
                                        input_names=input_names, output_names=output_names,
                                        dynamic_shapes=dynamic_shapes, verbose=False)
            program.model.metadata_props.update(metadata)
            program.save(str(path))
    except ImportError as exc:
        raise ExportError(f"ONNX export needs the onnx and onnxscript packages ({exc.name} missing)") \
            from None
    except Exception as exc:
        raise ExportError(f"ONNX export of {path.name} failed: {type(exc).__name__}: "
                          f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None



def export_detector_onnx(model: Any, out_dir: str | Path, image_bgr: np.ndarray, *,
                         boxes_xyxy: np.ndarray | None = None, opset: int = 17, rtol: float = 1e-3,
                         exporter: str = "torchscript") -> DetectorExportReport:
    """Export the backbone+FPN and the RoI heads of a detector to ONNX, then check parity on a frame.

    Args:
        model: a :class:`~ros2_tracker.regression.backends.torchvision_frcnn.FrcnnDetector` (exported
            from a CPU copy in eval mode; the original is untouched).
        out_dir: folder of ``frcnn_backbone.onnx`` and ``frcnn_roi_heads.onnx`` (created).
        image_bgr: a real ``(H, W, 3)`` uint8 BGR frame for the trace and the parity check.
        boxes_xyxy: ``(N, 4)`` image-px boxes for the parity check (default :func:`parity_boxes`).
        opset: ONNX opset version (at least 16 for RoiAlign's half-pixel modes; 18 for ``dynamo``).
        rtol: largest accepted relative difference.
        exporter: ``torchscript`` (torch's tracing exporter with torchvision's ONNX symbolics: about
            1 s of CPU) or ``dynamo`` (the ``torch.export``-based one: about 20 s of CPU for the
            backbone; the same graph within the parity tolerance).

    Returns:
        The report.

    Raises:
        ExportError: the exporter failed or ONNX Runtime cannot run the files.
        ExportParityError: an output differs by more than ``rtol`` (the files are removed).
        ValueError: an unknown ``exporter``.
    """
    import copy

    import torch

    from ros2_tracker.regression.backends.torchvision_frcnn import (
        BACKBONE_OUTPUTS,
        DEFAULT_BACKBONE_ONNX,
        DEFAULT_HEADS_ONNX,
        HEAD_OUTPUTS,
        BackboneGraph,
        RoiHeadGraph,
        network_scale,
        prepare_images,
    )

    if exporter not in ("torchscript", "dynamo"):
        raise ValueError(f"exporter: {exporter!r} is not one of torchscript, dynamo")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cpu = copy.deepcopy(model).cpu().eval()
    c = cpu.config
    batch, _ = prepare_images([image_bgr], [network_scale(image_bgr.shape[:2], c.min_size, c.max_size)])
    images = torch.from_numpy(batch)
    backbone, heads = BackboneGraph(cpu).eval(), RoiHeadGraph(cpu).eval()
    with torch.no_grad():
        maps = backbone(images)
    meta = _metadata(cpu)
    paths = (out / DEFAULT_BACKBONE_ONNX, out / DEFAULT_HEADS_ONNX)
    hdim, wdim = torch.export.Dim("h32", min=1, max=256), torch.export.Dim("w32", min=1, max=256)
    _export(backbone, (images,), paths[0], (["images"], list(BACKBONE_OUTPUTS)),
            {"images": {2: "height", 3: "width"}}, ({2: 32 * hdim, 3: 32 * wdim},), meta, opset, exporter)
    example_boxes = torch.tensor([[8.0, 8.0, 40.0, 120.0], [50.0, 20.0, 150.0, 260.0]])
    axes = {f"fpn{k}": {2: f"fpn{k}_height", 3: f"fpn{k}_width"} for k in range(3)}
    axes.update({name: {0: "num_boxes"} for name in ("boxes", *HEAD_OUTPUTS)})
    dims = [{2: torch.export.Dim(f"fh{k}", min=1, max=4096), 3: torch.export.Dim(f"fw{k}", min=1, max=4096)}
            for k in range(3)]
    dims.append({0: torch.export.Dim("num_boxes", min=0, max=100000)})
    head_names = ([*BACKBONE_OUTPUTS[:3], "boxes"], list(HEAD_OUTPUTS))
    _export(heads, (*maps[:3], example_boxes), paths[1], head_names, axes, tuple(dims), meta, opset, exporter)
    boxes = parity_boxes(image_bgr.shape[:2]) if boxes_xyxy is None else np.asarray(boxes_xyxy, np.float64)
    diffs = check_parity(cpu, paths[0], paths[1], image_bgr, boxes)
    report = DetectorExportReport(paths[0], paths[1], diffs, len(boxes), tuple(batch.shape))
    if not report.worst <= rtol:
        for p in paths:
            p.unlink(missing_ok=True)
        raise ExportParityError(f"{report.summary()} > {rtol:g}")
    return report


def parity_boxes(image_hw: tuple[int, int], count: int = 24, seed: int = 0) -> np.ndarray:
    """``(count, 4)`` person-shaped xyxy boxes of all sizes spread over an image (every FPN level)."""
    rng = np.random.default_rng(seed)
    h, w = image_hw
    heights = np.exp(rng.uniform(np.log(16), np.log(0.95 * h), count))
    widths = np.minimum(heights * rng.uniform(0.3, 0.6, count), 0.95 * w)
    x1 = rng.uniform(0, w - widths)
    y1 = rng.uniform(0, h - heights)
    return np.stack([x1, y1, x1 + widths, y1 + heights], axis=1)


def _rel(onnx_out: np.ndarray, torch_out: np.ndarray) -> float:
    if torch_out.size == 0:
        return 0.0 if onnx_out.size == 0 else float("inf")
    if onnx_out.shape != torch_out.shape:
        return float("inf")
    return float(np.abs(onnx_out - torch_out).max() / max(float(np.abs(torch_out).max()), 1e-12))


def check_parity(model: Any, backbone_onnx: str | Path, heads_onnx: str | Path, image_bgr: np.ndarray,
                 boxes_xyxy: np.ndarray, num_threads: int = 1) -> dict[str, float]:
    """Largest relative difference ONNX Runtime vs PyTorch for each output on one frame.

    The heads are checked on PyTorch's FPN maps (so their difference is theirs alone) with the given
    boxes and with no box.

    Args:
        model: the detector (CPU, eval mode).
        backbone_onnx: backbone file.
        heads_onnx: RoI-heads file.
        image_bgr: ``(H, W, 3)`` uint8 BGR frame.
        boxes_xyxy: ``(N, 4)`` boxes in image pixels.
        num_threads: ONNX Runtime intra-op threads.

    Returns:
        ``{output name: max |onnx - torch| / max |torch|}``.

    Raises:
        ExportError: ONNX Runtime cannot load or run a file.
    """
    import onnxruntime as ort
    import torch

    from ros2_tracker.regression.backends.torchvision_frcnn import (
        BACKBONE_OUTPUTS,
        HEAD_OUTPUTS,
        BackboneGraph,
        RoiHeadGraph,
        network_scale,
        prepare_images,
    )

    c = model.config
    scale = network_scale(image_bgr.shape[:2], c.min_size, c.max_size)
    batch, _ = prepare_images([image_bgr], [scale])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads
    opts.log_severity_level = 3
    try:
        sessions = [ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
                    for p in (backbone_onnx, heads_onnx)]
        onnx_maps = sessions[0].run(list(BACKBONE_OUTPUTS), {"images": batch})
    except Exception as exc:
        raise ExportError(f"ONNX Runtime cannot run the export ({str(exc).strip().splitlines()[0]})") \
            from None
    with torch.no_grad():
        maps = BackboneGraph(model).eval()(torch.from_numpy(batch))
    diffs = {name: _rel(o, t.numpy()) for name, o, t in zip(BACKBONE_OUTPUTS, onnx_maps, maps, strict=True)}
    heads = RoiHeadGraph(model).eval()
    for boxes in ((np.asarray(boxes_xyxy) * scale).astype(np.float32), np.zeros((0, 4), np.float32)):
        feeds = {name: m.numpy() for name, m in zip(BACKBONE_OUTPUTS[:3], maps[:3], strict=True)}
        feeds["boxes"] = boxes
        try:
            onnx_out = sessions[1].run(list(HEAD_OUTPUTS), feeds)
        except Exception as exc:
            raise ExportError(f"ONNX Runtime cannot run the RoI heads on {len(boxes)} boxes "
                              f"({str(exc).strip().splitlines()[0]})") from None
        with torch.no_grad():
            torch_out = heads(*maps[:3], torch.from_numpy(boxes))
        for name, o, t in zip(HEAD_OUTPUTS, onnx_out, torch_out, strict=True):
            diffs[name] = max(diffs.get(name, 0.0), _rel(o, t.numpy()))
    return diffs
