"""``ros2-tracker replay BAG`` with a gyro in the bag: replay_node republishes its Imu and CameraInfo ahead of
the frames, and tracker_node's ``use_imu`` (given by ``--config``) turns the tracks with the camera.

The bag holds three people standing still while the camera pans at 60 deg/s from 0.5 s on (18 px a frame
at 30 Hz, boxes 20 px wide), a 200 Hz gyro and the camera's intrinsics, recorded as a robot would (the
detections 30 ms after their stamp). Scored against the same people's boxes: with the gyro every frame keeps
its three identities (by the detections' motion alone they are lost at the pan's start:
test/nodes/test_tracker_node_imu.py).
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import require_modules

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
msgs = pytest.importorskip("ros2_tracker.msg",
                           reason="ros2_tracker.msg is not built: run `bash scripts/setup.sh`")

from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import CameraInfo, Imu  # noqa: E402
from std_msgs.msg import Header  # noqa: E402
from turning_camera import FPS, IMU_HZ, T0, K, boxes_at, rate_at, true_turn  # noqa: E402

from ros2_tracker.nodes.conversions import arrays_to_detections, seconds_to_stamp  # noqa: E402

CLI = [sys.executable, "-m", "ros2_tracker.cli.main"]
FRAMES = 25


def write_bag(path, gt_path) -> None:
    from ros2_tracker.io.bag import BagWriter

    imu_t = [T0 - 0.5 + i / IMU_HZ for i in range(int(1.5 * IMU_HZ))]
    truth = true_turn(imu_t)
    records = []  # (log time [s], topic, message)
    for t in imu_t:
        m = Imu(header=Header(frame_id="camera_optical", stamp=seconds_to_stamp(t)))
        m.angular_velocity.y = rate_at(t)
        records.append((t + 0.002, "/imu", m))
    rows = []
    for k in range(FRAMES):
        t = T0 + k / FPS
        boxes = boxes_at(truth, t)
        header = Header(frame_id="camera_optical", stamp=seconds_to_stamp(t))
        records.append((t + 0.005, "/camera_info", CameraInfo(header=header, width=640, height=480,
                                                              k=K.ravel().tolist())))
        records.append((t + 0.030, "/detections",
                        arrays_to_detections(boxes, np.full(3, 0.9), np.zeros(3, int), header, msgs)))
        rows += [f"{k + 1},{i + 1},{b[0]:.3f},{b[1]:.3f},20,40,1,-1,-1,-1" for i, b in enumerate(boxes)]
    types = {"/imu": "sensor_msgs/msg/Imu", "/camera_info": "sensor_msgs/msg/CameraInfo",
             "/detections": "ros2_tracker/msg/Detection2DArray"}
    with BagWriter(path, types) as bag:
        for log_s, topic, m in sorted(records, key=lambda r: r[0]):
            bag.write(topic, serialize_message(m), round(log_s * 1e9))
    gt_path.write_text("\n".join(rows) + "\n")


@pytest.mark.slow
def test_a_bag_with_a_gyro_replays_into_use_imu(tmp_path, ros_env):
    require_modules("mcap", "rosbags", "trackeval")
    bag, gt = tmp_path / "turning_bag", tmp_path / "gt.txt"
    write_bag(bag, gt)
    config = tmp_path / "imu.yaml"
    config.write_text("/**:\n  ros__parameters:\n    use_imu: true\n"
                      "    imu_to_camera: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]\n")
    out = tmp_path / "out"
    res = subprocess.run([*CLI, "replay", str(bag), "--gt", str(gt), "--config", str(config), "--no-video",
                          "--out", str(out), "--domain-id", ros_env["ROS_DOMAIN_ID"]], env=ros_env,
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    nodes_log = (out / "logs" / "nodes.log").read_text()
    assert "/imu as imu" in nodes_log and "/camera_info as camera_info" in nodes_log, nodes_log[-3000:]
    (scores,) = json.loads((out / "metrics.json").read_text()).values()
    # every person tracked from frame 2 (min_hits) under one identity: by the detections alone 3 ids break
    assert scores["IDSW"] == 0 and scores["IDF1"] > 0.9 and scores["num_frames"] == FRAMES, scores
    stages = json.loads((out / "latency.json").read_text())["stages"]
    assert stages["imu"]["count"] >= FRAMES - 3, stages  # the gyro turned the tracks on (nearly) every frame
    assert "no IMU samples cover" not in nodes_log
