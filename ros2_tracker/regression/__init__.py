"""Tracktor: a two-stage detector's RoI heads as the tracker (see regressor.py and tracktor.py).

``Tracktor(create_regressor(RegressorConfig(regressor_model_path=...)))`` tracks with the D2Go Faster
R-CNN; any :class:`BoxRegressor` works. torch is imported only when a backend is built.
"""

from ros2_tracker.regression.config import RegressorConfig, RegressorLoadError
from ros2_tracker.regression.factory import create_regressor
from ros2_tracker.regression.regressor import BoxRegressor, Regression
from ros2_tracker.regression.tracktor import Tracktor, TracktorConfig

__all__ = ["BoxRegressor", "Regression", "RegressorConfig", "RegressorLoadError", "Tracktor",
           "TracktorConfig", "create_regressor"]
