"""Lint and types as tests, so that a change that breaks either fails the suite (and ``colcon test``, which
runs it): ruff over the repository with the rules pyproject.toml selects (pycodestyle, pyflakes, imports,
bugbear, complexity, Google docstrings) and mypy over the ROS-free core (annotated throughout)."""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO, require_modules


def _tool(name: str) -> str:
    """The tool's executable beside this Python (the venv's), else on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.exists() else (shutil.which(name) or name)


def test_ruff_finds_nothing():
    require_modules("ruff")
    run = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=REPO, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy_finds_nothing_in_the_core(tmp_path):
    require_modules("mypy")
    # the files and options come from pyproject.toml; a private cache keeps the checkout clean
    run = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    core = len(list((REPO / "ros2_tracker" / "core").glob("*.py")))
    assert f"no issues found in {core} source files" in run.stdout  # it checked the whole core
