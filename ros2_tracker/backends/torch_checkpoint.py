"""Checkpoint files of the torch models (re-ID, detector, single-target, motion): one way to write and read.

A checkpoint is a dict of tensors and plain values, written atomically (a temporary file, then a rename, so
a crash never leaves half a file) and read with ``torch.load(..., weights_only=True)`` (no code runs on
load). Each model's own ``load_checkpoint`` checks the payload it gets; this module only turns a missing
or unreadable file into the caller's error type with a one-line reason.

torch is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ros2_tracker.io.files import write_atomically

__all__ = ["read_checkpoint", "write_checkpoint"]


def write_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` to ``path`` (folders created, the file atomically replaced); returns the path."""
    import torch

    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(p, lambda f: torch.save(payload, f))


def read_checkpoint(path: str | Path, error: type[Exception]) -> Any:
    """The payload of a checkpoint file, read with ``weights_only=True`` onto the CPU.

    Raises:
        error: the file is missing, or torch cannot read it (the message gives the first line of why).
    """
    import torch

    p = Path(path).expanduser()
    if not p.is_file():
        raise error(f"{p}: checkpoint file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on unusual pickle protocols of junk files
            return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        lines = str(exc).strip().splitlines()
        why = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
        raise error(f"{p}: not a readable checkpoint ({why})") from None
