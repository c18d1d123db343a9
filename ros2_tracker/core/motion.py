"""The motion-model interface: predict tracks' future centres from their recent box history.

A :class:`TrajectoryPredictor` maps a batch of track histories (:class:`MotionHistory`: the last K
measured boxes of N tracks with a valid mask and stamps, plus each track's current Kalman state) to
future centres and their 2x2 covariances at given times ahead. The tracker keeps the history in a
fixed-size ring buffer (one column per update; a column is valid for a track when a detection was
matched to it in that update) and asks its configured predictor for

* the published trajectories (:meth:`~ros2_tracker.core.tracker.Tracker.predict_trajectories`), and
* with a learned model, where LOST tracks are now (time 0), for association through occlusions.

:class:`ConstantVelocityPredictor` is the default: the constant-velocity Kalman extrapolation
(:func:`~ros2_tracker.core.kalman.predict_trajectory`), which reads the Kalman state only. Learned
predictors (``ros2_tracker.motion``) read the history and fall back to it for short histories.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from ros2_tracker.core import kalman
from ros2_tracker.core.config import ConfigError

__all__ = [
    "MAX_TRAJECTORY_POINTS",
    "ConstantVelocityPredictor",
    "MotionHistory",
    "TrajectoryPredictor",
    "check_trajectory_sampling",
    "filter_history",
    "push_history",
    "warp_history",
]


# Each track's message carries every predicted point: 60 s at 1 ms would be 60,000 per track.
MAX_TRAJECTORY_POINTS = 1000


def check_trajectory_sampling(horizon_s: float, step_s: float) -> None:
    """A trajectory of ``horizon_s`` seconds sampled every ``step_s`` seconds (the parameters
    ``trajectory_horizon_s`` and ``trajectory_step_s`` of the tracker and the single-target follower).

    Raises:
        ConfigError: the step exceeds a non-zero horizon, or the trajectory has more than
            ``MAX_TRAJECTORY_POINTS`` points.
    """
    if step_s > horizon_s > 0:
        raise ConfigError("trajectory_step_s: must not exceed trajectory_horizon_s")
    points = horizon_s / step_s
    if points > MAX_TRAJECTORY_POINTS + 1e-6:
        raise ConfigError(f"trajectory_step_s: {step_s:g} s over trajectory_horizon_s {horizon_s:g} s gives "
                          f"{points:,.0f} points per track; at most {MAX_TRAJECTORY_POINTS:,} (each track's "
                          "message carries them all)")


class MotionHistory(NamedTuple):
    """Recent history of N tracks, oldest column first.

    Attributes:
        boxes_cxcywh: (N, K, 4) measured boxes (centre x, centre y, width, height) [px]; rows where
            ``valid`` is False are undefined.
        valid: (N, K) bool, True where the track was measured in that column.
        stamps: (N, K) stamps of the columns [s] (non-decreasing along K; unused columns are -inf).
        now: the current stamp [s]; predictions are ``times_s`` ahead of it.
        mean: (N, 8) Kalman state ``[cx, cy, w, h, vcx, vcy, vw, vh]`` at ``now`` [px, px/s].
        cov: (N, 4, 3) Kalman covariance in block form (see :mod:`ros2_tracker.core.kalman`).
        noise: the Kalman filter's noise levels.
    """

    boxes_cxcywh: np.ndarray
    valid: np.ndarray
    stamps: np.ndarray
    now: float
    mean: np.ndarray
    cov: np.ndarray
    noise: kalman.MotionNoise

    def select(self, rows: np.ndarray) -> MotionHistory:
        """The tracks at ``rows`` (bool mask or indices)."""
        return self._replace(boxes_cxcywh=self.boxes_cxcywh[rows], valid=self.valid[rows],
                             stamps=self.stamps[rows], mean=self.mean[rows], cov=self.cov[rows])


@runtime_checkable
class TrajectoryPredictor(Protocol):
    """Anything that predicts future centres from :class:`MotionHistory` (numpy in, numpy out)."""

    def predict(self, history: MotionHistory, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Future centres ``times_s`` (S,) seconds (>= 0) after ``history.now``.

        Returns:
            centres: (N, S, 2) centre x, y [px].
            covariances: (N, S, 3) (var_x, cov_xy, var_y) [px^2].
        """
        ...


