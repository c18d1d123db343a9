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

Where each tracked object is going, in 3D (:func:`position_velocities`): across the image, the track's
filtered image velocity scaled by its depth; along the camera's axis, the rate at which its measured depths
change, the least-squares slope over the last half second (:class:`DepthHistory`). The image alone tells the
lateral motion well (the Kalman filter smooths it) but the motion in depth only through the box's growth,
whose noise is large relative to the box (``bench/depth_positions.py`` measured both).
"""

from __future__ import annotations

import numpy as np

__all__ = ["GRID", "DepthHistory", "box_positions", "normalised", "position_velocities"]

GRID = 16
"""Samples per axis over each box's central part (a median of up to 256 depths)."""


def box_positions(depth_m: np.ndarray, boxes_xyxy: np.ndarray, camera_matrix: np.ndarray, *,
                  fraction: float = 0.5, min_m: float = 0.1, max_m: float = 50.0, min_valid: float = 0.1,
                  depth_scale: tuple[float, float] = (1.0, 1.0),
                  centres: np.ndarray | None = None) -> np.ndarray:
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
        centres: (N, 2) the boxes' centres to back-project, in the pixels of an ideal camera with K: the
            undistorted centres of boxes in an image with lens distortion (``io.camera_model``); default
            the boxes' own centres (no distortion). The depth is read at the boxes, in the image's pixels.

    Raises:
        ValueError: a depth image that is not 2-D, boxes that are not (N, 4), a K that is not 3 x 3, centres
            that are not (N, 2).
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
    ray = _centres(centres, n)
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
    x_n, y_n = normalised(centre if ray is None else ray, k).T
    return np.stack([x_n * z, y_n * z, z], axis=1)


def normalised(pixels: np.ndarray, camera_matrix: np.ndarray, *, offset: bool = True) -> np.ndarray:
    """(N, 2) pixels -> (N, 2) normalised image coordinates, ``K^-1 (u, v, 1)`` (skew included); without
    ``offset``, of pixel motions (velocities: the principal point drops out)."""
    k = camera_matrix
    cx, cy = (k[0, 2], k[1, 2]) if offset else (0.0, 0.0)
    y = (pixels[:, 1] - cy) / k[1, 1]
    return np.column_stack([(pixels[:, 0] - cx - k[0, 1] * y) / k[0, 0], y])


def _centres(centres: np.ndarray | None, n: int) -> np.ndarray | None:
    """``centres`` as an (n, 2) float array (None stays None)."""
    if centres is None:
        return None
    out = np.asarray(centres, dtype=np.float64)
    if out.shape != (n, 2):
        raise ValueError(f"centres must have shape ({n}, 2), got {out.shape}")
    return out


def _pixels(coords: np.ndarray, scale: float, size: int) -> np.ndarray:
    """Image coordinates [px] as integer depth pixels, clipped to [-1, ``size``] (both outside) before the
    cast, so a box far outside (or huge) cannot overflow it."""
    return np.floor(np.clip(coords * scale, -1.0, float(size))).astype(np.int64)


def position_velocities(positions: np.ndarray, boxes_xyxy: np.ndarray, box_velocities: np.ndarray,
                        depth_rates: np.ndarray, camera_matrix: np.ndarray, *,
                        centres: np.ndarray | None = None,
                        centre_velocities: np.ndarray | None = None) -> np.ndarray:
    """The (N, 3) velocities (x, y, z) [m/s] of N tracks in the camera's optical frame: the derivative of the
    position ``z * K^-1 (u, v, 1)`` (as :func:`box_positions` gives it) with the box centre (u, v) moving at
    the track's image velocity and the depth z changing at ``depth_rates``; NaN rows where the position or
    the depth rate is unknown.

    Args:
        positions: (N, 3) positions [m] (NaN rows: none).
        boxes_xyxy: (N, 4) the boxes the positions came from [px].
        box_velocities: (N, 4) d/dt of (cx, cy, w, h) [px/s] (``TrackSet.velocities``).
        depth_rates: (N,) dz/dt [m/s] (:meth:`DepthHistory.rates`; NaN: unknown).
        camera_matrix: (3, 3) K of the image the boxes are in.
        centres: (N, 2) the boxes' centres in the pixels of an ideal camera with K (as for
            :func:`box_positions`); default the boxes' own.
        centre_velocities: (N, 2) their velocities there [px/s]; default the first two of ``box_velocities``.
            Given with ``centres``, or neither is.

    Raises:
        ValueError: arrays of other shapes; one of ``centres`` and ``centre_velocities`` without the other.
    """
    pos = np.asarray(positions, dtype=np.float64)
    boxes = np.asarray(boxes_xyxy, dtype=np.float64)
    vel = np.asarray(box_velocities, dtype=np.float64)
    rate = np.asarray(depth_rates, dtype=np.float64)
    k = np.asarray(camera_matrix, dtype=np.float64)
    n = len(pos)
    if pos.shape != (n, 3) or boxes.shape != (n, 4) or vel.shape != (n, 4) or rate.shape != (n,) or \
            k.shape != (3, 3):
        raise ValueError(f"expected positions (N, 3), boxes (N, 4), velocities (N, 4), depth rates (N,) and "
                         f"K (3, 3), got {pos.shape}, {boxes.shape}, {vel.shape}, {rate.shape}, {k.shape}")
    ray, ray_velocity = _centres(centres, n), _centres(centre_velocities, n)
    if (ray is None) != (ray_velocity is None):  # one in the lens-free pixels, the other not: mixed up
        raise ValueError("centres and centre_velocities go together (both undistorted, or neither)")
    x_n, y_n = normalised(0.5 * (boxes[:, :2] + boxes[:, 2:]) if ray is None else ray, k).T
    dx_n, dy_n = normalised(vel[:, :2] if ray_velocity is None else ray_velocity, k, offset=False).T
    z = pos[:, 2]
    out = np.stack([rate * x_n + z * dx_n, rate * y_n + z * dy_n, rate], axis=1)
    out[~np.isfinite(pos).all(axis=1)] = np.nan  # (vz is the depth rate alone: it would outlive the position)
    return out


