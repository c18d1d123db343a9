"""replay_node's bag reader (``_BagReplay.items``): frames by header stamp, late messages joining their own
frame, a looped recording replayed in full with a warning. Real MCAP bags written by ``io.bag.BagWriter``."""

from __future__ import annotations

import pytest

from ros2_tracker.io.bag import BagWriter, cdr_header_stamp_ns
from ros2_tracker.nodes.replay_node import ReplayConfig, _BagReplay, bag_roles

pytest.importorskip("mcap", reason="mcap is not installed (pip install mcap): the bags are MCAP files")
pytest.importorskip("rosbags", reason="rosbags is not installed (pip install rosbags): BagWriter takes the "
                    "message definitions it embeds from it")

IMAGE, DETS = "sensor_msgs/msg/Image", "ros2_tracker/msg/Detection2DArray"


def cdr(stamp_ns: int, payload: bytes) -> bytes:
    """CDR bytes starting with a std_msgs/Header stamp (the reader only needs the stamp)."""
    sec, nsec = divmod(stamp_ns, 1_000_000_000)
    return b"\x00\x01\x00\x00" + sec.to_bytes(4, "little", signed=True) + nsec.to_bytes(4, "little") + payload


class Log:
    """Collects what the replay logs (the node passes its rclpy logger)."""

    def __init__(self):
        self.warnings: list[str] = []

    def warning(self, text: str) -> None:
        self.warnings.append(text)

    error = info = warning


def replay(path, **params):
    log = Log()
    items = list(_BagReplay(ReplayConfig(source=str(path), **params), log).items())
    return items, log.warnings


def stamps_of(item):
    return {role: [cdr_header_stamp_ns(m) for m in msgs] for role, msgs in item.messages.items()}


def test_detections_recorded_after_the_next_image_go_out_with_their_own_frame(tmp_path):
    """A detector's output for frame k is recorded after image k + 1 (25 Hz, 40 ms apart)."""
    with BagWriter(tmp_path / "lag", {"/image": IMAGE, "/detections": DETS}) as bag:
        t = 0
        for k in range(20):
            bag.write("/image", cdr(k * 40_000_000, b"i"), t := t + 1)
            if k:
                bag.write("/detections", cdr((k - 1) * 40_000_000, b"d"), t := t + 1)
        bag.write("/detections", cdr(19 * 40_000_000, b"d"), t + 1)
    items, warnings = replay(tmp_path / "lag")
    assert [i.number for i in items] == list(range(1, 21)) and not warnings
    for k, item in enumerate(items):
        assert stamps_of(item) == {"image": [k * 40_000_000], "detections": [k * 40_000_000]}


def test_a_looped_recording_is_replayed_in_full_with_a_warning(tmp_path):
    with BagWriter(tmp_path / "loop", {"/image": IMAGE}) as bag:
        for loop in range(2):
            for k in range(10):
                bag.write("/image", cdr(k * 100_000_000, b"i"), 1 + loop * 10 + k)
    items, warnings = replay(tmp_path / "loop")
    assert len(items) == 20 and all(len(i.messages["image"]) == 1 for i in items)
    assert [i.stamp_ns for i in items] == [k * 100_000_000 for k in range(10)] * 2
    assert len(warnings) == 1 and "stamps went back 0.900 s" in warnings[0]
    items, _ = replay(tmp_path / "loop", max_frames=12)
    assert len(items) == 12


def test_a_jump_forward_in_stamps_is_not_waited_out_at_rate_1(tmp_path, ros_env):
    """Stamps jump 300 s after frame 3: the node warns and goes on instead of waiting five minutes."""
    import subprocess
    import sys
    import time

    with BagWriter(tmp_path / "jump", {"/image": IMAGE}) as bag:
        for k, stamp in enumerate([0.0, 0.1, 0.2, 300.2, 300.3]):
            bag.write("/image", cdr(round(stamp * 1e9), b"i" * 16), 1 + k)
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "ros2_tracker.nodes.replay_node", "--ros-args", "-p",
                        f"source:={tmp_path / 'jump'}", "-p", "rate:=1.0", "-p", "publish_clock:=false"],
                       env=ros_env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 30 and "frame 4: stamps jump 300.0 s ahead; not waited out" in r.stderr
    assert "5 frames" in r.stderr