class ConstantVelocityPredictor:
    """The default: the constant-velocity Kalman filter's extrapolation (history unused)."""

    def predict(self, history: MotionHistory, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`TrajectoryPredictor.predict`."""
        return kalman.predict_trajectory(history.mean, history.cov, np.asarray(times_s, dtype=np.float64),
                                         history.noise)


def push_history(boxes: np.ndarray, valid: np.ndarray, stamps: np.ndarray, column: int,
                 rows: np.ndarray, new_boxes: np.ndarray, stamp: float) -> None:
    """Write one update into ring buffers in place (column ``column``, i.e. updates modulo K).

    Args:
        boxes: (N, K, 4) ring buffer of boxes.
        valid: (N, K) ring buffer of the valid mask.
        stamps: (K,) ring buffer of the columns' stamps, shared by all tracks.
        column: the column to overwrite.
        rows: (M,) the tracks measured in this update; the column becomes invalid for all others.
        new_boxes: (M, 4) their boxes (cx, cy, w, h) [px].
        stamp: this update's stamp [s].
    """
    valid[:, column] = False
    valid[rows, column] = True
    boxes[rows, column] = new_boxes
    stamps[column] = stamp


def warp_history(boxes_cxcywh: np.ndarray, warp_2x3: np.ndarray) -> np.ndarray:
    """History boxes (..., 4) moved by an image warp ``x' = A x + t`` (camera motion): centres warped,
    sizes scaled by ``sqrt(|det A|)`` (as :func:`ros2_tracker.core.kalman.warp_affine` does). One (2, 3)
    warp for all, or (N, 2, 3) for the (N, K, 4) histories of N tracks, one per track. New array."""
    warp = np.asarray(warp_2x3, dtype=np.float64).reshape(-1, 2, 3)  # (1 | N, 2, 3): broadcast over tracks
    a, t = warp[:, None, :, :2], warp[:, None, :, 2]
    out = np.empty_like(boxes_cxcywh)
    out[..., :2] = (a @ boxes_cxcywh[..., :2, None])[..., 0] + t
    out[..., 2:] = boxes_cxcywh[..., 2:] * np.sqrt(np.abs(np.linalg.det(a)))[..., None]
    return out


def filter_history(history_cxcywh: np.ndarray, valid: np.ndarray, stamps: np.ndarray, now: float,
                   noise: kalman.MotionNoise) -> tuple[np.ndarray, np.ndarray]:
    """Run the tracker's Kalman filter over histories sharing column stamps; the state at ``now``.

    A track starts at its first valid column (initiated as the tracker does) and is updated at every
    later valid one. Vectorised over tracks; loops over the K columns. The noise is constant and the
    update plain: a tracker with ``adaptive_measurement_noise`` used its estimate of the moment at each
    update, and with ``robust_update_sigma`` corrected less for outlying heights, so there the result is
    close to, not equal to, its state.

    Args:
        history_cxcywh: (N, K, 4) boxes [px].
        valid: (N, K) bool.
        stamps: (K,) column stamps [s], non-decreasing.
        now: stamp to predict the state to [s] (>= the last stamp).
        noise: Kalman noise levels.

    Returns:
        mean (N, 8) and cov (N, 4, 3) at ``now``; tracks without any valid column get zeros.
    """
    n, k = valid.shape
    mean, cov = np.zeros((n, 8)), np.zeros((n, 4, 3))
    started = np.zeros(n, dtype=bool)
    last = None
    for j in range(k):
        if last is not None and stamps[j] > last and started.any():
            mean[started], cov[started] = kalman.predict(mean[started], cov[started], stamps[j] - last, noise)
        last = stamps[j]
        upd = valid[:, j] & started
        if upd.any():
            z = history_cxcywh[upd, j]
            mean[upd], cov[upd] = kalman.update(mean[upd], cov[upd], z, kalman.measurement_var(z, noise))
        new = valid[:, j] & ~started
        if new.any():
            mean[new], cov[new] = kalman.initiate(history_cxcywh[new, j], noise)
            started |= new
    if last is not None and now > last and started.any():
        mean[started], cov[started] = kalman.predict(mean[started], cov[started], now - last, noise)
    return mean, cov
