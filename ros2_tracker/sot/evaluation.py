"""OTB-style single-target evaluation: targets made from MOT ground truth, success AUC, precision @ 20 px.

Single-target sequences (:func:`single_target_sequences`) come from the ground-truth identities of a
MOTChallenge folder with images. The rule, per identity:

- MOT17-style ground truth (9 columns): pedestrians to consider only (class 1, flag 1); MOT15-style:
  every row;
- its frames with an image on disk, in the longest run of consecutive frames (no gap);
- the run starts at the first frame where the box is at least ``min_height`` px tall, has at least
  ``min_inside`` of its area inside the image and (MOT17) a visibility of at least ``min_visibility``;
- kept when that run (from there) has at least ``min(min_frames, frames with images)`` frames: 20 in
  TUD-Campus and PETS09-S3MF1, all the 4-8 image frames of a MOT17-mini sequence.

Metrics follow OTB's one-pass evaluation (Wu, Lim, Yang, CVPR 2013): the tracker starts on the ground
truth of the first frame and is never re-initialised; the first frame is not scored. *Success* at a
threshold is the fraction of frames whose IoU with the ground truth exceeds it; the success AUC is
the mean success over the 21 thresholds 0, 0.05, ..., 1. *Precision at 20 px* is the fraction of
frames whose box centre lies within 20 px of the ground truth's. Over several targets OTB averages the
per-sequence curves (every target weighs the same: :func:`summarise_targets`' ``auc`` and
``precision20``); the same figures over all frames pooled (long targets weigh more) come beside them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ros2_tracker.core.boxes import tlwh_to_xyxy
from ros2_tracker.io.mot import is_mot17_style, read_mot
from ros2_tracker.io.sequence import read_sequence_info

__all__ = [
    "OTB_THRESHOLDS",
    "SequenceScore",
    "SotSequence",
    "center_errors",
    "evaluate_backend",
    "ious",
    "precision_at",
    "single_target_sequences",
    "success_auc",
    "success_curve",
    "summarise_targets",
]

OTB_THRESHOLDS = np.linspace(0.0, 1.0, 21)
"""IoU thresholds of OTB's success plot."""


@dataclass(frozen=True)
class SotSequence:
    """One target to follow.

    Attributes:
        name: ``<sequence>/<id>``.
        folder: the MOTChallenge sequence folder.
        frames: (T,) consecutive frame numbers.
        boxes_xyxy: (T, 4) ground-truth boxes [px].
        fps: frame rate of the sequence [Hz].
    """

    name: str
    folder: Path
    frames: np.ndarray
    boxes_xyxy: np.ndarray
    fps: float = 25.0

    def __len__(self) -> int:
        return len(self.frames)


def single_target_sequences(folder: str | Path, *, min_frames: int = 20, min_height: float = 50.0,
                            min_inside: float = 0.9, min_visibility: float = 0.5) -> list[SotSequence]:
    """The single-target sequences of one MOTChallenge folder (rule in the module docstring).

    Raises:
        MotFormatError: no readable ``gt/gt.txt`` or ``seqinfo.ini``.
    """
    root = Path(folder)
    info = read_sequence_info(root)
    gt = read_mot(root / "gt" / "gt.txt", validate_boxes=False, note_unsorted=False)
    with_image = {k for k in range(1, info.length + 1) if info.frame_path(k).is_file()}
    keep = np.isin(gt.frames, sorted(with_image))
    visibility = np.ones(len(gt))
    if is_mot17_style(gt):
        keep &= (gt.extra[:, 0] == 1) & (gt.scores > 0)
        visibility = gt.extra[:, 1]
    boxes = tlwh_to_xyxy(gt.boxes_tlwh)
    inside = _inside_fraction(boxes, info.width, info.height)
    good = (gt.boxes_tlwh[:, 3] >= min_height) & (inside >= min_inside) & (visibility >= min_visibility)
    need = min(min_frames, len(with_image))
    out = []
    for tid in np.unique(gt.ids[keep]):
        rows = np.flatnonzero(keep & (gt.ids == tid))
        rows = rows[np.argsort(gt.frames[rows], kind="stable")]
        run = _longest_run(gt.frames[rows])
        rows = rows[run]
        first_good = np.flatnonzero(good[rows])
        if len(first_good) == 0:
            continue
        rows = rows[first_good[0]:]
        if len(rows) >= max(need, 2):
            out.append(SotSequence(f"{info.name}/{int(tid)}", root, gt.frames[rows].astype(int), boxes[rows],
                                   info.fps if info.fps_known else 25.0))
    return out


def _inside_fraction(boxes_xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    clipped = np.clip(boxes_xyxy, 0, [width, height, width, height])
    area = np.prod(np.maximum(boxes_xyxy[:, 2:] - boxes_xyxy[:, :2], 0), axis=1)
    inner = np.prod(np.maximum(clipped[:, 2:] - clipped[:, :2], 0), axis=1)
    return np.divide(inner, area, out=np.zeros(len(area)), where=area > 0)


def _longest_run(frames: np.ndarray) -> slice:
    """The longest slice of consecutive frame numbers."""
    if len(frames) == 0:
        return slice(0, 0)
    breaks = np.flatnonzero(np.diff(frames) != 1) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(frames)]])
    best = int(np.argmax(ends - starts))
    return slice(int(starts[best]), int(ends[best]))


