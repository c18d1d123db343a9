"""Checks of what single-target backends are given: frames and start boxes (numpy only).

Every backend calls :func:`check_frame` and :func:`check_start_box` so that bad input gives the same
clear message whichever backend runs (a service caller sees it in the response).
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_BOX_SIZE", "check_frame", "check_start_box", "iou_xyxy"]

MIN_BOX_SIZE = 4.0
"""Smallest start box side inside the image [px]; below it no backend has a template to follow."""


def check_frame(frame_bgr: np.ndarray, expected_hw: tuple[int, int] | None = None) -> np.ndarray:
    """The frame as a contiguous ``(H, W, 3)`` uint8 array.

    Args:
        frame_bgr: ``(H, W, 3)`` uint8 BGR image.
        expected_hw: the (height, width) the target was started on; None: any size.

    Raises:
        ValueError: not an ``(H, W, 3)`` uint8 image, or not of the expected size.
    """
    frame = np.asarray(frame_bgr)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3 or min(frame.shape[:2]) < 1:
        raise ValueError(f"expected an (H, W, 3) uint8 BGR frame, got {frame.shape} {frame.dtype}")
    if expected_hw is not None and tuple(frame.shape[:2]) != tuple(expected_hw):
        raise ValueError(f"frame is {frame.shape[1]}x{frame.shape[0]} px, but the target was started on a "
                         f"{expected_hw[1]}x{expected_hw[0]} px image (stop and start again after a "
                         f"resolution change)")
    return np.ascontiguousarray(frame)


def check_start_box(box_xyxy: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """The start box clipped to the image, or a clear error.

    Args:
        box_xyxy: (4,) x1, y1, x2, y2 [px].
        image_hw: (height, width) of the image [px].

    Returns:
        (4,) float64 box clipped to the image.

    Raises:
        ValueError: not 4 finite numbers, zero or negative size, outside the image, or smaller than
            :data:`MIN_BOX_SIZE` inside it.
    """
    box = np.asarray(box_xyxy, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise ValueError(f"box must be 4 finite numbers x1, y1, x2, y2, got {np.asarray(box_xyxy).tolist()}")
    w, h = box[2] - box[0], box[3] - box[1]
    if w <= 0 or h <= 0:
        raise ValueError(f"box has zero or negative size ({w:g} x {h:g} px)")
    height, width = image_hw
    clipped = np.array([max(box[0], 0.0), max(box[1], 0.0), min(box[2], width), min(box[3], height)])
    cw, ch = clipped[2] - clipped[0], clipped[3] - clipped[1]
    if cw <= 0 or ch <= 0:
        raise ValueError(f"box {_text(box)} is outside the {width}x{height} px image")
    if cw < MIN_BOX_SIZE or ch < MIN_BOX_SIZE:
        raise ValueError(f"box {_text(box)} is only {cw:g} x {ch:g} px inside the {width}x{height} px "
                         f"image (at least {MIN_BOX_SIZE:g} px each way)")
    return clipped


def iou_xyxy(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (4,) xyxy boxes (0 when either is empty)."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _text(box: np.ndarray) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"
