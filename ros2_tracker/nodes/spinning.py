"""Running a node: the QoS choices nodes offer, spinning until shutdown, and a node's ``main``."""

from __future__ import annotations

import collections
import os
import re
import signal
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["SUPERVISOR_PID_ENV", "SkipCounter", "destroy_then_warn", "qos_profile", "run_node",
           "spin_until_shutdown", "transport_topic"]

SUPERVISOR_PID_ENV = "ROS2_TRACKER_SUPERVISOR_PID"
"""Set by :class:`~ros2_tracker.launching.Supervisor` for its nodes: the pid whose death stops them."""
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# the pip-only modules nodes import while they start (rosdep installs none of them): module -> pip name.
# Any other missing module is a fault of the installation or of the code, and keeps its traceback.
_PIP_PACKAGES = {"onnxruntime": "onnxruntime", "onnx": "onnx", "mcap": "mcap",
                 "mcap_ros2": "mcap-ros2-support", "rosbags": "rosbags", "trackeval": "trackeval",
                 "zstandard": "zstandard", "lz4": "lz4", "torch": "torch", "torchvision": "torchvision",
                 "cv2": "opencv-python"}

_SHUTDOWN_POLL_S = 0.5  # longest wait of a spinning node between two looks at its context


def spin_until_shutdown(node: Any, poll_s: float = _SHUTDOWN_POLL_S) -> None:
    """Spin ``node`` until its context shuts down, treating an exception raised after shutdown as a clean
    stop.

    SIGINT/SIGTERM shut the context down while a callback ran: its next publish raises "context is
    invalid". That is a clean stop; an exception while the context is still valid is a real error
    and is re-raised. Each wait is bounded by ``poll_s``: rclpy's signal handler shuts the context down
    from C++, where the Python on-shutdown callback that wakes an executor does not run, and
    ``rclpy.spin``'s unbounded wait then sometimes slept on: 10 of 700 SIGTERMs to a tracker_node left it
    running for over 5 s (and a node test failed on it now and then); with the bounded wait none of 700 did.
    """
    from rclpy.executors import SingleThreadedExecutor

    context = node.context
    if not context.ok():  # a stop between the node's start and its spin
        return
    try:
        executor = SingleThreadedExecutor(context=context)
    except Exception:  # a stop between the node's start and its spin: the context is already shut down
        if context.ok():
            raise
        return
    executor.add_node(node)
    try:
        while context.ok():
            executor.spin_once(timeout_sec=poll_s)
    except Exception:
        if context.ok():
            raise
    finally:
        executor.shutdown(timeout_sec=0.0)


