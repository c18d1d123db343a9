"""MDNet-style online learning: follows a real person with no offline training; bounded, measured cost."""

import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.core.config import ConfigError
from ros2_tracker.core.costs import iou_matrix
from ros2_tracker.sot.mdnet import MdnetConfig, MdnetTracker, mdnet_backend
from ros2_tracker.sot.pairs import FrameStore, load_gt_tracks
from ros2_tracker.sot.tracker_base import SingleTargetTracker

pytest.importorskip("torch", reason="torch is not installed (pip install torch): MDNet fine-tunes with it")

FRAMES = 20


@pytest.fixture(scope="module")
def followed():
    """MDNet run over 20 real TUD-Campus frames of one pedestrian: (tracker, track, results)."""
    root = require_shared("data", "TUD-Campus")
    track = next(t for t in load_gt_tracks(root, min_length=FRAMES + 1) if t.track_id == 1)
    frames = FrameStore()
    tracker = MdnetTracker(MdnetConfig(init_iterations=30, update_every=5))
    tracker.init(frames.frame(root, track.frames[0]), track.boxes_xyxy[0])
    results = [tracker.update(frames.frame(root, f)) for f in track.frames[1:FRAMES + 1]]
    return tracker, track, results


def test_follows_a_real_person_across_20_frames(followed):
    tracker, track, results = followed
    assert isinstance(tracker, SingleTargetTracker) and tracker.name == "mdnet:torch"
    ious = [iou_matrix(r.box_xyxy[None], t[None])[0, 0]
            for r, t in zip(results, track.boxes_xyxy[1:FRAMES + 1], strict=True)]
    assert np.mean(ious) > 0.55, np.round(ious, 2)
    assert min(ious) > 0.3
    assert all(0.0 <= r.confidence <= 1.0 for r in results)
    assert np.mean([r.confidence for r in results]) > 0.5


def test_fine_tuning_cost_is_measured_and_bounded_by_the_config(followed):
    tracker, _, _ = followed
    timing = tracker.timing
    assert timing.init_ms > 0 and len(timing.update_ms) == FRAMES
    # one fine-tuning at init, then one every update_every frames (and after unconfident frames)
    assert 1 + FRAMES // 5 <= len(timing.finetune_ms) <= 1 + FRAMES
    assert len(tracker._memory) <= tracker.config.memory_frames


def test_bad_input_and_model_path_are_refused(followed):
    tracker, track, _ = followed
    frame = FrameStore().frame(track.sequence, track.frames[0])
    with pytest.raises(ValueError, match="zero or negative size"):
        tracker.init(frame, [50, 50, 40, 90])
    with pytest.raises(ValueError, match="NaN"):
        tracker.init(frame, [np.nan, 50, 90, 90])
    with pytest.raises(ValueError, match="frame_bgr"):
        tracker.update(frame[:100])
    with pytest.raises(ConfigError, match="model_path"):
        mdnet_backend("some.onnx")
    with pytest.raises(ConfigError, match="init_iterations"):
        MdnetConfig(init_iterations=-1)
