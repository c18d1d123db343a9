"""Architecture and time grid of the learned motion model (no torch: the runtime reads it too)."""

from __future__ import annotations

from dataclasses import dataclass

from ros2_tracker.core.config import ConfigBase, ConfigError, param

__all__ = ["MotionModelConfig"]


@dataclass(frozen=True)
class MotionModelConfig(ConfigBase):
    """Architecture and time grid of the learned motion model."""

    cell: str = param("gru", "Recurrent cell", choices=("gru", "lstm"))
    hidden_size: int = param(64, "Recurrent state size", low=4, high=4096)
    num_layers: int = param(1, "Stacked recurrent layers", low=1, high=8)
    history_steps: int = param(8, "History grid points read (the last one is now)", low=2, high=256)
    history_step_s: float = param(0.2, "History grid spacing", low=0.005, high=10.0, unit="s")
    step_s: float = param(0.2, "Spacing of the predicted points", low=0.005, high=10.0, unit="s")
    horizon_s: float = param(2.0, "Furthest predicted point", low=0.005, high=60.0, unit="s")
    min_history: int = param(3, "Tracks with fewer valid history grid points use constant velocity",
                             low=1, high=256)

    def check(self) -> None:
        """The horizon must be a whole number of steps; min_history fits the grid."""
        ratio = self.horizon_s / self.step_s
        if abs(ratio - round(ratio)) > 1e-6:
            raise ConfigError(f"horizon_s: {self.horizon_s} must be a multiple of step_s ({self.step_s})")
        if self.min_history > self.history_steps:
            raise ConfigError(f"min_history: {self.min_history} exceeds history_steps ({self.history_steps})")

    @property
    def num_times(self) -> int:
        """Predicted time points, now included."""
        return round(self.horizon_s / self.step_s) + 1

    @property
    def times_s(self) -> list[float]:
        """The predicted times ahead of now [s]."""
        return [i * self.step_s for i in range(self.num_times)]
