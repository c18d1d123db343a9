"""``nodes.recording.tracks_from_bag``: a bag of TrackArray messages (as tracker_node publishes them, from a
real tracker run on TUD-Stadtmitte's detections) read back into the rows ``ros2-tracker track`` writes, one
message at a time."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from conftest import require_shared

pytest.importorskip("rclpy", reason="rclpy is not installed (the messages are deserialised with it)")
pytest.importorskip("mcap", reason="mcap is not installed (pip install mcap)")
pytest.importorskip("rosbags", reason="rosbags is not installed: the bag writer takes message definitions "
                    "from it")

from rclpy.serialization import serialize_message
from std_msgs.msg import Header

import ros2_tracker.msg as msgs
from ros2_tracker.core.tracker import Tracker, TrackerConfig
from ros2_tracker.io.bag import BagWriter
from ros2_tracker.io.mot import read_mot
from ros2_tracker.nodes.conversions import seconds_to_stamp, tracks_to_msg
from ros2_tracker.nodes.recording import tracks_from_bag
from ros2_tracker.offline import track_mot_detections

FPS = 25.0


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The tracker's every TrackSet over TUD-Stadtmitte (179 frames) as TrackArrays in a bag, stamped
    (k - 1) / fps as the replay stamps frame k; the offline results of the same run; the messages."""
    dets = read_mot(require_shared("data", "TUD-Stadtmitte", "det", "det_frcnn.txt"))
    messages = []

    def publish(frame, tracks, tracker):
        header = Header(stamp=seconds_to_stamp((frame - 1) / FPS), frame_id="camera")
        messages.append(tracks_to_msg(tracks, tracker.predict_trajectories(6.0, 0.1), header, msgs))

    res = track_mot_detections(dets, Tracker(TrackerConfig()), FPS, on_frame=publish)
    bag = tmp_path_factory.mktemp("recording") / "bag"
    _write(bag, messages)
    return bag, res, messages


def _write(bag, messages, repeats: int = 1):
    """The messages into a bag, ``repeats`` times over, each pass stamped after the one before."""
    with BagWriter(bag, {"/tracks": "ros2_tracker/msg/TrackArray"}) as writer:
        for r in range(repeats):
            for k, msg in enumerate(messages):
                frame = r * len(messages) + k + 1
                msg.header.stamp = seconds_to_stamp((frame - 1) / FPS)
                writer.write("/tracks", serialize_message(msg), frame * 1_000_000)


def test_rows_are_the_offline_results_with_or_without_snapshots_and_stamps_ranked(recorded):
    bag, res, _ = recorded
    order = np.lexsort((res.ids, res.frames))
    with_snaps = tracks_from_bag(bag, FPS)
    plain = tracks_from_bag(bag, FPS, snapshots=False)
    ranked = tracks_from_bag(bag, 0.0, snapshots=False)  # a bag source: frames are the stamps' ranks
    for rows in (with_snaps, plain, ranked):
        got = np.lexsort((rows.ids, rows.frames))
        assert rows.frames[got].tolist() == res.frames[order].tolist()
        assert rows.ids[got].tolist() == res.ids[order].tolist()
        np.testing.assert_allclose(rows.boxes_tlwh[got], res.boxes_tlwh[order], atol=0.01)  # float32 message
        assert rows.message_frames == list(range(1, 180))
    assert [s.frame for s in with_snaps.snapshots] == list(range(1, 180)) and not plain.snapshots


def test_messages_are_read_one_at_a_time(recorded, tmp_path):
    """Peak memory stays within the rows kept plus what reading the bag's chunks takes (about 3 MB here):
    the whole bag's converted messages were held until the end (31 MB peak here, 21 kB a message; an hour's
    replay, 100,000 messages, several GB)."""
    _, _, messages = recorded
    bag = tmp_path / "bag"
    _write(bag, messages, repeats=6)  # 1,074 messages of 60-point trajectories
    tracks_from_bag(bag, FPS, snapshots=False)  # imports and caches outside the measurement
    tracemalloc.start()
    try:
        rows = tracks_from_bag(bag, FPS, snapshots=False)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows.message_frames[-1] == 6 * 179 and len(rows.frames) > 5000
    assert peak < 2 * kept + 5_000_000, f"peak {peak / 1e3:.0f} kB for {kept / 1e3:.0f} kB kept"
