"""The motion-model interface in the core: history ring buffer, CV default, learned runtime contract."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ros2_tracker.core import kalman
from ros2_tracker.core.config import ConfigError
from ros2_tracker.core.motion import (
    ConstantVelocityPredictor,
    MotionHistory,
    TrajectoryPredictor,
    filter_history,
)
from ros2_tracker.core.tracker import Tracker, TrackerConfig

pytest.importorskip("onnxruntime")
from ros2_tracker.motion import MotionModelError, OnnxMotionPredictor, create_predictor

_KEEP_HISTORY = TrackerConfig(motion_history_frames=48)  # the default keeps none without a learned model


def _walk(tracker, frames=12, fps=10.0, n=3, miss=()):
    """n people walking right at different speeds; frames in ``miss`` have no detections."""
    for f in range(frames):
        x = 50.0 + np.arange(n) * 150 + (f / fps) * np.array([40.0, 80.0, 120.0])[:n]
        boxes = np.column_stack([x, np.full(n, 100.0), x + 40, np.full(n, 200.0)])
        tracker.update(boxes[:0] if f in miss else boxes, stamp=f / fps)
    return tracker


def test_default_trajectories_are_the_kalman_extrapolation():
    tr = _walk(Tracker())
    traj = tr.predict_trajectories()
    hist = tr.motion_history()
    c, v = kalman.predict_trajectory(hist.mean, hist.cov, traj.times_s, hist.noise)
    np.testing.assert_array_equal(traj.centres, c)
    np.testing.assert_array_equal(traj.covariances, v)
    assert traj.centres.shape == (3, 10, 2) and traj.covariances.shape == (3, 10, 3)
    assert isinstance(ConstantVelocityPredictor(), TrajectoryPredictor)


def test_history_ring_buffer_holds_the_matched_boxes_in_order():
    cfg = TrackerConfig(motion_history_frames=5)
    tr = _walk(Tracker(cfg), frames=8, miss=(6,))
    h = tr.motion_history()
    assert h.boxes_cxcywh.shape == (3, 5, 4) and h.valid.shape == (3, 5)
    np.testing.assert_allclose(h.stamps[0], [0.3, 0.4, 0.5, 0.6, 0.7])  # oldest first, wrapped
    assert h.valid.tolist() == [[True, True, True, False, True]] * 3
    np.testing.assert_allclose(h.boxes_cxcywh[1, -1], [200 + 0.7 * 80 + 20, 150, 40, 100])


def test_lost_tracks_are_placed_from_a_history_that_ends_now():
    """The learned predictor placing lost tracks (before this update's matches are written) sees the
    history up to the last update and an empty column stamped now, never the column of K updates ago."""
    seen = []

    class Spy(ConstantVelocityPredictor):
        def predict(self, history, times_s):
            if len(times_s) == 1 and times_s[0] == 0:  # the lost-box call
                seen.append(history)
            return super().predict(history, times_s)

    cfg = TrackerConfig(motion_model="learned", motion_model_path="unused.onnx", motion_history_frames=6)
    tr = Tracker(cfg, predictor=Spy())
    for f in range(10):  # a person walking right, missed in frames 8 and 9, where someone else appears
        x = 50.0 + 4.0 * f
        box = [x, 100, x + 40, 200] if f < 8 else [400, 100, 440, 200]
        tr.update(np.array([box]), stamp=f / 10)
    assert seen  # frame 9: the track lost since frame 8 placed before matching
    h = seen[0]
    assert np.all(np.diff(h.stamps[0]) > 0) and h.stamps[0, -1] == pytest.approx(h.now) == pytest.approx(0.9)
    assert h.valid[0].tolist() == [True, True, True, True, False, False]  # frames 4-7 matched, 8 missed
    assert tr.motion_history().stamps[0, -1] == pytest.approx(0.9)


def test_history_is_kept_only_where_something_reads_it(untrained_onnx):
    # default, constant velocity: no box history (nothing reads it); the Kalman state is still there
    h = _walk(Tracker(), frames=4).motion_history()
    assert h.boxes_cxcywh.shape == (3, 0, 4) and h.valid.shape == (3, 0) and h.mean.shape == (3, 8)
    learned = TrackerConfig(motion_model="learned", motion_model_path=str(untrained_onnx))
    assert learned.history_frames == 48 and TrackerConfig().history_frames == 0
    assert TrackerConfig(motion_history_frames=7).history_frames == 7
    with pytest.raises(ConfigError, match="motion_history_frames"):
        TrackerConfig(motion_history_frames=1)
    tr = _walk(Tracker(learned, predictor=create_predictor(learned)), frames=4)
    assert tr.motion_history().valid.shape == (3, 48)


def test_filter_history_reproduces_the_trackers_kalman_state():
    # exactly under a constant noise (an adaptive one changes from update to update) and plain updates
    config = _KEEP_HISTORY.replace(adaptive_measurement_noise=False, robust_update_sigma=0.0)
    tr = _walk(Tracker(config), frames=10, miss=(4, 5))
    h = tr.motion_history()
    mean, cov = filter_history(h.boxes_cxcywh, h.valid, h.stamps[0], h.now, h.noise)
    np.testing.assert_allclose(mean, h.mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(cov, h.cov, rtol=1e-9, atol=1e-9)


def _history(tracker) -> MotionHistory:
    return tracker.motion_history()


def test_learned_predictor_shapes_and_short_track_fallback(untrained_onnx):
    pred = OnnxMotionPredictor(untrained_onnx)
    times = np.arange(1, 11) * 0.2
    h = _history(_walk(Tracker(_KEEP_HISTORY), frames=12))
    c, v = pred.predict(h, times)
    assert c.shape == (3, 10, 2) and v.shape == (3, 10, 3) and np.isfinite(c).all()
    cv_c, _ = ConstantVelocityPredictor().predict(h, times)
    assert np.abs(c - cv_c).max() > 1e-3  # the (perturbed) model really ran
    assert (v[..., 0] > 0).all() and (v[..., 0] * v[..., 2] > v[..., 1] ** 2).all()  # positive definite
    short = _history(_walk(Tracker(_KEEP_HISTORY), frames=2))  # 0.1 s: fewer than min_history grid points
    cv_short = ConstantVelocityPredictor().predict(short, times)[0]
    np.testing.assert_array_equal(pred.predict(short, times)[0], cv_short)
    empty = short.select(np.zeros(3, dtype=bool))
    assert pred.predict(empty, times)[0].shape == (0, 10, 2)


def test_nan_history_is_rejected_with_a_log_line(untrained_onnx, caplog):
    pred = OnnxMotionPredictor(untrained_onnx)
    h = _history(_walk(Tracker(_KEEP_HISTORY), frames=12))
    boxes = h.boxes_cxcywh.copy()
    boxes[0, -3, 0] = np.nan
    bad = h._replace(boxes_cxcywh=boxes)
    times = np.array([0.5, 1.0])
    with caplog.at_level(logging.WARNING):
        c, _ = pred.predict(bad, times)
    assert "rejected 1 track histories with non-finite boxes" in caplog.text
    np.testing.assert_array_equal(c[0], ConstantVelocityPredictor().predict(bad, times)[0][0])
    np.testing.assert_array_equal(c[1:], pred.predict(h, times)[0][1:])  # the others are unaffected


def test_tracker_with_learned_model_publishes_its_trajectories(untrained_onnx):
    cfg = TrackerConfig(motion_model="learned", motion_model_path=str(untrained_onnx))
    tr = _walk(Tracker(cfg, predictor=create_predictor(cfg)), frames=12, miss=(9, 10, 11))
    traj = tr.predict_trajectories()
    direct, _ = OnnxMotionPredictor(untrained_onnx).predict(tr.motion_history(), traj.times_s)
    np.testing.assert_allclose(traj.centres, direct)
    assert (tr.tracks().states == 2).all()  # lost for 0.3 s, still predicted by the model


@pytest.mark.parametrize(("change", "message"), [
    ({"motion_model_path": "/nonexistent/motion.onnx"},
     "motion_model_path: /nonexistent/motion.onnx: file not found"),
    ({"trajectory_horizon_s": 5.0}, "beyond the motion model's horizon"),
])
def test_missing_or_mismatched_model_is_a_clear_error(untrained_onnx, change, message):
    cfg = TrackerConfig(motion_model="learned", motion_model_path=str(untrained_onnx)).replace(**change)
    with pytest.raises(MotionModelError, match=message):
        create_predictor(cfg)


def test_a_model_of_another_kind_is_rejected(tmp_path):
    from conftest import require_shared

    reid = require_shared("models", "osnet_x0_25_msmt17.onnx")
    with pytest.raises(MotionModelError, match="not a motion model"):
        OnnxMotionPredictor(reid)
    corrupt = tmp_path / "motion.onnx"
    corrupt.write_bytes(b"not onnx")
    with pytest.raises(MotionModelError, match="not a loadable ONNX model"):
        OnnxMotionPredictor(corrupt)


def test_config_rejects_learned_without_model_or_predictor(untrained_onnx):
    with pytest.raises(ConfigError, match="motion_model_path"):
        TrackerConfig(motion_model="learned")
    with pytest.raises(ConfigError, match="needs a predictor"):
        Tracker(TrackerConfig(motion_model="learned", motion_model_path=str(untrained_onnx)))
    assert create_predictor(TrackerConfig()) is None


def test_camera_motion_moves_the_history_with_the_tracks():
    tr = _walk(Tracker(_KEEP_HISTORY), frames=6)
    before = tr.motion_history()
    tr.apply_camera_motion(np.array([[1.0, 0.0, 15.0], [0.0, 1.0, -4.0]]))
    after = tr.motion_history()
    np.testing.assert_allclose(after.boxes_cxcywh[after.valid][:, :2],
                               before.boxes_cxcywh[before.valid][:, :2] + [15.0, -4.0])
    np.testing.assert_allclose(after.mean[:, :2], before.mean[:, :2] + [15.0, -4.0])


@pytest.mark.ros
def test_tracker_node_refuses_a_horizon_beyond_its_learned_model(untrained_onnx, ros_env, monkeypatch):
    """At run time too: a longer trajectory_horizon_s was accepted and then failed every update, which
    stopped the node."""
    rclpy = pytest.importorskip("rclpy")
    pytest.importorskip("ros2_tracker.msg", reason="ros2_tracker.msg is not built: bash scripts/setup.sh")
    from rclpy.context import Context
    from rclpy.parameter import Parameter

    from ros2_tracker.nodes.tracker_node import TrackerNode

    monkeypatch.setenv("ROS_LOG_DIR", ros_env["ROS_LOG_DIR"])
    ctx = Context()
    rclpy.init(context=ctx, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    try:
        node = TrackerNode(context=ctx, parameter_overrides=[
            Parameter("motion_model", value="learned"),
            Parameter("motion_model_path", value=str(untrained_onnx)),
            Parameter("trajectory_horizon_s", value=1.0)])
        result = node.set_parameters([Parameter("trajectory_horizon_s", value=60.0)])[0]
        assert not result.successful and "beyond the motion model's horizon" in result.reason
        assert node.set_parameters([Parameter("trajectory_horizon_s", value=2.0)])[0].successful
        node.destroy_node()
    finally:
        ctx.try_shutdown()
