"""tracker_node with ``use_depth``: each matched track's 3D position from a registered depth image, over DDS.

The node runs as its own process. The test publishes a calibrated camera_info (640 x 480), a quarter-size
registered depth image (160 x 120, 16UC1 millimetres: a wall at 8 m, one person walking away from 2 m at
0.1 m a frame, one standing at 4.5 m) and the two people's detections. Each frame's depth image goes out one
frame ahead of its detections, as a depth camera runs ahead of a detector, so the node holds two: it must take
the one stamped like the detections, not the newest.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

pytestmark = pytest.mark.ros

rclpy = pytest.importorskip("rclpy", reason="rclpy is not installed")
msgs = pytest.importorskip("ros2_tracker.msg",
                           reason="ros2_tracker.msg is not built: run `bash scripts/setup.sh`")

from ros_graph import TrackerNodeClient, stop_node, wait_acked  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ros2_tracker.nodes.conversions import arrays_to_detections, seconds_to_stamp, track_array_to_arrays  # noqa: E402
from ros2_tracker.nodes.image_conversions import (  # noqa: E402
    bgr_to_compressed_msg,
    bgr_to_image_msg,
    depth_to_compressed_depth_msg,
)

T0, FPS = 100.0, 30.0
W, H, DOWN = 640, 480, 4  # the camera image, and the depth image's reduction
K = np.array([[520.0, 0.0, 330.0], [0.0, 515.0, 236.0], [0.0, 0.0, 1.0]])
NO_DEPTH, BAD_DEPTH = 11, 12  # frames without a depth image, and with a colour image on the depth topic


def people(k: int) -> tuple[np.ndarray, list[float]]:
    """Frame k's boxes (xyxy [px], camera image) and depths [m]: A walks away (and right), B stands."""
    a = [200.0 + 4 * k, 80.0, 300.0 + 4 * k, 400.0]
    return np.array([a, [420.0, 150.0, 470.0, 330.0]]), [2.0 + 0.1 * k, 4.5]


def stamp(k: int):
    return seconds_to_stamp(T0 + k / FPS)


