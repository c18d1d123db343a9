"""``ros2-tracker results BAG``: the tracks a live run recorded, back as MOTChallenge results and metrics.

The bag is what a robot records: the tracker's TrackArray messages, published as tracker_node publishes them
(the core tracker over TUD-Campus's Faster R-CNN detections, live-camera stamps with jitter, 3D positions),
beside the camera's compressed images. Three frames' detections never reached the tracker (a slow
detector), and the first frame's tracks were sent twice (the second time after a late second look).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import SHARED, require_modules, require_shared, video_frames

pytest.importorskip("rclpy", reason="rclpy is not installed (the messages are deserialised with it)")
msgs = pytest.importorskip("ros2_tracker.msg",
                           reason="ros2_tracker.msg is not built: run `bash scripts/setup.sh`")

from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import CompressedImage  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from ros2_tracker.cli.main import main  # noqa: E402
from ros2_tracker.core.boxes import tlwh_to_xyxy, xyxy_to_tlwh  # noqa: E402
from ros2_tracker.core.track import TrackState  # noqa: E402
from ros2_tracker.core.tracker import Tracker, TrackerConfig  # noqa: E402
from ros2_tracker.io.mot import read_mot  # noqa: E402
from ros2_tracker.nodes.conversions import ns_to_stamp, tracks_to_msg  # noqa: E402

FPS, T0_NS = 25.0, 1_764_000_000_000_000_000
DROPPED = (30, 31, 32)  # frames whose detections never reached the tracker
BROKEN = 5  # the camera's picture of this frame was recorded damaged
CAMERA, TRACKS = "/camera/color/image_raw/compressed", "/tracks"
TUD = SHARED / "data" / "TUD-Campus"


def stamp_ns(frame: int) -> int:
    """A live camera's stamp of frame k: 40 ms steps with up to +-3 ms of jitter."""
    return T0_NS + round((frame - 1) * 1e9 / FPS) + (frame * 7919 % 7 - 3) * 1_000_000


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """The bag, and the rows the tracker reported for each frame it tracked: {frame: (ids, tlwh, xyz)}."""
    require_modules("mcap", "rosbags")
    from ros2_tracker.io.bag import BagWriter

    dets = read_mot(require_shared("data", "TUD-Campus", "det", "det_frcnn.txt"))
    require_shared("data", "TUD-Campus", "img1", "000001.jpg")
    tracker, truth, records = Tracker(TrackerConfig()), {}, []
    for frame in range(1, dets.last_frame + 1):
        ns = stamp_ns(frame)
        header = Header(stamp=ns_to_stamp(ns), frame_id="camera_color_optical_frame")
        picture = b"\xff\xd8" if frame == BROKEN else (TUD / "img1" / f"{frame:06d}.jpg").read_bytes()
        image = CompressedImage(header=header, format="bgr8; jpeg compressed bgr8", data=picture)
        records.append((ns + 2_000_000, CAMERA, image))
        if frame in DROPPED:
            continue
        sel = dets.frames == frame
        tracks = tracker.update(tlwh_to_xyxy(dets.boxes_tlwh[sel]), dets.scores[sel], stamp=ns * 1e-9)
        n = len(tracks)
        xyz = np.column_stack([tracks.ids * 0.1, np.full(n, 0.5), np.full(n, 4.0 + frame)])
        xyz[tracks.ids % 3 == 0] = np.nan  # some without a depth
        msg = tracks_to_msg(tracks, None, header, msgs, positions=xyz)
        if frame == 1:  # sent twice: first an earlier look with one track too many
            first = tracks_to_msg(tracks, None, header, msgs, positions=xyz)
            first.ids[0] = 999
            records.append((ns + 20_000_000, TRACKS, first))
        records.append((ns + 30_000_000, TRACKS, msg))
        shown = (tracks.states == TrackState.CONFIRMED) & (tracks.time_since_update_s == 0)
        truth[frame] = (tracks.ids[shown], xyxy_to_tlwh(tracks.boxes_xyxy[shown]), xyz[shown])
    bag = tmp_path_factory.mktemp("live") / "live_bag"
    types = {CAMERA: "sensor_msgs/msg/CompressedImage", TRACKS: "ros2_tracker/msg/TrackArray"}
    with BagWriter(bag, types) as w:
        for log_ns, topic, m in sorted(records, key=lambda r: r[0]):
            w.write(topic, serialize_message(m), log_ns)
    return bag, truth


def rows_of(path) -> dict[int, np.ndarray]:
    table = np.loadtxt(path, delimiter=",", ndmin=2)
    return {int(f): table[table[:, 0] == f] for f in np.unique(table[:, 0])}


