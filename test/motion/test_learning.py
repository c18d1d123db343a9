"""The learned model learns what constant velocity cannot: people walking on curves."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from ros2_tracker.core.kalman import MotionNoise  # noqa: E402
from ros2_tracker.core.motion import ConstantVelocityPredictor  # noqa: E402
from ros2_tracker.motion import OnnxMotionPredictor  # noqa: E402
from ros2_tracker.motion.data import SampleSpec, Track, make_samples  # noqa: E402
from ros2_tracker.motion.evaluation import evaluate_predictor  # noqa: E402
from ros2_tracker.motion.export import export_onnx  # noqa: E402
from ros2_tracker.motion.model import MotionPredictorNet  # noqa: E402
from ros2_tracker.training.train_motion import MotionTrainConfig, gaussian_nll, targets  # noqa: E402


def _circles(rng, n, fps=10.0, seconds=8.0):
    """People walking on circles of 150 px radius at 0.6 rad/s, either way round, random phases."""
    t = np.arange(round(seconds * fps)) / fps
    tracks = []
    for _ in range(n):
        phase, sign = rng.uniform(0, 2 * np.pi), rng.choice([-1.0, 1.0])
        a = phase + sign * 0.6 * t
        boxes = np.column_stack([320 + 150 * np.cos(a), 240 + 150 * np.sin(a), np.full_like(t, 40.0),
                                 np.full_like(t, 100.0)])
        tracks.append(Track(np.arange(1, len(t) + 1), boxes, np.ones(len(t), dtype=bool)))
    return tracks


@pytest.mark.slow
def test_learned_beats_constant_velocity_on_curved_motion(tmp_path):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = MotionTrainConfig(hidden_size=32, step_s=0.2, horizon_s=2.0)
    spec = SampleSpec(history_s=1.6, times_s=tuple(cfg.model_config().times_s), box_jitter=0.0, miss_rate=0.0,
                      lost_fraction=0.0, sample_every_s=0.2)
    rng = np.random.default_rng(0)
    train = make_samples("circles", _circles(rng, 40), 10.0, spec, rng)
    held = make_samples("circles-held-out", _circles(rng, 10), 10.0, spec, rng)
    x, y, m = (torch.from_numpy(a) for a in targets(train, cfg))
    net = MotionPredictorNet(cfg.model_config())
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    for step in range(150):
        b = torch.randint(0, len(x), (128,), generator=torch.Generator().manual_seed(step))
        loss = gaussian_nll(net(x[b]), y[b], m[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
    learned = OnnxMotionPredictor(export_onnx(net, tmp_path / "motion.onnx").path)
    times = np.asarray(spec.times_s)
    cv = evaluate_predictor(ConstantVelocityPredictor(), held, times, (1.0, 2.0), MotionNoise())
    lm = evaluate_predictor(learned, held, times, (1.0, 2.0), MotionNoise())
    for c, q in zip(cv, lm, strict=True):
        assert q.count == c.count > 50
        assert q.fde_px < 0.7 * c.fde_px, (q, c)