# ------------------------------------------------------------------------------------------- metrics
def ious(pred_xyxy: np.ndarray, gt_xyxy: np.ndarray) -> np.ndarray:
    """(T,) IoU of row-paired (T, 4) boxes (0 for non-finite or empty predictions)."""
    p, g = np.asarray(pred_xyxy, dtype=np.float64), np.asarray(gt_xyxy, dtype=np.float64)
    wh = np.clip(np.minimum(p[:, 2:], g[:, 2:]) - np.maximum(p[:, :2], g[:, :2]), 0, None)
    inter = wh[:, 0] * wh[:, 1]
    union = _area(p) + _area(g) - inter
    out = np.divide(inter, union, out=np.zeros(len(p)), where=union > 0)
    return np.where(np.isfinite(out), out, 0.0)


def _area(b: np.ndarray) -> np.ndarray:
    return np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)


def center_errors(pred_xyxy: np.ndarray, gt_xyxy: np.ndarray) -> np.ndarray:
    """(T,) distance between box centres [px] (inf for non-finite predictions)."""
    p, g = np.asarray(pred_xyxy, dtype=np.float64), np.asarray(gt_xyxy, dtype=np.float64)
    d = np.hypot(*(0.5 * (p[:, :2] + p[:, 2:]) - 0.5 * (g[:, :2] + g[:, 2:])).T)
    return np.where(np.isfinite(d), d, np.inf)


def success_curve(iou: np.ndarray, thresholds: np.ndarray = OTB_THRESHOLDS) -> np.ndarray:
    """Fraction of frames with IoU > each threshold."""
    iou = np.asarray(iou, dtype=np.float64)
    return (iou[None, :] > np.asarray(thresholds)[:, None]).mean(axis=1) if len(iou) else \
        np.zeros(len(thresholds))


def success_auc(iou: np.ndarray) -> float:
    """Area under the success curve: its mean over :data:`OTB_THRESHOLDS`."""
    return float(success_curve(iou).mean())


def precision_at(errors: np.ndarray, pixels: float = 20.0) -> float:
    """Fraction of frames whose centre error is at most ``pixels``."""
    errors = np.asarray(errors, dtype=np.float64)
    return float((errors <= pixels).mean()) if len(errors) else 0.0


def summarise_targets(scores: Sequence[SequenceScore]) -> dict[str, Any]:
    """OTB's summary of one tracker over several targets, and the frames-pooled figures.

    Returns:
        ``auc`` / ``precision20`` / ``success_curve``: means over targets of each target's figure
        (OTB); ``auc_pooled`` / ``precision20_pooled``: over all scored frames at once; ``targets``,
        ``frames``.
    """
    scores = [s for s in scores if len(s.ious)]
    if not scores:
        return {"auc": float("nan"), "precision20": float("nan"), "success_curve": [],
                "auc_pooled": float("nan"), "precision20_pooled": float("nan"), "targets": 0, "frames": 0}
    curves = np.array([success_curve(s.ious) for s in scores])
    pooled_iou = np.concatenate([s.ious for s in scores])
    return {"auc": float(curves.mean()), "precision20": float(np.mean([precision_at(s.center_errors)
                                                                         for s in scores])),
            "success_curve": curves.mean(axis=0).tolist(), "auc_pooled": success_auc(pooled_iou),
            "precision20_pooled": precision_at(np.concatenate([s.center_errors for s in scores])),
            "targets": len(scores), "frames": len(pooled_iou)}


# ------------------------------------------------------------------------------------------ running
@dataclass(frozen=True)
class SequenceScore:
    """One backend on one target: per-frame IoU and centre error (first frame excluded) and timing."""

    name: str
    ious: np.ndarray
    center_errors: np.ndarray
    update_seconds: float

    @property
    def frames(self) -> int:
        """Scored frames."""
        return len(self.ious)


def evaluate_backend(tracker: Any, seq: SotSequence, images: Sequence[np.ndarray]) -> SequenceScore:
    """One-pass evaluation of one target.

    Args:
        tracker: a :class:`~ros2_tracker.sot.tracker_base.SingleTargetTracker`, or anything with
            ``start(frame, box, stamp_s, target_id)`` and ``step(frame, stamp_s)`` returning an object
            with ``box_xyxy`` (a :class:`~ros2_tracker.sot.follower.Follower`).
        seq: the target.
        images: (T,) BGR frames of ``seq.frames``.
    """
    follower = hasattr(tracker, "step")
    if follower:
        if tracker.active:
            tracker.stop()
        tracker.start(images[0], seq.boxes_xyxy[0], 0.0, 1)
    else:
        tracker.init(images[0], seq.boxes_xyxy[0])
    boxes = np.zeros((len(seq) - 1, 4))
    seconds = 0.0
    for k in range(1, len(seq)):
        t0 = time.perf_counter()
        res = tracker.step(images[k], k / seq.fps) if follower else tracker.update(images[k])
        seconds += time.perf_counter() - t0
        boxes[k - 1] = res.box_xyxy
    gt = seq.boxes_xyxy[1:]
    return SequenceScore(seq.name, ious(boxes, gt), center_errors(boxes, gt), seconds)
