"""ONNX Runtime sessions for the project's networks (detector, re-ID embedder, ...), opened one way.

The CPU execution provider everywhere; thread counts from each component's config; ORT's own
warnings silenced (errors only); every failure to open a model becomes the caller's load-error type
with a one-line message naming the file. :func:`add_onnx_metadata` writes the ``metadata_props`` that
exported models carry (their config, format tag) for the loaders to check.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["add_onnx_metadata", "open_session", "session_options"]


def open_session(model_path: str, num_threads: int, *, what: str, error: type[Exception]) -> tuple[Any, Path]:
    """Open ``model_path`` with ONNX Runtime on the CPU.

    Args:
        model_path: the .onnx file ("" = not configured).
        num_threads: intra-op threads (0 = ORT's default).
        what: how to name the expected model in messages, e.g. "the YOLOX ONNX file (yolox_nano.onnx)".
        error: exception type to raise (the component's load error).

    Returns:
        (session, resolved path).
    """
    import onnxruntime as ort

    if not model_path:
        raise error(f"model_path is not set: give {what}")
    path = Path(model_path).expanduser()
    if not path.is_file():
        what_is = "a folder, not a model file" if path.is_dir() else "file not found"
        raise error(f"model_path: {path}: {what_is}")
    try:
        session = ort.InferenceSession(str(path), sess_options=session_options(num_threads),
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises private exception types (InvalidProtobuf, Fail, ...)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise error(f"model_path: {path}: not a loadable ONNX model ({detail})") from None
    return session, path


def session_options(num_threads: int) -> Any:
    """The project's ONNX Runtime session options: ``num_threads`` intra-op threads (0 = ORT's default),
    one sequential inter-op thread, errors only in ORT's log."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors only: ORT's warnings go to stderr, not to our users
    return opts


def add_onnx_metadata(path: str | Path, props: dict[str, str]) -> None:
    """Add ``props`` to the ``metadata_props`` of the ONNX file at ``path`` (rewritten in place)."""
    import onnx

    model = onnx.load(str(path))
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
