"""Accuracy of trajectory predictors on held-out samples: ADE/FDE, NLL and calibration.

Every predictor sees the same degraded histories (:class:`ros2_tracker.motion.data.SampleSet`) through
the tracker's own interface (:class:`ros2_tracker.core.motion.TrajectoryPredictor`): the Kalman state
each sample needs is filtered from the sample's own history window
(:func:`ros2_tracker.core.motion.filter_history`: from a zero-velocity start, with fixed noise), as in
training. The tracker hands the model its running state instead (the whole track life, adaptive
measurement noise, robust update): on real detections the two give predictions a few px apart (median
2 px at 1 s on PETS09-S3MF1), so these figures score the model on the inputs it was trained on. Three
predictors are compared:

* ``cv``: constant velocity (the Kalman mean) with a fixed isotropic uncertainty per horizon,
  ``sigma(t) * box height``, fitted on training samples (:func:`fit_cv_sigma`);
* ``cv_kalman``: the same mean with the Kalman filter's own covariance (the tracker's default);
* ``learned``: a learned predictor (e.g. the ONNX runtime), falling back as it does at run time.

Metrics at each horizon H (seconds): ADE (mean error over the predicted points in (0, H]) and FDE
(error at H), in pixels and in box heights (of the true box at "now"); the 2-D Gaussian NLL of the
true point at H in box-height units; and the fraction of true points inside the 1-sigma and
2-sigma ellipses (ideal 0.393 and 0.865 for a 2-D Gaussian).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ros2_tracker.core import kalman
from ros2_tracker.core.motion import (
    ConstantVelocityPredictor,
    MotionHistory,
    TrajectoryPredictor,
    filter_history,
)
from ros2_tracker.motion.data import SampleSet

__all__ = ["IDEAL_COVERAGE", "FixedSigmaCV", "HorizonMetrics", "evaluate_predictor", "fit_cv_sigma",
           "history_of"]

_CHI2_1SIGMA, _CHI2_2SIGMA = 1.0, 4.0  # Mahalanobis^2 of the 1 and 2 sigma ellipses (2-D)
IDEAL_COVERAGE = (float(1.0 - np.exp(-0.5)), float(1.0 - np.exp(-2.0)))  # Gaussian mass inside them


class HorizonMetrics(NamedTuple):
    """Metrics of one predictor on one sample set at one horizon."""

    horizon_s: float
    count: int
    ade_px: float
    fde_px: float
    ade_h: float
    fde_h: float
    nll: float
    in_1sigma: float
    in_2sigma: float


def history_of(samples: SampleSet, noise: kalman.MotionNoise) -> MotionHistory:
    """The tracker's view of samples: their histories with the Kalman state filtered from them."""
    mean, cov = filter_history(samples.boxes_cxcywh, samples.valid, samples.stamps, 0.0, noise)
    n = samples.size
    stamps = np.broadcast_to(samples.stamps, (n, len(samples.stamps)))
    return MotionHistory(samples.boxes_cxcywh, samples.valid, stamps, 0.0, mean, cov, noise)


class FixedSigmaCV:
    """Constant-velocity Kalman mean with an isotropic ``sigma(t) * height`` (``sigma_h`` at ``times_s``)."""

    def __init__(self, times_s: np.ndarray, sigma_h: np.ndarray) -> None:
        self._times = np.asarray(times_s, dtype=np.float64)
        self._sigma = np.asarray(sigma_h, dtype=np.float64)
        self._cv = ConstantVelocityPredictor()

    def predict(self, history: MotionHistory, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`ros2_tracker.core.motion.TrajectoryPredictor.predict`."""
        centres, _ = self._cv.predict(history, times_s)
        h = np.maximum(history.mean[:, 3:4], 1.0)
        sig = np.interp(times_s, self._times, self._sigma)[None, :] * h
        cov = np.zeros((*centres.shape[:2], 3))
        cov[..., 0] = cov[..., 2] = sig**2
        return centres, cov


def fit_cv_sigma(samples: list[SampleSet], times_s: np.ndarray, noise: kalman.MotionNoise) -> np.ndarray:
    """Per-time RMS (over x and y) of the constant-velocity error in box heights, on training samples."""
    sq, cnt = np.zeros(len(times_s)), np.zeros(len(times_s))
    for s in samples:
        if not s.size:
            continue
        hist = history_of(s, noise)
        centres, _ = ConstantVelocityPredictor().predict(hist, times_s)
        err = (centres - s.future) / np.maximum(hist.mean[:, 3], 1.0)[:, None, None]
        sq += np.where(s.future_ok, (err**2).sum(-1) / 2.0, 0.0).sum(0)
        cnt += s.future_ok.sum(0)
    return np.sqrt(sq / np.maximum(cnt, 1.0))


def evaluate_predictor(predictor: TrajectoryPredictor, samples: SampleSet, times_s: np.ndarray,
                       horizons_s: tuple[float, ...], noise: kalman.MotionNoise,
                       select: np.ndarray | None = None) -> list[HorizonMetrics]:
    """Metrics of ``predictor`` on ``samples`` (rows ``select`` only) at each horizon.

    Args:
        predictor: any :class:`TrajectoryPredictor`.
        samples: held-out samples; their ``future`` is given at ``times_s``.
        times_s: (T,) times of the samples' targets [s]; every horizon must be one of them.
        horizons_s: horizons to report.
        noise: the Kalman noise of the tracker (for the filtered state the predictors read).
        select: optional bool mask of the samples to score.
    """
    hist = history_of(samples, noise)
    times = np.asarray(times_s, dtype=np.float64)
    centres, cov = predictor.predict(hist, times)
    sel = np.ones(samples.size, dtype=bool) if select is None else select
    h = np.maximum(samples.true_height, 1.0)
    err = np.linalg.norm(centres - samples.future, axis=-1)  # (N, T) px
    out = []
    for horizon in horizons_s:
        j = int(np.argmin(np.abs(times - horizon)))
        if abs(times[j] - horizon) > 1e-6:
            raise ValueError(f"horizon {horizon} s is not one of the target times")
        ok = sel & samples.future_ok[:, j]
        if not ok.any():
            out.append(HorizonMetrics(horizon, 0, *([float("nan")] * 7)))
            continue
        span = (times > 0) & (times <= horizon + 1e-9)
        d2, logdet = _mahalanobis(centres[ok, j] - samples.future[ok, j], cov[ok, j] / (h[ok, None] ** 2),
                                  h[ok])
        out.append(HorizonMetrics(
            horizon, int(ok.sum()), float(err[ok][:, span].mean()), float(err[ok, j].mean()),
            float((err[ok][:, span] / h[ok, None]).mean()), float((err[ok, j] / h[ok]).mean()),
            float(np.mean(0.5 * d2 + 0.5 * logdet + np.log(2 * np.pi))),
            float(np.mean(d2 <= _CHI2_1SIGMA)), float(np.mean(d2 <= _CHI2_2SIGMA))))
    return out


def _mahalanobis(diff_px: np.ndarray, cov_h: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared Mahalanobis distance and log-determinant, in box-height units."""
    d = diff_px / h[:, None]
    a, b, c = cov_h[:, 0] + 1e-12, cov_h[:, 1], cov_h[:, 2] + 1e-12
    det = np.maximum(a * c - b * b, 1e-24)
    d2 = (c * d[:, 0] ** 2 - 2 * b * d[:, 0] * d[:, 1] + a * d[:, 1] ** 2) / det
    return d2, np.log(det)

