"""Detector training: real frames of ../shared, AP@0.5, augmentation, a 2-iteration run and the CLI."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")
pytest.importorskip("cv2")

from conftest import require_shared  # noqa: E402

from ros2_tracker.cli.main import main  # noqa: E402
from ros2_tracker.core.config import ConfigError  # noqa: E402
from ros2_tracker.io.params import load_config  # noqa: E402
from ros2_tracker.training.detector_data import (  # noqa: E402
    Augmenter,
    DetectionFrame,
    find_sequences,
    load_sequence_frames,
)
from ros2_tracker.training.detector_eval import FrameDetections, average_precision  # noqa: E402
from ros2_tracker.training.train_detector import DetectorTrainConfig, train_detector  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BOX = np.array([[10.0, 10.0, 30.0, 70.0]])
NONE = np.zeros((0, 4))


def test_shipped_yaml_equals_the_defaults():
    assert load_config(DetectorTrainConfig, REPO / "config" / "detector_train.yaml") == DetectorTrainConfig()
    assert all(spec.description for spec in DetectorTrainConfig.specs())


@pytest.mark.parametrize("changes,field", [
    ({"val_sequences": ["TUD-Campus"]}, "val_sequences"),  # frames are split by sequence
    ({"train_sequences": []}, "train_sequences"),
    ({"scale_min": 1.5, "scale_max": 1.0}, "scale_max"),
    ({"anchor_sizes": [10.0]}, "anchor_sizes"),
    ({"device": "tpu"}, "device"),
    ({"iterations": 0}, "iterations"),
])
def test_config_rejects_invalid_values_naming_the_field(changes, field):
    with pytest.raises(ConfigError, match=field):
        DetectorTrainConfig(**changes)


@pytest.mark.parametrize("frames,expected", [
    ([FrameDetections(BOX, np.array([0.9]), BOX, NONE)], 1.0),  # one hit
    ([FrameDetections(np.r_[BOX + 100, BOX], np.array([0.9, 0.8]), BOX, NONE)], 0.5),  # a miss ranked first
    ([FrameDetections(np.r_[BOX, BOX + 100], np.array([0.9, 0.8]), BOX, NONE)], 1.0),  # a miss ranked last
    ([FrameDetections(np.r_[BOX, BOX], np.array([0.9, 0.8]), BOX, NONE)], 1.0),  # duplicate = FP, ranked last
    ([FrameDetections(np.r_[BOX + 100, BOX], np.array([0.9, 0.8]), BOX, BOX + 100)], 1.0),  # on ignore region
    ([FrameDetections(NONE, np.zeros(0), BOX, NONE)], 0.0),  # nothing detected
    ([FrameDetections(BOX, np.array([0.9]), BOX, NONE), FrameDetections(NONE, np.zeros(0), BOX, NONE)], 0.5),
])
def test_average_precision_at_iou_05(frames, expected):
    assert average_precision(frames).ap == pytest.approx(expected)


def test_mot17_ground_truth_gives_persons_and_ignore_regions():
    seqs = find_sequences(require_shared("data"), ["MOT17-mini"])
    assert len(seqs) == 7 and all((s / "gt" / "gt.txt").is_file() for s in seqs)
    frames = load_sequence_frames(seqs[0], max_short_side=384, max_long_side=692, max_frames=2)
    assert len(frames) == 2
    fr = frames[0]
    assert min(fr.image.shape[:2]) <= 384 and fr.scale < 1  # 1080p stored smaller
    w = fr.image.shape[1]
    assert len(fr.boxes_xyxy) > 5 and len(fr.ignore_xyxy) > 0  # MOT17-02: static persons, distractors
    assert (fr.boxes_xyxy >= 0).all() and (fr.boxes_xyxy[:, [0, 2]] <= w).all()
    assert (fr.boxes_xyxy[:, 3] - fr.boxes_xyxy[:, 1] >= 8.0).all()


def test_augmenter_keeps_boxes_on_their_objects():
    image = np.zeros((100, 160, 3), np.uint8)
    image[20:80, 10:40] = 255  # the one "person", at the left edge
    frame = DetectionFrame(image, np.array([[10.0, 20.0, 40.0, 80.0]]), NONE, "toy", 1, 1.0)
    augmenter = Augmenter(min_size=64, max_size=128, scale_range=(0.8, 1.2), flip=True, colour=0.3, seed=3)
    flipped = 0
    for _ in range(8):
        out, boxes, scale = augmenter.sample(frame)
        x1, y1, x2, y2 = boxes[0].astype(int)
        assert out[y1 + 2:y2 - 2, x1 + 2:x2 - 2].min() > out.mean()  # still on the bright object
        flipped += x1 > 80
        assert 0.8 * 0.64 - 1e-9 <= scale <= 1.2 * 0.64 + 1e-9  # 64 / 100 px short side, jittered
    assert 0 < flipped < 8
    batch, _, targets = augmenter.batch([frame, frame])
    assert batch.shape[0] == 2 and batch.shape[2] % 32 == 0 and batch.shape[3] % 32 == 0
    assert all(t.shape == (1, 4) for t in targets)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """Two iterations on three real TUD-Campus frames, AP on two MOT17-05 frames (128 px input)."""
    config = DetectorTrainConfig(data_root=str(require_shared("data")), train_sequences=["TUD-Campus"],
                                 val_sequences=["MOT17-mini/train/MOT17-05-FRCNN"], max_val_frames=2,
                                 min_size=128, max_size=192, iterations=2, batch_size=1, eval_every=0,
                                 warmup_iterations=1, num_threads=1, export_onnx=False)
    from ros2_tracker.training.train_detector import frame_options

    train = load_sequence_frames(require_shared("data", "TUD-Campus"), max_frames=3, **frame_options(config))
    val = load_sequence_frames(require_shared("data", "MOT17-mini", "train", "MOT17-05-FRCNN"), max_frames=2,
                               **frame_options(config))
    out = tmp_path_factory.mktemp("detector")
    return config, out, train_detector(config, out, split=(train, val), progress=False, log=lambda _: None)


def test_a_short_training_run_writes_a_checkpoint_that_loads_and_runs(tiny_run):
    import cv2

    from ros2_tracker.regression.backends.torchvision_frcnn import TorchFrcnnRegressor, load_checkpoint

    config, out, _ = tiny_run
    payload = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert payload["extra"]["train_config"] == config.to_dict() and payload["extra"]["iteration"] == 2
    model, _ = load_checkpoint(out / "checkpoint.pt")
    assert model.config.min_size == 128
    regressor = TorchFrcnnRegressor(model)
    image = cv2.imread(str(require_shared("data", "TUD-Campus", "img1", "000001.jpg")))
    reg = regressor.regress(regressor.encode(image), np.array([[399.0, 182.0, 520.0, 411.0]]))
    assert reg.boxes_xyxy.shape == (1, 4) and 0.0 <= reg.scores[0] <= 1.0


def test_evaluate_refuses_to_call_training_sequences_held_out(tiny_run, capsys):
    from ros2_tracker.cli.main import main

    _, out, _ = tiny_run  # trained on TUD-Campus
    argv = ["train-detector", "--evaluate", str(out / "checkpoint.pt"), "--data", str(require_shared("data"))]
    assert main([*argv, "--train", "MOT17-mini", "--val", "TUD-Campus"]) == 2  # the config alone is fine
    assert "was trained on ['TUD-Campus']" in capsys.readouterr().err


def test_a_short_training_run_reports_losses_ap_and_plots(tiny_run):
    _, out, result = tiny_run
    assert result.iterations == 2 and len(result.losses) == 2
    assert all(np.isfinite(r["loss"]) and r["loss"] > 0 for r in result.losses)
    assert {"all", "MOT17-05-FRCNN"} <= set(result.ap_after) and 0.0 <= result.ap_after["all"] <= 1.0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["iterations"] == 2 and metrics["val_frames"] == 2 and "all" in metrics["ap50_before"]
    history = json.loads((out / "history.json").read_text())
    assert [e["iteration"] for e in history["evaluations"]] == [0, 2]
    for name in ("loss.png", "ap.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_moves_fpn_and_heads_but_not_the_frozen_backbone(tiny_run):
    from ros2_tracker.regression.backends.torchvision_frcnn import build_model

    config, out, _ = tiny_run
    state = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)["state_dict"]
    torch.manual_seed(config.seed)  # the same initialisation as the run's
    start = build_model(config.model_config()).state_dict()
    for key in ("backbone.body.0.0.weight", "backbone.body.17.conv.0.0.weight"):
        assert torch.equal(state[key], start[key]), key
    for key in ("backbone.fpn.layer_blocks.0.0.weight", "rpn.head.cls_logits.weight",
                "roi_heads.box_predictor.cls_score.weight"):
        assert not torch.equal(state[key], start[key]), key


@pytest.mark.parametrize("argv,message", [
    (["--data", "/nonexistent/data"], "data_root"),
    (["--train", "TUD-Campus", "--val", "TUD-Campus"], "val_sequences"),
    (["--train", " , "], "comma-separated"),
    (["--iterations", "0"], "iterations"),
    (["--evaluate", "/nonexistent/checkpoint.pt"], "checkpoint file not found"),
])
def test_cli_bad_input_exits_2_with_one_line(argv, message, capsys):
    assert main(["train-detector", "--no-progress", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_cli_rejects_a_sequence_without_ground_truth(tmp_path, capsys):
    (tmp_path / "empty-seq").mkdir()
    argv = ["train-detector", "--data", str(tmp_path), "--train", "empty-seq", "--val", "other",
            "--no-progress", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "no MOTChallenge sequence" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # the failed run left an empty --out folder behind


def test_a_failed_command_removes_only_an_output_folder_it_made_and_left_empty(tmp_path):
    from ros2_tracker.cli.runs import output_folder

    for name, prepare, kept in (("new", None, False), ("written", "file", True), ("users", "dir", True)):
        out = tmp_path / name
        if prepare == "dir":
            out.mkdir()
        with pytest.raises(RuntimeError), output_folder(out):
            out.mkdir(exist_ok=True)
            if prepare == "file":
                (out / "history.json").write_text("{}")
            raise RuntimeError("data not found")
        assert out.exists() == kept, name
