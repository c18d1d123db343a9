"""``ros2-tracker replay BAG`` of an RGB-D robot's bag: replay_node republishes the registered depth images
and the camera_info ahead of their frames, tracker_node's ``use_depth`` (given by ``--config``) gives each
matched track its 3D position, and the results file carries it in the MOTChallenge world columns (x, y, z), as
does ``--offline``'s refined file.

The bag holds two people's detections (recorded 30 ms after their stamp), a quarter-size registered depth
image per frame (16UC1 millimetres: a wall at 8 m, person 1 walking away from 2 m at 0.1 m a frame, person 2
standing at 4.5 m), an unregistered depth stream (in another camera's pixels: not to be used) and the colour
camera's camera_info, under a RealSense's topic names, as raw Images or as image_transport's compressedDepth
(RVL). One frame's depth image is missing.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from conftest import require_modules, video_frames

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
msgs = pytest.importorskip("ros2_tracker.msg",
                           reason="ros2_tracker.msg is not built: run `bash scripts/setup.sh`")

from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ros2_tracker.nodes.conversions import arrays_to_detections, seconds_to_stamp  # noqa: E402
from ros2_tracker.nodes.image_conversions import (  # noqa: E402
    bgr_to_compressed_msg,
    depth_to_compressed_depth_msg,
)

CLI = [sys.executable, "-m", "ros2_tracker.cli.main"]
T0, FPS, FRAMES, MISSING = 50.0, 30.0, 12, 8
W, H, DOWN = 640, 480, 4
K = np.array([[520.0, 0.0, 330.0], [0.0, 515.0, 236.0], [0.0, 0.0, 1.0]])
ALIGNED, RAW = "/camera/aligned_depth_to_color/image_raw", "/camera/depth/image_rect_raw"
INFO, DETS = "/camera/color/camera_info", "/detections"
COLOUR = "/camera/color/image_raw/compressed"  # the colour pictures: what the replay's video draws on


def people(k: int) -> tuple[np.ndarray, list[float]]:
    return np.array([[200.0 + 4 * k, 80.0, 300.0 + 4 * k, 400.0], [420.0, 150.0, 470.0, 330.0]]), \
        [2.0 + 0.1 * k, 4.5]


def depth_msg(header: Header, boxes: np.ndarray, depths: list[float], wall_mm: int = 8000,
              transport: str = "raw") -> Image | CompressedImage:
    mm = np.full((H // DOWN, W // DOWN), wall_mm, dtype=np.uint16)
    for (x1, y1, x2, y2), z in zip(boxes / DOWN, depths, strict=True):
        mm[int(y1):int(y2), int(x1):int(x2)] = round(z * 1000)
    if transport == "compressedDepth":
        return depth_to_compressed_depth_msg(mm, CompressedImage, "16UC1", "rvl", header)
    return Image(header=header, height=mm.shape[0], width=mm.shape[1], encoding="16UC1", step=2 * mm.shape[1],
                 data=mm.tobytes())


def write_bag(path, transport: str = "raw", colour: bool = True) -> tuple[str, str]:
    """The bag; its depth streams (aligned, unaligned) as raw Images or image_transport's compressedDepth
    (16UC1, RVL: what a RealSense robot records to save space). Returns the aligned stream's topic and the
    replay's role for it."""
    from ros2_tracker.io.bag import BagWriter

    suffix = "/compressedDepth" if transport == "compressedDepth" else ""
    aligned, raw = ALIGNED + suffix, RAW + suffix
    depth_type = "sensor_msgs/msg/CompressedImage" if suffix else "sensor_msgs/msg/Image"
    records = []  # (log time [s], topic, message)
    for k in range(FRAMES):
        t = T0 + k / FPS
        header = Header(frame_id="camera_color_optical_frame", stamp=seconds_to_stamp(t))
        boxes, depths = people(k)
        if k != MISSING:
            records.append((t + 0.004, aligned, depth_msg(header, boxes, depths, transport=transport)))
        records.append((t + 0.003, raw, depth_msg(header, boxes + 60, [1.0, 1.0], wall_mm=1000,
                                                  transport=transport)))
        records.append((t + 0.005, INFO, CameraInfo(header=header, width=W, height=H, k=K.ravel().tolist())))
        if colour:
            picture = np.full((H, W, 3), (40, 140, 220), dtype=np.uint8)  # orange, BGR
            picture_msg = bgr_to_compressed_msg(picture, CompressedImage, "jpeg", header)
            records.append((t + 0.002, COLOUR, picture_msg))
        dets = arrays_to_detections(boxes, np.full(2, 0.9), np.zeros(2, int), header, msgs)
        records.append((t + 0.030, DETS, dets))
    types = {raw: depth_type, aligned: depth_type,  # the raw depth first
             INFO: "sensor_msgs/msg/CameraInfo", DETS: "ros2_tracker/msg/Detection2DArray",
             **({COLOUR: "sensor_msgs/msg/CompressedImage"} if colour else {})}
    with BagWriter(path, types) as bag:
        for log_s, topic, m in sorted(records, key=lambda r: r[0]):
            bag.write(topic, serialize_message(m), round(log_s * 1e9))
    return aligned, "compressed_depth" if suffix else "depth"


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["raw", "compressedDepth"])
def test_an_rgbd_bag_replays_into_use_depth_and_the_results_carry_the_positions(tmp_path, ros_env, transport):
    """With compressedDepth streams, the replay republishes the aligned one on depth/compressedDepth and the
    CLI sets the tracker's depth_input to read it (the config file says only use_depth)."""
    require_modules("mcap", "rosbags")
    bag = tmp_path / "rgbd_bag"
    aligned, role = write_bag(bag, transport)
    config = tmp_path / "depth.yaml"
    config.write_text("/**:\n  ros__parameters:\n    use_depth: true\n    depth_max_offset_s: 0.01\n")
    out = tmp_path / "out"
    video = [] if transport == "raw" else ["--no-video"]
    res = subprocess.run([*CLI, "replay", str(bag), "--config", str(config), *video, "--out", str(out),
                          "--offline", "--domain-id", ros_env["ROS_DOMAIN_ID"]], env=ros_env,
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    nodes_log = (out / "logs" / "nodes.log").read_text()
    assert f"{aligned} as {role}" in nodes_log and f"{INFO} as camera_info" in nodes_log, nodes_log[-3000:]
    (results,) = (p for p in (out / "results").glob("*.txt") if not p.name.endswith(".offline.txt"))
    rows = np.loadtxt(results, delimiter=",", ndmin=2)
    # --offline's refined file keeps the positions (no gap to fill here: the same rows)
    np.testing.assert_array_equal(np.loadtxt(results.with_suffix(".offline.txt"), delimiter=",", ndmin=2),
                                  rows)
    assert len(rows) == 2 * FRAMES, rows  # both people in every frame (the first frame confirms)
    for frame, tid, x, y, w, h, _, *world in rows.tolist():
        k = int(frame) - 1
        if k == MISSING:  # no depth image within 0.01 s: no position
            assert world == [-1, -1, -1], (frame, tid, world)
            continue
        z = people(k)[1][int(tid) - 1]
        u, v = x + w / 2, y + h / 2
        expected = [(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z]
        # the registered depth of its own frame (the next one puts person 1 0.1 m farther, the raw stream 1 m)
        np.testing.assert_allclose(world, expected, atol=2e-3 + 0.01 * (int(tid) == 1), err_msg=f"{frame}")
    assert "no depth image within depth_max_offset_s (0.01 s)" in nodes_log
    if transport == "raw":  # the video: the bag's colour pictures (it drew a grey canvas for any bag)
        pictures, _ = video_frames(next(out.glob("*_tracks.mp4")))
        assert len(pictures) == FRAMES
        assert all(np.abs(np.median(p[200:, :], axis=(0, 1)) - (40, 140, 220)).max() < 12 for p in pictures)


def test_a_bag_whose_only_compressed_images_are_depth_has_no_pictures_for_the_detector(tmp_path, capsys):
    """compressedDepth streams are CompressedImages, but no detector runs on them: ``--detector`` on such a
    bag is refused before any node starts (it used to pass the check and start a graph with nothing to
    detect on)."""
    require_modules("mcap", "rosbags")
    from ros2_tracker.cli.main import main

    bag = tmp_path / "depth_only"
    write_bag(bag, "compressedDepth", colour=False)
    out = tmp_path / "run"
    code = main(["replay", str(bag), "--detector", "--out", str(out)])
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
    assert code == 2 and len(err) == 1 and "--detector needs images, and this source has none" in err[0], err
    assert not out.exists()
