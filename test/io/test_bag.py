"""rosbag2 MCAP bags: BagWriter output read back by our reader, by rosbags (an independent rosbag2
implementation) and by mcap; flushing while open; crashes (SIGKILL) and truncated/corrupt files."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml

from ros2_tracker.io.bag import (
    BagDamageWarning,
    BagError,
    BagWriter,
    bag_files,
    bag_topics,
    cdr_header_stamp_ns,
    read_bag,
    read_bag_typed,
)

REPO = Path(__file__).resolve().parents[2]
IMAGE = "sensor_msgs/msg/Image"
STRING = "std_msgs/msg/String"
DETS = "ros2_tracker/msg/Detection2DArray"
_NOT_INSTALLED = [m for m in ("mcap", "rosbags") if importlib.util.find_spec(m) is None]
# pip-only (README's pip line, no rosdep key): BagWriter writes with mcap and takes the message definitions
# it embeds from rosbags; the readers use mcap. A robot's colcon test may have neither.
needs_bag_modules = pytest.mark.skipif(bool(_NOT_INSTALLED), reason=f"{' and '.join(_NOT_INSTALLED)} not "
                                       f"installed (pip install {' '.join(_NOT_INSTALLED)})")


def fake_cdr(stamp_ns: int, payload: bytes) -> bytes:
    """CDR bytes of a message that starts with a std_msgs/Header (stamp, then arbitrary bytes)."""
    sec, nsec = divmod(stamp_ns, 1_000_000_000)
    return b"\x00\x01\x00\x00" + sec.to_bytes(4, "little", signed=True) + nsec.to_bytes(4, "little") + payload


def write_sample(path: Path, n: int = 30, **kwargs) -> list[tuple[str, int, bytes]]:
    """n frames of /image (10 kB each) and /detections; returns what was written, in order."""
    written = []
    with BagWriter(path, {"/image": IMAGE, "/detections": DETS}, **kwargs) as bag:
        for k in range(n):
            stamp = k * 40_000_000
            for topic, size in (("/image", 10_000), ("/detections", 50)):
                data = fake_cdr(stamp, bytes([k % 256]) * size)
                bag.write(topic, data, 1_000 + k)
                written.append((topic, 1_000 + k, data))
    return written


def read_all(path, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        msgs = list(read_bag(path, **kwargs))
    return msgs, [str(w.message) for w in caught if issubclass(w.category, BagDamageWarning)]


@needs_bag_modules
def test_roundtrip_message_for_message_with_rosbag2_metadata(tmp_path):
    bag = tmp_path / "run1"
    written = write_sample(bag)
    assert sorted(os.listdir(bag)) == ["metadata.yaml", "run1_0.mcap"]
    msgs, damage = read_all(bag)
    assert not damage
    assert [(m.topic, m.log_time_ns, m.data) for m in msgs] == written
    assert {m.msgtype for m in msgs if m.topic == "/image"} == {IMAGE}
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["version"] == 9 and info["storage_identifier"] == "mcap"
    assert info["relative_file_paths"] == ["run1_0.mcap"] and info["message_count"] == 60
    topics = {t["topic_metadata"]["name"]: t for t in info["topics_with_message_count"]}
    assert topics["/image"]["message_count"] == 30 and topics["/image"]["topic_metadata"]["type"] == IMAGE
    assert topics["/detections"]["topic_metadata"]["type_description_hash"].startswith("RIHS01_")
    assert info["starting_time"]["nanoseconds_since_epoch"] == 1_000 and info["duration"]["nanoseconds"] == 29
    # a bare .mcap reads the same
    assert [m.data for m in read_all(bag / "run1_0.mcap")[0]] == [w[2] for w in written]
    assert [m.topic for m in read_bag(bag, ["/detections"])] == ["/detections"] * 30


@needs_bag_modules
def test_publish_times_round_trip_and_default_to_the_log_time(tmp_path):
    from ros2_tracker.io.bag import BagWriter

    with BagWriter(tmp_path / "b", {"/t": "std_msgs/msg/String"}) as bag:
        bag.write("/t", b"\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00", 2_000, 1_500)
        bag.write("/t", b"\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00", 3_000)
    assert [(m.log_time_ns, m.publish_time_ns) for m in read_bag(tmp_path / "b")] == [(2_000, 1_500),
                                                                                       (3_000, 3_000)]


@pytest.mark.parametrize("order", ["little", "big"])
def test_header_stamps_are_read_in_the_byte_order_the_encapsulation_names(order):
    from ros2_tracker.io.bag import cdr_header_stamp_ns

    kind = b"\x00\x01" if order == "little" else b"\x00\x00"  # CDR_LE / CDR_BE
    data = kind + b"\x00\x00" + (12).to_bytes(4, order, signed=True) + (345).to_bytes(4, order) + b"x"
    assert cdr_header_stamp_ns(data) == 12_000_000_345


@needs_bag_modules
def test_independent_readers_accept_the_bag_and_its_embedded_definitions(tmp_path):
    from mcap.reader import make_reader
    from rosbags.rosbag2 import Reader

    bag = tmp_path / "b"
    write_sample(bag, n=3)
    with Reader(bag) as reader:  # rosbags parses metadata.yaml and the MCAP index
        assert {c.topic: c.msgtype for c in reader.connections} == {"/image": IMAGE, "/detections": DETS}
        assert reader.message_count == 6
        assert [ts for _, ts, _ in reader.messages()] == [1000, 1000, 1001, 1001, 1002, 1002]
    with (bag / "b_0.mcap").open("rb") as fh:
        reader = make_reader(fh)
        summary, header = reader.get_summary(), reader.get_header()
    assert header.profile == "ros2"
    assert summary.statistics.message_count == 6
    schemas = {s.name: s for s in summary.schemas.values()}
    assert schemas[IMAGE].encoding == "ros2msg"
    # full definitions, dependencies included (our own types from msg/*.msg)
    assert b"MSG: std_msgs/Header" in schemas[IMAGE].data
    assert b"MSG: ros2_tracker/Detection2D" in schemas[DETS].data and b"float32[4] bbox" in schemas[DETS].data
    channel = next(c for c in summary.channels.values() if c.topic == "/image")
    assert channel.message_encoding == "cdr" and channel.metadata["topic_type_hash"].startswith("RIHS01_")


@needs_bag_modules
def test_typed_read_deserialises_with_rclpy(tmp_path):
    pytest.importorskip("rclpy", reason="rclpy is not installed")
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    img = Image(height=2, width=3, encoding="bgr8", step=9, data=bytes(range(18)))
    img.header.stamp.sec, img.header.stamp.nanosec = 12, 345
    with BagWriter(tmp_path / "t", {"/image": IMAGE, "/s": STRING}) as bag:
        bag.write("/image", serialize_message(img), 5)
        bag.write("/s", serialize_message(String(data="hello")), 6)
    out = list(read_bag_typed(tmp_path / "t"))
    assert [(t, ty, lt) for t, ty, lt, _ in out] == [("/image", IMAGE, 5), ("/s", STRING, 6)]
    assert out[0][3] == img and out[1][3].data == "hello"
    assert cdr_header_stamp_ns(serialize_message(img)) == 12_000_000_345


@needs_bag_modules
def test_writer_refuses_to_overwrite_and_rejects_bad_arguments(tmp_path):
    write_sample(tmp_path / "x", n=1)
    with pytest.raises(BagError, match="not overwriting"):
        BagWriter(tmp_path / "x", {"/a": STRING})
    with pytest.raises(BagError, match="compression"):
        BagWriter(tmp_path / "y", {"/a": STRING}, compression="gzip")
    (tmp_path / "empty").mkdir()
    with BagWriter(tmp_path / "empty", {"/a": STRING}) as bag:  # an empty folder is fine
        with pytest.raises(BagError, match="not a topic"):
            bag.write("/b", b"\x00\x01\x00\x00", 1)
        with pytest.raises(BagError, match="already recorded as"):
            bag.add_topic("/a", IMAGE)
    with pytest.raises(BagError, match="closed"):
        bag.write("/a", b"\x00\x01\x00\x00", 1)


@needs_bag_modules
def test_reader_errors_are_clear(tmp_path):
    with pytest.raises(BagError, match="no such bag"):
        list(read_bag(tmp_path / "missing"))
    (tmp_path / "notmcap.mcap").write_bytes(b"hello world, not a bag at all")
    with pytest.raises(BagError, match="not an MCAP file"):
        list(read_bag(tmp_path / "notmcap.mcap"))
    (tmp_path / "folder").mkdir()
    with pytest.raises(BagError, match=r"no \.mcap file"):
        bag_files(tmp_path / "folder")


@needs_bag_modules
def test_zstd_chunks_roundtrip(tmp_path):
    written = write_sample(tmp_path / "z", n=5, compression="zstd")
    assert [m.data for m in read_all(tmp_path / "z")[0]] == [w[2] for w in written]
    assert (tmp_path / "z" / "z_0.mcap").stat().st_size < sum(len(w[2]) for w in written) / 10


@needs_bag_modules
def test_flushed_data_is_readable_while_the_writer_is_still_open(tmp_path):
    bag = BagWriter(tmp_path / "open", {"/s": STRING}, flush_interval_s=0.0)
    for k in range(5):
        bag.write("/s", fake_cdr(k, b"abc"), k)
    msgs, damage = read_all(tmp_path / "open")  # no summary, no metadata.yaml yet
    assert [m.log_time_ns for m in msgs] == [0, 1, 2, 3, 4]
    assert len(damage) == 1 and "interrupted before the bag was closed" in damage[0]
    assert bag_topics(tmp_path / "open") == {"/s": STRING}  # from the channel records
    bag.close()
    assert read_all(tmp_path / "open") == (msgs, [])


@needs_bag_modules
def test_truncated_file_is_read_up_to_the_damage_with_a_warning(tmp_path):
    written = write_sample(tmp_path / "t", n=30, chunk_size=30_000)  # ~3 frames per chunk
    data = (tmp_path / "t" / "t_0.mcap").read_bytes()
    cut = tmp_path / "cut.mcap"
    previous = len(written)
    for lost in (1_000, 60_000, 150_000, len(data) - 200):
        cut.write_bytes(data[:-lost])
        msgs, damage = read_all(cut)
        assert len(damage) == 1, damage
        assert "truncated" in damage[0] and f"read {len(msgs)} messages" in damage[0]
        # what comes back is exactly the start of what was written
        assert [(m.topic, m.log_time_ns, m.data) for m in msgs] == written[:len(msgs)]
        assert len(msgs) <= previous
        previous = len(msgs)
    assert 0 <= previous < 10
    # damage reported through a callback instead of a warning
    reports: list[str] = []
    assert len(list(read_bag(cut, on_damage=reports.append))) == previous and len(reports) == 1


@needs_bag_modules
def test_a_chunk_cut_short_gives_back_its_complete_messages(tmp_path):
    """A recorder killed while writing a chunk: the messages of the cut chunk that are whole come back,
    in order and as written (all were lost before)."""
    written = write_sample(tmp_path / "u", n=30)  # one uncompressed chunk of ~300 kB
    path = tmp_path / "u" / "u_0.mcap"
    data = path.read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[:len(data) // 2])
    msgs, damage = read_all(cut)
    assert 20 <= len(msgs) < len(written) and len(damage) == 1 and "from the cut chunk" in damage[0]
    assert [(m.topic, m.data) for m in msgs] == [(w[0], w[2]) for w in written[:len(msgs)]]
    # its topics too: the one chunk holds the channel records (bag_topics found none, so `results` and
    # `replay` refused a bag whose messages read_bag could give back)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BagDamageWarning)
        assert bag_topics(cut) == {"/image": IMAGE, "/detections": DETS}
    pytest.importorskip("zstandard")
    written = write_sample(tmp_path / "z", n=30, compression="zstd", chunk_size=20_000)
    data = (tmp_path / "z" / "z_0.mcap").read_bytes()
    for end in range(len(data) // 4, len(data), len(data) // 7):  # cut anywhere: whole chunks only
        cut.write_bytes(data[:end])
        msgs, damage = read_all(cut)
        assert [m.data for m in msgs] == [w[2] for w in written[:len(msgs)]] and len(damage) == 1


@needs_bag_modules
@pytest.mark.parametrize("compression", ["zstd", "lz4"])
def test_a_compressed_chunk_cut_short_gives_back_the_messages_of_its_whole_blocks(tmp_path, compression):
    """A recorder writing zstd / lz4 chunks killed mid-chunk: the messages in the chunk's whole compressed
    blocks come back as written (all were lost before: a compressed chunk was never read in part)."""
    pytest.importorskip("zstandard" if compression == "zstd" else "lz4")
    rng = np.random.default_rng(0)
    written = []
    with BagWriter(tmp_path / "c", {"/image": IMAGE}, compression=compression, chunk_size=1 << 22) as bag:
        for k in range(60):  # one ~600 kB chunk of payloads that compress to about half
            data = fake_cdr(k * 40_000_000, rng.integers(0, 8, 10_000, dtype=np.uint8).tobytes())
            bag.write("/image", data, 1_000 + k)
            written.append(data)
    data = (tmp_path / "c" / "c_0.mcap").read_bytes()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(data[:len(data) // 2])
    msgs, damage = read_all(cut)
    assert 10 <= len(msgs) < 60 and len(damage) == 1 and "from the cut chunk" in damage[0], damage
    assert [m.data for m in msgs] == written[:len(msgs)]


@needs_bag_modules
def test_corrupt_chunk_stops_reading_with_a_warning(tmp_path):
    written = write_sample(tmp_path / "c", n=30, chunk_size=30_000)
    path = tmp_path / "c" / "c_0.mcap"
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = b"\xff" * 64  # garbage in the middle of a chunk
    path.write_bytes(bytes(data))
    msgs, damage = read_all(path)
    assert len(damage) == 1 and ("corrupt" in damage[0] or "truncated" in damage[0])
    assert 0 < len(msgs) < len(written)
    assert [m.data for m in msgs] == [w[2] for w in written[:len(msgs)]]


@needs_bag_modules
def test_every_flipped_byte_is_read_or_reported_never_raised(tmp_path):
    """One damaged byte anywhere in a closed bag: messages come back as written, and any loss is reported
    (a damaged length field raised OverflowError; a damaged chunk opcode dropped a chunk silently)."""
    written = []
    with BagWriter(tmp_path / "f", {"/detections": DETS}, chunk_size=300) as bag:  # ~4 messages a chunk
        for k in range(12):
            written.append(("/detections", 1_000 + k, fake_cdr(k * 40_000_000, bytes([k]) * 40)))
            bag.write(written[-1][0], written[-1][2], written[-1][1])
    path = tmp_path / "f" / "f_0.mcap"
    data = path.read_bytes()
    flipped = tmp_path / "flipped.mcap"
    outcomes = set()
    for offset in range(len(data)):
        damaged = bytearray(data)
        damaged[offset] ^= 0xFF
        flipped.write_bytes(bytes(damaged))
        try:
            msgs, damage = read_all(flipped)
        except BagError:  # the magic or first record: not an MCAP file
            outcomes.add("not mcap")
            continue
        read = {(m.topic, m.log_time_ns) for m in msgs}
        assert read <= {(t, lt) for t, lt, _ in written}, offset
        if len(msgs) < len(written):
            assert damage, f"byte {offset}: {len(written) - len(msgs)} messages lost without a report"
        outcomes.add("reported" if damage else "read")
    assert outcomes == {"not mcap", "reported", "read"}


@needs_bag_modules
def test_a_damaged_metadata_yaml_falls_back_to_the_files(tmp_path):
    write_sample(tmp_path / "m", n=3)
    meta = tmp_path / "m" / "metadata.yaml"
    for text in (b"\xff\xfe garbage", b"rosbag2_bagfile_information:\n  relative_file_paths: 5\n",
                 b"rosbag2_bagfile_information:\n  topics_with_message_count: [1, 2]\n"):
        meta.write_bytes(text)
        assert bag_files(tmp_path / "m") == [tmp_path / "m" / "m_0.mcap"]
        assert bag_topics(tmp_path / "m") == {"/image": IMAGE, "/detections": DETS}
        assert len(read_all(tmp_path / "m")[0]) == 6


CHILD = """
import sys, time
from ros2_tracker.io.bag import BagWriter
bag = BagWriter(sys.argv[1], {"/s": "std_msgs/msg/String"}, flush_interval_s=0.05)
for k in range(200):
    bag.write("/s", b"\\x00\\x01\\x00\\x00" + k.to_bytes(8, "little"), k)
    time.sleep(0.001)
time.sleep(0.2)
bag.flush_if_due()
print("written", flush=True)
time.sleep(60)
"""


@needs_bag_modules
def test_sigkilled_writer_loses_nothing_that_was_flushed(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ROS_DOMAIN_ID"}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "k")], stdout=subprocess.PIPE,
                            env=env, text=True)
    try:
        assert proc.stdout.readline().strip() == "written"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert not (tmp_path / "k" / "metadata.yaml").exists()
    msgs, damage = read_all(tmp_path / "k")
    assert [m.log_time_ns for m in msgs] == list(range(200))
    assert len(damage) == 1 and "interrupted" in damage[0]
