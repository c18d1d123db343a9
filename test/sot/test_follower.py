"""The follower on real frames: tracking / uncertain / lost, cycle consistency, re-acquisition, prediction."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_shared

from ros2_tracker.core.config import ConfigError
from ros2_tracker.sot.evaluation import ious
from ros2_tracker.sot.factory import SotConfig, create_follower
from ros2_tracker.sot.follower import Follower, FollowerConfig, FollowState

cv2 = pytest.importorskip("cv2")
FPS = 25.0


@pytest.fixture(scope="module")
def tud():
    """TUD-Campus frames 1..30 and the ground truth of person 3 (in frames 1..63)."""
    root = require_shared("data", "TUD-Campus")
    g = np.loadtxt(root / "gt" / "gt.txt", delimiter=",")
    g = g[g[:, 1] == 3]
    gt = {int(r[0]): np.array([r[2], r[3], r[2] + r[4], r[3] + r[5]]) for r in g}
    return {k: cv2.imread(str(root / "img1" / f"{k:06d}.jpg")) for k in range(1, 31)}, gt


@pytest.fixture
def follower():
    return create_follower(SotConfig(model_path=str(require_shared("models", "nanotrack_v2"))))


def test_follows_then_loses_on_blank_frames_then_reacquires_with_the_same_id(tud, follower):
    frames, gt = tud
    follower.start(frames[1], gt[1], 0.0, target_id=5)
    results = [follower.step(frames[k], (k - 1) / FPS) for k in range(2, 21)]
    assert all(r.state is FollowState.TRACKING for r in results[:5])
    truth = np.array([gt[k] for k in range(2, 21)])
    assert ious(np.array([r.box_xyxy for r in results]), truth).mean() > 0.55
    assert any(not np.isnan(r.cycle_iou) and r.cycle_iou > 0.5 for r in results)  # checks ran and passed
    blank = np.full_like(frames[1], 90)
    t = 20 / FPS
    lost = []
    for i in range(10):
        lost.append(follower.step(blank, t + i / FPS))
    states = [r.state for r in lost]
    assert states[0] is not FollowState.LOST and FollowState.LOST in states  # uncertain before lost
    first_lost = states.index(FollowState.LOST)
    assert lost[first_lost].event == "lost" and lost[first_lost].confidence == 0.0
    # caught by the checks: a cycle IoU below cycle_min_iou or a backend confidence below confidence_lost
    before = lost[:first_lost + 1]
    assert min(r.cycle_iou for r in before if not np.isnan(r.cycle_iou)) < 0.5 or \
        min(r.backend_confidence for r in before) < 0.5
    # lost: the box is the constant-velocity prediction, moving with the person's last velocity
    assert lost[-1].velocity[0] > 0 and lost[-1].box_xyxy[0] > lost[first_lost].box_xyxy[0]
    back = None
    for k in range(21, 31):
        back = follower.step(frames[k], t + (10 + k - 21) / FPS)
        if back.state is not FollowState.LOST:
            break
    assert back.event.startswith("reacquired") and back.target_id == 5
    assert ious(back.box_xyxy[None], gt[k][None])[0] > 0.3


class _ScriptedBackend:
    """A SingleTargetTracker that answers a fixed box with the confidences of a script, one per update."""

    name = "scripted"

    def __init__(self, confidences):
        self.confidences = list(confidences)

    def init(self, frame_bgr, box_xyxy):
        self.box = np.asarray(box_xyxy, dtype=np.float64)

    def update(self, frame_bgr):
        from ros2_tracker.sot.tracker_base import SotResult

        return SotResult(self.box.copy(), self.confidences.pop(0))


def test_a_backend_confidence_below_confidence_lost_is_a_bad_frame_without_any_cycle_check():
    """Confidence alone (cycle check off): 0.6 is uncertain, below confidence_lost (0.5) a bad frame, and
    lost_after_frames (3) bad frames in a row lose the target."""
    script = [0.9, 0.6, 0.1, 0.1, 0.1, 0.9]
    follower = Follower(lambda: _ScriptedBackend(script), FollowerConfig(cycle_window_frames=0))
    frame = np.zeros((120, 160, 3), dtype=np.uint8)
    follower.start(frame, np.array([40.0, 20, 80, 100]), 0.0, target_id=1)
    states = [follower.step(frame, 0.1 * k).state for k in range(1, 6)]
    assert states == [FollowState.TRACKING, FollowState.UNCERTAIN, FollowState.UNCERTAIN,
                      FollowState.UNCERTAIN, FollowState.LOST]


def test_detector_and_reid_reacquire_the_same_person(tud):
    frames, gt = tud
    follower = create_follower(SotConfig(model_path=str(require_shared("models", "nanotrack_v2"))),
                               FollowerConfig(search_max_candidates=0),  # detector stage only
                               detector_model_path=str(require_shared("models", "yolox_nano.onnx")),
                               reid_model_path=str(require_shared("models", "osnet_x0_25_msmt17.onnx")))
    follower.start(frames[1], gt[1], 0.0, target_id=9)
    for k in range(2, 11):
        follower.step(frames[k], (k - 1) / FPS)
    blank = np.full_like(frames[1], 90)
    states = [follower.step(blank, (10 + i) / FPS).state for i in range(10)]
    assert states[-1] is FollowState.LOST
    for k in range(11, 31):  # the crowd of TUD-Campus: the re-ID embedding picks person 3 among them
        res = follower.step(frames[k], (20 + k - 11) / FPS)
        if res.event:
            break
    assert res.event == "reacquired:detector" and res.target_id == 9
    assert ious(res.box_xyxy[None], gt[k][None])[0] > 0.6


def test_result_carries_a_predicted_trajectory_and_kalman_state(tud, follower):
    frames, gt = tud
    follower.start(frames[1], gt[1], 10.0, target_id=1)
    for k in range(2, 8):
        res = follower.step(frames[k], 10.0 + (k - 1) / FPS)
    cfg = follower.config
    k_points = round(cfg.trajectory_horizon_s / cfg.trajectory_step_s)
    assert res.trajectory.shape == (k_points, 2) and res.trajectory_cov.shape == (k_points, 3)
    np.testing.assert_allclose(res.trajectory_times_s, cfg.trajectory_step_s * np.arange(1, k_points + 1))
    assert res.velocity[0] > 0  # person 3 walks right
    assert np.all(np.diff(res.trajectory_cov[:, 0]) > 0)  # uncertainty grows with the horizon
    assert res.age_s == pytest.approx(6 / FPS) and res.hits == 6 and res.time_since_update_s == 0.0


def test_bad_input_leaves_the_follower_unchanged(tud, follower):
    frames, gt = tud
    with pytest.raises(RuntimeError, match="call start"):
        follower.step(frames[1], 0.0)
    with pytest.raises(ValueError, match="outside"):
        follower.start(frames[1], np.array([900, 10, 950, 100.0]), 0.0, 1)
    assert not follower.active
    follower.start(frames[1], gt[1], 0.0, 1)
    with pytest.raises(RuntimeError, match="already following target 1"):
        follower.start(frames[1], gt[1], 0.0, 2)
    with pytest.raises(ValueError, match="frame is 320x240 px"):
        follower.step(np.zeros((240, 320, 3), np.uint8), 0.04)
    res = follower.step(frames[2], 0.04)
    assert res.state is FollowState.TRACKING and res.age_s == pytest.approx(0.04)
    follower.stop()
    assert not follower.active and follower.target_id is None


def test_wider_search_positions_grow_with_time_lost(tud, follower):
    frames, _ = tud
    follower.start(frames[1], np.array([300.0, 200.0, 340.0, 300.0]), 0.0, 1)
    box = np.array([300.0, 200.0, 340.0, 300.0])  # 40 x 100 px, centre (320, 250)
    near = follower.search_positions(box)
    np.testing.assert_allclose(near[0], [320, 250])  # the prediction itself first
    assert len(near) == follower.config.search_max_candidates
    # steps of one box width in x, half a height in y; the 9 nearest reach one width / one height
    assert np.abs(near - [320, 250]).max(axis=0).tolist() == [40.0, 100.0]
    wide = Follower(lambda: follower._tracker, FollowerConfig(search_max_candidates=400))
    wide.start(frames[1], box, 0.0, 1)
    wide._lost_s, wide._stamp = 0.0, 5.0  # 5 s lost: radius 1 + 5 -> capped at search_radius_max 3
    far = wide.search_positions(box)
    # 3 widths in x; 3 heights in y, but only centres inside the 640x480 image
    assert np.abs(far - [320, 250]).max(axis=0).tolist() == [120.0, 250.0]
    assert far[:, 1].min() >= 0 and far[:, 1].max() < 480


@pytest.mark.parametrize(("changes", "message"), [
    ({"confidence_lost": 0.8, "confidence_uncertain": 0.6}, "confidence_lost: must not exceed"),
    ({"search_radius": 4.0, "search_radius_max": 3.0}, "search_radius: must not exceed"),
    ({"trajectory_step_s": 3.0}, "trajectory_step_s: must not exceed"),
    ({"trajectory_horizon_s": 60.0, "trajectory_step_s": 0.001}, "60,000 points per track; at most 1,000"),
    ({"cycle_min_iou": 1.5}, "cycle_min_iou: 1.5 is out of range"),
])
def test_config_rejects_inconsistent_values(changes, message):
    with pytest.raises(ConfigError, match=message):
        FollowerConfig(**changes)
