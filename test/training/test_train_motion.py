"""A short real-data training run of the motion model, its outputs, and the ``train-motion`` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from conftest import REPO, require_shared  # noqa: E402

from ros2_tracker.cli.main import main  # noqa: E402
from ros2_tracker.core.config import ConfigError  # noqa: E402
from ros2_tracker.io.params import load_config  # noqa: E402
from ros2_tracker.motion.export import onnx_parity  # noqa: E402
from ros2_tracker.motion.model import CheckpointError, load_checkpoint  # noqa: E402
from ros2_tracker.training.train_motion import MotionTrainConfig, train_motion  # noqa: E402


def _tiny(**changes) -> MotionTrainConfig:
    base = dict(data_root=str(require_shared("data")), train_sequences=["TUD-Campus", "synthetic:1@7"],
                eval_sequences=["PETS09-S3MF1"], hidden_size=8, epochs=1, sample_every_s=0.5, num_threads=1)
    base.update(changes)
    return MotionTrainConfig(**base)


def test_short_real_data_run_writes_a_reloadable_checkpoint_and_a_matching_onnx(tmp_path):
    result = train_motion(_tiny(), tmp_path, progress=False, log=lambda _: None)
    assert result.num_train > 100 and result.eval_counts["PETS09-S3MF1"] > 100
    model, ckpt = load_checkpoint(tmp_path / "checkpoint.pt")  # weights_only=True inside
    assert ckpt["epoch"] == 1 and model.config.hidden_size == 8
    assert onnx_parity(model, tmp_path / "motion.onnx") <= 1e-4
    assert result.onnx["max_abs_diff"] <= 1e-4
    history = json.loads((tmp_path / "history.json").read_text())["history"]
    assert [r["epoch"] for r in history] == [0, 1] and np.isfinite(history[1]["eval_nll"])
    assert (tmp_path / "training_curve.png").stat().st_size > 1000
    # the exported model with metadata of another version: a clear error, not a TypeError from inside
    import onnx

    from ros2_tracker.motion import MotionModelError, OnnxMotionPredictor
    from ros2_tracker.motion.export import METADATA_KEY

    proto = onnx.load(str(tmp_path / "motion.onnx"))
    entry = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    entry.value = json.dumps({**json.loads(entry.value), "dropout": 0.1})
    onnx.save(proto, str(tmp_path / "other.onnx"))
    with pytest.raises(MotionModelError, match="metadata is not valid for this version"):
        OnnxMotionPredictor(tmp_path / "other.onnx")


def test_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="file not found"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a motion-model checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_shipped_yaml_documents_the_defaults():
    assert load_config(MotionTrainConfig, REPO / "config" / "motion_train.yaml") == MotionTrainConfig()


def test_config_rejects_a_sequence_both_trained_on_and_held_out():
    with pytest.raises(ConfigError, match="eval_sequences"):
        MotionTrainConfig(train_sequences=["TUD-Campus"], eval_sequences=["TUD-Campus"])


@pytest.mark.parametrize(("changes", "message"), [
    ({"train_sequences": []}, "at least one training sequence"),  # was a traceback (nothing to unpack)
    ({"train_sequences": [123]}, "train_sequences: expected a list of sequence names"),
    ({"eval_sequences": [""]}, "eval_sequences: expected a list of sequence names"),
])
def test_config_rejects_sequence_lists_that_name_nothing(changes, message):
    with pytest.raises(ConfigError, match=message):
        MotionTrainConfig(**changes)


def test_nothing_held_out_is_reported_as_no_score_not_a_perfect_one(tmp_path, capsys):
    cfg = tmp_path / "motion.yaml"
    cfg.write_text("/**:\n  ros__parameters:\n    train_sequences: ['synthetic:1@10']\n"
                   "    eval_sequences: []\n    epochs: 1\n    hidden_size: 8\n    export_onnx: false\n")
    assert main(["train-motion", "--config", str(cfg), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "no held-out samples" in capsys.readouterr().out
    history = json.loads((tmp_path / "out" / "history.json").read_text())["history"]
    assert all(r["eval_nll"] is None and r["eval_fde_h"] is None for r in history)


def test_cli_user_errors_exit_2(tmp_path, capsys):
    cfg = tmp_path / "motion.yaml"
    cfg.write_text("/**:\n  ros__parameters:\n    train_sequences: [No-Such-Sequence]\n    epochs: 1\n")
    assert main(["train-motion", "--config", str(cfg), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    assert "No-Such-Sequence" in capsys.readouterr().err
    assert main(["train-motion", "--cell", "transformer", "--out", str(Path(tmp_path, "o2"))]) == 2
