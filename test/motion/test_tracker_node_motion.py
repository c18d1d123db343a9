"""tracker_node with ``motion_model:=learned``: the published trajectories come from the model; a missing
model is a start-up error naming the parameter."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
msgs = pytest.importorskip("ros2_tracker.msg",
                           reason="ros2_tracker.msg is not built: run `bash scripts/setup.sh`")

from ros_graph import TrackerNodeClient  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ros2_tracker.core.tracker import Tracker, TrackerConfig  # noqa: E402
from ros2_tracker.motion import create_predictor  # noqa: E402
from ros2_tracker.nodes.conversions import arrays_to_detections, seconds_to_stamp, track_array_to_arrays  # noqa: E402

FPS, T0 = 10.0, 50.0


def _boxes(k: int) -> np.ndarray:
    return np.array([[20 + 8.0 * k, 60, 60 + 8.0 * k, 160], [260 - 5.0 * k, 40, 290 - 5.0 * k, 110]])


@pytest.mark.slow
def test_node_publishes_the_learned_models_trajectories(tracker_node_graph, untrained_onnx):
    start, context = tracker_node_graph
    proc, log = start("motion_model:=learned", f"motion_model_path:={untrained_onnx}")
    client = TrackerNodeClient(context, "motion_test")
    client.wait_for_node(proc, log, timeout=20.0, images=False)
    cfg = TrackerConfig(motion_model="learned", motion_model_path=str(untrained_onnx))
    local = Tracker(cfg, predictor=create_predictor(cfg))
    # a first, empty frame: publish_frame sends the first frame again until the node answers (a loaded
    # machine's cold start), and a detection frame the node got twice would enter its box history twice
    header = Header(frame_id="camera", stamp=seconds_to_stamp(T0 - 1.0))
    client.publish_frame(arrays_to_detections(np.empty((0, 4)), np.empty(0), np.empty(0, int), header, msgs),
                         None, 5.0)
    local.update(np.empty((0, 4)), stamp=T0 - 1.0)
    for k in range(12):
        header = Header(frame_id="camera", stamp=seconds_to_stamp(T0 + k / FPS))
        boxes = _boxes(k) if k < 10 else _boxes(k)[:0]  # the last two frames: both people occluded
        det = arrays_to_detections(boxes, np.full(len(boxes), 0.9), np.zeros(len(boxes), int), header, msgs)
        got = track_array_to_arrays(client.publish_frame(det, None, 5.0))
        local.update(boxes, np.full(len(boxes), 0.9), stamp=T0 + k / FPS)
    want = local.predict_trajectories()
    order = np.argsort(got.ids)
    assert got.trajectories.shape == (2, 10, 2) and got.ids[order].tolist() == want.ids.tolist()
    np.testing.assert_allclose(got.trajectories[order], want.centres, atol=1e-3)
    np.testing.assert_allclose(got.trajectory_covariances[order], want.covariances, rtol=1e-5, atol=1e-6)
    assert "motion model: learned" in log.read_text()


def test_missing_motion_model_is_a_start_up_error(tracker_node_graph, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install onnxruntime)")
    start, _ = tracker_node_graph
    proc, log = start("motion_model:=learned", f"motion_model_path:={tmp_path / 'missing.onnx'}")
    assert proc.wait(30) == 2
    text = log.read_text()
    assert "motion_model_path" in text and "file not found" in text and "Traceback" not in text, text
