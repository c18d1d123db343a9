"""Why a peer ahead finds ground-truth boxes that ros2_tracker misses: each such box, by cause.

    .venv/bin/python bench/miss_causes.py [--datasets KEY ...] [--results DIR] [--config F]
                                          [--markdown BENCHMARKS.md | --no-markdown]

Reads the result files that ``bench/run_bench.py`` left in ``DIR`` (default ``bench/out/run_bench``;
it runs no tracker). For every sequence, it takes the peer with the highest HOTA there and, on every
frame with ground truth, matches each tracker's output boxes one-to-one to the scored ground-truth boxes
(IoU >= 0.5, as the evaluator). Ground-truth boxes the peer covers and ours does not are counted by the
first cause that applies, checked in this order:

* ``no det``: no detection of that frame covers the box (IoU >= 0.5): the peer reports a box the
  detector did not give (a coasted or predicted box);
* ``low score``: the detections that cover it all score below ``new_track_score`` (of the tracker
  config: defaults or ``--config``), so they can at most extend a track, never start one;
* ``loose box``: one of our boxes that covers no ground-truth box overlaps it at an IoU of at least
  0.25: our box is there, not tight enough;
* ``later``: ours covers that person (ground-truth id) on a later frame: a new track not confirmed yet
  (``min_hits``), or one not matched in this frame;
* ``other``: none of these.

The ``ours only`` column counts the reverse: boxes ours covers and the peer does not. The table goes
between ``<!-- bench:miss_causes:start/end -->`` markers in BENCHMARKS.md.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.box_source import MATCH_IOU, frames_of, match_to_truth
from bench.common import (
    command_footer,
    markdown_table,
    parse_results_args,
    report,
    results_parser,
    sequence_results,
)
from ros2_tracker.core.config import ConfigError
from ros2_tracker.core.costs import iou_matrix
from ros2_tracker.core.tracker import TrackerConfig
from ros2_tracker.io.params import load_config
from ros2_tracker.nodes.node_config import tracker_node_param_names

DEFAULT_DATASETS = ("tud-campus-frcnn", "tud-campus-acf", "tud-stadtmitte", "pets09-s3mf1", "mot17",
                    "synthetic")
CAUSES = ("no det", "low score", "loose box", "later", "other")
OURS = "ros2_tracker"
LOOSE_IOU = 0.25


def _covered(gt_boxes: np.ndarray, out: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
             free: np.ndarray | None = None) -> np.ndarray:
    """Which ground-truth boxes the output covers: one-to-one at IoU >= 0.5 (the evaluator's matching).
    ``free``: when given, cleared (in place) where an output box covers a ground-truth box."""
    hit = np.zeros(len(gt_boxes), dtype=bool)
    if out is not None and len(out[0]):
        m = match_to_truth(gt_boxes, out[0])[1]
        hit[m[:, 0]] = True
        if free is not None:
            free[m[:, 1]] = False
    return hit


def miss_causes(ours: Path, peer: Path, gt: Path, detections: Path, config: TrackerConfig) -> dict[str, int]:
    """Counts of ground-truth boxes the peer covers and ours misses, by cause (``CAUSES``), and
    ``ours only``: the boxes ours covers and the peer misses."""
    truth = frames_of(gt, ground_truth=True, allow_empty=True)
    dets = frames_of(detections, allow_empty=True)
    ours_f, peer_f = frames_of(ours, allow_empty=True), frames_of(peer, allow_empty=True)
    spare = {f: np.ones(len(o[0]), dtype=bool) for f, o in ours_f.items()}  # our boxes covering no one
    mine = {f: _covered(g[0], ours_f.get(f), spare.get(f)) for f, g in truth.items()}
    last_cover: dict[int, int] = {}  # ground-truth id -> last frame ours covers it
    for f in sorted(truth):
        for gid in truth[f][1][mine[f]].tolist():
            last_cover[gid] = f
    counts = Counter({c: 0 for c in (*CAUSES, "ours only")})
    for f, (g, gids, _) in truth.items():
        theirs = _covered(g, peer_f.get(f))
        counts["ours only"] += int(np.count_nonzero(mine[f] & ~theirs))
        det_boxes, _, det_scores = dets.get(f, (np.empty((0, 4)), None, np.empty(0)))
        det_iou = iou_matrix(g, det_boxes) if len(det_boxes) else np.zeros((len(g), 0))
        spare_boxes = ours_f[f][0][spare[f]] if f in ours_f else np.empty((0, 4))
        our_iou = iou_matrix(g, spare_boxes) if len(spare_boxes) else np.zeros((len(g), 0))
        for i in np.flatnonzero(theirs & ~mine[f]):
            near = det_iou[i] >= MATCH_IOU
            if not near.any():
                cause = "no det"
            elif det_scores[near].max() < config.new_track_score:
                cause = "low score"
            elif our_iou.shape[1] and our_iou[i].max() >= LOOSE_IOU:
                cause = "loose box"
            elif last_cover.get(int(gids[i]), -1) > f:
                cause = "later"
            else:
                cause = "other"
            counts[cause] += 1
    return dict(counts)


def _sequence_hota(tracker_runs: list[dict], name: str) -> float | None:
    """A tracker's HOTA on one sequence from run_bench's results: the dataset's metrics sit on one of
    its runs, per sequence under ``sequences`` when the dataset has several."""
    for run in tracker_runs:
        m = run.get("metrics") or {}
        if "HOTA" in m:
            return m.get("sequences", {}).get(name, m)["HOTA"] if len(tracker_runs) > 1 else m["HOTA"]
    return None


def collect(results_dir: Path, datasets: list[str], config: TrackerConfig) -> list[list[str]]:
    """One table row per sequence: the best peer there, the HOTA of both, and the causes."""
    rows = []
    for ds, seq, found in sequence_results(results_dir, datasets):
        hota = {t: h for t, (_, runs) in found.items() if (h := _sequence_hota(runs, seq.name)) is not None}
        if OURS not in hota or len(hota) < 2:
            continue
        peer = max((t for t in hota if t != OURS), key=hota.__getitem__)
        c = miss_causes(found[OURS][0], found[peer][0], seq.gt, seq.det, config)
        label = seq.name if ds.key == "mot17" else f"{seq.name} ({ds.key})"
        rows.append([label, peer, f"{100 * hota[OURS]:.1f}", f"{100 * hota[peer]:.1f}",
                     str(sum(c[k] for k in CAUSES)), *(str(c[k]) for k in CAUSES), str(c["ours only"])])
    return rows


def to_markdown(rows: list[list[str]], argv: list[str] | None, config: TrackerConfig) -> str:
    header = ["sequence", "best peer", "HOTA ours", "HOTA peer", "peer only", *CAUSES, "ours only"]
    return "\n".join([
        "Ground-truth boxes the best peer on each sequence covers (IoU >= 0.5, one-to-one) and ours does "
        "not, by cause (see `bench/miss_causes.py`: `no det` no detection covers the box; `low score` the "
        f"detections that do score below new_track_score {config.new_track_score:g}; `loose box` one of ours "
        f"that covers no one overlaps it at IoU >= {LOOSE_IOU:g}; `later` ours covers that person on a "
        "later frame); `ours only`: the reverse. From `bench/run_bench.py`'s result files.",
        "",
        markdown_table(header, rows),
        "",
        command_footer('bench/miss_causes.py', argv),
    ])


def main(argv: list[str] | None = None) -> int:
    p = results_parser(__doc__, DEFAULT_DATASETS)
    p.add_argument("--config", type=Path, help="tracker parameter file whose new_track_score applies "
                   "(the one run_bench used; default: the defaults)")
    args = parse_results_args(p, argv)
    try:
        config = load_config(TrackerConfig, args.config, allowed_extra=tracker_node_param_names(),
                             node="/tracker")
    except ConfigError as exc:
        p.error(f"--config: {exc}")
    rows = collect(args.results, args.datasets, config)
    if not rows:
        p.error("no sequence with results of ours and a peer in these datasets")
    text = to_markdown(rows, argv, config)
    report(text, "miss_causes", None if args.no_markdown else args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
