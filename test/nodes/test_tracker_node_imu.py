"""tracker_node with ``use_imu``: the tracks turn with the camera by the gyro's rotation, over DDS.

The node runs as its own process. This test publishes a calibrated camera_info, a 200 Hz gyro and the
detections of three people standing still while the camera, still for half a second, starts to pan at
60 deg/s (18 px per frame at 30 Hz, boxes 20 px wide): the constant-velocity prediction alone loses every
one of them (they go LOST, their new tracks never confirmed), the gyro keeps them matched, with their ids.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
msgs = pytest.importorskip("ros2_tracker.msg",
                           reason="ros2_tracker.msg is not built: run `bash scripts/setup.sh`")

from ros_graph import TrackerNodeClient, stop_node  # noqa: E402
from sensor_msgs.msg import CameraInfo, Imu  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ros2_tracker.cmc.gyro import GyroBuffer, rotation_homography  # noqa: E402
from ros2_tracker.nodes.conversions import arrays_to_detections, seconds_to_stamp, track_array_to_arrays  # noqa: E402

FPS, IMU_HZ, T0 = 30.0, 200.0, 100.0
K = np.array([[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]])
PEOPLE = np.array([[380.0, 200.0], [480.0, 220.0], [600.0, 260.0]])  # foot points, static in the world
RATE = math.radians(60.0)  # about the optical y axis (down): a pan to the right, moving the people left


def rate_at(t: float) -> float:
    return RATE if t - T0 >= 0.5 else 0.0


def boxes_at(truth: GyroBuffer, t: float) -> np.ndarray:
    rot = truth.rotation(T0, t) if t > T0 else np.eye(3)
    p = np.c_[PEOPLE, np.ones(3)] @ rotation_homography(K, rot).T
    c = p[:, :2] / p[:, 2:]
    return np.c_[c[:, 0] - 10, c[:, 1] - 40, c[:, 0] + 10, c[:, 1]]


@pytest.mark.slow
def test_tracks_turn_with_the_camera_by_the_gyro(tracker_node_graph):
    start, context = tracker_node_graph
    proc, log = start("use_imu:=true", "imu_to_camera:=[1.0,0.0,0.0,0.0,1.0,0.0,0.0,0.0,1.0]")
    client = TrackerNodeClient(context, "imu_test")
    node = client.node
    imu_pub = node.create_publisher(Imu, "imu", 1000)
    info_pub = node.create_publisher(CameraInfo, "camera_info", 10)
    client.wait_for_node(proc, log, timeout=20.0, images=False)
    assert client.spin_until(lambda: imu_pub.get_subscription_count() > 0
                             and info_pub.get_subscription_count() > 0, 10.0), log.read_text()

    truth = GyroBuffer(keep_s=10.0)  # the camera's true rotation, as the scene is drawn
    samples = [T0 - 1.0 + i / IMU_HZ for i in range(int(2.4 * IMU_HZ))]
    for t in samples:
        truth.add(t, (0.0, rate_at(t), 0.0))
    sent = 0

    def send_imu(until: float) -> None:
        nonlocal sent
        while sent < len(samples) and samples[sent] <= until:
            m = Imu(header=Header(frame_id="camera_optical", stamp=seconds_to_stamp(samples[sent])))
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

    bad = Imu(header=Header(stamp=seconds_to_stamp(T0 + 5.0)))
    bad.angular_velocity.x = float("nan")
    imu_pub.publish(bad)  # dropped, said; the node keeps running
    assert client.spin_until(lambda: "IMU sample at stamp 105.000000 dropped (1 so far): not finite"
                             in log.read_text(), 5.0), log.read_text()
    assert proc.poll() is None
    assert stop_node(proc, log) == 0
    text = log.read_text()
    assert "turning the tracks with the camera: gyro /imu, intrinsics /camera_info" in text
    assert "no IMU samples cover" not in text and "no calibrated camera_info" not in text
    assert "Traceback" not in text
