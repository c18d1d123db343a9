"""Helpers shared by the benchmark scripts: paths, the machine line, and BENCHMARKS.md marker sections.

Each script owns sections of BENCHMARKS.md delimited by ``<!-- bench:KEY:start -->`` and
``<!-- bench:KEY:end -->``; :func:`update_section` replaces what lies between them (or appends a
new section at the end), so a partial run rewrites only the tables it measured.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO / ".." / "shared"
DATA = SHARED / "data"
OUT = REPO / "bench" / "out"
BENCHMARKS_MD = REPO / "BENCHMARKS.md"


def machine_line() -> str:
    """``date · CPU, cores · Python`` for the line under each table."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    system = f"{platform.system()} {platform.machine()}, {cpu}, {cores} cores"
    return f"{now} · {system} · Python {platform.python_version()}"


def command_line(script: str, argv: list[str] | None = None) -> str:
    """The command as a user would type it from the repository root."""
    args = sys.argv[1:] if argv is None else argv
    return shlex.join([".venv/bin/python", script, *args])


def _markers(key: str) -> tuple[str, str]:
    return f"<!-- bench:{key}:start -->", f"<!-- bench:{key}:end -->"


def update_section(path: Path, key: str, body: str) -> None:
    """Replace the text between the ``key`` markers of ``path`` with ``body`` (append when absent).

    Args:
        path: the markdown file (created when missing).
        key: marker key, e.g. ``"accuracy:tud-campus-frcnn"``.
        body: markdown to put between the markers (no markers inside).
    """
    start, end = _markers(key)
    text = path.read_text() if path.exists() else ""
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = text.rstrip() + ("\n\n" if text.strip() else "") + block + "\n"
    path.write_text(text)


def write_section_file(path: Path, text: str) -> None:
    """Write a script's section (``bench/out/sections/<name>.md``, pasted into BENCHMARKS.md between its
    ``<!-- section:... -->`` markers); folders are created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def read_section(path: Path, key: str) -> str | None:
    """The text between the ``key`` markers, or None when the section is absent."""
    if not path.exists():
        return None
    start, end = _markers(key)
    m = re.search(re.escape(start) + r"\n?(.*?)\n?" + re.escape(end), path.read_text(), re.DOTALL)
    return m.group(1) if m else None


def markdown_table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A GitHub markdown table; ``align`` is one char per column, ``l`` or ``r`` (default: l then r)."""
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(rule) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
