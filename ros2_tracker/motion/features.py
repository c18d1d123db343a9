"""Normalised model inputs and decoded outputs of the learned motion model (numpy only).

Training and the runtime share these functions, so the network sees the same numbers in both.

Frame rate and image size are normalised out:

* the history is resampled (linear interpolation between measured boxes) onto a fixed time grid of
  ``history_steps`` points ``grid_step_s`` apart ending at "now", whatever the camera's frame rate;
  grid points before the first or after the last measurement are marked invalid (a lost track has an
  invalid tail), and so are points between two measurements more than ``max_gap_s`` apart;
* positions are relative to the last measured box (its centre is the origin) and divided by its
  height, so neither the image size nor the person's distance to the camera matters.

Features per grid step (``NUM_FEATURES``): valid flag, centre x and y offsets, width and height
(relative to the reference height), per-step velocity of the centre [heights/s] (0 unless both
steps are valid), the seconds from the last valid grid point to now (it tells the network how long
a lost track has been coasting), and the tracker's constant-velocity Kalman state at now: centre
offset [heights] and velocity [heights/s] (the last five are the same on every step).

The network predicts a correction to the constant-velocity Kalman extrapolation (the "base"), so an
untrained model is constant velocity. Outputs per time ahead (``times_s``, 0 = now): mean
correction (x, y) [heights], log standard deviations (x, y) and a correlation (as atanh): a full 2x2
Gaussian per step.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["NUM_FEATURES", "NUM_OUTPUTS", "EncodedHistory", "decode_outputs", "encode_history",
           "resample_history"]

NUM_FEATURES = 12
NUM_OUTPUTS = 5  # per time step: mean x, mean y, log sigma x, log sigma y, atanh(rho)
_LOG_SIGMA_RANGE = (-7.0, 4.0)


class EncodedHistory(NamedTuple):
    """Network input of N tracks.

    Attributes:
        features: (N, G, NUM_FEATURES) float32.
        ref_centre: (N, 2) centre of the last measured box [px].
        ref_height: (N,) height of the last measured box [px].
        num_valid: (N,) valid grid points.
        base_offset: (N, 2) Kalman centre at now relative to ref_centre [heights].
        base_velocity: (N, 2) Kalman centre velocity [heights/s].
    """

    features: np.ndarray
    ref_centre: np.ndarray
    ref_height: np.ndarray
    num_valid: np.ndarray
    base_offset: np.ndarray
    base_velocity: np.ndarray

    def base(self, times_s: np.ndarray) -> np.ndarray:
        """(N, T, 2) constant-velocity centres at ``times_s`` relative to ref_centre [heights]."""
        t = np.asarray(times_s)[None, :, None]
        return self.base_offset[:, None, :] + t * self.base_velocity[:, None, :]


def resample_history(boxes_cxcywh: np.ndarray, valid: np.ndarray, stamps: np.ndarray, now: float,
                     history_steps: int, grid_step_s: float,
                     max_gap_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of N tracks at the grid ``now - (G-1-j) * grid_step_s``, j = 0..G-1.

    Args:
        boxes_cxcywh: (N, K, 4) measured boxes [px].
        valid: (N, K) bool.
        stamps: (N, K) or (K,) stamps [s], non-decreasing along K.
        now: the grid's last point [s].
        history_steps: G.
        grid_step_s: grid spacing [s].
        max_gap_s: grid points between measurements further apart than this are invalid.

    Returns:
        (N, G, 4) boxes (0 where invalid) and (N, G) bool valid mask.
    """
    n, k = valid.shape
    t = np.broadcast_to(np.asarray(stamps, dtype=np.float64), (n, k))
    t = np.where(np.isfinite(t), t, now - 1e6)  # unused ring-buffer columns (-inf) are never valid anyway
    grid = now - grid_step_s * np.arange(history_steps - 1, -1, -1, dtype=np.float64)  # (G,)
    idx = np.arange(k)
    # last valid column at or before each grid time, first valid column at or after it: (N, G)
    before = valid[:, None, :] & (t[:, None, :] <= grid[None, :, None] + 1e-9)
    after = valid[:, None, :] & (t[:, None, :] >= grid[None, :, None] - 1e-9)
    lo = np.where(before, idx, -1).max(axis=2)
    hi = np.where(after, idx, k).min(axis=2)
    ok = (lo >= 0) & (hi < k)
    lo_c, hi_c = np.clip(lo, 0, k - 1), np.clip(hi, 0, k - 1)
    rows = np.arange(n)[:, None]
    t_lo, t_hi = t[rows, lo_c], t[rows, hi_c]
    ok &= (t_hi - t_lo) <= max_gap_s + 1e-9
    span = np.where(t_hi > t_lo, t_hi - t_lo, 1.0)
    w = np.clip((grid[None, :] - t_lo) / span, 0.0, 1.0)[..., None]
    out = (1.0 - w) * boxes_cxcywh[rows, lo_c] + w * boxes_cxcywh[rows, hi_c]
    out[~ok] = 0.0
    return out, ok


