"""GOTURN-style regression tracker: network shapes, ONNX parity, runtime on real frames, bad input."""

import numpy as np
import pytest
from conftest import require_shared

pytest.importorskip("torch", reason="torch is not installed (pip-only)")

import torch

from ros2_tracker.core.config import ConfigError
from ros2_tracker.core.costs import iou_matrix
from ros2_tracker.sot.goturn import (
    GoturnConfig,
    GoturnModelConfig,
    GoturnNet,
    GoturnTracker,
    goturn_backend,
    load_goturn,
)
from ros2_tracker.sot.pairs import FrameStore, load_gt_tracks
from ros2_tracker.sot.sot_export import (
    SotCheckpointError,
    export_goturn_onnx,
    goturn_onnx_parity,
    save_sot_checkpoint,
)
from ros2_tracker.sot.tracker_base import SingleTargetTracker

SMALL = GoturnModelConfig(input_size=64, fc_dim=64, conv_channels=16)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """An untrained network (its output starts at "no motion"), as checkpoint and ONNX export."""
    torch.manual_seed(0)
    net = GoturnNet(SMALL).eval()
    torch.nn.init.zeros_(net.regressor[-1].weight)  # exactly "no motion": a static box, on any runtime
    out = tmp_path_factory.mktemp("goturn")
    ckpt = save_sot_checkpoint(out / "checkpoint.pt", "goturn", SMALL.to_dict(), net.state_dict())
    report = export_goturn_onnx(net, out / "goturn.onnx")
    return net, ckpt, report


@pytest.fixture(scope="module")
def walker():
    root = require_shared("data", "TUD-Campus")
    track = max(load_gt_tracks(root, min_length=20), key=lambda t: len(t.frames))
    return track, FrameStore()


def test_forward_gives_one_box_per_pair_starting_at_no_motion():
    net = GoturnNet(SMALL).eval()
    with torch.no_grad():
        out = net(torch.randn(3, 3, 64, 64), torch.randn(3, 3, 64, 64))
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out.numpy(), np.tile([0.25, 0.25, 0.75, 0.75], (3, 1)), atol=0.05)
    trainable = {n.split(".")[0] for n, p in net.named_parameters() if p.requires_grad}
    assert trainable == {"adapt", "regressor"}  # the ImageNet trunk stays frozen


def test_onnx_export_matches_torch_within_1e4(model_files):
    net, _, report = model_files
    assert report.max_abs_diff <= 1e-4
    assert goturn_onnx_parity(net, report.path, batch_sizes=(2,), seed=7) <= 1e-4


@pytest.mark.parametrize("runtime", ["torch", "onnx"])
def test_tracker_runs_on_real_frames_with_both_runtimes(model_files, walker, runtime):
    _, ckpt, report = model_files
    track, frames = walker
    config = GoturnConfig(runtime=runtime, checkpoint_path=str(ckpt), onnx_path=str(report.path))
    tracker = GoturnTracker(config)
    assert isinstance(tracker, SingleTargetTracker) and tracker.name == f"goturn:{runtime}"
    tracker.init(frames.frame(track.sequence, track.frames[0]), track.boxes_xyxy[0])
    results = [tracker.update(frames.frame(track.sequence, f)) for f in track.frames[1:6]]
    # the "no motion" network keeps the box; tracking back gives it again: full cycle confidence
    for r in results:
        np.testing.assert_allclose(r.box_xyxy, track.boxes_xyxy[0], atol=1e-3)
        assert r.confidence == pytest.approx(1.0, abs=1e-3)
    assert iou_matrix(results[0].box_xyxy[None], track.boxes_xyxy[1:2])[0, 0] > 0.8


def test_torch_and_onnx_runtimes_give_the_same_boxes(model_files, walker):
    _, ckpt, report = model_files
    track, frames = walker
    boxes = []
    for backend in (goturn_backend(str(ckpt)), goturn_backend(str(report.path))):
        backend.init(frames.frame(track.sequence, track.frames[0]), track.boxes_xyxy[0])
        boxes.append([backend.update(frames.frame(track.sequence, f)).box_xyxy for f in track.frames[1:4]])
    np.testing.assert_allclose(boxes[0], boxes[1], atol=1e-2)


def test_bad_input_gives_clear_errors(model_files, walker):
    _, ckpt, _ = model_files
    track, frames = walker
    frame = frames.frame(track.sequence, track.frames[0])
    tracker = GoturnTracker(GoturnConfig(checkpoint_path=str(ckpt)))
    with pytest.raises(RuntimeError, match="before init"):
        tracker.update(frame)
    with pytest.raises(ValueError, match="zero or negative size"):
        tracker.init(frame, [100, 100, 100, 200])
    with pytest.raises(ValueError, match="NaN"):
        tracker.init(frame, [100, np.nan, 150, 200])
    with pytest.raises(ValueError, match="uint8"):
        tracker.init(frame.astype(np.float32), track.boxes_xyxy[0])
    tracker.init(frame, track.boxes_xyxy[0])
    with pytest.raises(ValueError, match="started on a 640 x 480"):
        tracker.update(frame[:240])


def test_missing_or_mismatched_model_files_are_refused(tmp_path, model_files):
    with pytest.raises(ConfigError, match="checkpoint_path: not set"):
        GoturnConfig()
    with pytest.raises(SotCheckpointError, match="not found"):
        load_goturn(tmp_path / "none.pt")
    other = save_sot_checkpoint(tmp_path / "rolo.pt", "rolo", {}, {})
    with pytest.raises(SotCheckpointError, match="a 'rolo' checkpoint, expected 'goturn'"):
        load_goturn(other)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match=r"model_path: .*not a readable checkpoint"):
        goturn_backend(str(junk))
