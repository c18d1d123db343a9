"""Detector accuracy and speed on MOTChallenge sequences with ground truth: recall, precision, ms/frame.

Matching is the usual one for detection benchmarks: detections in decreasing score order each take
the unmatched ground-truth box of highest IoU if that IoU is at least ``iou_threshold`` (a true
positive); an unmatched detection that overlaps an *ignore region* at that IoU is left out of the
count; any other is a false positive. Ground-truth boxes left unmatched are misses.

Ground truth (``gt/gt.txt``): in MOT17-style files (column 8 = class, column 9 = visibility) the
targets are pedestrians (class 1) marked "consider" (column 7 = 1) and ignore regions are the other
person-like boxes (person on vehicle 2, static person 7, distractor 8, reflection 12) and the
pedestrians marked not to consider; in MOT15-style files (10 columns, the last three -1 or world
coordinates) every row is a target.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ros2_tracker.core.boxes import tlwh_to_xyxy
from ros2_tracker.core.costs import iou_matrix
from ros2_tracker.detection.yolox import YoloxDetector
from ros2_tracker.io.mot import MotFormatError, MotRows, is_mot17_style, read_mot
from ros2_tracker.io.sequence import read_sequence_info
from ros2_tracker.io.video import read_image

__all__ = ["DetectionCounts", "SequenceBenchmark", "benchmark_sequence", "count_matches", "gt_for_frame"]

MOT17_PEDESTRIAN = 1
MOT17_IGNORE_CLASSES = (2, 7, 8, 12)  # person on vehicle, static person, distractor, reflection


@dataclass(frozen=True)
class DetectionCounts:
    """True positives, false positives, misses (and detections on ignore regions) over some frames."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    ignored: int = 0

    def __add__(self, other: DetectionCounts) -> DetectionCounts:
        return DetectionCounts(self.tp + other.tp, self.fp + other.fp, self.fn + other.fn,
                               self.ignored + other.ignored)

    @property
    def recall(self) -> float:
        """TP / (TP + FN); NaN without ground truth."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan

    @property
    def precision(self) -> float:
        """TP / (TP + FP); NaN without counted detections."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan


def count_matches(det_xyxy: np.ndarray, det_scores: np.ndarray, gt_xyxy: np.ndarray,
                  ignore_xyxy: np.ndarray | None = None, iou_threshold: float = 0.5) -> DetectionCounts:
    """Greedy score-ordered matching of one frame's detections to its ground truth (module docstring).

    Args:
        det_xyxy: (D, 4) detections, xyxy pixels.
        det_scores: (D,) their scores (higher first).
        gt_xyxy: (G, 4) ground-truth targets, xyxy pixels.
        ignore_xyxy: (R, 4) ignore regions, or None.
        iou_threshold: minimum IoU of a match.
    """
    det_xyxy = np.asarray(det_xyxy, dtype=np.float64).reshape(-1, 4)
    gt_xyxy = np.asarray(gt_xyxy, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(det_scores, dtype=np.float64), kind="stable")
    iou = iou_matrix(det_xyxy[order], gt_xyxy)
    taken = np.zeros(len(gt_xyxy), dtype=bool)
    unmatched = []
    for k in range(len(order)):
        cand = np.where(taken, -1.0, iou[k]) if len(gt_xyxy) else np.empty(0)
        if len(cand) and cand.max() >= iou_threshold:
            taken[int(cand.argmax())] = True
        else:
            unmatched.append(order[k])
    ignored = 0
    if unmatched and ignore_xyxy is not None and len(ignore_xyxy):
        ign = iou_matrix(det_xyxy[unmatched], np.asarray(ignore_xyxy, dtype=np.float64).reshape(-1, 4))
        ignored = int((ign.max(axis=1) >= iou_threshold).sum())
    tp = int(taken.sum())
    return DetectionCounts(tp=tp, fp=len(unmatched) - ignored, fn=len(gt_xyxy) - tp, ignored=ignored)


def gt_for_frame(gt: MotRows, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Targets and ignore regions ``((G, 4), (R, 4))`` xyxy of one frame (rules in the module docstring)."""
    rows = gt.frames == frame
    boxes = tlwh_to_xyxy(gt.boxes_tlwh[rows])
    extra = gt.extra[rows]
    if not is_mot17_style(gt):  # MOT15 style: every row is a target
        return boxes, np.empty((0, 4))
    cls, consider = extra[:, 0], gt.scores[rows] > 0
    target = (cls == MOT17_PEDESTRIAN) & consider
    ignore = np.isin(cls, MOT17_IGNORE_CLASSES) | ((cls == MOT17_PEDESTRIAN) & ~consider)
    return boxes[target], boxes[ignore]


@dataclass(frozen=True)
class SequenceBenchmark:
    """Detector result on one sequence: counts at the IoU threshold and timing."""

    name: str
    frames: int
    counts: DetectionCounts
    strict: DetectionCounts  # the same with no ignore regions (every unmatched detection is an FP)
    detect_seconds: float

    @property
    def ms_per_frame(self) -> float:
        """Mean wall time of :meth:`YoloxDetector.detect` per frame [ms]."""
        return 1000.0 * self.detect_seconds / self.frames if self.frames else math.nan


def benchmark_sequence(detector: YoloxDetector, seq_folder: str | Path, *, max_frames: int | None = None,
                       iou_threshold: float = 0.5, warmup: int = 1) -> SequenceBenchmark:
    """Run ``detector`` on the frames of a sequence that have images and ground truth; count matches.

    Only detections of the person class are compared with the (pedestrian) ground truth.

    Args:
        detector: the detector (its ``classes`` should include 0, person).
        seq_folder: MOTChallenge sequence folder with ``img1/`` and ``gt/gt.txt``.
        max_frames: use at most this many frames (the first ones).
        iou_threshold: minimum IoU of a true positive.
        warmup: untimed runs on the first frame before timing (ONNX Runtime's first run is slow).

    Raises:
        MotFormatError: missing ground truth or images.
    """
    info = read_sequence_info(seq_folder)
    gt = read_mot(info.gt_path)
    frames = [f for f in range(1, gt.last_frame + 1) if info.frame_path(f).is_file()]
    if not frames:
        raise MotFormatError(f"{info.image_dir}: no frame images for the ground-truth frames")
    frames = frames[:max_frames] if max_frames is not None else frames
    counts, strict, seconds = DetectionCounts(), DetectionCounts(), 0.0
    for k, frame in enumerate(frames):
        image = read_image(info.frame_path(frame))
        if image is None:
            raise MotFormatError(f"{info.frame_path(frame)}: cannot read the image")
        for _ in range(warmup if k == 0 else 0):
            detector.detect(image)
        t0 = time.perf_counter()
        det = detector.detect(image)
        seconds += time.perf_counter() - t0
        person = det.classes == 0
        targets, ignore = gt_for_frame(gt, frame)
        counts += count_matches(det.boxes_xyxy[person], det.scores[person], targets, ignore, iou_threshold)
        strict += count_matches(det.boxes_xyxy[person], det.scores[person], targets, None, iou_threshold)
    return SequenceBenchmark(info.name, len(frames), counts, strict, seconds)
