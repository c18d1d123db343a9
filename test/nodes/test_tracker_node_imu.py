"""tracker_node with ``use_imu``: the tracks turn with the camera by the gyro's rotation, over DDS.

The node runs as its own process. This test publishes a calibrated camera_info, a 200 Hz gyro and the
detections of three people standing still while the camera, still for half a second, starts to pan at
60 deg/s (18 px per frame at 30 Hz, boxes 20 px wide): the constant-velocity prediction alone loses every
one of them (they go LOST, their new tracks never confirmed), the gyro keeps them matched, with their ids.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
msgs = pytest.importorskip("ros2_tracker.msg",
                           reason="ros2_tracker.msg is not built: run `bash scripts/setup.sh`")

from ros_graph import TrackerNodeClient, stop_node, wait_acked  # noqa: E402
from sensor_msgs.msg import CameraInfo, Imu  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from turning_camera import FPS, IMU_HZ, T0, K, boxes_at, rate_at, true_turn  # noqa: E402

from ros2_tracker.nodes.conversions import arrays_to_detections, seconds_to_stamp, track_array_to_arrays  # noqa: E402

LAG = 0.25  # [s] the first test's IMU clock behind the camera's
IDENTITY = "[1.0,0.0,0.0,0.0,1.0,0.0,0.0,0.0,1.0]"  # imu_to_camera: a gyro reporting in the optical frame


def stages_by_frame(client: TrackerNodeClient, frames: int) -> list[set[str]]:
    """The tracker_node/timing stages of each frame k (stamp T0 + k / FPS)."""
    client.spin_until(lambda: len(client.timing) >= 2 * frames, 5.0)
    out: list[set[str]] = [set() for _ in range(frames)]
    for m in client.timing:
        rec = json.loads(m.data)
        out[round((rec["stamp"] - T0) * FPS)].add(rec["stage"])
    return out


@pytest.mark.slow
def test_tracks_turn_with_the_camera_by_the_gyro(tracker_node_graph):
    start, context = tracker_node_graph
    # the IMU's clock runs 0.25 s behind the camera's: imu_time_offset_s puts its stamps right (without
    # it the node would turn the tracks by the rotation of 0.25 s earlier, 7 frames late at the pan's start)
    proc, log = start("use_imu:=true", f"imu_to_camera:={IDENTITY}", f"imu_time_offset_s:={LAG}")
    client = TrackerNodeClient(context, "imu_test")
    node = client.node
    imu_pub = node.create_publisher(Imu, "imu", 1000)
    info_pub = node.create_publisher(CameraInfo, "camera_info", 10)
    client.wait_for_node(proc, log, timeout=20.0, images=False)
    client.wait_matched(imu_pub, info_pub)

    samples = [T0 - 1.0 + i / IMU_HZ for i in range(int(2.4 * IMU_HZ))]
    truth = true_turn(samples)  # the camera's true rotation, as the scene is drawn
    sent = 0

    def send_imu(until: float) -> None:
        nonlocal sent
        while sent < len(samples) and samples[sent] <= until:
            m = Imu(header=Header(frame_id="camera_optical", stamp=seconds_to_stamp(samples[sent] - LAG)))
            m.angular_velocity.y = rate_at(samples[sent])
            imu_pub.publish(m)
            sent += 1

    # the gyro runs ahead of the detector, which waits for its images; spread over 0.6 s, as a gyro sends:
    # a reader may drop the first samples of a writer it has not matched yet (the node's side of discovery)
    for until in np.linspace(T0 - 0.8, T0 + 0.2, 13):
        send_imu(until)
        time.sleep(0.05)
    matched, moved = [], []
    for k in range(25):
        t = T0 + k / FPS
        send_imu(t + 0.2)
        header = Header(frame_id="camera_optical", stamp=seconds_to_stamp(t))
        info_pub.publish(CameraInfo(header=header, width=640, height=480, k=K.ravel().tolist()))
        boxes = boxes_at(truth, t)
        out = track_array_to_arrays(client.publish_frame(
            arrays_to_detections(boxes, np.full(3, 0.9), np.zeros(3, int), header, msgs), None, 5.0))
        matched.append(sorted(out.ids[out.states == 1].tolist()))  # confirmed and matched now
        moved.append(boxes[:, 0])
    assert np.ptp(np.array(moved)[:, 1]) > 150  # the middle person crossed a quarter of the image
    # all three matched in every frame, with their first ids (without the gyro: LOST from the pan's start)
    assert matched == [[1, 2, 3]] * 25, (matched, log.read_text()[-3000:])
    # the gyro turned the tracks on every frame of the pan (a gyro's first samples may be lost while
    # discovery completes, so the still frames before it may go without)
    turned = stages_by_frame(client, 25)
    assert all(turned[k] == {"imu", "tracker"} for k in range(12, 25)), turned

    bad = Imu(header=Header(stamp=seconds_to_stamp(T0 + 5.0 - LAG)))
    bad.angular_velocity.x = float("nan")
    imu_pub.publish(bad)  # dropped, said; the node keeps running
    assert client.spin_until(lambda: "IMU sample at stamp 105.000000 dropped (1 so far): not finite"
                             in log.read_text(), 5.0), log.read_text()
    info_pub.publish(CameraInfo(header=Header(stamp=seconds_to_stamp(T0 + 5.0))))  # an uncalibrated camera
    assert client.spin_until(lambda: "camera_info ignored: the camera matrix K needs positive focal lengths "
                             "(is the camera calibrated?), got fx=0, fy=0; the tracks are not turned"
                             in log.read_text(), 5.0), log.read_text()
    assert proc.poll() is None
    assert stop_node(proc, log) == 0
    text = log.read_text()
    assert "turning the tracks with the camera: gyro /imu, intrinsics /camera_info" in text
    assert "no calibrated camera_info" not in text  # (the uncalibrated one came after a calibrated one)
    assert "Traceback" not in text


@pytest.mark.slow
def test_the_images_take_over_where_the_gyro_stops(tracker_node_graph):
    """use_imu with use_cmc: the gyro while it covers the frames, the image alignment (ECC) after it stopped.
    Three people standing still, the camera pans from frame 10 (the image moves 6 px left a frame), one of
    them is no longer detected from then: its lost track must move with the image all the way, by the gyro
    for frames 10-15 and by the images for 16-24 (either alone would leave it 54 or 36 px behind)."""
    import cv2
    from sensor_msgs.msg import Image

    from ros2_tracker.nodes.image_conversions import bgr_to_image_msg

    w, h = 320, 240
    k_mat = np.array([[500.0, 0.0, w / 2], [0.0, 500.0, h / 2], [0.0, 0.0, 1.0]])
    start, context = tracker_node_graph
    proc, log = start("use_imu:=true", "use_images:=true", "use_cmc:=true", "image_qos:=reliable",
                      "image_wait_s:=0.3", "max_lost_s:=2.0", f"imu_to_camera:={IDENTITY}")
    client = TrackerNodeClient(context, "imu_cmc_test")
    imu_pub = client.node.create_publisher(Imu, "imu", 1000)
    info_pub = client.node.create_publisher(CameraInfo, "camera_info", 10)
    client.wait_for_node(proc, log, timeout=20.0, images=True)
    client.wait_matched(imu_pub, info_pub)
    rate = math.atan(6.0 / 500.0) * FPS  # the yaw rate that moves the image's centre 6 px a frame
    stop_s = T0 + 12.5 / FPS  # the gyro's last sample: it covers frames up to 15 (0.1 s after it)
    samples = [t for t in (T0 - 1.0 + i / IMU_HZ for i in range(int(1.5 * IMU_HZ))) if t <= stop_s]
    for chunk in np.array_split(np.array(samples), 10):
        for t in chunk:
            m = Imu(header=Header(stamp=seconds_to_stamp(float(t))))
            m.angular_velocity.y = rate if t >= T0 + 9.5 / FPS else 0.0
            imu_pub.publish(m)
        time.sleep(0.05)
    rng = np.random.default_rng(0)
    world = cv2.GaussianBlur(rng.integers(0, 255, (h, w + 200, 3), dtype=np.uint8), (0, 0), 3)
    people = np.array([[40.0, 60, 80, 160], [140, 50, 175, 140], [230, 70, 270, 170]])  # xyxy, in frame 0
    for k in range(25):
        pan = 6.0 * max(0, k - 9)  # px the image has moved left
        header = Header(frame_id="camera_optical", stamp=seconds_to_stamp(T0 + k / FPS))
        info_pub.publish(CameraInfo(header=header, width=w, height=h, k=k_mat.ravel().tolist()))
        image = bgr_to_image_msg(np.ascontiguousarray(world[:, int(pan):int(pan) + w]), Image, "bgr8", header)
        shown = people - [pan, 0, pan, 0]
        boxes = shown if k < 10 else shown[:2]
        tracks = track_array_to_arrays(client.publish_frame(
            arrays_to_detections(boxes, np.full(len(boxes), 0.9), np.zeros(len(boxes), int), header, msgs),
            image, 5.0))
    lost = tracks.states == 2
    assert lost.sum() == 1, tracks.states
    assert tracks.boxes_xyxy[lost][0, 0] == pytest.approx(shown[2, 0], abs=10), (tracks.boxes_xyxy, shown)
    stages = stages_by_frame(client, 25)  # the gyro while it covers the pan, the images after it
    assert all(stages[k] == {"imu", "tracker"} for k in range(10, 16)), stages
    assert all(stages[k] == {"cmc", "tracker"} for k in range(16, 25)), stages
    assert stop_node(proc, log) == 0
    text = log.read_text()
    assert "no IMU samples cover" not in text and "Traceback" not in text  # the images took over, silently


@pytest.mark.slow
def test_a_lost_track_turns_with_the_camera_through_its_lens(tracker_node_graph):
    """A wide-angle camera (barrel distortion k1 = -0.35) pans at 60 deg/s; a person near the right edge is
    not detected for 7 frames of the pan. Its lost track must stay where the lens shows it: the gyro's
    homography is applied between undistorted pixels and taken back through the lens (camera_info's D).
    Taken as a pinhole's, the edge's image motion is overestimated by up to a third: the lost box drifted
    14 px ahead of the person in those 7 frames (in the core alone, the track came back under a new id)."""
    lens = np.array([-0.35, 0.12, 0.0, 0.0, 0.0])
    people = np.array([[100.0, 200.0], [380.0, 200.0], [560.0, 260.0], [620.0, 300.0]])  # ideal, at T0
    hidden = range(15, 22)  # the third person's frames without a detection (the pan starts at 15)
    start, context = tracker_node_graph
    proc, log = start("use_imu:=true", f"imu_to_camera:={IDENTITY}", "sensor_qos:=reliable")
    client = TrackerNodeClient(context, "imu_lens_test")
    imu_pub = client.node.create_publisher(Imu, "imu", 1000)
    info_pub = client.node.create_publisher(CameraInfo, "camera_info", 10)
    client.wait_for_node(proc, log, timeout=20.0, images=False)
    client.wait_matched(imu_pub, info_pub)
    info = CameraInfo(header=Header(frame_id="camera_optical", stamp=seconds_to_stamp(T0)), width=640,
                      height=480, k=K.ravel().tolist(), d=lens.tolist(), distortion_model="plumb_bob")
    client.publish_until_logged(lambda: info_pub.publish(info), "camera_info: fx 500.0 fy 500.0 cx 320.0 "
                                "cy 240.0, 640 x 480, lens plumb_bob (5 coefficients)")
    samples = [T0 - 0.5 + i / IMU_HZ for i in range(int(1.5 * IMU_HZ))]
    truth = true_turn(samples)
    for t in samples:  # all of them before frame 0 (reliable, the node queues 1000), acknowledged
        m = Imu(header=Header(frame_id="camera_optical", stamp=seconds_to_stamp(t)))
        m.angular_velocity.y = rate_at(t)
        imu_pub.publish(m)
    wait_acked(imu_pub)
    errors, ids = [], []
    for k in range(25):
        t = T0 + k / FPS
        header = Header(frame_id="camera_optical", stamp=seconds_to_stamp(t))
        boxes = boxes_at(truth, t, people, lens)
        shown = np.delete(boxes, 2, axis=0) if k in hidden else boxes
        out = track_array_to_arrays(client.publish_frame(
            arrays_to_detections(shown, np.full(len(shown), 0.9), np.zeros(len(shown), int), header, msgs),
            None, 5.0))
        ids.append(sorted(out.ids.tolist()))
        if k in hidden:
            row = out.ids.tolist().index(3)
            assert out.states[row] == 2  # LOST: its box is the prediction, turned by the gyro
            errors.append(float(np.abs(out.boxes_xyxy[row] - boxes[2]).max()))
    assert max(errors) < 1.0, errors  # (taken as a pinhole's: 0.3, 4.1, 7.1, 9.6, 11.5, 13.0, 14.1 px)
    assert ids[-1] == [1, 2, 3, 4], ids  # matched again under its own id
    assert stages_by_frame(client, 25)[20] == {"imu", "tracker"}
    assert stop_node(proc, log) == 0
    assert "Traceback" not in log.read_text()
