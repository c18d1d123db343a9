"""Person-detection quality: average precision at IoU 0.5 (AP@0.5) over frames with ground truth.

Protocol (:func:`average_precision`, PASCAL VOC style with MOTChallenge ignore regions):

* in each frame, detections are taken by decreasing score and matched greedily to the not yet matched
  ground-truth person of highest IoU, if that IoU is at least ``iou_threshold``: a true positive;
* an unmatched detection that overlaps an ignore region (intersection over the detection's own area at
  least ``iou_threshold``) is dropped, neither true nor false; any other is a false positive;
* AP is the area under the precision-recall curve over all frames with precision made monotone
  (all-point interpolation, as VOC 2010+; COCO samples the curve at 101 recall points instead).

:func:`evaluate_detector` runs a :class:`~ros2_tracker.regression.backends.torchvision_frcnn.FrcnnDetector`
over :class:`~ros2_tracker.training.detector_data.DetectionFrame` s and scores it, overall and per
sequence. numpy only, but :func:`evaluate_detector` imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ros2_tracker.core.costs import iou_matrix

__all__ = ["DetectionAP", "FrameDetections", "average_precision", "evaluate_detector", "match_frame"]


class FrameDetections(NamedTuple):
    """Detections and ground truth of one frame (same pixel frame).

    Attributes:
        boxes_xyxy: ``(D, 4)`` detections.
        scores: ``(D,)`` detection scores.
        gt_xyxy: ``(G, 4)`` ground-truth persons.
        ignore_xyxy: ``(M, 4)`` ignore regions.
    """

    boxes_xyxy: np.ndarray
    scores: np.ndarray
    gt_xyxy: np.ndarray
    ignore_xyxy: np.ndarray


class DetectionAP(NamedTuple):
    """AP of a set of frames.

    Attributes:
        ap: average precision in [0, 1] (0 when there is no ground truth).
        recall: recall at the lowest score kept.
        precision: precision at the lowest score kept.
        num_gt: ground-truth persons.
        num_detections: detections counted (ignored ones excluded).
        curve: ``(K, 2)`` recall, precision after each counted detection by decreasing score.
    """

    ap: float
    recall: float
    precision: float
    num_gt: int
    num_detections: int
    curve: np.ndarray

    def summary(self) -> dict[str, float | int]:
        """Plain values (no curve) for JSON."""
        return {"ap": self.ap, "recall": self.recall, "precision": self.precision, "num_gt": self.num_gt,
                "num_detections": self.num_detections}


def match_frame(det: FrameDetections, iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``(scores, 1 = true positive / 0 = false positive)`` of a frame's counted detections.

    Detections that match no person but lie on an ignore region are left out.
    """
    order = np.argsort(-np.asarray(det.scores), kind="stable")
    boxes, scores = np.asarray(det.boxes_xyxy, float).reshape(-1, 4)[order], np.asarray(det.scores)[order]
    iou = iou_matrix(boxes, det.gt_xyxy)
    taken = np.zeros(iou.shape[1], bool)
    tp = np.zeros(len(boxes), np.int8)
    counted = np.ones(len(boxes), bool)
    covered = _ignored(boxes, det.ignore_xyxy, iou_threshold)
    for i in range(len(boxes)):
        cand = np.where(taken, -1.0, iou[i]) if iou.shape[1] else np.empty(0)
        if cand.size and cand.max() >= iou_threshold:
            taken[int(np.argmax(cand))] = True
            tp[i] = 1
        elif covered[i]:
            counted[i] = False
    return scores[counted], tp[counted]


def _ignored(boxes: np.ndarray, regions: np.ndarray, threshold: float) -> np.ndarray:
    """Boxes whose intersection with some ignore region covers at least ``threshold`` of their area."""
    regions = np.asarray(regions, float).reshape(-1, 4)
    if not len(boxes) or not len(regions):
        return np.zeros(len(boxes), bool)
    wh = np.minimum(boxes[:, None, 2:], regions[None, :, 2:]) - np.maximum(boxes[:, None, :2],
                                                                          regions[None, :, :2])
    inter = np.clip(wh, 0, None).prod(axis=2)
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-12)
    return (inter / area[:, None]).max(axis=1) >= threshold


def average_precision(frames: Sequence[FrameDetections], iou_threshold: float = 0.5) -> DetectionAP:
    """AP@``iou_threshold`` of detections over frames (see the module docstring)."""
    num_gt = int(sum(len(f.gt_xyxy) for f in frames))
    matched = [match_frame(f, iou_threshold) for f in frames]
    scores = np.concatenate([m[0] for m in matched]) if matched else np.empty(0)
    tp = np.concatenate([m[1] for m in matched]).astype(float) if matched else np.empty(0)
    order = np.argsort(-scores, kind="stable")
    tp = tp[order]
    if num_gt == 0 or len(tp) == 0:
        return DetectionAP(0.0, 0.0, 0.0 if len(tp) else 1.0, num_gt, len(tp), np.empty((0, 2)))
    ctp, cfp = np.cumsum(tp), np.cumsum(1.0 - tp)
    recall = ctp / num_gt
    precision = ctp / np.maximum(ctp + cfp, 1e-12)
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return DetectionAP(float((steps * envelope).sum()), float(recall[-1]), float(precision[-1]), num_gt,
                       len(tp), np.stack([recall, precision], axis=1))


def evaluate_detector(model: Any, frames: Sequence[Any], device: Any = "cpu",
                      iou_threshold: float = 0.5) -> dict[str, DetectionAP]:
    """AP of a detector on frames, key ``"all"`` and one per sequence.

    Args:
        model: a ``FrcnnDetector`` (put in eval mode here; its training mode is restored after).
        frames: ``DetectionFrame`` s (stored images and boxes).
        device: where the model is.
        iou_threshold: IoU of a true positive.
    """
    import torch

    from ros2_tracker.regression.backends.torchvision_frcnn import network_scale, prepare_images

    was_training = model.training
    model.eval()
    per_frame: list[tuple[str, FrameDetections]] = []
    try:
        for fr in frames:
            s = network_scale(fr.image.shape[:2], model.config.min_size, model.config.max_size)
            batch, sizes = prepare_images([fr.image], [s])
            with torch.inference_mode():
                det = model(torch.from_numpy(batch).to(device), sizes)[0]
            sx, sy = sizes[0][1] / fr.image.shape[1], sizes[0][0] / fr.image.shape[0]
            boxes = det["boxes"].cpu().numpy().astype(float) / np.array([sx, sy, sx, sy])
            per_frame.append((fr.sequence, FrameDetections(boxes, det["scores"].cpu().numpy(), fr.boxes_xyxy,
                                                           fr.ignore_xyxy)))
    finally:
        model.train(was_training)
    out = {"all": average_precision([f for _, f in per_frame], iou_threshold)}
    for name in sorted({s for s, _ in per_frame}):
        out[name] = average_precision([f for s, f in per_frame if s == name], iou_threshold)
    return out
