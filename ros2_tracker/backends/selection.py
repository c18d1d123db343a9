"""Which runtime runs a network here: the ``backend: torch | onnxruntime | tensorrt`` choice and its fallback.

Every network's factory (re-ID embedder, detector, box regressor, ...) asks for a backend through
:func:`create_with_fallback` (or :func:`resolve_backend` when it only needs the decision). The chain is
``tensorrt -> onnxruntime -> torch``, starting at the requested backend and limited to the backends the
network has: a backend is skipped when its runtime is not installed, when it needs a CUDA device and
there is none, or when its builder raises :class:`BackendUnavailable` (a TensorRT engine that fails to
build, out of GPU memory included, or a corrupt engine file). When anything was skipped, ONE
:class:`BackendFallbackWarning` says what was asked for, what runs instead and why, so a node or the
CLI keeps running on the CPU path. Errors that every backend would hit (a missing model file, invalid
parameters) are not caught: they reach the caller unchanged.

Runtimes are probed with ``importlib.util.find_spec`` and torch only when CUDA matters, so importing this
module imports no runtime.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from ros2_tracker.core.config import ConfigError

__all__ = [
    "BACKENDS",
    "DEVICES",
    "FALLBACK_ORDER",
    "BackendChoice",
    "BackendFallbackWarning",
    "BackendUnavailable",
    "create_with_fallback",
    "cuda_unavailable_reason",
    "fallback_chain",
    "resolve_backend",
    "unavailable_reason",
]

BACKENDS = ("torch", "onnxruntime", "tensorrt")
"""Backend names accepted by every network's ``backend`` parameter."""
FALLBACK_ORDER = ("tensorrt", "onnxruntime", "torch")
"""Order of the fallback chain: a requested backend falls back to those after it."""
DEVICES = ("auto", "cpu", "cuda")
"""Device requests: ``auto`` = the first CUDA device when there is one, else the CPU; ``cuda:N`` too."""

T = TypeVar("T")


class BackendUnavailable(RuntimeError):
    """A backend cannot run here (runtime missing, no CUDA device, engine build failed or out of memory,
    corrupt engine file); the message says why. Factories fall back to the next backend on it."""


class BackendFallbackWarning(UserWarning):
    """The requested backend could not be used; the message names the one used instead and why."""


@dataclass(frozen=True)
class BackendChoice:
    """The backend a network runs on, and why it is not the requested one when it is not.

    Attributes:
        requested: the backend the configuration asked for.
        backend: the backend used.
        device: ``"cpu"`` or ``"cuda:N"``.
        skipped: ``(backend or backend:device, reason)`` for each option passed over, in chain order.
    """

    requested: str
    backend: str
    device: str
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def fell_back(self) -> bool:
        """True when something requested (backend or device) could not be used."""
        return bool(self.skipped)

    def describe(self, what: str = "model") -> str:
        """One line: ``"<what>: backend 'tensorrt' unavailable (reason); using onnxruntime on cpu"``."""
        if not self.skipped:
            return f"{what}: using {self.backend} on {self.device}"
        why = "; ".join(f"{name}: {reason}" for name, reason in self.skipped)
        if self.backend == self.requested:  # the backend runs, on another device than asked
            return f"{what}: the requested device not used ({why}); using {self.backend} on {self.device}"
        return f"{what}: backend {self.requested!r} not used ({why}); using {self.backend} on {self.device}"


def fallback_chain(requested: str, supported: Iterable[str] = BACKENDS) -> tuple[str, ...]:
    """The backends to try, in order: ``requested``, then those after it in :data:`FALLBACK_ORDER`
    that ``supported`` contains.

    Raises:
        ConfigError: ``requested`` is not a backend name or not one the network supports.
    """
    have = set(supported)
    if requested not in BACKENDS:
        raise ConfigError(f"backend: {requested!r} is not one of {', '.join(BACKENDS)}")
    if requested not in have:
        offered = ", ".join(b for b in FALLBACK_ORDER if b in have)
        raise ConfigError(f"backend: {requested!r} is not available for this model (it has: {offered})")
    start = FALLBACK_ORDER.index(requested)
    return tuple(b for b in FALLBACK_ORDER[start:] if b in have)


def cuda_unavailable_reason() -> str | None:
    """Why no CUDA device can be used through torch here, or None when one can."""
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (CUDA buffers and devices go through torch)"
    import torch

    if torch.version.cuda is None:
        return f"this torch build ({torch.__version__}) has no CUDA support"
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    return None


