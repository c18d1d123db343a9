"""Shared fixtures: paths to the repository, its venv and ../shared (absent on users' machines)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from ros2_tracker.launching import private_domain_id

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
DATA = SHARED / "data"
MODELS = SHARED / "models"
VENV_BIN = Path(sys.executable).parent
CLI = VENV_BIN / "ros2-tracker"
if not CLI.exists():  # a colcon install (colcon test): the CLI is on PATH, in install/ros2_tracker/bin
    CLI = Path(shutil.which("ros2-tracker") or CLI)

# colcon test runs the launch_testing test on its own (CMakeLists.txt): not a second time in this run
collect_ignore_glob = ["launch/*"] if os.environ.get("ROS2_TRACKER_LAUNCH_TEST_SEPARATE") else []


def require_modules(*modules: str) -> None:
    """Skip the test, with the pip command, when one of the pip-only ``modules`` is not installed: a robot's
    colcon test has only what rosdep installs (README, section ROS 2). Their pip names are the module names
    (onnxruntime, onnx, mcap, rosbags, trackeval, torch)."""
    for module in modules:
        pytest.importorskip(module, reason=f"{module} is not installed (pip install {module})")


def video_frames(path) -> tuple[list, float]:
    """The frames (BGR arrays) of a video file, read back with OpenCV, and its frame rate."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    frames = []
    while (got := capture.read())[0]:
        frames.append(got[1])
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return frames, fps


def png_claiming(width: int, height: int, bit_depth: int = 8, colour_type: int = 2) -> bytes:
    """A PNG whose header says ``width`` x ``height`` pixels (of ``bit_depth`` bits, PNG ``colour_type``: 2
    RGB, 0 grey) with far too little data: OpenCV refuses one beyond CV_IO_MAX_IMAGE_PIXELS with cv2.error."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 10))
            + chunk(b"IEND", b""))


def require_shared(*parts: str) -> Path:
    """Path under ../shared, or skip the test with the reason when it is absent."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs {p} (../shared data/models are not on this machine)")
    return p


@pytest.fixture
def ros_env(tmp_path):
    """Environment for ROS subprocesses: a unique ROS_DOMAIN_ID and a private log dir."""
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(private_domain_id(os.getpid() + hash(str(tmp_path))))
    env["ROS_LOG_DIR"] = str(tmp_path / "ros_log")
    return env


def _node_graph(ros_env, tmp_path, monkeypatch, node: str, params_file: str):
    """Start ``node`` processes (stderr to a log file) and a private rclpy context for the test.

    Yields ``(start, context)``; ``start(*params, remaps=())`` starts a node with ``config/<params_file>``,
    ``-p`` overrides and ``-r`` remaps and returns ``(process, log_path)``. Every started node is stopped
    afterwards.
    """
    import subprocess

    import rclpy
    from rclpy.context import Context

    monkeypatch.setenv("ROS_LOG_DIR", ros_env["ROS_LOG_DIR"])
    started = []

    def start(*params: str, remaps: tuple[str, ...] = ()):
        log = tmp_path / f"{node}{len(started)}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", f"ros2_tracker.nodes.{node}", "--ros-args", "--params-file",
             str(REPO / "config" / params_file), *(x for p in params for x in ("-p", p)),
             *(x for r in remaps for x in ("-r", r))],
            env={**ros_env, "PYTHONFAULTHANDLER": "1"},  # stacks in the log on SIGABRT (ros_graph.stop_node)
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("w"))
        started.append(proc)
        return proc, log

    context = Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    yield start, context
    for proc in started:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    context.try_shutdown()


@pytest.fixture
def tracker_node_graph(ros_env, tmp_path, monkeypatch):
    """tracker_node processes with ``config/tracker.yaml`` (see :func:`_node_graph`)."""
    yield from _node_graph(ros_env, tmp_path, monkeypatch, "tracker_node", "tracker.yaml")


@pytest.fixture
def sot_graph(ros_env, tmp_path, monkeypatch):
    """sot_node processes with ``config/sot.yaml`` (see :func:`_node_graph`)."""
    yield from _node_graph(ros_env, tmp_path, monkeypatch, "sot_node", "sot.yaml")
