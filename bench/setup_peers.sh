#!/usr/bin/env bash
# Create the virtual environments of the peer trackers that bench/run_bench.py compares against.
#
#   bash bench/setup_peers.sh            # idempotent: a venv whose stamp matches its pins is kept
#   FORCE=1 bash bench/setup_peers.sh    # rebuild both
#
# The peers pin conflicting versions (boxmot: numpy>=2.2, rich>=15; norfair: numpy<2, rich<15), so they
# live in two venvs beside the project's own .venv, never in it:
#   .venv-peers/    trackers (Roboflow), boxmot, motpy
#   .venv-norfair/  norfair
# Each venv gets a stamp file (.bench-stamp) holding its pins; the install time is printed and kept in
# .bench-install-seconds. PYTHON selects the interpreter (default: python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

# boxmot needs torch; torch/torchvision are pinned so every machine resolves the same build.
PEERS_PINS="trackers==2.6.1 boxmot==25.0.0 motpy==0.0.10 torch==2.14.1 torchvision==0.29.1"
NORFAIR_PINS="norfair==2.3.0"
# Module each venv must import for the stamp to count (a half-built venv is rebuilt).
PEERS_CHECK="import trackers, boxmot, motpy"
NORFAIR_CHECK="import norfair"

make_venv() {
  local dir="$1" pins="$2" check="$3"
  local stamp="$dir/.bench-stamp"
  if [[ -z "${FORCE:-}" && -f "$stamp" && "$(cat "$stamp")" == "$pins" ]] \
      && "$dir/bin/python" -c "$check" 2>/dev/null; then
    echo "$dir: up to date ($pins)"
    return 0
  fi
  echo "$dir: installing $pins"
  local t0=$SECONDS
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  # shellcheck disable=SC2086  # the pins are meant to split into words
  # (pip's notes about missing local index folders are noise: filtered out, real errors still show)
  "$dir/bin/python" -m pip install --quiet $pins 2>&1 | { grep -v "is ignored: it is neither a file" || true; }
  [[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "$dir: pip install failed" >&2; return 1; }
  "$dir/bin/python" -c "$check"
  local took=$((SECONDS - t0))
  echo "$took" > "$dir/.bench-install-seconds"
  echo "$pins" > "$stamp"
  echo "$dir: installed in ${took} s"
}

make_venv "$ROOT/.venv-peers" "$PEERS_PINS" "$PEERS_CHECK"
make_venv "$ROOT/.venv-norfair" "$NORFAIR_PINS" "$NORFAIR_CHECK"