def test_a_bag_of_two_cameras_replays_the_one_of_the_nodes_namespace(tmp_path):
    """A robot's bag holds /cam2/detections and /cam1/detections: a replay in /cam1 replayed the first
    topic ending in "detections", /cam2's."""
    with BagWriter(tmp_path / "two", {"/cam2/detections": DETS, "/cam1/detections": DETS}) as bag:
        for k in range(3):
            bag.write("/cam2/detections", cdr(k * 40_000_000, b"2"), 2 * k + 1)
            bag.write("/cam1/detections", cdr(k * 40_000_000, b"1"), 2 * k + 2)

    def replayed(namespace):
        log = Log()
        rp = _BagReplay(ReplayConfig(source=str(tmp_path / "two")), log,
                        lambda name: f"{namespace.rstrip('/')}/{name}")
        return list(rp.topics), [w for w in log.warnings if "not replayed" not in w]

    assert replayed("/cam1") == (["/cam1/detections"], [])
    assert replayed("/cam2") == (["/cam2/detections"], [])
    topics, warnings = replayed("/")  # neither is the node's own: one of them, and a warning naming both
    assert len(topics) == 1 and "bag has 2 ros2_tracker/msg/Detection2DArray topics" in warnings[0]


def test_bag_namespace_picks_another_cameras_topics_and_refuses_one_not_in_the_bag(tmp_path):
    """The replay CLI runs its nodes in the root namespace: bag_namespace chooses the camera to replay."""
    from ros2_tracker.io.bag import BagError

    with BagWriter(tmp_path / "two", {"/cam2/detections": DETS, "/cam1/detections": DETS}) as bag:
        for k in range(3):
            bag.write("/cam2/detections", cdr(k * 40_000_000, b"2"), 2 * k + 1)
            bag.write("/cam1/detections", cdr(k * 40_000_000, b"1"), 2 * k + 2)
    for ns in ("/cam1", "cam2", "/cam2/"):
        rp = _BagReplay(ReplayConfig(source=str(tmp_path / "two"), bag_namespace=ns), Log())
        assert list(rp.topics) == [f"/{ns.strip('/')}/detections"]
    with pytest.raises(BagError, match="no topic of bag_namespace /cam3 to replay; bag topics: "
                                       "/cam1/detections, /cam2/detections"):
        _BagReplay(ReplayConfig(source=str(tmp_path / "two"), bag_namespace="/cam3"), Log())


def test_the_nodes_own_detections_topic_of_another_type_is_a_warning(tmp_path):
    """A bag whose /detections holds std_msgs/String (another package's detections) replays its images: the
    missing detections were one INFO line among the topics not replayed."""

    class Levels:
        def __init__(self):
            self.lines: list[tuple[str, str]] = []

        def warning(self, text):
            self.lines.append(("warning", text))

        def info(self, text):
            self.lines.append(("info", text))

        error = warning

    with BagWriter(tmp_path / "bag", {"/image": IMAGE, "/detections": "std_msgs/msg/String"}) as bag:
        bag.write("/image", cdr(0, b"i"), 1)
        bag.write("/detections", cdr(0, b"d"), 2)
    log = Levels()
    rp = _BagReplay(ReplayConfig(source=str(tmp_path / "bag")), log)
    assert list(rp.topics) == ["/image"]
    assert ("warning", "bag topic /detections is std_msgs/msg/String, not ros2_tracker/msg/Detection2DArray: "
                       "not replayed as the detections") in log.lines
    quiet = Levels()  # without detections to publish, the topic is only listed
    _BagReplay(ReplayConfig(source=str(tmp_path / "bag"), publish_detections=False), quiet)
    assert [level for level, _ in quiet.lines] == ["info"]


