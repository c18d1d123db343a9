"""Shared fixtures: paths to the repository, its venv and ../shared (absent on users' machines)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = (REPO / ".." / "shared").resolve()
DATA = SHARED / "data"
MODELS = SHARED / "models"
VENV_BIN = Path(sys.executable).parent
CLI = VENV_BIN / "ros2-tracker"


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
    env["ROS_DOMAIN_ID"] = str(20 + (os.getpid() + hash(str(tmp_path))) % 180)
    env["ROS_LOG_DIR"] = str(tmp_path / "ros_log")
    return env
