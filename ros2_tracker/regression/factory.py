"""Build the :class:`~ros2_tracker.regression.regressor.BoxRegressor` that a ``RegressorConfig`` names."""

from __future__ import annotations

from ros2_tracker.regression.config import RegressorConfig
from ros2_tracker.regression.regressor import BoxRegressor

__all__ = ["create_regressor"]


def create_regressor(config: RegressorConfig) -> BoxRegressor:
    """The backend of ``config.regressor_backend`` (its runtime is imported only now).

    Raises:
        RegressorLoadError: the model cannot be loaded or is not the expected architecture.
    """
    if config.regressor_backend == "torchvision":
        from ros2_tracker.regression.backends import torchvision_frcnn as tv

        return tv.create_regressor(tv.FrcnnRegressorConfig(
            backend=config.regressor_runtime, checkpoint_path=config.regressor_model_path,
            num_threads=config.regressor_num_threads))
    from ros2_tracker.regression.backends.d2go import D2GoRegressor

    return D2GoRegressor(config)