def test_an_rgbd_bags_depth_images_go_out_as_depth_not_as_the_frames(tmp_path):
    """A RealSense bag has three sensor_msgs/Image topics, none named image or depth: the raw depth came first
    and was replayed as the frames (a 16UC1 image no tracker or detector can use). The colour image is the
    frames', the depth aligned to it goes out on depth (for use_depth) ahead of its frame with the
    camera_info; the unaligned depth, in another camera's pixels, is not replayed."""
    raw, aligned = "/camera/depth/image_rect_raw", "/camera/aligned_depth_to_color/image_raw"
    colour, info = "/camera/color/image_raw", "/camera/color/camera_info"
    with BagWriter(tmp_path / "rgbd", {raw: IMAGE, aligned: IMAGE, colour: IMAGE,
                                       info: "sensor_msgs/msg/CameraInfo"}) as bag:
        t = 0
        for k in range(3):
            for topic in (raw, aligned, info, colour):  # the depth recorded before its frame's picture
                bag.write(topic, cdr(k * 33_000_000, topic.encode()), t := t + 1)
    log = Log()
    rp = _BagReplay(ReplayConfig(source=str(tmp_path / "rgbd")), log)
    assert rp.topics == {colour: "image", aligned: "depth", info: "camera_info"}
    assert log.warnings == [f"bag has 2 sensor_msgs/msg/Image topics; replaying {aligned}, not {raw}",
                            f"bag topics not replayed: {raw}"]  # (the second an INFO line)
    items = list(rp.items())
    assert [i.stamp_ns for i in items] == [0, 33_000_000, 66_000_000]
    for item in items:  # each frame's own depth image ahead of it (not all read so far), none a frame
        assert [cdr_header_stamp_ns(m) for role, m in item.side if role == "depth"] == [item.stamp_ns]
        assert list(item.messages) == ["image"]
    # the camera_info, as a gyro's samples: all read so far, ahead of the next frame to go out
    assert [role for role, _ in items[0].side] == ["camera_info"] * 3 + ["depth"]
    quiet = _BagReplay(ReplayConfig(source=str(tmp_path / "rgbd"), publish_depth=False, publish_imu=False),
                       Log())
    assert quiet.topics == {colour: "image"}
    named = _BagReplay(ReplayConfig(source=str(tmp_path / "rgbd"), depth_topic=raw.strip("/")), Log())
    assert named.topics[raw] == "depth"  # named: what the user asked for