def test_frames_numbered_by_the_cameras_messages_keep_the_dropped_frames_out(recorded, tmp_path, capsys):
    bag, truth = recorded
    out, metrics = tmp_path / "res.txt", tmp_path / "m.json"
    gt = require_shared("data", "TUD-Campus", "gt", "gt.txt")
    latency = tmp_path / "latency.json"
    assert main(["results", str(bag), "--output", str(out), "--frame-topic", CAMERA, "--gt", str(gt),
                 "--json", str(metrics), "--latency", str(latency)]) == 0
    got = rows_of(out)
    assert sorted(got) == sorted(f for f, (ids, _, _) in truth.items() if len(ids))  # none for 30-32
    for frame, (ids, tlwh, xyz) in truth.items():
        if not len(ids):
            continue
        rows = got[frame]
        assert rows[:, 1].tolist() == sorted(ids.tolist()), frame  # the later look of frame 1: no id 999
        order = np.argsort(ids)
        np.testing.assert_allclose(rows[:, 2:6], tlwh[order], atol=0.01)
        world = np.where(np.isfinite(xyz[order]), xyz[order], -1.0)
        np.testing.assert_allclose(rows[:, 7:10], world, atol=1e-3)
    printed = capsys.readouterr()
    assert "HOTA" in printed.out and "TUD-Campus" in printed.out
    # each TrackArray reached the bag 30 ms after its frame's stamp (the repeated first one 20 ms)
    age = json.loads(latency.read_text())["stamp_to_receive"]
    assert age["count"] == len(truth) and age["p50_ms"] == pytest.approx(30.0) and age["max_ms"] == \
        pytest.approx(30.0), age
    assert "stamp to bag" in printed.out
    assert "1 tracks messages repeat a later one's stamp" in printed.err
    hota = json.loads(metrics.read_text())["TUD-Campus"]["HOTA"]
    assert 0.45 < hota < 0.6, hota  # (`track` on every frame: 0.549)


def test_ranked_stamps_shift_after_a_gap_and_say_so(recorded, tmp_path, capsys):
    bag, truth = recorded
    out = tmp_path / "res.txt"
    assert main(["results", str(bag), "--output", str(out), "--latency", str(out)]) == 2  # one file, two uses
    assert main(["results", str(bag), "--output", str(out)]) == 0
    got = rows_of(out)
    assert "first after frame 29" in capsys.readouterr().err
    np.testing.assert_allclose(got[29][:, 2:6], truth[29][1][np.argsort(truth[29][0])], atol=0.01)
    assert got[30][:, 1].tolist() == sorted(truth[33][0].tolist())  # frame 33's tracks, numbered 30


def test_offline_fills_the_dropped_frames_and_scores_both(recorded, tmp_path, capsys):
    """``--offline``: the tracks refined as a batch beside the online results; the frames the detector
    skipped get interpolated boxes (and positions), and with ground truth both are scored."""
    bag, truth = recorded
    out, metrics = tmp_path / "res.txt", tmp_path / "m.json"
    gt = require_shared("data", "TUD-Campus", "gt", "gt.txt")
    assert main(["results", str(bag), "--output", str(out), "--frame-topic", CAMERA, "--offline", "--gt",
                 str(gt), "--json", str(metrics)]) == 0
    online, offline = rows_of(out), rows_of(tmp_path / "res.offline.txt")
    assert not set(DROPPED) & set(online) and set(DROPPED) <= set(offline)
    both = set(truth[29][0].tolist()) & set(truth[33][0].tolist())  # seen on either side of the gap
    assert set(offline[31][:, 1].astype(int).tolist()) >= both
    for frame in (29, 33):  # the online rows are kept as they were (others' gaps may add rows)
        kept = offline[frame][np.isin(offline[frame][:, 1], online[frame][:, 1])]
        np.testing.assert_array_equal(kept, online[frame])
    one = int(sorted(both)[0])
    np.testing.assert_allclose(offline[31][offline[31][:, 1] == one, 9],  # z interpolated: 4 + frame
                               35.0 if one % 3 else -1.0, atol=1e-3)
    scores = json.loads(metrics.read_text())
    assert scores["TUD-Campus offline"]["HOTA"] >= scores["TUD-Campus online"]["HOTA"], scores
    assert "offline: 0 links" in capsys.readouterr().out


def test_the_video_draws_the_recorded_pictures_with_their_tracks(recorded, tmp_path, capsys):
    import cv2

    bag, truth = recorded
    video = tmp_path / "run.mp4"
    assert main(["results", str(bag), "--output", str(tmp_path / "res.txt"), "--frame-topic", CAMERA,
                 "--video", str(video)]) == 0
    printed = capsys.readouterr()
    assert f"video: 71 pictures -> {video}" in printed.out
    assert f"1 of 71 {CAMERA} pictures could not be decoded: drawn grey" in printed.err
    drawn, _ = video_frames(video)
    assert len(drawn) == 71 and drawn[0].shape == (480, 640, 3)
    assert np.median(np.abs(drawn[BROKEN - 1].astype(int) - 96)) < 5  # the damaged picture: grey
    frame = 40  # a picture with tracks: drawn on it, where the boxes are
    source = cv2.imread(str(TUD / "img1" / f"{frame:06d}.jpg"))
    x, y, _, h = truth[frame][1][0]
    edge = (slice(int(y) + 5, int(y + h) - 5), int(x))  # the box's left edge
    assert np.abs(drawn[frame - 1][edge].astype(int) - source[edge]).mean() > 40
    assert np.abs(drawn[frame - 1][300:, 600:].astype(int) - source[300:, 600:]).mean() < 12  # (mp4v)


