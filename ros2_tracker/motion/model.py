"""The recurrent trajectory predictor in PyTorch: a GRU (or LSTM) over a track's normalised history.

Input: (N, G, NUM_FEATURES) features of :func:`ros2_tracker.motion.features.encode_history`.
Output: (N, T, NUM_OUTPUTS) with T = ``horizon_s / step_s + 1`` time steps ahead (0 = now): mean
offsets, log standard deviations and atanh(correlation) of a 2-D Gaussian per step, relative to the
last measured box (see :func:`~ros2_tracker.motion.features.decode_outputs`). The mean is a correction
to the constant-velocity Kalman extrapolation, predicted as a cumulative sum of per-step changes; the
last layer starts at zero, so an untrained network is exactly constant velocity.

Checkpoints are plain dicts of tensors and numbers, loadable with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ros2_tracker.backends.torch_checkpoint import read_checkpoint, write_checkpoint
from ros2_tracker.motion.features import NUM_FEATURES, NUM_OUTPUTS
from ros2_tracker.motion.model_config import MotionModelConfig

__all__ = ["CheckpointError", "MotionModelConfig", "MotionPredictorNet", "load_checkpoint", "save_checkpoint"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded (missing, corrupt, or of another model)."""


class MotionPredictorNet(nn.Module):
    """GRU/LSTM encoder + MLP head; see the module docstring for shapes."""

    def __init__(self, config: MotionModelConfig) -> None:
        super().__init__()
        self.config = config
        rnn = nn.GRU if config.cell == "gru" else nn.LSTM
        self.rnn = rnn(NUM_FEATURES, config.hidden_size, num_layers=config.num_layers, batch_first=True)
        t = config.num_times
        self.head = nn.Sequential(nn.Linear(config.hidden_size + NUM_FEATURES, config.hidden_size),
                                  nn.ReLU(), nn.Linear(config.hidden_size, t * NUM_OUTPUTS))
        with torch.no_grad():  # start as constant velocity with a moderate, fixed uncertainty
            self.head[-1].weight.view(t, NUM_OUTPUTS, -1)[:, :2].zero_()
            self.head[-1].weight.view(t, NUM_OUTPUTS, -1)[:, 2:].mul_(0.1)
            self.head[-1].bias.zero_()
            self.head[-1].bias.view(t, NUM_OUTPUTS)[:, 2:4] = math.log(0.1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(N, G, F) float32 -> (N, T, 5)."""
        out, _ = self.rnn(features)
        last = features[:, -1, :]
        raw = self.head(torch.cat([out[:, -1, :], last], dim=1)).view(features.shape[0], -1, NUM_OUTPUTS)
        mean = torch.cumsum(raw[..., :2], dim=1)  # per-step corrections, accumulated
        return torch.cat([mean, raw[..., 2:]], dim=2)


def save_checkpoint(path: str | Path, model: MotionPredictorNet, extra: dict[str, Any] | None = None) -> Path:
    """Write ``{"model_config", "state_dict", ...extra}`` (loadable with ``weights_only=True``)."""
    return write_checkpoint(path, {"kind": "ros2_tracker.motion", "model_config": asdict(model.config),
                                   "state_dict": model.state_dict(), **(extra or {})})


def load_checkpoint(path: str | Path) -> tuple[MotionPredictorNet, dict[str, Any]]:
    """The model of a checkpoint (eval mode, CPU) and the checkpoint dict.

    Raises:
        CheckpointError: a missing file, not a checkpoint, or not a motion-model checkpoint.
    """
    path = Path(path)
    ckpt = read_checkpoint(path, CheckpointError)
    if not isinstance(ckpt, dict) or ckpt.get("kind") != "ros2_tracker.motion":
        raise CheckpointError(f"{path}: not a motion-model checkpoint (written by ros2-tracker train-motion)")
    model = MotionPredictorNet(MotionModelConfig(**ckpt["model_config"]))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the model ({str(exc).splitlines()[0]})") from None
    return model.eval(), ckpt