def test_each_depth_image_goes_out_ahead_of_the_frame_nearest_in_stamp_and_none_is_lost(tmp_path):
    """A depth camera not synchronised with the colour one (its stamps 5 ms later, one more at the end), in a
    recording that loops: every depth image goes out once, ahead of the frame nearest to it in stamp, so the
    tracker holds only a few (all that were read went out with the first frame: half a second of them at
    the reorder window's default, more than tracker_node keeps)."""
    with BagWriter(tmp_path / "unsync", {"/image": IMAGE, "/depth": IMAGE}) as bag:
        t = 0
        for _ in range(2):
            for k in range(4):
                bag.write("/image", cdr(k * 40_000_000, b"i"), t := t + 1)
                bag.write("/depth", cdr(k * 40_000_000 + 5_000_000, b"z"), t := t + 1)
            bag.write("/depth", cdr(400_000_000, b"z"), t := t + 1)  # long after the last frame
    items, warnings = replay(tmp_path / "unsync", reorder_window_s=0.1)  # (the loop is shorter than 0.5 s)
    assert len(items) == 8 and len(warnings) == 1 and "stamps went back" in warnings[0]
    sent = [[cdr_header_stamp_ns(m) // 1_000_000 for role, m in i.side if role == "depth"] for i in items]
    assert sent == [[5], [45], [85], [125, 400]] * 2


COMPRESSED = "sensor_msgs/msg/CompressedImage"


def test_a_bag_of_compressed_pictures_and_raw_depth_replays_the_pictures_and_the_depth(tmp_path):
    """A RealSense recorded to save space: compressed colour, raw aligned depth. Its only sensor_msgs/Image
    topic is the depth, which went out as the frames' raw images (the detector then read 16UC1 as a
    picture) while the depth went nowhere."""
    aligned, colour = "/camera/aligned_depth_to_color/image_raw", "/camera/color/image_raw/compressed"
    with BagWriter(tmp_path / "rgbd", {aligned: IMAGE, colour: COMPRESSED, "/detections": DETS}) as bag:
        t = 0
        for k in range(3):
            for topic in (aligned, colour, "/detections"):
                bag.write(topic, cdr(k * 33_000_000, topic.encode()), t := t + 1)
    rp = _BagReplay(ReplayConfig(source=str(tmp_path / "rgbd")), Log())
    assert rp.topics == {colour: "compressed", "/detections": "detections", aligned: "depth"}
    assert bag_roles(ReplayConfig(source=str(tmp_path / "rgbd"))) == rp.topics  # what the CLI reads
    items = list(rp.items())
    assert [sorted(i.messages) for i in items] == [["compressed", "detections"]] * 3
    assert [[cdr_header_stamp_ns(m) for role, m in i.side if role == "depth"] for i in items] == \
        [[0], [33_000_000], [66_000_000]]


def test_a_compressed_depth_stream_is_replayed_as_compressed_depth_never_as_the_pictures(tmp_path):
    """A bag of image_transport's compressed streams only: colour (JPEG) and two compressedDepth streams,
    the unaligned one first. The compressedDepth streams are CompressedImage topics too, and the first
    would have gone out as the frames' pictures; the aligned one goes out ahead of its frame for use_depth
    (depth_input:=compressedDepth), the unaligned one not at all. A raw depth stream, when the bag has one,
    is preferred (nothing to decode)."""
    raw = "/camera/depth/image_rect_raw/compressedDepth"
    aligned = "/camera/aligned_depth_to_color/image_raw/compressedDepth"
    colour, info = "/camera/color/image_raw/compressed", "/camera/color/camera_info"
    types = {raw: COMPRESSED, aligned: COMPRESSED, colour: COMPRESSED, info: "sensor_msgs/msg/CameraInfo"}
    with BagWriter(tmp_path / "rgbd", types) as bag:
        t = 0
        for k in range(3):
            for topic in (raw, aligned, info, colour):
                bag.write(topic, cdr(k * 33_000_000, topic.encode()), t := t + 1)
    log = Log()
    rp = _BagReplay(ReplayConfig(source=str(tmp_path / "rgbd")), log)
    assert rp.topics == {colour: "compressed", aligned: "compressed_depth", info: "camera_info"}
    assert f"bag topics not replayed: {raw}" in log.warnings
    items = list(rp.items())
    assert [list(i.messages) for i in items] == [["compressed"]] * 3
    for item in items:
        assert [(role, cdr_header_stamp_ns(m)) for role, m in item.side if role != "camera_info"] == \
            [("compressed_depth", item.stamp_ns)]
        assert item.side[-1][1].endswith(aligned.encode())
    with BagWriter(tmp_path / "raw_colour", {aligned: COMPRESSED, "/camera/color/image_raw": IMAGE}) as bag:
        bag.write(aligned, cdr(0, b"z"), 1)  # its only CompressedImage: still no picture
    assert bag_roles(ReplayConfig(source=str(tmp_path / "raw_colour"))) == \
        {"/camera/color/image_raw": "image", aligned: "compressed_depth"}
    with BagWriter(tmp_path / "both", {**types, "/camera/aligned_depth_to_color/image_raw": IMAGE}) as bag:
        bag.write(colour, cdr(0, b"c"), 1)
    roles = bag_roles(ReplayConfig(source=str(tmp_path / "both")))
    assert roles["/camera/aligned_depth_to_color/image_raw"] == "depth"
    assert "compressed_depth" not in roles.values()
