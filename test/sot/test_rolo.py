"""ROLO-style recurrent tracker: residual LSTM over flickering detections, trained on real tracks."""

import numpy as np
import pytest
from conftest import require_shared

pytest.importorskip("torch", reason="torch is not installed (pip-only)")

import torch

from ros2_tracker.core.config import ConfigError
from ros2_tracker.core.costs import iou_matrix
from ros2_tracker.sot.pairs import FrameStore, load_gt_tracks, simulate_flicker
from ros2_tracker.sot.rolo import (
    ReplayDetector,
    RoloConfig,
    RoloModelConfig,
    RoloNet,
    RoloTracker,
    load_rolo,
    rolo_backend,
    run_rolo,
)
from ros2_tracker.sot.sot_export import SotCheckpointError, save_sot_checkpoint
from ros2_tracker.sot.tracker_base import SingleTargetTracker
from ros2_tracker.training.train_sot import SotTrainConfig, train_rolo


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A ROLO checkpoint trained 40 steps on PETS09-S3MF1 tracks (TUD-Campus is never seen)."""
    data = require_shared("data")
    config = SotTrainConfig(data_root=str(data), train_sequences=["PETS09-S3MF1"], eval_sequences=[],
                            rolo_steps=40, eval_every=0, rolo_seq_len=12, rolo_batch=8, lr=3e-3)
    result = train_rolo(config, tmp_path_factory.mktemp("rolo"), progress=False, log=lambda _: None)
    return result


@pytest.fixture(scope="module")
def held_out():
    root = require_shared("data", "TUD-Campus")
    track = max(load_gt_tracks(root, min_length=30), key=lambda t: len(t.frames))
    return root, track


def _flicker(track, n, seed=5):
    window = track._replace(frames=track.frames[:n], boxes_xyxy=track.boxes_xyxy[:n])
    return window, simulate_flicker(window, {}, np.random.default_rng(seed), p_drop=0.25, jitter=0.05)[0]


def test_untrained_net_takes_the_detection_or_holds_the_last_box(held_out):
    _, track = held_out
    window, dets = _flicker(track, 30)
    net = RoloNet(RoloModelConfig()).eval()
    out = run_rolo(net, dets, np.zeros((30, 96), np.float32), window.boxes_xyxy[0])
    for t in range(1, 30):
        expected = dets[t] if np.isfinite(dets[t]).all() else out[t - 1]
        np.testing.assert_allclose(out[t], expected, atol=1e-3)


def test_trained_checkpoint_reloads_and_follows_a_held_out_track_through_flicker(trained, held_out):
    root, track = held_out
    _, payload = load_rolo(trained.checkpoint)
    assert payload["extra"]["train_config"]["train_sequences"] == ["PETS09-S3MF1"]
    n = 30
    window, dets = _flicker(track, n)
    replay = ReplayDetector([d[None] if np.isfinite(d).all() else np.empty((0, 4)) for d in dets[1:]])
    tracker = RoloTracker(RoloConfig(checkpoint_path=str(trained.checkpoint)), detector=replay)
    assert isinstance(tracker, SingleTargetTracker)
    frames = FrameStore()
    tracker.init(frames.frame(root, window.frames[0]), window.boxes_xyxy[0])
    results = [tracker.update(frames.frame(root, f)) for f in window.frames[1:]]
    ious = np.array([iou_matrix(r.box_xyxy[None], t[None])[0, 0]
                     for r, t in zip(results, window.boxes_xyxy[1:], strict=True)])
    held = dets.copy()
    for t in range(1, n):  # the raw detector output, a dropped detection replaced by the last one
        if not np.isfinite(held[t]).all():
            held[t] = held[t - 1]
    raw = np.array([iou_matrix(held[t:t + 1], window.boxes_xyxy[t:t + 1])[0, 0] for t in range(1, n)])
    assert ious.mean() > 0.6
    assert ious.mean() >= raw.mean() - 0.05, (ious.mean(), raw.mean())
    missing = [r.confidence for r, d in zip(results, dets[1:], strict=True) if not np.isfinite(d).all()]
    assert all(0.0 <= r.confidence <= 1.0 for r in results) and max(missing, default=0.0) < 1.0


def test_yolox_detector_backend_follows_a_real_person(tmp_path):
    model = require_shared("models", "yolox_nano.onnx")
    root = require_shared("data", "TUD-Campus")
    track = next(t for t in load_gt_tracks(root, min_length=10) if t.track_id == 1)
    net = RoloNet(RoloModelConfig())  # untrained: the matched YOLOX detection, else the last box
    ckpt = save_sot_checkpoint(tmp_path / "rolo.pt", "rolo", net.config.to_dict(), net.state_dict())
    tracker = rolo_backend(f"{ckpt},{model}")
    frames = FrameStore()
    tracker.init(frames.frame(root, track.frames[0]), track.boxes_xyxy[0])
    ious = [iou_matrix(tracker.update(frames.frame(root, f)).box_xyxy[None], b[None])[0, 0]
            for f, b in zip(track.frames[1:6], track.boxes_xyxy[1:6], strict=True)]
    assert np.mean(ious) > 0.5


def test_bad_configuration_and_files_are_refused(tmp_path, trained):
    with pytest.raises(ConfigError, match="checkpoint_path: not set"):
        RoloConfig()
    with pytest.raises(ConfigError, match="CHECKPOINT,DETECTOR_ONNX"):
        rolo_backend(str(trained.checkpoint))
    with pytest.raises(ConfigError, match="detector_model_path: not set"):
        RoloTracker(RoloConfig(checkpoint_path=str(trained.checkpoint)))
    goturn_like = tmp_path / "g.pt"
    torch.save({"format": "ros2_tracker.sot.goturn", "version": 1, "model": {}, "state_dict": {}},
               goturn_like)
    with pytest.raises(SotCheckpointError, match="a 'goturn' checkpoint, expected 'rolo'"):
        load_rolo(goturn_like)
    tracker = RoloTracker(RoloConfig(checkpoint_path=str(trained.checkpoint)), detector=ReplayDetector([]))
    frame = np.zeros((120, 160, 3), np.uint8)
    with pytest.raises(RuntimeError, match="before init"):
        tracker.update(frame)
    with pytest.raises(ValueError, match="outside"):
        tracker.init(frame, [200, 10, 260, 90])