def unavailable_reason(backend: str, device: str = "auto") -> str | None:
    """Why ``backend`` cannot run here (on ``device``), or None when it can.

    Args:
        backend: one of :data:`BACKENDS`.
        device: the configured device (``auto``, ``cpu``, ``cuda``, ``cuda:N``).
    """
    if backend == "tensorrt":
        if importlib.util.find_spec("tensorrt") is None:
            return ("the tensorrt Python module is not installed (JetPack ships it; on x86: "
                    "pip install tensorrt)")
        if device == "cpu":
            return "TensorRT needs a CUDA device and device is 'cpu'"
        return cuda_unavailable_reason()
    if backend in ("onnxruntime", "torch"):
        if importlib.util.find_spec(backend) is None:
            return f"{backend} is not installed (pip install {backend})"
        return None
    raise ConfigError(f"backend: {backend!r} is not one of {', '.join(BACKENDS)}")


def _check_device(device: str) -> None:
    if device not in DEVICES and not re.fullmatch(r"cuda:\d+", device):
        raise ConfigError(f"device: {device!r} is not one of auto, cpu, cuda, cuda:N")


def _device_for(backend: str, device: str) -> tuple[str, str | None]:
    """``(device string, reason the requested device was not used or None)`` for a usable backend
    (``device`` checked by the caller)."""
    if backend == "onnxruntime":  # the CPU execution provider only (backends/onnxruntime.py)
        return "cpu", (None if device in ("auto", "cpu") else "ONNX Runtime runs on the CPU here")
    cuda = "cuda:0" if device in ("auto", "cuda") else device
    if backend == "tensorrt":
        return cuda, None
    if device == "cpu":
        return "cpu", None
    reason = cuda_unavailable_reason()
    if reason is None:
        return cuda, None
    return "cpu", (None if device == "auto" else reason)


def resolve_backend(requested: str, *, supported: Iterable[str] = BACKENDS, device: str = "auto",
                    what: str = "model", warn: bool = True) -> BackendChoice:
    """First usable backend of the fallback chain of ``requested`` (no model is loaded).

    Args:
        requested: the configured backend.
        supported: the backends the network has.
        device: the configured device (``auto``, ``cpu``, ``cuda``, ``cuda:N``).
        what: how to name the network in the warning, e.g. ``"re-ID embedder"``.
        warn: emit one :class:`BackendFallbackWarning` when something requested is not used.

    Returns:
        The choice.

    Raises:
        ConfigError: unknown backend or device, or a backend the network does not have.
        BackendUnavailable: no backend of the chain can run here (the message lists why for each).
    """
    _check_device(device)  # a bad one is refused as such, whatever this machine has installed
    skipped: list[tuple[str, str]] = []
    for backend in fallback_chain(requested, supported):
        reason = unavailable_reason(backend, device)
        if reason is not None:
            skipped.append((backend, reason))
            continue
        dev, dev_reason = _device_for(backend, device)
        if dev_reason is not None:
            skipped.append((f"{backend}:{device}", dev_reason))
        choice = BackendChoice(requested, backend, dev, tuple(skipped))
        if warn and choice.fell_back:
            warnings.warn(choice.describe(what), BackendFallbackWarning, stacklevel=2)
        return choice
    raise BackendUnavailable(_none_left(what, skipped))


def create_with_fallback(requested: str, builders: Mapping[str, Callable[[BackendChoice], T]], *,
                         device: str = "auto", what: str = "model") -> tuple[T, BackendChoice]:
    """Build a network with the first backend of the chain that is usable and builds.

    Args:
        requested: the configured backend.
        builders: ``backend name -> build(choice)`` for each backend the network has; a builder raises
            :class:`BackendUnavailable` to pass on to the next backend (engine build failed, out of
            memory, corrupt engine file); any other exception reaches the caller.
        device: the configured device.
        what: how to name the network in messages.

    Returns:
        ``(the built object, the choice)``; one :class:`BackendFallbackWarning` was emitted when the
        choice is not what was requested.

    Raises:
        ConfigError: unknown backend or device, or a backend the network does not have.
        BackendUnavailable: no backend could be built (the message lists why for each).
    """
    _check_device(device)  # as resolve_backend: a bad one is refused as such
    skipped: list[tuple[str, str]] = []
    for backend in fallback_chain(requested, builders):
        reason = unavailable_reason(backend, device)
        if reason is not None:
            skipped.append((backend, reason))
            continue
        dev, dev_reason = _device_for(backend, device)
        extra = ((f"{backend}:{device}", dev_reason),) if dev_reason else ()
        choice = BackendChoice(requested, backend, dev, (*skipped, *extra))
        try:
            built = builders[backend](choice)
        except BackendUnavailable as exc:
            skipped.append((backend, str(exc)))
            continue
        if choice.fell_back:
            warnings.warn(choice.describe(what), BackendFallbackWarning, stacklevel=2)
        return built, choice
    raise BackendUnavailable(_none_left(what, skipped))


def _none_left(what: str, skipped: list[tuple[str, str]]) -> str:
    why = "; ".join(f"{name}: {reason}" for name, reason in skipped)
    return f"{what}: no backend can run here ({why})"