def test_bad_requests_are_refused_before_anything_is_written(recorded, tmp_path, capsys):
    bag, _ = recorded
    out = tmp_path / "res.txt"
    for argv, needs in (
        (["--topic", "/cam1/tracks"], "has no topic /cam1/tracks; its TrackArray topics: /tracks"),
        (["--topic", CAMERA], f"{CAMERA} is sensor_msgs/msg/CompressedImage, not ros2_tracker/msg/"),
        (["--frame-topic", "/camera/depth"], "has no topic /camera/depth"),
        (["--frames", "10"], "--frames needs --gt"),
        (["--report-lost-s", "nan"], "--report-lost-s must be between 0 and 3600 s"),
        (["--refine-config", str(out)], "--refine-config needs --offline"),
        (["--video", str(tmp_path / "v.mp4")], "--video needs the camera's topic in the bag"),
        (["--video", str(tmp_path / "v.mp4"), "--image-topic", TRACKS],
         "is ros2_tracker/msg/TrackArray, not a picture"),
    ):
        assert main(["results", str(bag), "--output", str(out), *argv]) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if "error:" in ln]
        assert len(err) == 1 and needs in err[0], (argv, err)
    assert main(["results", str(tmp_path / "nothing"), "--output", str(out)]) == 2
    assert "no such" in capsys.readouterr().err.lower()
    assert not out.exists()


def test_damaged_recordings_give_what_they_hold_and_say_what_they_do_not(tmp_path, capsys):
    """A message that cannot be read, rows no results file can hold, an id twice in a frame: skipped and
    counted, the rest written. A recording cut short (the recorder killed): its messages up to the cut."""
    require_modules("mcap", "rosbags")
    from ros2_tracker.core.track import TrackSet
    from ros2_tracker.io.bag import BagWriter

    def message(frame: int, ids: list[int], boxes: list[list[float]], scores: list[float]):
        n = len(ids)
        tracks = TrackSet(ids=np.array(ids), boxes_xyxy=np.array(boxes, dtype=float).reshape(n, 4),
                          scores=np.array(scores), classes=np.zeros(n, int),
                          states=np.full(n, TrackState.CONFIRMED, np.int8), velocities=np.zeros((n, 4)),
                          box_variances=np.ones((n, 4)), ages_s=np.ones(n), hits=np.full(n, 5),
                          time_since_update_s=np.zeros(n), det_indices=np.arange(n))
        header = Header(stamp=ns_to_stamp(stamp_ns(frame)))
        return serialize_message(tracks_to_msg(tracks, None, header, msgs))

    box = [10.0, 20.0, 50.0, 120.0]
    bag = tmp_path / "damaged"
    with BagWriter(bag, {TRACKS: "ros2_tracker/msg/TrackArray"}) as w:
        w.write(TRACKS, message(1, [1, 2], [box, box], [0.9, 0.8]), stamp_ns(1))
        w.write(TRACKS, message(2, [1], [box], [0.9])[:40], stamp_ns(2))  # cut short: not CDR any more
        w.write(TRACKS, message(2, [1, 2, 3, 4, 4], [box, [np.nan] * 4, box, box, box],
                                [0.9, 0.8, np.nan, 0.7, 0.6]), stamp_ns(2) + 1)
        for frame in range(3, 40):
            w.write(TRACKS, message(frame, [1], [box], [0.9]), stamp_ns(frame))
    out = tmp_path / "res.txt"
    assert main(["results", str(bag), "--output", str(bag / "damaged_0.mcap")]) == 2  # the recording itself
    assert "BAG's damaged_0.mcap" in capsys.readouterr().err
    assert main(["results", str(bag), "--output", str(out), "--gt", str(tmp_path / "no_gt.txt")]) == 2
    assert not out.exists()  # the ground truth is checked before anything is written
    capsys.readouterr()
    assert main(["results", str(bag), "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "1 /tracks message(s) could not be read and were skipped (the first, message 2 of the topic" in err
    assert "2 track row(s) with a NaN/inf or empty box, a NaN/inf score" in err  # id 2's box, id 3's score
    assert "1 track row(s) repeating an id within its frame" in err
    got = rows_of(out)
    assert got[1][:, 1].tolist() == [1, 2] and got[2][:, 1].tolist() == [1, 4] and len(got) == 39
    assert got[2][1, 6] == pytest.approx(0.7)  # id 4's first row
    # the recorder killed while writing: a bare .mcap cut short keeps what it holds up to the cut
    (mcap,) = bag.glob("*.mcap")
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(mcap.read_bytes()[: mcap.stat().st_size * 2 // 3])
    assert main(["results", str(cut), "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: " in err and "truncated" in err and "Traceback" not in err
    assert 10 < len(rows_of(out)) < 39
