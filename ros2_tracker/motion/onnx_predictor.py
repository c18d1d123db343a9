"""The learned motion model at run time: ONNX Runtime, batched over all tracks, with CV fallback.

:class:`OnnxMotionPredictor` implements :class:`ros2_tracker.core.motion.TrajectoryPredictor`. Per call
it resamples and encodes every track's history (:mod:`ros2_tracker.motion.features`), runs one ONNX
Runtime batch over the tracks with enough history, and takes the constant-velocity Kalman prediction
for the others (too short a history, or non-finite boxes in it: those are logged and rejected).
Requested times between the model's own steps are interpolated linearly; times beyond its horizon
are an error (a mismatch between the tracker's trajectory parameters and the model).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ros2_tracker.core.config import ConfigError
from ros2_tracker.core.motion import ConstantVelocityPredictor, MotionHistory
from ros2_tracker.motion.export import FORMAT, FORMAT_KEY, INPUT_NAME, METADATA_KEY
from ros2_tracker.motion.features import NUM_FEATURES, decode_outputs, encode_history, resample_history

__all__ = ["MotionModelError", "OnnxMotionPredictor", "create_predictor"]

_LOG = logging.getLogger(__name__)


class MotionModelError(ConfigError):
    """A missing, unreadable or mismatched motion model file (a start-up configuration error)."""


class OnnxMotionPredictor:
    """Learned trajectory predictor (see the module docstring).

    Args:
        model_path: ONNX file written by ``ros2-tracker train-motion``.
        num_threads: ONNX Runtime intra-op threads (0 = ORT's default).
        logger: where rejected (non-finite) histories are reported; this module's logger when None.

    Raises:
        MotionModelError: the file is missing, not ONNX, or not a motion model of this version.
    """

    def __init__(self, model_path: str | Path, num_threads: int = 1, logger=None) -> None:
        from ros2_tracker.backends.onnxruntime import open_session
        from ros2_tracker.motion.model_config import MotionModelConfig

        try:
            self._session, self.path = open_session(str(model_path), num_threads,
                                                    what="the motion ONNX model (ros2-tracker train-motion)",
                                                    error=MotionModelError)
        except MotionModelError as exc:
            raise MotionModelError(f"motion_{exc}") from None
        meta = self._session.get_modelmeta().custom_metadata_map
        if meta.get(FORMAT_KEY) != FORMAT or METADATA_KEY not in meta:
            raise MotionModelError(f"motion_model_path: {self.path}: not a motion model of this version "
                                   f"(metadata {FORMAT_KEY}={meta.get(FORMAT_KEY)!r}, expected {FORMAT!r})")
        try:
            self.config = MotionModelConfig(**json.loads(meta[METADATA_KEY]))
        except (ValueError, TypeError, ConfigError) as exc:  # (json's error is a ValueError)
            raise MotionModelError(f"motion_model_path: {self.path}: its model metadata is not valid for "
                                   f"this version: {exc}") from None
        shape = self._session.get_inputs()[0].shape
        if self._session.get_inputs()[0].name != INPUT_NAME or shape[1:] != [self.config.history_steps,
                                                                               NUM_FEATURES]:
            raise MotionModelError(f"motion_model_path: {self.path}: input {shape} does not match its "
                                   "metadata")
        self._times = np.asarray(self.config.times_s)
        self._cv = ConstantVelocityPredictor()
        self._log = logger or _LOG

    def check_times(self, horizon_s: float) -> None:
        """Raise :class:`MotionModelError` when the model cannot reach ``horizon_s``."""
        if horizon_s > self._times[-1] + 1e-9:
            raise MotionModelError(f"trajectory_horizon_s: {horizon_s} s is beyond the motion model's "
                                   f"horizon ({self._times[-1]:g} s); retrain with a longer horizon_s")

    def predict(self, history: MotionHistory, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """See :meth:`ros2_tracker.core.motion.TrajectoryPredictor.predict`."""
        times = np.asarray(times_s, dtype=np.float64)
        if len(times):
            self.check_times(float(times.max()))
        centres, cov = self._cv.predict(history, times)
        if not len(history.valid) or not len(times):
            return centres, cov
        cfg = self.config
        finite = np.isfinite(history.boxes_cxcywh).all(axis=2) | ~history.valid
        bad = ~finite.all(axis=1)
        if bad.any():
            self._log.warning(f"motion model: rejected {int(bad.sum())} track histories with non-finite "
                              "boxes (NaN/inf); constant velocity used for them")
        boxes = np.where(finite[..., None], history.boxes_cxcywh, 0.0)
        grid, ok = resample_history(boxes, history.valid & finite, history.stamps, history.now,
                                    cfg.history_steps, cfg.history_step_s)
        use = ~bad & (ok.sum(axis=1) >= cfg.min_history)
        if not use.any():
            return centres, cov
        enc = encode_history(grid[use], ok[use], cfg.history_step_s, history.mean[use])
        out = self._session.run(None, {INPUT_NAME: enc.features})[0]
        c, v = decode_outputs(out, enc, self._times)
        centres[use], cov[use] = _interpolate(self._times, c, v, times)
        return centres, cov


def _interpolate(model_times: np.ndarray, centres: np.ndarray, cov: np.ndarray,
                 times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation along the time axis from ``model_times`` (T,) to ``times`` (S,)."""
    if len(times) == len(model_times) and np.allclose(times, model_times):
        return centres, cov
    hi = np.clip(np.searchsorted(model_times, times), 1, len(model_times) - 1)
    lo = hi - 1
    w = np.clip((times - model_times[lo]) / (model_times[hi] - model_times[lo]), 0.0, 1.0)[None, :, None]
    return ((1 - w) * centres[:, lo] + w * centres[:, hi]), ((1 - w) * cov[:, lo] + w * cov[:, hi])


def create_predictor(config, num_threads: int = 1, logger=None) -> OnnxMotionPredictor | None:
    """The predictor a :class:`~ros2_tracker.core.tracker.TrackerConfig` asks for (None = the default CV).

    Raises:
        MotionModelError: motion_model is "learned" and its file is missing or mismatched, or its horizon
            is shorter than ``trajectory_horizon_s``.
    """
    if config.motion_model != "learned":
        return None
    predictor = OnnxMotionPredictor(config.motion_model_path, num_threads=num_threads, logger=logger)
    predictor.check_times(config.trajectory_horizon_s)
    return predictor
