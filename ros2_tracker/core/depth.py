"""3D positions of boxes from a depth image registered to the camera image (numpy only).

A robot wants to know where a tracked person is, not only which pixels show them. With an RGB-D camera
(or stereo) whose depth image is registered to the colour image (RealSense ``aligned_depth_to_color``,
ZED ``depth/depth_registered``), each box gets the depth of what fills its middle: the median of the
valid depths in its central part (``fraction`` of its width and height; the box's edges show the
background, its middle the object), back-projected through the box's centre with the camera matrix K
into the camera's optical frame (x right, y down, z forward; REP 103 / 118: a depth image holds z, not the
range along the ray).

The depth is read on a fixed grid of ``GRID`` x ``GRID`` points over each box's central part, all boxes in
one array: the cost does not grow with the boxes' size, and no Python loop runs per box. The median of the
valid samples is taken with one sort. A box whose central part has fewer than ``min_valid`` of its samples
valid (inside the image, finite, within [``min_m``, ``max_m``]) gets NaN: no position rather than a guess.
"""

from __future__ import annotations

import numpy as np

__all__ = ["GRID", "box_positions"]

GRID = 16
"""Samples per axis over each box's central part (a median of up to 256 depths)."""


def box_positions(depth_m: np.ndarray, boxes_xyxy: np.ndarray, camera_matrix: np.ndarray, *,
                  fraction: float = 0.5, min_m: float = 0.1, max_m: float = 50.0, min_valid: float = 0.1,
                  depth_scale: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """The (N, 3) positions (x, y, z) [m] of N boxes in the camera's optical frame; NaN rows where the depth
    does not tell.

    Args:
        depth_m: (H, W) depth image [m], NaN (or 0) where the sensor has no depth.
        boxes_xyxy: (N, 4) boxes [px] in the image that ``camera_matrix`` describes (rectified).
        camera_matrix: (3, 3) calibrated K of that image (fx, fy > 0).
        fraction: the central part of each box whose depth counts, as a share of its width and height.
        min_m: nearer depths are not valid (sensor noise near 0) [m].
        max_m: farther depths are not valid (beyond the sensor's range) [m].
        min_valid: the share of the ``GRID`` x ``GRID`` samples that must be valid for a position.
        depth_scale: (sx, sy) depth pixels per image pixel, for a depth image of another resolution than
            the camera image (a half-size registered depth: (0.5, 0.5)).

    Raises:
        ValueError: a depth image that is not 2-D, boxes that are not (N, 4), a K that is not 3 x 3.
    """
    depth = np.asarray(depth_m)
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    k = np.asarray(camera_matrix, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth image must be 2-D (H, W), got shape {depth.shape}")
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {boxes.shape}")
    if k.shape != (3, 3):
        raise ValueError(f"camera matrix must be 3 x 3, got shape {k.shape}")
    n = len(boxes)
    if not n:
        return np.zeros((0, 3))
    no_box = ~np.isfinite(boxes).all(axis=1)  # (N,): a non-finite box gets no position (below)
    boxes = np.where(np.isfinite(boxes), boxes, 0.0)
    centre = 0.5 * (boxes[:, :2] + boxes[:, 2:])  # (N, 2) u, v [image px]
    half = (0.5 * fraction) * (boxes[:, 2:] - boxes[:, :2])  # (N, 2) half size of the central part
    steps = (np.arange(GRID) + 0.5) / GRID * 2.0 - 1.0  # (G,) in (-1, 1)
    height, width = depth.shape
    # sample points in depth pixels, (N, G) columns and rows; -1 and the size itself are outside
    cols = _pixels(centre[:, 0:1] + half[:, 0:1] * steps, depth_scale[0], width)
    rows = _pixels(centre[:, 1:2] + half[:, 1:2] * steps, depth_scale[1], height)
    col_in = (cols >= 0) & (cols < width)
    row_in = (rows >= 0) & (rows < height)
    samples = depth[np.clip(rows, 0, height - 1)[:, :, None], np.clip(cols, 0, width - 1)[:, None, :]]
    samples = samples.reshape(n, GRID * GRID).astype(np.float64)
    inside = (row_in[:, :, None] & col_in[:, None, :]).reshape(n, GRID * GRID)
    valid = inside & (samples >= min_m) & (samples <= max_m)  # NaN compares False
    count = valid.sum(axis=1)
    ordered = np.sort(np.where(valid, samples, np.inf), axis=1)  # the valid depths first, ascending
    middle = np.stack([np.maximum(count - 1, 0) // 2, count // 2], axis=1)  # the median's two ranks
    z = np.take_along_axis(ordered, middle, axis=1).mean(axis=1)
    z[(count < max(1.0, min_valid * GRID * GRID)) | no_box] = np.nan
    fx, skew, cx, fy, cy = k[0, 0], k[0, 1], k[0, 2], k[1, 1], k[1, 2]
    y_n = (centre[:, 1] - cy) / fy
    x_n = (centre[:, 0] - cx - skew * y_n) / fx
    return np.stack([x_n * z, y_n * z, z], axis=1)


def _pixels(coords: np.ndarray, scale: float, size: int) -> np.ndarray:
    """Image coordinates [px] as integer depth pixels, clipped to [-1, ``size``] (both outside) before the
    cast, so a box far outside (or huge) cannot overflow it."""
    return np.floor(np.clip(coords * scale, -1.0, float(size))).astype(np.int64)
