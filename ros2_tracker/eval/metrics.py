"""Tracking metrics (HOTA, CLEAR/MOTA, IDF1) computed by TrackEval from MOTChallenge text files.

This module only prepares data and reads results back: every number comes from TrackEval's
``HOTA``, ``CLEAR``, ``Identity`` and ``Count`` metric classes, fed through TrackEval's own
``MotChallenge2DBox`` pre-processing (IoU similarity, MOT17 distractor removal, zero-marked rows).
Files are read with :func:`ros2_tracker.io.mot.read_mot`; TrackEval's folder layout, printing,
multiprocessing and output files are not used.

Two ground-truth styles are understood (``gt_format="auto"`` picks by column count):

* ``mot15``: ``frame,id,x,y,w,h,conf[,wx,wy,wz]`` (7 or 10 columns); every row is a pedestrian,
  rows with ``conf == 0`` are ignored (TrackEval's MOT15 protocol, no distractor handling).
* ``mot17``: ``frame,id,x,y,w,h,consider,class,visibility`` (8 or 9 columns, MOT16/17);
  only ``consider == 1`` pedestrians (class 1) are scored, and result boxes matched (IoU >= 0.5)
  to distractors (classes 2, 7, 8, 12) are removed before scoring (the MOT17 protocol).
* ``mot20``: the same columns, with class 6 (non-MOT vehicle) a distractor too (TrackEval's MOT20
  protocol); ``auto`` cannot tell it from ``mot17``: name it.

Only frames ``1..N`` are scored, ``N`` being the last frame with ground truth unless
``num_frames`` is given: result rows after ``N`` are ignored and counted in ``unscored_rows`` (MOT17-mini's
ground truth covers only the first frames of each sequence; a sequence whose last people leave before its
end needs ``num_frames``, its seqLength, for the false positives after them to count). At most
``MAX_SCORED_FRAMES`` frames per sequence. Boxes are top-left ``x, y, w, h`` in pixels.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from trackeval.datasets import MotChallenge2DBox
from trackeval.datasets._base_dataset import _BaseDataset
from trackeval.metrics import CLEAR, HOTA, Count, Identity
from trackeval.utils import TrackEvalException

from ros2_tracker.io.files import naming_write_errors, write_text
from ros2_tracker.io.mot import MotFormatError, MotRows, read_mot

__all__ = [
    "COMBINED",
    "GT_FORMATS",
    "Metrics",
    "SequencePair",
    "check_ground_truth",
    "evaluate_many",
    "evaluate_sequence",
    "format_table",
    "is_mot17_ground_truth",
    "write_csv",
    "write_json",
]

COMBINED = "COMBINED"
"""Name of the row that :func:`evaluate_many` appends (TrackEval's combined-sequence metrics)."""

GT_FORMATS = ("auto", "mot15", "mot17", "mot20")

# MOT16/17 ground-truth class ids (Milan et al., "MOT16: A Benchmark for Multi-Object Tracking", table 3).
_MOT17_CLASSES = {
    "pedestrian": 1, "person_on_vehicle": 2, "car": 3, "bicycle": 4, "motorbike": 5, "non_mot_vehicle": 6,
    "static_person": 7, "distractor": 8, "occluder": 9, "occluder_on_ground": 10, "occluder_full": 11,
    "reflection": 12, "crowd": 13,
}
_IOU_THRESHOLD = 0.5  # CLEAR and Identity match threshold of the MOTChallenge protocol
# Most frames one sequence is scored over: TrackEval keeps a few KB of data per frame (about 3.5 KB: 700 MB
# at the limit, two hours at 30 Hz); more would end in an out-of-memory kill instead of a clear error.
MAX_SCORED_FRAMES = 200_000


@dataclass(frozen=True)
class Metrics:
    """Scores of one sequence (or of several combined), as TrackEval computes them.

    Attributes:
        HOTA: higher-order tracking accuracy, mean over IoU thresholds 0.05..0.95, in [0, 1].
        DetA: HOTA's detection accuracy, in [0, 1].
        AssA: HOTA's association accuracy, in [0, 1].
        MOTA: multi-object tracking accuracy (CLEAR), <= 1 (negative when FP + IDSW exceed TP).
        IDF1: identity F1 score, in [0, 1].
        IDSW: identity switches (CLEAR).
        FP: false positive boxes (CLEAR, IoU >= 0.5 matching).
        FN: missed ground-truth boxes (CLEAR).
        num_gt_ids: ground-truth identities scored.
        num_frames: frames scored.
        unscored_rows: result rows after the last frame scored (not counted anywhere above).
        unscored_gt_rows: ground-truth rows after the last frame scored (``num_frames`` below the ground
            truth's last frame: a wrong seqLength? TrackEval refuses such ground truth).
        non_pedestrian_rows: scored result rows with a value above 1 in column 8 (TrackEval reads it as the
            class and refuses anything but pedestrians, 1; scored here as pedestrians).
    """

    HOTA: float
    DetA: float
    AssA: float
    MOTA: float
    IDF1: float
    IDSW: int
    FP: int
    FN: int
    num_gt_ids: int
    num_frames: int
    unscored_rows: int = 0
    unscored_gt_rows: int = 0
    non_pedestrian_rows: int = 0

    def as_dict(self) -> dict[str, float | int]:
        """The fields as a plain ``{name: value}`` dict (JSON-serialisable)."""
        return asdict(self)


class SequencePair(NamedTuple):
    """One sequence to score with :func:`evaluate_many`; plain ``(name, gt, results)`` tuples work too."""

    name: str
    gt_path: str | Path
    results_path: str | Path
    num_frames: int | None = None
    gt_format: str = "auto"


def evaluate_sequence(gt_path: str | Path, results_path: str | Path, *, num_frames: int | None = None,
                      name: str = "seq", gt_format: str = "auto") -> Metrics:
    """Score one results file against its ground truth.

    Args:
        gt_path: MOTChallenge ground truth (``gt/gt.txt``), MOT15 or MOT17 style.
        results_path: tracker output, ``frame,id,x,y,w,h,conf,...`` rows; an empty file is valid
            (everything missed). Every row counts as a pedestrian; rows with a value above 1 in column 8
            (another object class, or MOT15 world coordinates), which TrackEval's MOTChallenge evaluation
            refuses, are counted in ``Metrics.non_pedestrian_rows``.
        num_frames: score frames ``1..num_frames``; default: up to the last frame with ground truth.
        name: sequence name (used in error messages).
        gt_format: ``"auto"``, ``"mot15"``, ``"mot17"`` or ``"mot20"`` (see the module docstring).

    Returns:
        The sequence's :class:`Metrics`.

    Raises:
        MotFormatError: a missing, empty or malformed ground-truth file, a malformed results
            file, negative or duplicate ids within a frame, or MOT17 rows with unknown classes.
        ValueError: ``num_frames < 1`` or an unknown ``gt_format``.
    """
    return _to_metrics(_score(name, gt_path, results_path, num_frames, gt_format))


def evaluate_many(items: Iterable[SequencePair | tuple[Any, ...]]) -> list[tuple[str, Metrics]]:
    """Score several sequences, then combine them the way TrackEval does (summed counts, not a mean).

    Args:
        items: ``SequencePair``s or tuples ``(name, gt_path, results_path[, num_frames[, gt_format]])``;
            names must be unique and must not be ``"COMBINED"``.

    Returns:
        ``[(name, Metrics), ...]`` in input order, followed by ``("COMBINED", Metrics)``.

    Raises:
        MotFormatError: as :func:`evaluate_sequence`.
        ValueError: no items, a duplicate or reserved name, or a bad ``num_frames``/``gt_format``.
    """
    pairs = [SequencePair(*item) for item in items]
    if not pairs:
        raise ValueError("evaluate_many: no sequences given")
    names = [p.name for p in pairs]
    if COMBINED in names or len(set(names)) != len(names):
        raise ValueError(f"sequence names must be unique and not {COMBINED!r}: {names}")
    per_seq = {p.name: _score(p.name, p.gt_path, p.results_path, p.num_frames, p.gt_format) for p in pairs}
    combined = {key: metric.combine_sequences({n: res[key] for n, res in per_seq.items()})
                for key, metric in _metric_objects().items()}
    for count in ("Frames", "Unscored", "UnscoredGt", "NonPedestrian"):
        combined["Count"][count] = sum(res["Count"][count] for res in per_seq.values())
    rows = [(n, _to_metrics(res)) for n, res in per_seq.items()]
    rows.append((COMBINED, _to_metrics(combined)))
    return rows


def format_table(rows: Sequence[tuple[str, Metrics]]) -> str:
    """An aligned text table: HOTA, DetA, AssA, MOTA, IDF1 in percent (1 decimal), IDSW, FP, FN."""
    percent = ("HOTA", "DetA", "AssA", "MOTA", "IDF1")
    counts = ("IDSW", "FP", "FN")
    header = ["sequence", *percent, *counts]
    body = [[name, *(f"{100 * getattr(m, k):.1f}" for k in percent), *(str(getattr(m, k)) for k in counts)]
            for name, m in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True)))
             for r in [header, *body]]
    return "\n".join(lines)


