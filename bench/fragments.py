"""Restarts: a proxy for broken tracks on the sequences whose ground truth is withheld here.

    .venv/bin/python bench/fragments.py [--results DIR] [--data DIR]
                                        [--markdown BENCHMARKS.md | --no-markdown]

MOT15's ADL-Rundle, ETH, KITTI, Venice and PETS09-S2L1 sequences have no ground truth in ``../shared``
(accuracy on them is judged elsewhere), but every tracker's results file from ``bench/run_bench.py
--datasets mot15`` (``DIR/mot15/<tracker>/<sequence>.txt``) shows where its identities begin and end. A
**restart** is an identity whose first reported box lies near the last reported box of another identity
that ended in the second before (centres within half a box height, heights within a factor 1.5): most
likely the same person under a new id, a broken track. Fewer restarts for as many reported boxes means
fewer broken tracks; it is a proxy, not a metric (two people can meet that way, and a tracker that reports
coasting boxes ends its identities later and further from where they reappear).

The table goes between ``<!-- bench:fragments:start/end -->`` markers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCHMARKS_MD, DATA, command_footer, markdown_table, report
from ros2_tracker.io.mot import read_mot
from ros2_tracker.io.sequence import read_sequence_info

OURS = "ros2_tracker"
NEAR = 0.5  # centre distance, in box heights
SIZE = 1.5  # largest height ratio


def restarts(frames: np.ndarray, ids: np.ndarray, boxes_tlwh: np.ndarray, fps: float) -> tuple[int, int]:
    """(restarts, identities) of one results file (see the module docstring)."""
    if not len(ids):
        return 0, 0
    order = np.lexsort((frames, ids))
    frames, ids, boxes = frames[order], ids[order], boxes_tlwh[order]
    first = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    last = np.r_[first[1:] - 1, len(ids) - 1]
    f0, f1 = frames[first], frames[last]
    c0 = boxes[first, :2] + boxes[first, 2:] / 2
    c1 = boxes[last, :2] + boxes[last, 2:] / 2
    h0, h1 = boxes[first, 3], boxes[last, 3]
    # [new identity i, ended identity j]: j ended in the second before i began, near it and of its size
    ended_before = (f1[None, :] < f0[:, None]) & (f1[None, :] >= f0[:, None] - fps)
    dist = np.linalg.norm(c0[:, None, :] - c1[None, :, :], axis=2)
    near = dist < NEAR * np.maximum(h0[:, None], h1[None, :])
    ratio = h0[:, None] / h1[None, :]
    alike = (ratio < SIZE) & (ratio > 1 / SIZE)
    return int(np.count_nonzero((ended_before & near & alike).any(axis=1))), len(first)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", type=Path, default=Path("bench/out/run_bench"),
                   help="bench/run_bench.py --out folder (holds mot15/<tracker>/<sequence>.txt)")
    p.add_argument("--data", type=Path, default=DATA, help="folder of the sequences (for frame rates)")
    p.add_argument("--markdown", type=Path, default=BENCHMARKS_MD)
    p.add_argument("--no-markdown", action="store_true")
    args = p.parse_args(argv)
    base = args.results / "mot15"
    trackers = sorted(d.name for d in base.iterdir() if d.is_dir()) if base.is_dir() else []
    if OURS not in trackers:
        print(f"fragments: no {base}/{OURS}: run bench/run_bench.py --datasets mot15 first", file=sys.stderr)
        return 2
    trackers.remove(OURS)
    trackers.insert(0, OURS)
    sequences = sorted(f.stem for f in (base / OURS).glob("*.txt"))
    rows, totals = [], np.zeros((len(trackers), 2), dtype=int)
    for seq in sequences:
        fps = read_sequence_info(args.data / seq).fps
        row = [seq]
        for k, name in enumerate(trackers):
            path = base / name / f"{seq}.txt"
            if not path.is_file():
                row.append("-")
                continue
            res = read_mot(path, allow_empty=True, validate_boxes=False, note_unsorted=False)
            n, ids = restarts(res.frames, res.ids, res.boxes_tlwh, fps)
            totals[k] += n, ids
            row.append(f"{n} / {ids}")
        rows.append(row)
    rows.append(["**all**", *(f"**{n} / {ids}**" for n, ids in totals)])
    table = markdown_table(["sequence", *trackers], rows)
    body = (f"Restarts / identities per results file (restart: an identity starting within 1 s, {NEAR} box "
            f"heights and a size factor {SIZE} of where another ended); results of "
            f"`bench/run_bench.py --datasets mot15` in `{args.results}`.\n\n{table}\n\n"
            + command_footer('bench/fragments.py', argv))
    report(body, "fragments", None if args.no_markdown else args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