def qos_profile(kind: str, depth: int) -> Any:
    """``"sensor_data"`` (best effort, volatile) or ``"reliable"`` QoS with this history depth."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    if kind == "sensor_data":
        profile = QoSProfile(depth=depth)
        profile.reliability = qos_profile_sensor_data.reliability
        profile.durability = qos_profile_sensor_data.durability
        return profile
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE)


def transport_topic(node: Any, base: str, transport: str) -> str:
    """The topic of an image_transport ``transport`` (``compressedDepth``) of the images on ``base``: under
    the base name as ``node`` resolves it, remapping included, as image_transport does, so a remap of the
    base topic moves its transports with it."""
    return node.resolve_topic_name(base).rstrip("/") + "/" + transport


def drive(node: Any, body: Callable[[Any], None], after: Callable[[], None] | None = None) -> None:
    """Run ``body(executor)`` with ``node`` on a single-threaded executor of its own (a node that drives its
    own loop, as replay_node and recorder_node do: ``run_node(..., run=...)``); Ctrl-C and an external
    shutdown are clean stops; then ``after()`` and the executor shut down, whatever happened."""
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    if not node.context.ok():  # a stop between the node's start and its loop
        if after is not None:
            after()
        return
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        body(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if after is not None:
            after()
        executor.shutdown()


def destroy_then_warn(node: Any, destroy: Callable[[], None], lines: list[str]) -> None:
    """A node's last words: ``destroy()`` it (its base class's ``destroy_node``), then log ``lines`` as
    warnings under its logger's name. After the node, not through it: once a signal has shut the context
    down, its rosout publisher would add "Failed to publish log message to rosout" to every line."""
    import rclpy.logging

    logger = rclpy.logging.get_logger(node.get_logger().name)
    destroy()
    for line in lines:
        logger.warning(line)


class SkipCounter:
    """Inputs a node skipped (bad images) counted by kind of reason, and when to warn about them.

    A warning throttled per call site shows one reason per window: images bad in two ways (a wrong encoding,
    then a truncated buffer) would show the first alone. :meth:`add` says a warning is due for the first
    reason of each kind, and otherwise at most once every ``every_s`` seconds; :meth:`last_words` gives the
    totals for the node's shutdown. A reason's kind is its text with the numbers (sizes, steps) taken out;
    at most ``kinds`` kinds are told apart (a pathological source cannot grow the table), later ones count
    as "other".
    """

    _NUMBER = re.compile(r"\b\d+(?:\.\d+)?\b")  # numbers on their own, not the 8 of bgr8
    _KIND_CHARS = 160

    def __init__(self, every_s: float, kinds: int = 32) -> None:
        self.every_s = every_s
        self.kinds = kinds
        self.by_kind: collections.Counter[str] = collections.Counter()
        self._warned_at: float | None = None

    @property
    def total(self) -> int:
        """Inputs skipped so far."""
        return sum(self.by_kind.values())

    def add(self, reason: str, now: float) -> bool:
        """Count one skipped input and its ``reason`` at ``now`` (monotonic seconds); True when a warning is
        due: the reason is the first of its kind, or ``every_s`` passed since the last warning."""
        kind = self._NUMBER.sub("#", reason)[: self._KIND_CHARS]
        if kind not in self.by_kind and len(self.by_kind) >= self.kinds:
            kind = "other"
        due = kind not in self.by_kind or self._warned_at is None or now - self._warned_at >= self.every_s
        self.by_kind[kind] += 1
        if due:
            self._warned_at = now
        return due

    def last_words(self, what: str) -> list[str]:
        """The shutdown line: ``"<n> <what> in all: <count> x <kind>; ..."`` (empty when none was skipped)."""
        if not self.by_kind:
            return []
        kinds = "; ".join(f"{n} x {kind}" for kind, n in self.by_kind.most_common())
        return [f"{self.total} {what} in all: {kinds}"]


def latched_qos() -> Any:
    """Reliable, transient local, depth 1: a subscriber that comes later still gets the last message."""
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def run_node(make_node: Callable[[], Any], name: str, args: list[str] | None = None, *,
             fatal: str = "invalid parameter", errors: tuple[type[Exception], ...] = (),
             run: Callable[[Any], None] | None = None, signal_handler_options: Any = None) -> int:
    """A node's ``main``: init, build, spin until shutdown; 2 when a parameter or model is invalid.

    ``make_node`` raising :class:`~ros2_tracker.core.config.ConfigError` (or one of ``errors``) at
    start-up is logged as one fatal ``"{fatal}: {error}"`` line (no traceback) and gives exit status 2, as
    do unparsable ROS arguments and a missing pip-only module (one line naming it); a signal while the node
    is built, Ctrl-C and an external shutdown are clean stops (0). ``run(node)`` drives the built node
    (default: :func:`spin_until_shutdown`), which is then destroyed; ``signal_handler_options`` is passed
    to ``rclpy.init`` (default: rclpy's handlers).
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.impl.implementation_singleton import rclpy_implementation

    RCLError = rclpy_implementation.RCLError

    from ros2_tracker.core.config import ConfigError

    options = {} if signal_handler_options is None else {"signal_handler_options": signal_handler_options}
    _stacks_on_request()
    try:
        init = rclpy.init(args=args, **options)
        _stop_with_supervisor()  # after the signal handlers are in place: a clean stop
    except RCLError as exc:  # an unparsable override (e.g. a list mixing 0 and 0.5): rcl logged its line
        detail = str(exc).split(", at /")[0]
        hint = " (a list takes one type: write 0.0, not 0, beside floats)" if "same type" in detail else ""
        rclpy.logging.get_logger(name).fatal(f"invalid ROS arguments: {detail}{hint}")
        return 2
    try:
        with init:
            try:
                node = make_node()
            except (ConfigError, *errors) as exc:
                rclpy.logging.get_logger(name).fatal(f"{fatal}: {exc}")
                return 2
            except RCLError as exc:  # rcl refused the node: e.g. a namespace ending in '/' (__ns:=/cam1/)
                if not rclpy.ok():
                    return 0  # SIGINT/SIGTERM while it started (as below)
                rclpy.logging.get_logger(name).fatal(f"cannot start: {str(exc).split(', at /')[0]}")
                return 2
            except ModuleNotFoundError as exc:
                package = _PIP_PACKAGES.get((exc.name or "").split(".")[0])
                if package is None:
                    raise
                rclpy.logging.get_logger(name).fatal(
                    f"cannot start: the Python module {exc.name} is not installed (pip install {package}; "
                    "README, section ROS 2)")
                return 2
            except Exception:
                if rclpy.ok():
                    raise
                return 0  # SIGINT/SIGTERM while it started: its next publish found the context shut down
            _warn_unused_overrides(node)
            try:
                (run or spin_until_shutdown)(node)
            finally:  # the node before the context (ros2/examples' order), not left to garbage collection
                node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


def _warn_unused_overrides(node: Any) -> None:
    """One warning naming the parameters given to the node (``-p``, a params file) that it does not have:
    rclpy ignores them silently, so ``-p max_lost_sec:=3`` for ``max_lost_s`` changed nothing, unsaid."""
    overrides = getattr(node, "_parameter_overrides", None)  # rclpy's own record of them
    if not isinstance(overrides, dict):
        return
    unused = sorted(name for name in overrides
                    if not name.startswith("qos_overrides.") and not node.has_parameter(name))
    if unused:
        names = ", ".join(unused[:8]) + (f", ... ({len(unused)} in all)" if len(unused) > 8 else "")
        node.get_logger().warning(
            f"ignoring parameter(s) {names}: not parameters of {node.get_name()} as configured "
            "(misspelt? `ros2 param list` shows its parameters)")


def _stacks_on_request() -> None:
    """``kill -USR1 <pid>`` (the supervisor's, before it kills a node that would not stop) writes every
    Python thread's stack to stderr and the node goes on: where a hung node is. Not where SIGUSR1 already
    has a handler, nor without a stderr to write to."""
    import faulthandler

    if not hasattr(signal, "SIGUSR1") or signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, None):
        return
    try:
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    except (AttributeError, ValueError, OSError, RuntimeError):  # no usable stderr (fileno), no support
        pass


def _stop_with_supervisor() -> None:
    """A node started by ``ros2-tracker launch`` / ``replay`` (:data:`SUPERVISOR_PID_ENV` set) gets SIGTERM,
    a clean stop, when that process dies however it dies (SIGKILL, out of memory): the nodes run in
    sessions of their own, so nothing else would stop them, and a recorder's bag would never be closed.
    Linux only (``prctl(PR_SET_PDEATHSIG)``); elsewhere nothing changes."""
    pid = os.environ.get(SUPERVISOR_PID_ENV, "")
    if not pid.isdigit() or not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != int(pid):  # it died before the request: stop now
        os.kill(os.getpid(), signal.SIGTERM)