def write_csv(path: str | Path, rows: Sequence[tuple[str, Metrics]]) -> None:
    """Write one CSV line per row: ``sequence`` then every :class:`Metrics` field (fractions, not %)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    names = [f.name for f in fields(Metrics)]
    with naming_write_errors(p), p.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["sequence", *names])
        for seq, m in rows:
            writer.writerow([seq, *(getattr(m, k) for k in names)])


def write_json(path: str | Path, rows: Sequence[tuple[str, Metrics]]) -> None:
    """Write ``{sequence: {metric: value}}`` (fractions, not %), in row order."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    write_text(p, json.dumps({seq: m.as_dict() for seq, m in rows}, indent=2) + "\n")


# --- data preparation -------------------------------------------------------------------------


def _score(name: str, gt_path: str | Path, results_path: str | Path, num_frames: int | None,
           gt_format: str) -> dict[str, dict[str, Any]]:
    """TrackEval's results for one sequence: ``{"HOTA": {...}, "CLEAR": {...}, "Identity": {...}, ...}``."""
    gt, mot17, n = _load_ground_truth(gt_path, num_frames, gt_format)
    res = read_mot(results_path, allow_empty=True, validate_boxes=False)
    _check_ids(res, results_path, n)

    benchmark = "MOT20" if gt_format == "mot20" else "MOT17" if mot17 else "MOT15"
    dataset = _ArrayMotDataset(benchmark, _gt_raw(gt, n, mot17), _tracker_raw(res, n))
    try:
        raw = dataset.get_raw_seq_data("tracker", name)
        data = dataset.get_preprocessed_seq_data(raw, "pedestrian")
        scores = {key: metric.eval_sequence(data) for key, metric in _metric_objects().items()}
    except TrackEvalException as exc:  # a check of ours missed something TrackEval rejects
        raise MotFormatError(f"{results_path} vs {gt_path}: {exc}") from None
    scores["Count"]["Unscored"] = int(np.count_nonzero(res.frames > n)) if len(res) else 0
    scores["Count"]["UnscoredGt"] = int(np.count_nonzero(gt.frames > n))
    scores["Count"]["NonPedestrian"] = (int(np.count_nonzero((res.extra[:, 0] > 1) & (res.frames <= n)))
                                        if res.extra.shape[1] else 0)
    return scores


