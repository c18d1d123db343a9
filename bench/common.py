"""Helpers shared by the benchmark scripts: paths, the machine line, and BENCHMARKS.md marker sections.

Each script owns sections of BENCHMARKS.md delimited by ``<!-- bench:KEY:start -->`` and
``<!-- bench:KEY:end -->``; :func:`update_section` replaces what lies between them (or appends a
new section at the end), so a partial run rewrites only the tables it measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

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


def command_footer(script: str, argv: list[str] | None = None) -> str:
    """The last line of a bench section: the command that made it and the machine it ran on."""
    return f"Command: `{command_line(script, argv)}` · {machine_line()}"


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


def report(text: str, key: str, markdown: Path | None) -> None:
    """Print a script's section and, unless ``markdown`` is None (``--no-markdown``), put it between the
    ``key`` markers of that file (:func:`update_section`)."""
    print(text)
    if markdown is not None:
        update_section(markdown, key, text)


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


# ------------------------------------------------------------- scripts that read run_bench's results
def results_parser(doc: str | None, datasets: Sequence[str]) -> argparse.ArgumentParser:
    """The options of a script that reads ``bench/run_bench.py``'s results (it runs no tracker):
    ``--datasets``, ``--results``, ``--markdown``, ``--no-markdown``; add its own, then
    :func:`parse_results_args`."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=list(datasets), metavar="KEY",
                   help=f"run_bench dataset keys (default: {' '.join(datasets)})")
    p.add_argument("--results", type=Path, default=OUT / "run_bench", help="run_bench's --out folder")
    p.add_argument("--markdown", type=Path, default=BENCHMARKS_MD, help="file whose table to update")
    p.add_argument("--no-markdown", action="store_true", help="do not touch any markdown file")
    return p


def parse_results_args(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Parse; an error (exit 2) when the results folder holds no ``results.json``."""
    args = p.parse_args(argv)
    if not (args.results / "results.json").is_file():
        p.error(f"{args.results / 'results.json'} not found: run bench/run_bench.py first")
    return args


def sequence_results(results_dir: Path, datasets: list[str]) -> Iterator[tuple[Any, Any, dict[str, Any]]]:
    """``(dataset, sequence, {tracker: (results file, the tracker's runs of the dataset)})`` for every
    sequence of ``datasets`` in run_bench's ``results.json``, with the trackers whose run of it succeeded
    and left its file. Datasets whose data is missing are skipped with a message on stderr."""
    from bench.run_bench import load_datasets  # a heavy import (the dataset loaders), only when run

    runs = json.loads((results_dir / "results.json").read_text())
    loaded, skipped = load_datasets(datasets, DATA, results_dir)
    for message in skipped:
        print(message, file=sys.stderr)
    for ds in loaded:
        by_tracker = runs.get(ds.key, {})
        for seq in ds.sequences:
            found = {}
            for tracker, tracker_runs in by_tracker.items():
                for run in tracker_runs:
                    res = Path(run["results"])
                    if run["sequence"] == seq.name and not run["error"] and res.is_file():
                        found[tracker] = res, tracker_runs
            yield ds, seq, found
