"""``ros2-tracker build-engine``: build (or reuse) the cached TensorRT engine of an ONNX model on this GPU.

    ros2-tracker build-engine MODEL.onnx [--precision fp16 | --fp32 | --int8 --calib-frames DIR]
                              [--batch 32] [--max-batch 64] [--shape NAME=MIN/OPT/MAX] [--cache-dir DIR]

Run it on the device that will run the engine (a Jetson builds its own: engines are specific to the GPU
and the TensorRT version). The engine lands in the same cache the nodes use
(``~/.cache/ros2_tracker/engines`` unless ``--cache-dir``), so the node's first start does not build.
A symbolic batch dimension gets the profile ``1 / --batch / --max-batch``; other symbolic dimensions need
``--shape``. INT8 calibrates on the images of ``--calib-frames``: resized to the input and ImageNet-normalised
RGB (re-ID crops, ``--calib-preprocess imagenet``) or letterboxed BGR 0..255 (YOLOX, ``yolox``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ros2_tracker.cli.errors import UserError

__all__ = ["add_parser", "parse_shape", "run"]

DEFAULT_CACHE = "~/.cache/ros2_tracker/engines"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``build-engine``."""
    p = sub.add_parser("build-engine", help="build the TensorRT engine of an ONNX model (cached)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("model", type=Path, help="ONNX file")
    prec = p.add_mutually_exclusive_group()
    prec.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp16")
    prec.add_argument("--fp32", dest="precision", action="store_const", const="fp32")
    prec.add_argument("--fp16", dest="precision", action="store_const", const="fp16")
    prec.add_argument("--int8", dest="precision", action="store_const", const="int8")
    p.add_argument("--calib-frames", type=Path, help="INT8: folder of real images (crops or frames)")
    p.add_argument("--calib-preprocess", choices=("imagenet", "yolox"), default="imagenet",
                   help="INT8: how images become network input (default imagenet: re-ID crops)")
    p.add_argument("--batch", type=int, default=32, help="opt batch of a symbolic batch dimension")
    p.add_argument("--max-batch", type=int, default=0, help="max batch (default: --batch)")
    p.add_argument("--shape", action="append", default=[], metavar="NAME=MIN/OPT/MAX",
                   help="profile of an input, e.g. images=1x3x256x128/32x3x256x128/64x3x256x128")
    p.add_argument("--cache-dir", default=DEFAULT_CACHE, help=f"engine cache (default {DEFAULT_CACHE})")
    p.add_argument("--workspace-mib", type=int, default=1024, help="builder workspace limit [MiB]")
    p.add_argument("--rebuild", action="store_true", help="build even when a cached engine is valid")
    p.set_defaults(run=run)
    return p


def parse_shape(text: str) -> tuple[str, list[tuple[int, ...]]]:
    """``"images=1x3x8x4/4x3x8x4/8x3x8x4"`` -> ``("images", [(1, 3, 8, 4), (4, 3, 8, 4), (8, 3, 8, 4)])``.

    Raises:
        UserError: not ``NAME=SHAPE`` or ``NAME=MIN/OPT/MAX`` with positive integer dimensions.
    """
    name, sep, dims = text.partition("=")
    try:
        shapes = [tuple(int(d) for d in part.split("x")) for part in dims.split("/")]
    except ValueError:
        shapes = []
    if not sep or not name or len(shapes) not in (1, 3) or any(d < 1 for s in shapes for d in s):
        raise UserError(f"--shape: expected NAME=MIN/OPT/MAX like images=1x3x256x128/32x3x256x128/"
                        f"64x3x256x128, got {text!r}")
    return name, shapes * 3 if len(shapes) == 1 else shapes


def _profile_shapes(args: argparse.Namespace) -> dict:
    """The ``--shape`` profiles, plus ``1 / batch / max batch`` for inputs whose only symbol is the batch."""
    from ros2_tracker.backends.tensorrt import onnx_inputs

    if args.batch < 1 or args.max_batch < 0:
        raise UserError("--batch must be >= 1 and --max-batch >= 0")
    shapes = dict(parse_shape(s) for s in args.shape)
    hi = max(args.max_batch or args.batch, args.batch)
    for spec in onnx_inputs(args.model):
        if spec.name not in shapes and spec.shape[0] < 0 and all(d > 0 for d in spec.shape[1:]):
            rest = spec.shape[1:]
            shapes[spec.name] = [(1, *rest), (args.batch, *rest), (hi, *rest)]
    return shapes


def _calibration(args: argparse.Namespace, shapes: dict) -> list[np.ndarray] | None:
    """INT8 calibration batches (the opt shape of the first input) from ``--calib-frames``."""
    if args.precision != "int8":
        return None
    from ros2_tracker.appearance.backends.tensorrt import calibration_batches
    from ros2_tracker.appearance.config import EmbedderConfig, EmbedderLoadError
    from ros2_tracker.backends.tensorrt import make_profile, onnx_inputs
    from ros2_tracker.io.video import read_image

    if args.calib_frames is None:
        raise UserError("--int8 needs --calib-frames DIR, a folder of real images")
    if not args.calib_frames.is_dir():
        what = "not a folder" if args.calib_frames.exists() else "no such folder"
        raise UserError(f"--calib-frames {args.calib_frames}: {what} (a folder of real images)")
    profile = make_profile(onnx_inputs(args.model), shapes)
    n, _, h, w = next(iter(profile.values()))[1]
    if args.calib_preprocess != "yolox":  # the embedder's own batches: its first start reuses this engine
        try:
            return calibration_batches(args.calib_frames, EmbedderConfig(input_size=[h, w]), n)
        except EmbedderLoadError as exc:
            raise UserError(f"--calib-frames: {exc}") from None
    from ros2_tracker.detection.yolox import letterbox

    files = sorted(p for p in args.calib_frames.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    images = [img for img in (read_image(p) for p in files[: n * 32]) if img is not None]
    if len(images) < n:
        raise UserError(f"--calib-frames: {len(images)} readable images in {args.calib_frames}, "
                        f"need at least {n} (one batch)")
    x = np.stack([letterbox(img, h).transpose(2, 0, 1) for img in images]).astype(np.float32)
    return [x[i:i + n] for i in range(0, len(x) - n + 1, n)]


def run(args: argparse.Namespace) -> int:
    """Build or reuse the engine; prints its path, whether it was built, the time and the size."""
    from ros2_tracker.backends.selection import BackendUnavailable
    from ros2_tracker.backends.tensorrt import EngineInputError, TensorRTEngine

    if not args.model.is_file():
        raise UserError(f"{args.model}: ONNX file not found")
    t0 = time.perf_counter()
    try:
        shapes = _profile_shapes(args)
        engine = TensorRTEngine.from_onnx(args.model, args.cache_dir, args.precision, shapes=shapes,
                                          calibration=_calibration(args, shapes),
                                          workspace_mib=args.workspace_mib, rebuild=args.rebuild)
    except (EngineInputError, BackendUnavailable) as exc:
        raise UserError(str(exc)) from None
    mib = engine.path.stat().st_size / 2**20
    what = "built" if engine.built else "reused (cached)"
    print(f"{engine.path}: {what} in {time.perf_counter() - t0:.1f} s, {mib:.1f} MiB, {args.precision}, "
          f"TensorRT {engine.key.tensorrt_version} on {engine.key.gpu_name}")
    return 0