def check_ground_truth(gt_path: str | Path, *, num_frames: int | None = None,
                       gt_format: str = "auto") -> None:
    """Make the checks of the ground truth that :func:`evaluate_sequence` makes, without scoring: commands
    that track first and score afterwards (``replay``, ``demo``) call it before the run, so a malformed
    ground truth is refused before a long replay rather than after it.

    Raises:
        MotFormatError, ValueError: as :func:`evaluate_sequence` would for this ground truth.
    """
    _load_ground_truth(gt_path, num_frames, gt_format)


def _load_ground_truth(gt_path: str | Path, num_frames: int | None,
                       gt_format: str) -> tuple[MotRows, bool, int]:
    """The checked ground truth, whether it is MOT17-style, and the number of frames to score."""
    if gt_format not in GT_FORMATS:
        raise ValueError(f"gt_format must be one of {', '.join(GT_FORMATS)}, got {gt_format!r}")
    if num_frames is not None and num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    gt = read_mot(gt_path, validate_boxes=False, note_unsorted=False)  # gt files are sorted by id
    mot17 = is_mot17_ground_truth(gt) if gt_format == "auto" else gt_format in ("mot17", "mot20")
    if mot17:
        _check_mot17_columns(gt, gt_path)
    n = int(num_frames) if num_frames is not None else gt.last_frame
    if n > MAX_SCORED_FRAMES:
        raise MotFormatError(f"{gt_path}: {n:,} frames to score; at most {MAX_SCORED_FRAMES:,} per sequence "
                             "(TrackEval keeps data for every frame: split the sequence)")
    _check_ids(gt, gt_path, n)
    return gt, mot17, n


