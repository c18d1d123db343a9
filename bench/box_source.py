"""Where each tracker's output boxes come from, and how well they fit the ground truth.

    .venv/bin/python bench/box_source.py [--datasets KEY ...] [--results DIR]
                                         [--markdown BENCHMARKS.md | --no-markdown]

Reads the result files that ``bench/run_bench.py`` left in ``DIR`` (default ``bench/out/run_bench``;
it runs no tracker) and, on every frame with ground truth, reports per tracker:

* ``IoU``: the mean IoU of the output boxes matched one-to-one to ground-truth boxes (the core's
  assignment on 1 - IoU, pairs at IoU >= 0.5 as the evaluator's): how tight the boxes are, whatever
  their identities;
* ``det``: the share of output boxes that are one of that frame's detection boxes (IoU > 0.999):
  100 % for a tracker that reports the matched detection, low for one that reports its filtered state.

A filtered (Kalman) box is smoother than the detector's own but lags it when the image moves faster than
the constant-velocity model expects (a moving camera); this table shows that trade per sequence, beside
the DetA columns of the accuracy tables. Ground-truth rows kept: the ones the evaluator scores (not
marked 0; in MOT16/17 files pedestrians only, class 1). The table goes between
``<!-- bench:box_source:start/end -->`` markers in BENCHMARKS.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    command_footer,
    markdown_table,
    parse_results_args,
    report,
    results_parser,
    sequence_results,
)
from ros2_tracker.core.assignment import assign
from ros2_tracker.core.boxes import tlwh_to_xyxy
from ros2_tracker.core.costs import iou_matrix
from ros2_tracker.eval.metrics import is_mot17_ground_truth
from ros2_tracker.io.mot import MotRows, read_mot

DEFAULT_DATASETS = ("tud-campus-frcnn", "tud-stadtmitte", "pets09-s3mf1", "mot17", "synthetic")
MATCH_IOU = 0.5
SAME_BOX_IOU = 0.999


FrameRows = dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]


def frames_of(path: Path, *, ground_truth: bool = False, allow_empty: bool = False) -> FrameRows:
    """A MOTChallenge file as frame -> (xyxy boxes, ids, scores); for ``ground_truth`` only the rows the
    evaluator scores (:func:`_scored_ground_truth`). Boxes are read as written (no validation)."""
    rows = read_mot(path, allow_empty=allow_empty, validate_boxes=False, note_unsorted=False)
    keep = _scored_ground_truth(rows) if ground_truth else np.ones(len(rows), dtype=bool)
    frames, ids, scores = rows.frames[keep], rows.ids[keep], rows.scores[keep]
    boxes = tlwh_to_xyxy(rows.boxes_tlwh[keep])
    return {int(f): (boxes[frames == f], ids[frames == f], scores[frames == f]) for f in np.unique(frames)}


def match_to_truth(truth: np.ndarray, out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The evaluator's one-to-one matching of output boxes to ground-truth boxes (IoU >= 0.5): the (G, O)
    IoU matrix and the matched (truth, output) index pairs."""
    iou = iou_matrix(truth, out)
    return iou, assign(1.0 - iou, 1.0 - MATCH_IOU + 1e-9).matches


def _scored_ground_truth(gt: MotRows) -> np.ndarray:
    """The rows the evaluator scores: not marked 0 in column 7 (TrackEval truncates it to int), and in
    MOT16/17 files pedestrians only (class 1)."""
    keep = gt.scores.astype(int) != 0
    if is_mot17_ground_truth(gt):
        keep &= gt.extra[:, 0] == 1
    return keep


def box_source(results: Path, gt: Path, detections: Path) -> dict[str, float]:
    """Mean matched IoU with the ground truth, and the share of output boxes that are detections, over the
    frames with ground truth."""
    truth = frames_of(gt, ground_truth=True)
    out = frames_of(results, allow_empty=True)
    dets = frames_of(detections)
    ious: list[np.ndarray] = []
    same = total = 0
    for f, (g, _, _) in truth.items():
        o = out[f][0] if f in out else np.empty((0, 4))
        if not len(o):
            continue
        iou, m = match_to_truth(g, o)
        ious.append(iou[m[:, 0], m[:, 1]])
        if f in dets and len(dets[f][0]):
            same += int((iou_matrix(o, dets[f][0]).max(axis=1) > SAME_BOX_IOU).sum())
        total += len(o)
    matched = np.concatenate(ious) if ious else np.empty(0)
    return {"iou": float(matched.mean()) if len(matched) else float("nan"), "matched": len(matched),
            "det_share": same / total if total else float("nan"), "boxes": total}


def collect(results_dir: Path, datasets: list[str]) -> list[tuple[str, str, dict[str, dict[str, float]]]]:
    """(dataset, sequence, {tracker: box_source(...)}) for every scored run in run_bench's results.json."""
    table = []
    for ds, seq, found in sequence_results(results_dir, datasets):
        cells = {tracker: box_source(res, seq.gt, seq.det) for tracker, (res, _) in found.items()}
        if cells:
            table.append((ds.key, seq.name, cells))
    return table


def to_markdown(table, argv: list[str] | None) -> str:
    trackers = sorted({t for _, _, cells in table for t in cells}, key=lambda t: (t != "ros2_tracker", t))
    rows = []
    for key, name, cells in table:
        row = [f"{name} ({key})" if name not in key else key]
        for t in trackers:
            c = cells.get(t)
            empty = c is None or not c["boxes"] or not c["matched"]  # no output box on a ground-truth frame
            row.append("\u2013" if empty else f"{c['iou']:.3f} ({100 * c['det_share']:.0f} %)")
        rows.append(row)
    header = ["sequence", *(f"**{t}**" if t == "ros2_tracker" else t for t in trackers)]
    return "\n".join([
        "Mean IoU of output boxes matched to ground truth, and (in brackets) the share of output boxes that "
        "are the frame's detection boxes, on the frames with ground truth; from `bench/run_bench.py`'s "
        "result files.",
        "",
        markdown_table(header, rows),
        "",
        command_footer('bench/box_source.py', argv),
    ])


def main(argv: list[str] | None = None) -> int:
    p = results_parser(__doc__, DEFAULT_DATASETS)
    args = parse_results_args(p, argv)
    table = collect(args.results, args.datasets)
    if not table:
        p.error("no scored runs of these datasets in the results")
    text = to_markdown(table, argv)
    report(text, "box_source", None if args.no_markdown else args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
