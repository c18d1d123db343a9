"""TensorRT engines built from the project's ONNX files, cached on disk, run on torch CUDA tensors.

:meth:`TensorRTEngine.from_onnx` parses an ONNX file with TensorRT's ``OnnxParser``, builds an engine in
FP32, FP16 or INT8 (entropy calibration on real inputs, with a calibration cache) with one optimisation
profile per input (``min / opt / max`` shapes: a dynamic crop batch for re-ID), serialises it and stores it
in a cache folder; the next call with the same key deserialises it instead of building. The key is the
sha256 of the ONNX bytes + the TensorRT version + the GPU name + the precision + the shape profile (+ the
calibration data for INT8): when any of them changes the file name changes and the engine is rebuilt.

Each engine ``X.engine`` has a JSON sidecar ``X.engine.json`` (format tag, the key, the engine's sha256
and size). :func:`read_engine` checks the sidecar before TensorRT sees the bytes, so a truncated,
corrupt, foreign or mismatched engine (other TensorRT version or GPU) gives a one-line
:class:`EngineFileError` instead of a crash inside TensorRT; a cached engine that fails the check is
rebuilt. Shapes are checked against the ONNX inputs before a build (:func:`make_profile`) and against the
profile before each run (:class:`EngineInputError`).

All of this except the build and the run is plain Python (``onnx`` reads the inputs) and is tested on
CPU-only machines. ``tensorrt`` and ``torch`` are imported only by :func:`import_tensorrt` and the
engine methods; when TensorRT or a CUDA device is missing they raise :class:`EngineUnavailable`, a
:class:`~ros2_tracker.backends.selection.BackendUnavailable`, so factories fall back to ONNX Runtime.
Written against the TensorRT 10 Python API (JetPack 6 ships TensorRT 10); the calls used exist since
TensorRT 8.5 (JetPack 5.1) too.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ros2_tracker.backends.selection import BackendUnavailable
from ros2_tracker.io.files import write_atomically

__all__ = [
    "ENGINE_FORMAT",
    "PRECISIONS",
    "EngineBuildError",
    "EngineFileError",
    "EngineInputError",
    "EngineKey",
    "EngineUnavailable",
    "InputSpec",
    "ShapeProfile",
    "TensorRTEngine",
    "check_input_shape",
    "engine_path",
    "file_sha256",
    "import_tensorrt",
    "make_profile",
    "onnx_inputs",
    "read_engine",
    "write_engine",
]

ENGINE_FORMAT = "ros2_tracker.tensorrt_engine"
SIDECAR_VERSION = 1
PRECISIONS = ("fp32", "fp16", "int8")
"""Engine precisions: FP32; FP16 (layers may run in FP16); INT8 (calibrated; FP16 where INT8 is not)."""

ShapeProfile = dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]
"""``input name -> (min shape, opt shape, max shape)``."""


class EngineUnavailable(BackendUnavailable):
    """TensorRT cannot be used here: the module is missing or there is no CUDA device."""


class EngineBuildError(BackendUnavailable):
    """TensorRT could not build the engine (parser errors, unsupported layers, out of GPU memory)."""


class EngineFileError(BackendUnavailable):
    """An engine file is missing, corrupt, not ours, or built for another TensorRT/GPU/model."""


class EngineInputError(ValueError):
    """Shapes that do not fit the model: a profile against the ONNX inputs, or an input against the
    engine's profile."""


@dataclass(frozen=True)
class InputSpec:
    """One network input of an ONNX file.

    Attributes:
        name: tensor name.
        shape: dimensions; ``-1`` where the ONNX dimension is symbolic or unknown.
        dtype: numpy dtype name, e.g. ``"float32"``.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class EngineKey:
    """Everything an engine depends on; :meth:`digest` names its cache file.

    Attributes:
        onnx_sha256: sha256 of the ONNX file's bytes.
        tensorrt_version: ``tensorrt.__version__``.
        gpu_name: CUDA device name.
        precision: one of :data:`PRECISIONS`.
        profile: canonical text of the shape profile (:func:`profile_text`).
        calibration: sha256 of the INT8 calibration data ("" otherwise).
    """

    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    precision: str
    profile: str
    calibration: str = ""

    def digest(self) -> str:
        """16 hex digits of the sha256 of all fields."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def differences(self, other: EngineKey) -> list[str]:
        """``"field: mine != other"`` for each field that differs."""
        mine, theirs = asdict(self), asdict(other)
        return [f"{k}: {mine[k]!r} != {theirs[k]!r}" for k in mine if mine[k] != theirs[k]]


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def onnx_sha256(path: str | Path) -> str:
    """Hex sha256 of an ONNX model: its file and, in order, the external data files its initialisers name
    (weights kept beside the graph, ``model.onnx.data``), which TensorRT's parser loads too: new weights
    there must not reuse an engine built from the old ones."""
    import onnx

    p = Path(path)
    h = hashlib.sha256(file_sha256(p).encode())
    model = onnx.load(str(p), load_external_data=False)
    names = sorted({e.value for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
                    for e in t.external_data if e.key == "location"})
    for name in names:
        h.update(name.encode())
        h.update(file_sha256(p.parent / name).encode())
    return h.hexdigest()