class DepthHistory:
    """Each track's depths over its recent frames, for the rate at which its depth changes: one
    (tracks, ``size``) array of stamps and one of depths, a ring column per frame, no loop per track.

    :meth:`rates` records a frame's depths and returns each track's depth rate. A track absent from a call
    is forgotten (it ended); a stamp earlier than the last one (a replay started over) forgets everything.
    """

    def __init__(self, window_s: float = 0.5, size: int = 64, min_samples: int = 3) -> None:
        """``window_s``: the span of past frames whose depths count [s]; ``size``: frames kept per track (at
        most; a fast camera's window holds fewer); ``min_samples``: finite depths needed for a rate."""
        if not window_s > 0 or size < 2 or not 2 <= min_samples <= size:
            raise ValueError(f"need window_s > 0, size >= 2 and 2 <= min_samples <= size, got {window_s}, "
                             f"{size}, {min_samples}")
        self.window_s, self.size, self.min_samples = float(window_s), int(size), int(min_samples)
        self._ids = np.zeros(0, dtype=np.int64)
        self._stamps = np.zeros((0, self.size))
        self._depths = np.zeros((0, self.size))
        self._column = 0
        self._last: float | None = None

    def rates(self, ids: np.ndarray, depths: np.ndarray, stamp: float) -> np.ndarray:
        """Record the depths [m] (NaN: none this frame) of the tracks ``ids`` at ``stamp`` [s] and return
        their depth rates dz/dt [m/s]: the least-squares slope of each track's finite depths within
        ``window_s`` before ``stamp`` (this frame's included); NaN with fewer than ``min_samples`` of them.

        Raises:
            ValueError: ids and depths of different lengths, repeated ids, or a stamp that is not finite.
        """
        ids = np.asarray(ids, dtype=np.int64)
        depths = np.asarray(depths, dtype=np.float64)
        if ids.ndim != 1 or depths.shape != ids.shape:
            raise ValueError(f"ids and depths must be 1-D of one length, got {ids.shape} and {depths.shape}")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids must not repeat")
        if not np.isfinite(stamp):
            raise ValueError(f"stamp must be finite, got {stamp}")
        if self._last is not None and stamp < self._last:
            self._ids = np.zeros(0, dtype=np.int64)
        self._last = float(stamp)
        # carry the known tracks' rows over, in the order of ``ids``; new tracks start empty
        stamps = np.full((len(ids), self.size), np.nan)
        values = np.full((len(ids), self.size), np.nan)
        if len(self._ids) and len(ids):
            order = np.argsort(self._ids)
            at = np.minimum(np.searchsorted(self._ids, ids, sorter=order), len(order) - 1)
            known = self._ids[order[at]] == ids
            stamps[known], values[known] = self._stamps[order[at[known]]], self._depths[order[at[known]]]
        stamps[:, self._column], values[:, self._column] = stamp, depths
        self._ids, self._stamps, self._depths = ids, stamps, values
        self._column = (self._column + 1) % self.size
        use = np.isfinite(values) & (stamps >= stamp - self.window_s)
        t = np.where(use, stamps - stamp, 0.0)
        count = use.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):  # rows with no samples: NaN, refused below
            z = np.where(use, values, 0.0)
            t_mean, z_mean = t.sum(axis=1) / count, z.sum(axis=1) / count
            dt = np.where(use, t - t_mean[:, None], 0.0)
            slope = (dt * (z - z_mean[:, None])).sum(axis=1) / (dt * dt).sum(axis=1)
        slope[(count < self.min_samples) | ~np.isfinite(slope)] = np.nan
        return slope