def encode_history(grid_boxes: np.ndarray, grid_valid: np.ndarray, grid_step_s: float,
                   kalman_mean: np.ndarray) -> EncodedHistory:
    """Normalised features of resampled histories (see the module docstring).

    Args:
        grid_boxes: (N, G, 4) boxes on the grid [px] (cx, cy, w, h).
        grid_valid: (N, G) bool; every row needs at least one valid point.
        grid_step_s: grid spacing [s].
        kalman_mean: (N, 8) the tracker's Kalman state at now ``[cx, cy, w, h, vcx, vcy, vw, vh]``.
    """
    n, g = grid_valid.shape
    last = g - 1 - np.argmax(grid_valid[:, ::-1], axis=1)  # last valid grid point
    ref = grid_boxes[np.arange(n), last]  # (N, 4)
    since_last_s = (g - 1 - last) * grid_step_s
    h = np.maximum(ref[:, 3], 1.0)
    rel = (grid_boxes[..., :2] - ref[:, None, :2]) / h[:, None, None]
    size = grid_boxes[..., 2:] / h[:, None, None]
    vel = np.zeros_like(rel)
    both = grid_valid[:, 1:] & grid_valid[:, :-1]
    vel[:, 1:] = np.where(both[..., None], (rel[:, 1:] - rel[:, :-1]) / grid_step_s, 0.0)
    base_off = (kalman_mean[:, :2] - ref[:, :2]) / h[:, None]
    base_vel = kalman_mean[:, 4:6] / h[:, None]
    per_track = np.concatenate([since_last_s[:, None], base_off, base_vel], axis=1)
    feats = np.concatenate([grid_valid[..., None].astype(np.float64), rel, size, vel,
                            np.broadcast_to(per_track[:, None, :], (n, g, 5))], axis=2)
    feats[~grid_valid, 1:7] = 0.0
    return EncodedHistory(feats.astype(np.float32), ref[:, :2].copy(), h, grid_valid.sum(axis=1), base_off,
                          base_vel)


def decode_outputs(out: np.ndarray, enc: EncodedHistory,
                   times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Network outputs (N, T, 5) at ``times_s`` (T,) to centres (N, T, 2) [px] and covariances (N, T, 3)
    [px^2]."""
    out = np.asarray(out, dtype=np.float64)
    h = enc.ref_height[:, None]
    centres = enc.ref_centre[:, None, :] + (enc.base(times_s) + out[..., :2]) * h[..., None]
    sig = np.exp(np.clip(out[..., 2:4], *_LOG_SIGMA_RANGE)) * h[..., None]
    rho = np.tanh(out[..., 4])
    cov = np.stack([sig[..., 0] ** 2, rho * sig[..., 0] * sig[..., 1], sig[..., 1] ** 2], axis=-1)
    return centres, cov