def depth_mm(k: int) -> np.ndarray:
    boxes, depths = people(k)
    mm = np.full((H // DOWN, W // DOWN), 8000, dtype=np.uint16)
    for (x1, y1, x2, y2), z in zip(boxes / DOWN, depths, strict=True):
        mm[int(y1):int(y2), int(x1):int(x2)] = round(z * 1000)
    return mm


def depth_image(k: int) -> Image:
    mm = depth_mm(k)
    return Image(header=Header(frame_id="camera_optical", stamp=stamp(k)), height=mm.shape[0],
                 width=mm.shape[1], encoding="16UC1", is_bigendian=0, step=2 * mm.shape[1], data=mm.tobytes())


def send_depth(pub, k: int) -> None:
    if k == BAD_DEPTH:  # a colour image where the depth should be: refused, said, the node goes on
        pub.publish(bgr_to_image_msg(np.zeros((H // DOWN, W // DOWN, 3), np.uint8), Image, "rgb8",
                                     Header(stamp=stamp(k))))
    elif k != NO_DEPTH:
        pub.publish(depth_image(k))


def position(out: list, k: int, track_id: int) -> np.ndarray:
    """The published position of track ``track_id`` in frame k."""
    return out[k].positions[out[k].ids.tolist().index(track_id)]


def expected(out: list, k: int, track_id: int) -> list[float]:
    """The truth's depth through the published box's centre."""
    row = out[k].ids.tolist().index(track_id)
    (x1, y1, x2, y2), z = out[k].boxes_xyxy[row], people(k)[1][track_id - 1]
    return [((x1 + x2) / 2 - K[0, 2]) * z / K[0, 0], ((y1 + y2) / 2 - K[1, 2]) * z / K[1, 1], z]


def depth_node(tracker_node_graph, name: str, *params: str, first_depth, info: CameraInfo | None = None,
               depth_type=Image, depth_topic: str = "depth", remaps: tuple[str, ...] = (),
               markers: bool = False, qos: str = "reliable"):
    """tracker_node started with ``params`` and ``sensor_qos:=qos``, and a client ``name`` publishing depth
    images (``depth_type`` on ``depth_topic``) and camera_info with that QoS, both matched to it; the node's
    two subscriptions must report that QoS. The camera_info ``info`` (default: the calibrated K) and the
    depth image ``first_depth`` go out until the node has logged both (even a reliable message can be lost
    while discovery ends). Returns the node's process and log, the client and its two publishers."""
    from rclpy.qos import ReliabilityPolicy, qos_profile_sensor_data

    start, context = tracker_node_graph
    proc, log = start(*params, f"sensor_qos:={qos}", remaps=remaps)
    client = TrackerNodeClient(context, name, markers=markers)
    profile = 10 if qos == "reliable" else qos_profile_sensor_data  # a replay's publishers, a camera's
    depth_pub = client.node.create_publisher(depth_type, depth_topic, profile)
    info_pub = client.node.create_publisher(CameraInfo, "camera_info", profile)
    client.wait_for_node(proc, log, timeout=20.0, images=False, markers=markers)
    client.wait_matched(depth_pub, info_pub)
    want = ReliabilityPolicy.RELIABLE if qos == "reliable" else ReliabilityPolicy.BEST_EFFORT
    for topic in (depth_pub.topic_name, info_pub.topic_name):  # (the node is their one subscriber)
        got = [i.qos_profile.reliability for i in client.node.get_subscriptions_info_by_topic(topic)]
        assert got == [want], (topic, got)
    info = info or CameraInfo(header=Header(stamp=stamp(0)), width=W, height=H, k=K.ravel().tolist())

    def publish() -> None:
        info_pub.publish(info)
        depth_pub.publish(first_depth)

    client.publish_until_logged(publish, "camera_info: fx", "first depth image: ")
    return proc, log, client, depth_pub, info_pub


@pytest.mark.slow
def test_matched_tracks_get_their_3d_position_from_the_depth_image(tracker_node_graph):
    proc, log, client, depth_pub, _ = depth_node(tracker_node_graph, "depth_test", "use_depth:=true",
                                                 "depth_max_offset_s:=0.02", "max_lost_s:=2.0", markers=True,
                                                 first_depth=depth_image(0))
    # every frame's depth image first (the node keeps 15 and takes the one stamped like the detections),
    # acknowledged: reliable alone, a lost datagram's repair waited for a heartbeat and a frame went without
    for k in range(1, 15):
        send_depth(depth_pub, k)
    wait_acked(depth_pub)
    out = []
    for k in range(15):
        boxes, _ = people(k)
        keep = slice(None) if k < 10 else slice(0, 1)  # B is not detected from frame 10: LOST
        header = Header(frame_id="camera_optical", stamp=stamp(k))
        out.append(track_array_to_arrays(client.publish_frame(
            arrays_to_detections(boxes[keep], np.full(2, 0.9)[keep], np.zeros(2, int)[keep], header, msgs),
            None, 5.0)))

    for k in [*range(1, 10), 13, 14]:  # (frame 0's tracks are tentative, not published)
        assert out[k].ids.tolist() == [1, 2], (k, out[k].ids)
        for tid in (1, 2) if k < 10 else (1,):
            # the depth of the image stamped like the detections (the next one puts A 0.1 m farther)
            np.testing.assert_allclose(position(out, k, tid), expected(out, k, tid), atol=2e-3,
                                       err_msg=f"frame {k}")
    assert all(np.isnan(position(out, k, 2)).all() for k in range(10, 15))  # LOST: its box is a guess
    # where they are going: A walks away at 3 m/s (0.1 m a frame at 30 Hz) and right, B stands; a rate needs
    # 3 depths (frames 0 and 1 have fewer: the tentative tracks of frame 0 are published with their
    # positions) and a position (none in frames 11, 12 and for B once lost)
    velocity = {k: dict(zip(out[k].ids.tolist(), out[k].position_velocities.tolist(), strict=True))
                for k in range(15)}
    assert all(np.isnan(velocity[k][1]).all() for k in (0, 1, NO_DEPTH, BAD_DEPTH)), velocity
    assert all(np.isnan(velocity[k][2]).all() for k in range(10, 15))
    for k in (9, 14):  # (once the image velocity of the young track has settled)
        z, u = people(k)[1][0], 250.0 + 4 * k  # A's true depth and box centre
        truth_x = (4 * FPS * z + (u - K[0, 2]) * 0.1 * FPS) / K[0, 0]  # d/dt of (u - cx) z / fx
        vx, vy, vz = velocity[k][1]
        assert vz == pytest.approx(3.0, abs=0.01), (k, velocity[k])  # the slope of its depths
        assert vx == pytest.approx(truth_x, abs=0.15) and abs(vy) < 0.15, (k, velocity[k], truth_x)
        if k < 10:
            assert np.abs(velocity[k][2]).max() < 0.05, (k, velocity[k])
    assert out[10].states[1] == 2 and np.isfinite(position(out, 10, 1)).all()
    assert np.isnan(out[NO_DEPTH].positions).all() and np.isnan(out[BAD_DEPTH].positions).all()
    assert client.spin_until(lambda: len(client.timing) >= 30, 5.0)
    stages = {(round((json.loads(m.data)["stamp"] - T0) * FPS), json.loads(m.data)["stage"])
              for m in client.timing}
    assert all((k, "depth") in stages for k in range(15)), sorted(stages)
    # the markers stand at the positions: a sphere per track with one
    assert client.spin_until(lambda: len(client.markers) >= 15, 5.0)
    last = client.markers[-1].markers
    spheres = [m for m in last if m.ns == "tracks/position" and m.action == m.ADD]
    assert [(m.id, m.pose.position.z) for m in spheres] == [(1, pytest.approx(3.4, abs=2e-3))]
    arrows = [m for m in last if m.ns == "tracks/position_velocity" and m.action == m.ADD]
    assert [(m.id, m.points[1].z - m.points[0].z) for m in arrows] == [(1, pytest.approx(3.0, abs=0.01))]
    time.sleep(0.2)
    assert proc.poll() is None
    assert stop_node(proc, log) == 0
    text = log.read_text()
    assert "3D positions from the depth images on /depth, intrinsics /camera_info" in text
    # (frames 10 and 12 are equally near frame 11: either may be named)
    assert ("no depth image within depth_max_offset_s (0.02 s) of the detections at stamp 100.366667 (1 so "
            "far; the nearest is stamped 100.") in text, text[-3000:]
    assert "in all: 1 frame(s) without a depth image" in text
    assert ("cannot use the depth image at stamp 100.400000 (1 so far): unsupported depth image encoding "
            "'rgb8'; supported: 16UC1, 32FC1: no 3D positions") in text, text[-3000:]
    assert "1 unusable depth image(s)" in text and "Traceback" not in text


@pytest.mark.slow
def test_compressed_depth_under_a_remapped_topic(tracker_node_graph):
    """``depth_input:=compressedDepth``: a RealSense's depth as robots record it (image_transport's
    compressedDepth: 32FC1 as quantised inverse depth, RVL-coded), on the transport's topic under the
    remapped base name, as image_transport subscribers find it. A JPEG on that topic is refused and said."""
    base = "/camera/aligned_depth_to_color/image_raw"
    proc, log, client, depth_pub, _ = depth_node(
        tracker_node_graph, "compressed_depth_test", "use_depth:=true", "depth_input:=compressedDepth",
        "depth_max_offset_s:=0.02", depth_type=CompressedImage, depth_topic=base + "/compressedDepth",
        remaps=(f"depth:={base}",), qos="sensor_data",
        first_depth=depth_to_compressed_depth_msg(depth_mm(0) / np.float32(1000), CompressedImage, "32FC1",
                                                  "rvl", Header(frame_id="camera_optical", stamp=stamp(0))))
    out = []
    for k in range(6):
        header = Header(frame_id="camera_optical", stamp=stamp(k))
        if k == 4:  # a picture where the depth should be
            msg = bgr_to_compressed_msg(np.zeros((8, 8, 3), np.uint8), CompressedImage, "jpeg", header)
        else:
            msg = depth_to_compressed_depth_msg(depth_mm(k) / np.float32(1000), CompressedImage, "32FC1",
                                                "rvl", header)
        for _ in range(2):  # best effort, as a camera driver's: twice, the depth ahead of its detections
            depth_pub.publish(msg)
            client.spin_until(lambda: False, 0.05)
        boxes, _ = people(k)
        out.append(track_array_to_arrays(client.publish_frame(
            arrays_to_detections(boxes, np.full(2, 0.9), np.zeros(2, int), header, msgs), None, 5.0)))
    for k in (1, 2, 3, 5):
        assert out[k].ids.tolist() == [1, 2], (k, out[k].ids)
        for tid in (1, 2):  # within the inverse depth's quantisation at 10 m (z^2 / 10100)
            np.testing.assert_allclose(position(out, k, tid), expected(out, k, tid), atol=3e-3,
                                       err_msg=f"frame {k}")
    assert np.isnan(out[4].positions).all()
    assert proc.poll() is None
    assert stop_node(proc, log) == 0
    text = log.read_text()
    assert f"3D positions from the depth images on {base}/compressedDepth, intrinsics /camera_info" in text
    assert "compressed format 'bgr8; jpeg compressed bgr8' is not a depth image" in text, text[-3000:]
    assert "Traceback" not in text


# a wide-angle lens (plumb_bob): a point near the image's edge moves by tens of pixels, and the rectified
# camera image_proc would make of it
D = [-0.35, 0.12, 0.001, -0.002, 0.0]
P = np.array([[470.0, 0.0, 325.0, 0.0], [0.0, 468.0, 240.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
SIZE = np.array([60.0, 150.0])  # the boxes' width and height [px]


def lens_people(k: int) -> np.ndarray:
    """Frame k's true 3D centres [m] (optical frame): A stands near the left edge, B walks right at 1 m/s."""
    return np.array([[-1.5, 0.4, 3.0], [1.3 + k / FPS, 0.6, 3.5]])


def lens_frame(k: int, rectified: bool, header: Header):
    """The boxes (centred where the camera sees each person) and the registered depth image, in the pixels
    of the raw image (through K and the lens, as OpenCV's projectPoints) or of the rectified one (P)."""
    import cv2

    xyz = lens_people(k)
    if rectified:
        centres = (xyz @ P[:, :3].T)[:, :2] / xyz[:, 2:]
    else:
        centres = cv2.projectPoints(xyz, np.zeros(3), np.zeros(3), K, np.array(D))[0].reshape(-1, 2)
    boxes = np.hstack([centres - SIZE / 2, centres + SIZE / 2])
    mm = np.full((H // DOWN, W // DOWN), 8000, dtype=np.uint16)  # quarter size, as the other tests
    for (x1, y1, x2, y2), z in zip(boxes / DOWN, xyz[:, 2], strict=True):
        mm[max(int(y1), 0):int(y2), max(int(x1), 0):int(x2)] = round(z * 1000)
    rows, cols = mm.shape
    depth = Image(header=header, height=rows, width=cols, encoding="16UC1", step=2 * cols, data=mm.tobytes())
    return boxes, depth


@pytest.mark.slow
@pytest.mark.parametrize("camera", ["image_raw", "image_rect", "binned"])
def test_the_lens_is_taken_out_of_the_positions_and_velocities(tracker_node_graph, camera):
    """Detections on a wide-angle camera's raw image: each box centre is undistorted with camera_info's D
    before it is back-projected (without, A is placed 0.12 m too near the axis and B's speed 22 % low). With
    ``camera_rectified``, detections on the rectified image: P is its camera matrix, and D is not applied.
    ``binned``: the same raw image from a sensor of twice its size binned 2 x 2, whose camera_info gives
    the sensor's K and size (image_geometry's rule: the image's K is the sensor's halved)."""
    rectified = camera == "image_rect"
    bin_ = 2 if camera == "binned" else 1
    sensor = np.vstack([bin_ * K[:2], K[2]])
    info = CameraInfo(header=Header(stamp=stamp(0)), width=W * bin_, height=H * bin_,
                      k=sensor.ravel().tolist(), d=D, distortion_model="plumb_bob", p=P.ravel().tolist(),
                      binning_x=bin_, binning_y=bin_)
    proc, log, client, depth_pub, info_pub = depth_node(
        tracker_node_graph, "lens_test", "use_depth:=true", "depth_max_offset_s:=0.02",
        f"camera_rectified:={str(rectified).lower()}", info=info,
        first_depth=lens_frame(0, rectified, Header(frame_id="camera_optical", stamp=stamp(0)))[1])
    for k in range(1, 12):  # every frame's depth image first, acknowledged (see the first test)
        depth_pub.publish(lens_frame(k, rectified, Header(frame_id="camera_optical", stamp=stamp(k)))[1])
    wait_acked(depth_pub)
    out = []
    for k in range(12):
        header = Header(frame_id="camera_optical", stamp=stamp(k))
        boxes, _ = lens_frame(k, rectified, header)
        out.append(track_array_to_arrays(client.publish_frame(
            arrays_to_detections(boxes, np.full(2, 0.9), np.zeros(2, int), header, msgs), None, 5.0)))
    for k in range(1, 12):
        assert out[k].ids.tolist() == [1, 2], (k, out[k].ids)
        # A stands still: its filtered box is its detection; B's trails it by 1-2 cm (the lens: 7-14 cm)
        np.testing.assert_allclose(position(out, k, 1), lens_people(k)[0], atol=2e-3, err_msg=f"frame {k}")
        np.testing.assert_allclose(position(out, k, 2), lens_people(k)[1], atol=0.03, err_msg=f"frame {k}")
    vx, vy, vz = out[11].position_velocities[out[11].ids.tolist().index(2)]
    assert vx == pytest.approx(1.0, abs=0.1) and abs(vy) < 0.1 and abs(vz) < 0.05, (vx, vy, vz)
    assert "lens distortion is left out" not in log.read_text()
    if camera == "image_raw":  # a lens model not read here: the pinhole alone, and a warning that says so
        info.distortion_model = "kannala_brandt"
        header = Header(frame_id="camera_optical", stamp=stamp(12))
        boxes, depth = lens_frame(12, rectified, header)
        info_pub.publish(info)
        depth_pub.publish(depth)
        wait_acked(info_pub, depth_pub)
        last = track_array_to_arrays(client.publish_frame(
            arrays_to_detections(boxes, np.full(2, 0.9), np.zeros(2, int), header, msgs), None, 5.0))
        assert last.positions[0, 0] - position(out, 11, 1)[0] > 0.1  # A, nearer the axis: as if no lens
        assert ("camera_info: distortion model 'kannala_brandt' is not supported (supported: plumb_bob, "
                "rational_polynomial, equidistant): the lens distortion is left out") in log.read_text()
    assert proc.poll() is None
    assert stop_node(proc, log) == 0
    assert "Traceback" not in log.read_text()