def _metric_objects() -> dict[str, Any]:
    """Fresh TrackEval metric objects (their config printing off)."""
    quiet = {"THRESHOLD": _IOU_THRESHOLD, "PRINT_CONFIG": False}
    return {"HOTA": HOTA(), "CLEAR": CLEAR(dict(quiet)), "Identity": Identity(dict(quiet)), "Count": Count()}


def is_mot17_ground_truth(gt: MotRows) -> bool:
    """MOT16/17/20 ground truth has 8 or 9 columns (consider flag, class[, visibility])."""
    return gt.extra.shape[1] in (1, 2)


def _check_mot17_columns(gt: MotRows, path: str | Path) -> None:
    classes = gt.extra[:, 0] if gt.extra.shape[1] else np.empty(0)
    valid = np.isin(classes, list(_MOT17_CLASSES.values()))
    if gt.extra.shape[1] == 0 or not valid.all():
        bad = classes[~valid][0] if len(classes) else "missing"
        raise MotFormatError(f"{path}: MOT17-style ground truth needs a class id 1..13 in column 8, "
                             f"got {bad} (use MOT15 style for files without classes)")


def _check_ids(rows: MotRows, path: str | Path, last_frame: int) -> None:
    """Ids must be >= 0 and unique within a frame (TrackEval's contract), checked with a clear message."""
    keep = rows.frames <= last_frame
    ids, frames = rows.ids[keep], rows.frames[keep]
    if (ids < 0).any():
        frame = int(frames[np.argmax(ids < 0)])
        raise MotFormatError(f"{path}: negative track id in frame {frame} (a detection file, not results?)")
    pairs = np.stack([frames, ids], axis=1)
    uniq, counts = np.unique(pairs, axis=0, return_counts=True)
    if (counts > 1).any():
        frame, tid = uniq[np.argmax(counts > 1)]
        raise MotFormatError(f"{path}: id {tid} appears more than once in frame {frame}")


def _per_frame(rows: MotRows, last_frame: int) -> list[np.ndarray]:
    """Row indices of each frame 1..last_frame."""
    return [idx for _, idx in rows.by_frame(1, last_frame)]


def _dense_ids(rows: MotRows, last_frame: int) -> np.ndarray:
    """The rows' ids renumbered 0..K-1 in order (rows after ``last_frame`` get -1): the scores do not
    depend on id values, and TrackEval builds a table as long as the largest id (16 GiB for id 2**31)."""
    keep = rows.frames <= last_frame
    ids = np.full(len(rows), -1, dtype=np.int64)
    ids[keep] = np.unique(rows.ids[keep], return_inverse=True)[1]
    return ids


