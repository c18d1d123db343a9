"""PyTorch device handling shared by the torch backends: device selection, FP16 autocast, GPU description.

torch is imported inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ros2_tracker.core.config import ConfigError

__all__ = ["autocast", "describe_device", "gpu_name", "select_device", "synchronize"]


def select_device(requested: str = "auto") -> tuple[Any, str | None]:
    """The torch device for a configured device string.

    Args:
        requested: ``auto`` (first CUDA device if any, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Returns:
        ``(torch.device, reason)``: ``reason`` says why a requested CUDA device is not used (the CPU is
        returned instead), None otherwise.

    Raises:
        ConfigError: not a device string, or ``cuda:N`` beyond the devices present.
    """
    import torch

    if requested not in ("auto", "cpu", "cuda") and not requested.startswith("cuda:"):
        raise ConfigError(f"device: {requested!r} is not one of auto, cpu, cuda, cuda:N")
    if requested == "cpu":
        return torch.device("cpu"), None
    if not torch.cuda.is_available():
        why = None if requested == "auto" else "no CUDA device (torch.cuda.is_available() is False)"
        return torch.device("cpu"), why
    dev = torch.device("cuda:0" if requested in ("auto", "cuda") else requested)
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(f"device: {requested!r}, but there are {torch.cuda.device_count()} CUDA devices")
    return dev, None


def gpu_name(device: Any = None) -> str:
    """Name of the CUDA device (e.g. ``"NVIDIA H100 80GB HBM3"``); ``"cpu"`` without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    return torch.cuda.get_device_name(device if device is not None else 0)


def describe_device(device: Any) -> str:
    """``"cuda:0 (NVIDIA H100 ...)"`` or ``"cpu"``."""
    dev = str(device)
    return f"{dev} ({gpu_name(device)})" if dev.startswith("cuda") else dev


def autocast(device: Any, fp16: bool):
    """Context manager: FP16 autocast on a CUDA device when ``fp16``, nothing otherwise.

    Args:
        device: torch device the model runs on.
        fp16: run matmuls/convolutions in float16 (CUDA only; the CPU stays float32).
    """
    import torch

    if fp16 and str(device).startswith("cuda"):
        return torch.autocast(device_type="cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def synchronize(device: Any) -> None:
    """Wait for the CUDA device's queued work (for timing); nothing on the CPU."""
    import torch

    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)
