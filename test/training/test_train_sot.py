"""train-sot: the shipped YAML, bad values, a few-step GOTURN run that reloads and tracks, the CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.cli.main import main
from ros2_tracker.core.config import ConfigError
from ros2_tracker.core.costs import iou_matrix
from ros2_tracker.io.params import load_config
from ros2_tracker.training.train_sot import SotTrainConfig, train_goturn

REPO = Path(__file__).resolve().parents[2]


def test_shipped_yaml_equals_the_defaults():
    assert load_config(SotTrainConfig, REPO / "config" / "sot_train.yaml") == SotTrainConfig()
    for spec in SotTrainConfig.specs():
        assert spec.description, spec.name


@pytest.mark.parametrize("field,value", [
    ("steps", 0), ("shift_scale", -0.1), ("device", "tpu"), ("cycle_length", 0), ("train_sequences", []),
    ("eval_sequences", ["PETS09-S3MF1"]), ("flicker_drop", 1.0),
])
def test_config_rejects_invalid_values_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=field):
        SotTrainConfig(**{field: value})


@pytest.fixture(scope="module")
def goturn_run(tmp_path_factory):
    data = require_shared("data")
    config = SotTrainConfig(data_root=str(data), train_sequences=["TUD-Campus"],
                            eval_sequences=["PETS09-S3MF1"],
                            input_size=64, fc_dim=64, conv_channels=16, steps=4, batch_size=8, eval_every=2,
                            eval_samples=8, cycle_weight=0.2, cycle_every=2, cycle_warmup=0, cycle_batch=2,
                            cycle_length=2, cycle_frames=6)
    out = tmp_path_factory.mktemp("goturn")
    return train_goturn(config, out, progress=False, log=lambda _: None), out


def test_few_step_goturn_run_writes_reports_and_a_checkpoint_that_tracks(goturn_run):
    from ros2_tracker.sot.goturn import GoturnConfig, GoturnTracker, load_goturn
    from ros2_tracker.sot.pairs import FrameStore, load_gt_tracks

    result, out = goturn_run
    assert [r["step"] for r in result.history] == [0, 2, 4]
    assert "cycle_loss" in result.history[-1] and np.isfinite(result.history[-1]["loss"])
    assert 0.0 < result.metrics["eval_iou"] <= 1.0
    assert result.onnx["max_abs_diff"] <= 1e-4 and Path(result.onnx["path"]).is_file()
    assert json.loads((out / "metrics.json").read_text())["model"] == "goturn"
    assert (out / "training_curve.png").read_bytes()[:4] == b"\x89PNG"
    net, payload = load_goturn(result.checkpoint)  # torch.load(weights_only=True) inside
    assert net.config.input_size == 64 and payload["extra"]["train_config"]["steps"] == 4
    root = require_shared("data", "TUD-Campus")
    track = next(t for t in load_gt_tracks(root, min_length=6) if t.track_id == 1)
    frames = FrameStore()
    tracker = GoturnTracker(GoturnConfig(checkpoint_path=str(result.checkpoint)))
    tracker.init(frames.frame(root, track.frames[0]), track.boxes_xyxy[0])
    ious = [iou_matrix(tracker.update(frames.frame(root, f)).box_xyxy[None], b[None])[0, 0]
            for f, b in zip(track.frames[1:6], track.boxes_xyxy[1:6], strict=True)]
    assert np.mean(ious) > 0.4


def test_cli_trains_rolo_and_refuses_a_mismatched_checkpoint(tmp_path, goturn_run, capsys):
    from ros2_tracker.sot.goturn import goturn_backend
    from ros2_tracker.sot.rolo import load_rolo
    from ros2_tracker.sot.sot_export import SotCheckpointError

    data = require_shared("data")
    config = tmp_path / "tiny.yaml"
    config.write_text("/**:\n  ros__parameters:\n    train_sequences: [TUD-Campus]\n    eval_sequences: []\n"
                      "    rolo_seq_len: 6\n    eval_every: 0\n")
    code = main(["train-sot", "--model", "rolo", "--config", str(config), "--data-root", str(data),
                 "--steps", "3", "--out", str(tmp_path / "rolo"), "--no-progress"])
    assert code == 0
    assert "wrote" in capsys.readouterr().out
    load_rolo(tmp_path / "rolo" / "checkpoint.pt")
    with pytest.raises(SotCheckpointError, match="a 'rolo' checkpoint, expected 'goturn'"):
        from ros2_tracker.sot.goturn import load_goturn

        load_goturn(tmp_path / "rolo" / "checkpoint.pt")
    with pytest.raises(ConfigError, match=r"model_path: .*expected 'goturn'"):
        goturn_backend(str(tmp_path / "rolo" / "checkpoint.pt"))
    nowhere = str(tmp_path / "nowhere")
    assert main(["train-sot", "--model", "goturn", "--data-root", nowhere, "--steps", "1",
                 "--out", str(tmp_path / "g")]) == 2
    assert "data_root" in capsys.readouterr().err