def _gt_raw(gt: MotRows, last_frame: int, mot17: bool) -> dict[str, Any]:
    """Ground truth in the layout of ``MotChallenge2DBox._load_raw_file(..., is_gt=True)``."""
    frames = _per_frame(gt, last_frame)
    if mot17:
        classes = [gt.extra[idx, 0].astype(int) for idx in frames]
    else:  # MOT15 has no classes: all pedestrians
        classes = [np.ones(len(idx), dtype=int) for idx in frames]
    ids = _dense_ids(gt, last_frame)
    return {
        "gt_ids": [ids[idx] for idx in frames],
        "gt_classes": classes,
        "gt_dets": [gt.boxes_tlwh[idx].reshape(-1, 4) for idx in frames],
        # TrackEval truncates column 7 to int: 0 marks rows to ignore.
        "gt_extras": [{"zero_marked": gt.scores[idx].astype(int)} for idx in frames],
        "gt_crowd_ignore_regions": [np.empty((0, 4)) for _ in frames],
        "num_timesteps": last_frame,
    }


def _tracker_raw(res: MotRows, last_frame: int) -> dict[str, Any]:
    """Results in the layout of ``MotChallenge2DBox._load_raw_file(..., is_gt=False)``."""
    frames = _per_frame(res, last_frame)
    ids = _dense_ids(res, last_frame)
    return {
        "tracker_ids": [ids[idx] for idx in frames],
        "tracker_classes": [np.ones(len(idx), dtype=int) for idx in frames],
        "tracker_dets": [res.boxes_tlwh[idx].reshape(-1, 4) for idx in frames],
        "tracker_confidences": [res.scores[idx] for idx in frames],
        "num_timesteps": last_frame,
    }


class _ArrayMotDataset(MotChallenge2DBox):
    """TrackEval's ``MotChallenge2DBox`` fed from arrays: its similarities and pre-processing, our loading."""

    def __init__(self, benchmark: str, gt_raw: dict[str, Any], tracker_raw: dict[str, Any]) -> None:
        _BaseDataset.__init__(self)  # MotChallenge2DBox.__init__ would look for its folder layout
        self.benchmark = benchmark
        self.do_preproc = True  # TrackEval itself skips distractor handling for MOT15
        self.class_list = ["pedestrian"]
        self.valid_classes = ["pedestrian"]
        self.class_name_to_class_id = dict(_MOT17_CLASSES)
        self.valid_class_numbers = list(_MOT17_CLASSES.values())
        self.should_classes_combine = False
        self._raw = {True: gt_raw, False: tracker_raw}

    def _load_raw_file(self, tracker: str, seq: str, is_gt: bool) -> dict[str, Any]:
        return {**self._raw[is_gt], "seq": seq}


def _to_metrics(res: dict[str, dict[str, Any]]) -> Metrics:
    hota, clear, ident, count = res["HOTA"], res["CLEAR"], res["Identity"], res["Count"]
    return Metrics(
        HOTA=_mean(hota["HOTA"]),
        DetA=_mean(hota["DetA"]),
        AssA=_mean(hota["AssA"]),
        MOTA=float(clear["MOTA"]),
        IDF1=float(ident["IDF1"]),
        IDSW=int(clear["IDSW"]),
        FP=int(clear["CLR_FP"]),
        FN=int(clear["CLR_FN"]),
        num_gt_ids=int(count["GT_IDs"]),
        num_frames=int(count["Frames"]),
        unscored_rows=int(count.get("Unscored", 0)),
        unscored_gt_rows=int(count.get("UnscoredGt", 0)),
        non_pedestrian_rows=int(count.get("NonPedestrian", 0)),
    )


def _mean(values: Any) -> float:
    """TrackEval's summary value of a per-threshold array (the mean over alpha)."""
    value = float(np.mean(values))
    return 0.0 if math.isnan(value) else value
