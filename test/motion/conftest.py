"""Fixtures of the motion tests: an exported (untrained) motion model, made in a fraction of a second."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def untrained_onnx(tmp_path_factory):
    """An ONNX motion model with freshly initialised weights (= constant velocity + fixed uncertainty)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from ros2_tracker.motion.export import export_onnx
    from ros2_tracker.motion.model import MotionModelConfig, MotionPredictorNet

    torch.manual_seed(0)
    net = MotionPredictorNet(MotionModelConfig(hidden_size=16, step_s=0.1))
    with torch.no_grad():  # perturb the (zero-initialised) mean corrections so the model is not CV
        net.head[-1].weight.normal_(0.0, 0.05)
    return export_onnx(net, tmp_path_factory.mktemp("motion") / "motion.onnx").path
