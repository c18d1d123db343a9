"""tracker_node with ``tracker: tracktor``: a real node process, real TUD-Campus frames, the real D2Go model.

The node's tracks must equal those of :class:`Tracktor` run in this process on the same images and the
same detection arrays (through the message): same ids, same boxes. Start-up errors exit with status 2.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = [pytest.mark.ros, pytest.mark.data]

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
msgs = pytest.importorskip("ros2_tracker.msg",
                           reason="ros2_tracker.msg is not built: run `bash scripts/setup.sh`")

from ros_graph import TrackerNodeClient, wait_acked  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ros2_tracker.nodes.conversions import (  # noqa: E402
    arrays_to_detections,
    detections_to_arrays,
    seconds_to_stamp,
    track_array_to_arrays,
)
from ros2_tracker.nodes.image_conversions import bgr_to_image_msg  # noqa: E402

from .conftest import read_frame  # noqa: E402

FRAMES = 4


def public(seq, frame):
    from ros2_tracker.core.boxes import tlwh_to_xyxy
    from ros2_tracker.io.mot import read_mot

    d = read_mot(seq / "det" / "det_frcnn.txt")
    sel = d.frames == frame
    return tlwh_to_xyxy(d.boxes_tlwh[sel]), d.scores[sel]


@pytest.mark.slow
def test_node_runs_tracktor_like_the_library(tracker_node_graph, d2go, d2go_path, tud):
    from ros2_tracker.regression.tracktor import Tracktor

    start, context = tracker_node_graph
    proc, log = start("tracker:=tracktor", "use_images:=true", f"regressor_model_path:={d2go_path}",
                      "image_qos:=reliable", "image_wait_s:=5.0", "use_depth:=true",
                      "sensor_qos:=reliable")
    client = TrackerNodeClient(context, "tracktor_test")
    depth_pub = client.node.create_publisher(Image, "depth", 10)
    info_pub = client.node.create_publisher(CameraInfo, "camera_info", 10)
    client.wait_for_node(proc, log, timeout=60.0, images=True)
    client.wait_matched(depth_pub, info_pub)
    # use_depth with Tracktor too: the camera's K, and an eighth-size depth image of a wall 4 m away (32FC1)
    # per frame, reliable (sensor_qos, as a replay's: best effort, a loaded CI lost two depth images in a row,
    # and once every position of a frame was NaN), all of them before the first frame, acknowledged by the
    # node (reliable alone, a lost datagram's repair waited for a heartbeat and frame 3 went without its
    # depth); the first frame's until the node has logged both
    k = np.array([[600.0, 0.0, 320.0], [0.0, 600.0, 240.0], [0.0, 0.0, 1.0]])

    def send_depth(f: int) -> None:
        header = Header(frame_id="camera", stamp=seconds_to_stamp(10.0 + (f - 1) / 25.0))
        info_pub.publish(CameraInfo(header=header, width=640, height=480, k=k.ravel().tolist()))
        depth_pub.publish(Image(header=header, height=60, width=80, encoding="32FC1", step=80 * 4,
                                data=np.full((60, 80), 4.0, dtype="<f4").tobytes()))

    client.publish_until_logged(lambda: send_depth(1), "camera_info: fx", "first depth image: ")
    for f in range(2, FRAMES + 1):
        send_depth(f)
    wait_acked(info_pub, depth_pub)
    reference = Tracktor(d2go)
    for f in range(1, FRAMES + 1):
        image, (boxes, scores) = read_frame(tud, f), public(tud, f)
        header = Header(frame_id="camera", stamp=seconds_to_stamp(10.0 + (f - 1) / 25.0))
        det_msg = arrays_to_detections(boxes, scores, np.zeros(len(boxes), dtype=np.int64), header, msgs)
        img_msg = bgr_to_image_msg(image, Image, "bgr8", header)
        got = track_array_to_arrays(client.publish_frame(det_msg, img_msg, 60.0))
        det = detections_to_arrays(det_msg)
        want = reference.step(image, stamp=det.stamp_s, detections_xyxy=det.boxes_xyxy,
                              detection_scores=det.scores).confirmed_and_updated()
        assert got.ids.tolist() == want.ids.tolist() and len(want) >= 4
        np.testing.assert_allclose(got.boxes_xyxy, want.boxes_xyxy, atol=1e-3)
        centres = 0.5 * (got.boxes_xyxy[:, :2] + got.boxes_xyxy[:, 2:])
        expected = np.column_stack([(centres - [320.0, 240.0]) * 4.0 / 600.0, np.full(len(got), 4.0)])
        np.testing.assert_allclose(got.positions, expected, rtol=1e-5, atol=1e-4)
        # their velocities: a wall's constant depth (vz 0) and Tracktor's image velocity scaled by it, once a
        # track has 3 depths
        moving = np.isfinite(got.position_velocities).all(axis=1)
        assert moving.any() or f < 3, (f, got.position_velocities)
        np.testing.assert_allclose(got.position_velocities[moving],
                                   np.column_stack([got.velocities[moving, :2] * 4.0 / 600.0,
                                                    np.zeros(int(moving.sum()))]), atol=1e-4)
    # the core tracker's parameters do nothing here: refused with the reason (they were accepted, unused)
    r = client.set_parameter("high_score", 0.7, 10.0)
    assert not r.successful and "not used with tracker: tracktor" in r.reason, r.reason
    assert client.set_parameter("trajectory_horizon_s", 1.0, 10.0).successful  # the paths' horizon is used
    r = client.set_parameter("reid_num_threads", 2, 10.0)  # no appearance (use_appearance is read at start)
    assert not r.successful and "not used without use_appearance" in r.reason, r.reason
    # bad detections and another image size are said, not silent (the core tracker's path said them)
    image, (boxes, scores) = read_frame(tud, FRAMES + 1), public(tud, FRAMES + 1)
    boxes = np.vstack([boxes, [[np.nan, 10, 50, 100], [5000, 5000, 5100, 5200]]])
    scores = np.append(scores, [0.9, 0.9])
    header = Header(frame_id="camera", stamp=seconds_to_stamp(10.0 + FRAMES / 25.0))
    det_msg = arrays_to_detections(boxes, scores, np.zeros(len(boxes), dtype=np.int64), header, msgs)
    assert len(track_array_to_arrays(client.publish_frame(det_msg, bgr_to_image_msg(image, Image, "bgr8",
                                                                              header), 60.0)).ids)
    small = np.ascontiguousarray(image[::2, ::2])
    header = Header(frame_id="camera", stamp=seconds_to_stamp(10.0 + (FRAMES + 1) / 25.0))
    det_msg = arrays_to_detections(boxes[:-2] / 2, scores[:-2], np.zeros(len(boxes) - 2, dtype=np.int64),
                                   header, msgs)
    img_msg = bgr_to_image_msg(small, Image, "bgr8", header)
    got = track_array_to_arrays(client.publish_frame(det_msg, img_msg, 60.0))
    assert len(got.ids) and got.ids.min() > want.ids.max()  # restarted: new ids
    text = log.read_text()
    assert "tracker: tracktor, d2go:" in text and "Traceback" not in text
    assert f"dropped 1 of {len(boxes)} detections (NaN/inf box or score" in text
    assert "dropped 1 detections with no part inside the 640x480 image" in text
    assert "the image size changed to 320x240" in text and "Tracktor restarted its tracks" in text


@pytest.mark.parametrize("params,expected", [
    (["tracker:=tracktor"], ["tracker: tracktor needs use_images:=true"]),
    pytest.param(["tracker:=tracktor", "use_images:=true", "regressor_model_path:=/nonexistent/d2go.pt"],
                 ["regressor_model_path", "/nonexistent/d2go.pt", "file not found"],
                 marks=pytest.mark.slow),  # the node imports torch first: seconds
], ids=["without_images", "missing_model"])
def test_tracktor_start_up_errors_exit_2(tracker_node_graph, params, expected):
    if any(p.startswith("regressor_model_path") for p in params):  # without torch the node says so first
        pytest.importorskip("torch", reason="torch is not installed (pip install torch)")
    start, _ = tracker_node_graph
    proc, log = start(*params)
    assert proc.wait(60) == 2
    text = log.read_text()
    assert all(e in text for e in expected) and "Traceback" not in text, text