def profile_text(profile: ShapeProfile) -> str:
    """Canonical one-line text of a profile, e.g. ``"images:1x3x256x128/32x3x256x128/64x3x256x128"``."""
    def dims(s: Sequence[int]) -> str:
        return "x".join(str(int(d)) for d in s)

    return ";".join(f"{n}:{'/'.join(dims(s) for s in profile[n])}" for n in sorted(profile))


def engine_path(cache_dir: str | Path, onnx_path: str | Path, key: EngineKey) -> Path:
    """Cache file of an engine: ``<cache_dir>/<onnx stem>.<precision>.<key digest>.engine``."""
    return Path(cache_dir).expanduser() / f"{Path(onnx_path).stem}.{key.precision}.{key.digest()}.engine"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def write_engine(path: str | Path, plan: bytes, key: EngineKey) -> Path:
    """Write a serialised engine and its JSON sidecar (each atomically: a temporary file of its own, then a
    rename; the pair under an exclusive lock, so two processes building the same engine never leave one's
    engine beside the other's sidecar).

    Args:
        path: the engine file.
        plan: the serialised engine (``IHostMemory`` bytes).
        key: what it was built from.

    Returns:
        The engine path.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": ENGINE_FORMAT, "version": SIDECAR_VERSION, "key": asdict(key),
            "engine_sha256": hashlib.sha256(plan).hexdigest(), "engine_bytes": len(plan),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    with open(p.with_name(p.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for target, data in ((p, bytes(plan)), (_sidecar(p), json.dumps(meta, indent=1).encode())):
            write_atomically(target, data)
    return p


def read_engine(path: str | Path, expected: EngineKey | None = None,
                check: Sequence[str] = ("tensorrt_version", "gpu_name")) -> tuple[bytes, EngineKey]:
    """Read an engine file after checking its sidecar, its bytes and its key.

    Args:
        path: the engine file.
        expected: the key it must have; None = only the sidecar and the bytes are checked.
        check: fields of ``expected`` compared (a cache lookup compares all of them; loading a given
            engine file compares the TensorRT version and the GPU, what makes a plan unusable).

    Returns:
        ``(engine bytes, the key from its sidecar)``.

    Raises:
        EngineFileError: no engine or no sidecar, an unreadable or foreign sidecar, bytes that differ
            from the sidecar's size or sha256 (corrupt or truncated), a key that differs from ``expected``.
    """
    p = Path(path)
    side = _sidecar(p)
    if not p.is_file():
        raise EngineFileError(f"{p}: engine file not found")
    if not side.is_file():
        raise EngineFileError(f"{p}: no sidecar {side.name}: not an engine built by ros2_tracker "
                              "(build it with TensorRTEngine.from_onnx / ros2-tracker build-engine)")
    try:
        meta = json.loads(side.read_text())
    except (OSError, ValueError) as exc:
        raise EngineFileError(f"{side}: unreadable engine sidecar ({type(exc).__name__}: {exc})") from None
    found = (meta.get("format"), meta.get("version")) if isinstance(meta, dict) else (None, None)
    if found != (ENGINE_FORMAT, SIDECAR_VERSION):
        raise EngineFileError(f"{side}: not a ros2_tracker engine sidecar version {SIDECAR_VERSION} "
                              f"(format {found[0]!r}, version {found[1]!r})")
    try:
        key = EngineKey(**meta["key"])
        want_sha, want_size = str(meta["engine_sha256"]), int(meta["engine_bytes"])
    except (ValueError, TypeError, KeyError, ArithmeticError) as exc:  # Infinity: OverflowError
        raise EngineFileError(f"{side}: unreadable engine sidecar ({type(exc).__name__}: {exc})") from None
    plan = p.read_bytes()
    if len(plan) != want_size or hashlib.sha256(plan).hexdigest() != want_sha:
        raise EngineFileError(f"{p}: engine file is corrupt or truncated ({len(plan)} bytes, sidecar says "
                              f"{want_size}; sha256 differs): delete it and rebuild")
    if expected is not None:
        diffs = [d for d in key.differences(expected) if d.split(":", 1)[0] in check]
        if diffs:
            raise EngineFileError(f"{p}: built for another set-up ({'; '.join(diffs)}): rebuild it")
    return plan, key


def onnx_inputs(onnx_path: str | Path) -> list[InputSpec]:
    """The graph inputs of an ONNX file (initialisers excluded), read with ``onnx`` without weights.

    Raises:
        EngineInputError: the file is missing or not a readable ONNX model, or ``onnx`` is not installed.
    """
    try:
        import onnx
    except ImportError:
        raise EngineInputError("reading an ONNX model's inputs needs the onnx package: pip install onnx") \
            from None

    p = Path(onnx_path)
    if not p.is_file():
        raise EngineInputError(f"{p}: ONNX file not found")
    try:
        model = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError and others
        raise EngineInputError(f"{p}: not a readable ONNX model ({type(exc).__name__})") from None
    inits = {i.name for i in model.graph.initializer}
    specs = []
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        t = vi.type.tensor_type
        shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in t.shape.dim)
        dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name if t.elem_type else "float32"
        specs.append(InputSpec(vi.name, shape, dtype))
    if not specs:
        raise EngineInputError(f"{p}: the ONNX graph has no inputs")
    return specs


def make_profile(inputs: Sequence[InputSpec],
                 shapes: Mapping[str, Sequence[Sequence[int]] | Sequence[int]] | None = None) -> ShapeProfile:
    """The shape profile of an engine: given shapes checked against the ONNX inputs.

    Args:
        inputs: the ONNX inputs (:func:`onnx_inputs`).
        shapes: ``name -> shape`` (a fixed shape) or ``name -> (min, opt, max)``; inputs with fully
            fixed ONNX shapes may be left out.

    Returns:
        ``name -> (min, opt, max)`` for every input.

    Raises:
        EngineInputError: an unknown input name, a wrong rank, a dimension that differs from a fixed
            ONNX dimension, ``min <= opt <= max`` violated, or a symbolic input without shapes.
    """
    shapes = dict(shapes or {})
    names = {s.name for s in inputs}
    unknown = sorted(set(shapes) - names)
    if unknown:
        raise EngineInputError(f"shapes given for {unknown}, the model's inputs are {sorted(names)}")
    profile: ShapeProfile = {}
    for spec in inputs:
        given = shapes.get(spec.name)
        if given is None:
            if any(d < 0 for d in spec.shape):
                raise EngineInputError(f"input {spec.name!r} has dynamic shape {_dims(spec.shape)}: give its "
                                       "min/opt/max shapes")
            profile[spec.name] = (spec.shape, spec.shape, spec.shape)
            continue
        triple = _as_triple(spec.name, given)
        for s in triple:
            _check_against_onnx(spec, s)
        if not all(a <= b <= c for a, b, c in zip(*triple, strict=True)):
            raise EngineInputError(f"input {spec.name!r}: profile {[_dims(s) for s in triple]} is not "
                                   "min <= opt <= max in every dimension")
        profile[spec.name] = triple
    return profile


def _as_triple(name: str, given) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    seq = [list(x) if isinstance(x, (list, tuple)) else x for x in given]
    if seq and all(isinstance(x, list) for x in seq):
        if len(seq) != 3:
            raise EngineInputError(f"input {name!r}: expected one shape or (min, opt, max), got {given!r}")
        return tuple(tuple(int(d) for d in s) for s in seq)  # type: ignore[return-value]
    shape = tuple(int(d) for d in seq)
    return shape, shape, shape


def _check_against_onnx(spec: InputSpec, shape: tuple[int, ...]) -> None:
    if len(shape) != len(spec.shape):
        raise EngineInputError(f"input {spec.name!r}: shape {_dims(shape)} has rank {len(shape)}, the "
                               f"model's input is {_dims(spec.shape)}")
    for i, (d, m) in enumerate(zip(shape, spec.shape, strict=True)):
        if d < 1 or (m > 0 and d != m):
            raise EngineInputError(f"input {spec.name!r}: dimension {i} is {d}, the model's input is "
                                   f"{_dims(spec.shape)} (input size mismatch)")


def check_input_shape(profile: ShapeProfile, name: str, shape: Sequence[int]) -> None:
    """Check one input shape against an engine's profile.

    Raises:
        EngineInputError: unknown input, wrong rank, or a dimension outside ``[min, max]``.
    """
    if name not in profile:
        raise EngineInputError(f"no input {name!r}; the engine's inputs are {sorted(profile)}")
    lo, _, hi = profile[name]
    shape = tuple(int(d) for d in shape)
    if len(shape) != len(lo) or not all(a <= d <= b for a, d, b in zip(lo, shape, hi, strict=True)):
        raise EngineInputError(f"input {name!r}: shape {_dims(shape)} outside the engine's profile "
                               f"{_dims(lo)} .. {_dims(hi)}")


def _dims(shape: Sequence[int]) -> str:
    return "x".join("?" if d < 0 else str(d) for d in shape)


def import_tensorrt():
    """The ``tensorrt`` module, after checking that a CUDA device is there for it.

    Raises:
        EngineUnavailable: TensorRT is not installed, or there is no CUDA device (through torch).
    """
    from ros2_tracker.backends.selection import cuda_unavailable_reason

    try:
        import tensorrt as trt
    except ImportError as exc:
        raise EngineUnavailable(f"the tensorrt Python module is not installed ({exc}); JetPack ships it, "
                                "on x86 pip install tensorrt") from None
    reason = cuda_unavailable_reason()
    if reason is not None:
        raise EngineUnavailable(f"TensorRT needs a CUDA device: {reason}")
    return trt


def _make_logger(trt):
    """A TensorRT logger that keeps error messages (for the build error) and prints warnings."""

    class _Logger(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)
            self.errors: list[str] = []

        def log(self, severity, msg) -> None:
            if severity <= trt.ILogger.Severity.ERROR:
                self.errors.append(str(msg))
            elif severity <= trt.ILogger.Severity.WARNING:
                warnings.warn(f"TensorRT: {msg}", RuntimeWarning, stacklevel=2)

    return _Logger()


def _make_calibrator(trt, batches: Sequence[np.ndarray], cache_path: Path):
    """An ``IInt8EntropyCalibrator2`` feeding ``batches`` (same shape each) from a CUDA buffer."""
    import torch

    class _Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._batches = list(batches)
            self._next = 0
            self._buffer = torch.empty(self._batches[0].shape, dtype=torch.float32, device="cuda") \
                if self._batches else None

        def get_batch_size(self) -> int:
            return int(self._batches[0].shape[0]) if self._batches else 1

        def get_batch(self, names, p_str=None):  # p_str: TensorRT's signature
            if self._next >= len(self._batches) or self._buffer is None:
                return None
            self._buffer.copy_(torch.from_numpy(np.ascontiguousarray(self._batches[self._next], np.float32)))
            self._next += 1
            return [int(self._buffer.data_ptr())] * len(names)

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache) -> None:
            try:
                cache_path.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(cache_path, bytes(cache))
            except OSError as exc:  # the next INT8 build calibrates again
                warnings.warn(f"INT8 calibration not cached ({exc})", RuntimeWarning, stacklevel=2)

    return _Calibrator()


def _build_plan(trt, onnx_path: Path, precision: str, profile: ShapeProfile, *,
                calibrator=None, workspace_mib: int = 1024) -> bytes:
    """Parse the ONNX file and build a serialised engine.

    Raises:
        EngineBuildError: the parser or the builder failed (with TensorRT's first error messages;
            out-of-memory is named as such).
    """
    logger = _make_logger(trt)
    builder = trt.Builder(logger)
    explicit = getattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH", None)  # TensorRT 8.x needs it;
    network = builder.create_network(0 if explicit is None else 1 << int(explicit))  # 10 ignores it
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errs = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError(f"{onnx_path}: TensorRT's ONNX parser failed: {'; '.join(errs[:3])}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mib) << 20)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    opt_profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profile.items():
        opt_profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(opt_profile)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = calibrator
        config.set_calibration_profile(opt_profile)
    try:
        plan = builder.build_serialized_network(network, config)
    except (RuntimeError, MemoryError) as exc:
        raise EngineBuildError(f"{onnx_path}: TensorRT build failed ({type(exc).__name__}: {exc})") from None
    if plan is None:
        text = "; ".join(logger.errors[-3:]) or "no message"
        oom = " (out of GPU memory: lower workspace_mib or the max batch)" if "memory" in text.lower() else ""
        raise EngineBuildError(f"{onnx_path}: TensorRT could not build the {precision} engine{oom}: {text}")
    return bytes(plan)


class TensorRTEngine:
    """A deserialised TensorRT engine with one execution context; runs numpy arrays or CUDA tensors.

    Build or load it with :meth:`from_onnx` (cached) or :meth:`load` (a given engine file).

    Args:
        plan: serialised engine bytes.
        key: what the engine was built from (its sidecar).
        path: the engine file.
        device: CUDA device index.

    Raises:
        EngineUnavailable: no TensorRT or no CUDA device.
        EngineFileError: TensorRT cannot deserialise the bytes.
    """

    def __init__(self, plan: bytes, key: EngineKey, path: Path, device: int = 0) -> None:
        import torch

        trt = import_tensorrt()
        self.key, self.path = key, Path(path)
        self.built = False
        self._device = torch.device("cuda", device)
        self._logger = _make_logger(trt)
        with torch.cuda.device(self._device):
            self._runtime = trt.Runtime(self._logger)
            self._engine = self._runtime.deserialize_cuda_engine(plan)
            if self._engine is None:
                raise EngineFileError(f"{path}: TensorRT cannot deserialise this engine "
                                      f"({'; '.join(self._logger.errors[-2:]) or 'no message'}): rebuild it")
            self._context = self._engine.create_execution_context()
            if self._context is None:
                raise EngineBuildError(f"{path}: TensorRT could not create an execution context (out of GPU "
                                       "memory?)")
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        is_input = {n: self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.input_names = [n for n in names if is_input[n]]
        self.output_names = [n for n in names if not is_input[n]]
        self._dtypes = {n: torch.from_numpy(np.empty(0, trt.nptype(self._engine.get_tensor_dtype(n)))).dtype
                        for n in names}
        self.profile: ShapeProfile = {
            n: tuple(tuple(int(d) for d in s) for s in self._engine.get_tensor_profile_shape(n, 0))
            for n in self.input_names}

    @classmethod
    def from_onnx(cls, onnx_path: str | Path, cache_dir: str | Path, precision: str = "fp16", *,
                  shapes: Mapping[str, Any] | None = None,
                  calibration: Callable[[], Iterable[np.ndarray]] | Sequence[np.ndarray] | None = None,
                  workspace_mib: int = 1024, device: int = 0, rebuild: bool = False) -> TensorRTEngine:
        """Build (or reuse from ``cache_dir``) the engine of an ONNX file.

        Args:
            onnx_path: the ONNX model.
            cache_dir: engine cache folder (created).
            precision: ``fp32``, ``fp16`` or ``int8``.
            shapes: ``input -> shape`` or ``input -> (min, opt, max)`` (see :func:`make_profile`);
                required for inputs with symbolic dimensions, e.g. the crop batch of a re-ID model.
            calibration: INT8 only: preprocessed input batches of the first input (each the profile's
                opt shape, float32) from real frames, or a callable giving them; a calibration cache
                next to the engine is reused and is what makes a second INT8 build fast.
            workspace_mib: TensorRT builder workspace limit [MiB].
            device: CUDA device index.
            rebuild: build even when a valid cached engine exists.

        Returns:
            The engine; ``engine.path`` is the cached file, ``engine.built`` says whether it was built now.

        Raises:
            EngineUnavailable: no TensorRT or no CUDA device.
            EngineInputError: shapes that do not fit the ONNX inputs, or an unknown precision.
            EngineBuildError: the build failed (incl. out of GPU memory).
        """
        if precision not in PRECISIONS:
            raise EngineInputError(f"precision: {precision!r} is not one of {', '.join(PRECISIONS)}")
        onnx_path = Path(onnx_path).expanduser()
        profile = make_profile(onnx_inputs(onnx_path), shapes)
        trt = import_tensorrt()
        from ros2_tracker.backends.torch_cuda import gpu_name

        batches = _calibration_batches(calibration, precision, onnx_path)
        key = EngineKey(onnx_sha256(onnx_path), trt.__version__, gpu_name(device), precision,
                        profile_text(profile), _batches_sha256(batches))
        path = engine_path(cache_dir, onnx_path, key)
        if path.exists() and not rebuild:
            try:
                plan, _ = read_engine(path, key, check=tuple(asdict(key)))
                return cls(plan, key, path, device)
            except EngineFileError as exc:
                warnings.warn(f"rebuilding the TensorRT engine: {exc}", RuntimeWarning, stacklevel=2)
        calibrator = None
        if precision == "int8":
            calibrator = _make_calibrator(trt, batches, path.with_suffix(".calib"))
        plan = _build_plan(trt, onnx_path, precision, profile, calibrator=calibrator,
                           workspace_mib=workspace_mib)
        try:
            write_engine(path, plan, key)
        except OSError as exc:  # a read-only cache folder: the engine runs, it is only not kept
            warnings.warn(f"TensorRT engine not cached ({exc}); it is built again at the next start",
                          RuntimeWarning, stacklevel=2)
        engine = cls(plan, key, path, device)
        engine.built = True
        return engine

    @classmethod
    def load(cls, engine_file: str | Path, device: int = 0) -> TensorRTEngine:
        """Load a given engine file, checking its sidecar against this TensorRT version and GPU.

        Raises:
            EngineUnavailable: no TensorRT or no CUDA device.
            EngineFileError: missing, corrupt or mismatched engine file.
        """
        trt = import_tensorrt()
        from ros2_tracker.backends.torch_cuda import gpu_name

        plan, key = read_engine(engine_file)
        here = EngineKey(key.onnx_sha256, trt.__version__, gpu_name(device), key.precision, key.profile,
                         key.calibration)
        read_engine(engine_file, here)
        return cls(plan, key, Path(engine_file), device)

    def infer_torch(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Run the engine on torch tensors (moved to the engine's device and dtype when needed).

        Args:
            inputs: ``name -> tensor`` for every input; shapes within the profile.

        Returns:
            ``name -> CUDA tensor`` for every output (the engine's dtypes, e.g. float32).

        Raises:
            EngineInputError: a missing input, or a shape outside the profile.
            BackendUnavailable: TensorRT's execution failed.
        """
        import torch

        missing = [n for n in self.input_names if n not in inputs]
        if missing:
            raise EngineInputError(f"missing inputs {missing}; the engine's inputs are {self.input_names}")
        ctx, keep, outs = self._context, [], {}
        with torch.cuda.device(self._device):
            for name in self.input_names:
                t = torch.as_tensor(inputs[name]).to(self._device, self._dtypes[name]).contiguous()
                check_input_shape(self.profile, name, t.shape)
                ctx.set_input_shape(name, tuple(t.shape))
                ctx.set_tensor_address(name, t.data_ptr())
                keep.append(t)
            for name in self.output_names:
                shape = tuple(ctx.get_tensor_shape(name))
                out = torch.empty(shape, dtype=self._dtypes[name], device=self._device)
                ctx.set_tensor_address(name, out.data_ptr())
                outs[name] = out
            stream = torch.cuda.current_stream(self._device)
            if not ctx.execute_async_v3(stream.cuda_stream):
                raise BackendUnavailable(f"{self.path}: TensorRT execution failed")
            stream.synchronize()
        return outs

    def infer(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the engine on numpy arrays; returns ``name -> numpy array`` for every output."""
        import torch

        feeds = {n: torch.from_numpy(np.ascontiguousarray(a)) for n, a in inputs.items()}
        return {n: t.cpu().numpy() for n, t in self.infer_torch(feeds).items()}


def _calibration_batches(calibration, precision: str, onnx_path: Path) -> list[np.ndarray]:
    if precision != "int8":
        return []
    batches = list(calibration() if callable(calibration) else (calibration or []))
    if not batches:
        raise EngineInputError(f"{onnx_path}: INT8 needs calibration batches from real frames")
    return [np.ascontiguousarray(b, dtype=np.float32) for b in batches]


def _batches_sha256(batches: Sequence[np.ndarray]) -> str:
    if not batches:
        return ""
    h = hashlib.sha256()
    for b in batches:
        h.update(str(b.shape).encode())
        h.update(b.tobytes())
    return h.hexdigest()
