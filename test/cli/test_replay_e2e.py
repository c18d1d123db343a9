"""``ros2-tracker replay`` end to end: the ROS graph (separate processes over DDS) adds no loss.

TUD-Campus with the recorded Faster R-CNN detections is replayed through replay_node -> tracker_node ->
recorder_node; the results read back from the bag must score exactly like ``ros2-tracker track`` on the
same detections with the same parameters, and a second replay must give the same tracks. Messages
carry float32 boxes and scores, so a few printed values may differ in their last digit (0.01 px,
1e-4 score); frames and ids must be identical.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import DATA, REPO, require_modules, require_shared

from ros2_tracker.io.mot import read_mot
from ros2_tracker.launching import PRIVATE_DOMAIN_IDS, private_domain_id

pytestmark = pytest.mark.ros

TUD = DATA / "TUD-Campus"
CONFIG = REPO / "config" / "tracker.yaml"
CLI = [sys.executable, "-m", "ros2_tracker.cli.main"]
# pip-only modules a replay needs (a robot's colcon test may lack them): its recorder writes the bag with mcap
# and rosbags, and a source with ground truth is scored with trackeval
REPLAY_MODULES = ("mcap", "rosbags", "trackeval")


def _cli(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    res = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, \
        f"{args} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def tud(tmp_path_factory):
    """track + two replays of TUD-Campus det_frcnn (each replay on its own ROS_DOMAIN_ID)."""
    require_shared("data", "TUD-Campus", "det", "det_frcnn.txt")
    require_modules(*REPLAY_MODULES)
    base = tmp_path_factory.mktemp("tud")
    env = {**os.environ, "ROS_LOG_DIR": str(base / "ros_log")}
    det = TUD / "det" / "det_frcnn.txt"
    _cli(["track", "--detections", str(det), "--output", str(base / "track.txt"), "--config", str(CONFIG)],
         env)
    runs = []
    for k in (1, 2):
        out = base / f"replay{k}"
        res = _cli(["replay", str(TUD), "--detections", str(det), "--out", str(out), "--no-video",
                    "--domain-id", str(private_domain_id(os.getpid() + 50 + k))], env)
        runs.append((out, res.stdout))
    return base, runs


@pytest.mark.data
@pytest.mark.slow
def test_graph_scores_exactly_like_the_offline_tracker(tud):
    from ros2_tracker.eval.metrics import evaluate_sequence

    base, runs = tud
    offline = evaluate_sequence(TUD / "gt" / "gt.txt", base / "track.txt")
    graph = evaluate_sequence(TUD / "gt" / "gt.txt", runs[0][0] / "results" / "TUD-Campus.txt")
    for name in ("HOTA", "MOTA", "IDF1", "DetA", "AssA"):
        assert getattr(graph, name) == pytest.approx(getattr(offline, name), abs=1e-6), name
    for name in ("IDSW", "FP", "FN"):
        assert getattr(graph, name) == getattr(offline, name), name
    saved = json.loads((runs[0][0] / "metrics.json").read_text())["TUD-Campus"]  # what the CLI wrote
    assert saved["HOTA"] == pytest.approx(offline.HOTA, abs=1e-6) and saved["num_frames"] == 71


@pytest.mark.data
@pytest.mark.slow
def test_graph_results_match_the_offline_rows(tud):
    base, runs = tud
    offline = read_mot(base / "track.txt")
    graph = read_mot(runs[0][0] / "results" / "TUD-Campus.txt")
    assert len(graph) == len(offline) > 200
    np.testing.assert_array_equal(graph.frames, offline.frames)
    np.testing.assert_array_equal(graph.ids, offline.ids)
    np.testing.assert_allclose(graph.boxes_tlwh, offline.boxes_tlwh, atol=0.0101)  # float32 in messages
    np.testing.assert_allclose(graph.scores, offline.scores, atol=1.01e-4)


@pytest.mark.data
@pytest.mark.slow
def test_results_from_the_recorded_bag_are_the_replays_own(tud, tmp_path, capsys):
    """``ros2-tracker results``, the command for a live run's bag, on the bag this replay's recorder wrote:
    the replay's results file, byte for byte, numbered by the tracks' stamps or by the detections'."""
    from ros2_tracker.cli.main import main

    _, runs = tud
    own = (runs[0][0] / "results" / "TUD-Campus.txt").read_bytes()
    for extra in ([], ["--frame-topic", "/detections"]):
        out = tmp_path / f"results{len(extra)}.txt"
        assert main(["results", str(runs[0][0] / "bag"), "--output", str(out), *extra]) == 0
        assert out.read_bytes() == own, extra
    assert "warning" not in capsys.readouterr().err  # every frame was tracked: no gap


@pytest.mark.data
@pytest.mark.slow
def test_results_with_report_lost_s_follow_the_offline_rule(tud, tmp_path):
    """The bag's TrackArrays carry lost tracks too; with report_lost_s the replay's results report them
    exactly as ``track`` does (one rule, core.track.reported_mask)."""
    import argparse

    from ros2_tracker.cli.replay import _tracker_config
    from ros2_tracker.io.mot import write_results
    from ros2_tracker.nodes.recording import tracks_from_bag

    base, runs = tud
    cfg, graph_cfg = tmp_path / "c.yaml", tmp_path / "graph.yaml"
    cfg.write_text("/**:\n  ros__parameters:\n    report_lost_s: 0.2\n")
    graph_cfg.write_text(cfg.read_text() + "    rate: 2.0\n")  # a replay_node parameter is left to it
    lost_s = _tracker_config(argparse.Namespace(config=graph_cfg)).report_lost_s
    assert lost_s == 0.2 and _tracker_config(argparse.Namespace(config=None)).report_lost_s == 0.0
    _cli(["track", "--detections", str(TUD / "det" / "det_frcnn.txt"), "--output", str(tmp_path / "t.txt"),
          "--config", str(cfg)], {**os.environ, "ROS_LOG_DIR": str(tmp_path / "ros_log")})
    offline = read_mot(tmp_path / "t.txt")
    rows = tracks_from_bag(runs[0][0] / "bag", 25.0, report_lost_s=lost_s)
    write_results(tmp_path / "g.txt", rows.frames, rows.ids, rows.boxes_tlwh, rows.scores)
    graph = read_mot(tmp_path / "g.txt")
    assert len(graph) == len(offline) > len(read_mot(base / "track.txt"))  # coasting rows were added
    np.testing.assert_array_equal(graph.frames, offline.frames)
    np.testing.assert_array_equal(graph.ids, offline.ids)
    np.testing.assert_allclose(graph.boxes_tlwh, offline.boxes_tlwh, atol=0.0101)


@pytest.mark.data
@pytest.mark.slow
def test_replay_is_deterministic(tud):
    _, runs = tud
    first, second = (out / "results" / "TUD-Campus.txt" for out, _ in runs)
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.data
@pytest.mark.slow
def test_replay_reports_latency_per_stage_and_end_to_end(tud):
    _, runs = tud
    out, stdout = runs[0]
    profile = json.loads((out / "latency.json").read_text())
    assert profile["frames"] == 71 and 0 < profile["span_s"] < 30 and profile["fps"] > 0
    for stage in ("decode", "tracker"):
        s = profile["stages"][stage]
        assert s["count"] == 71 and 0 < s["p50_ms"] <= s["p99_ms"] <= s["max_ms"]
    e2e = profile["end_to_end"]
    # (not compared with the tracker stage: that one ends after publish() returns, and over shared memory
    # the recorder may receive the tracks before it does; a loaded machine made e2e's median the smaller)
    assert e2e["count"] == 71 and 0 < e2e["p50_ms"] <= e2e["p99_ms"] < 1000
    assert "end to end" in stdout and "replayed 71 frames" in stdout
    # /clock: one message per frame, stamped as the frame (the replay waits for the recorder's subscription)
    from rclpy.serialization import deserialize_message
    from rosgraph_msgs.msg import Clock

    from ros2_tracker.io.bag import read_bag

    clock = [deserialize_message(m.data, Clock).clock for m in read_bag(out / "bag", ["/clock"])]
    assert [c.sec * 10**9 + c.nanosec for c in clock] == [round(k * 1e9 / 25) for k in range(71)]
    for name in ("bag/metadata.yaml", "metrics.json", "TUD-Campus_ids.png", "logs/nodes.log"):
        assert (out / name).is_file(), name
    assert not (out / "TUD-Campus_tracks.mp4").exists()  # --no-video


@pytest.mark.slow
def test_default_source_is_the_synthetic_scene(tmp_path, ros_env):
    pytest.importorskip("ros2_tracker.msg", reason="ros2_tracker.msg is not built: bash scripts/setup.sh")
    require_modules(*REPLAY_MODULES)
    out = tmp_path / "syn"
    res = _cli(["replay", "--out", str(out), "--frames", "25", "--domain-id", ros_env["ROS_DOMAIN_ID"]],
               ros_env)
    rows = read_mot(out / "results" / "synthetic-0.txt")
    assert 0 < len(rows) and rows.last_frame <= 25
    assert (out / "source" / "synthetic-0" / "gt" / "gt.txt").is_file()
    assert json.loads((out / "metrics.json").read_text())
    video = next(out.glob("synthetic-0_tracks.*"))
    assert video.stat().st_size > 10_000
    assert "replayed 25 frames" in res.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["/nonexistent/seq"], "no such file or folder"),
    ([str(REPO / "config")], "not a MOTChallenge folder, a video file"),
    (["--rate", "-1"], "--rate: -1.0 is out of range [0, 1000]"),
    (["--frames", "0"], "--frames must be between 1 and 10,000,000"),
])
def test_bad_source_or_option_exits_2_with_one_line(tmp_path, ros_env, args, message):
    res = subprocess.run([*CLI, "replay", *args, "--out", str(tmp_path / "o")], env=ros_env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert not (tmp_path / "o").exists()  # nothing ran: no run folder left behind


def test_a_run_that_never_started_leaves_no_run_folder(tmp_path, ros_env):
    res = subprocess.run([*CLI, "replay", str(tmp_path / "nothing")], env=ros_env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "no such file or folder" in res.stderr
    assert list((tmp_path / "runs").iterdir()) == []
    res = subprocess.run([*CLI, "replay", "--domain-id", "999"], env=ros_env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "--domain-id must be in 0..232" in res.stderr
    assert list((tmp_path / "runs").iterdir()) == []  # it was checked after the run folder was made


@pytest.mark.parametrize(("text", "message"), [
    ("max_lost_sec: 3.0", "unknown parameter(s) max_lost_sec"),  # a typo: it was ignored, exit 0
    ("high_score: -5.0", "high_score: -5.0 is out of range"),  # the tracker node died at start, exit 1
])
def test_a_bad_tracker_config_exits_2_before_any_node_starts(tmp_path, ros_env, text, message):
    config = tmp_path / "tracker.yaml"
    config.write_text(f"/**:\n  ros__parameters:\n    {text}\n")
    res = subprocess.run([*CLI, "replay", "--config", str(config), "--out", str(tmp_path / "o")],
                         env=ros_env, capture_output=True, text=True, timeout=60)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and message in lines[0], res.stderr
    assert not (tmp_path / "o").exists()


def test_a_bag_folder_without_its_mcap_file_exits_2_before_starting_nodes(tmp_path, ros_env):
    bag = tmp_path / "bag"
    bag.mkdir()  # metadata.yaml alone names the topics: the graph used to start and then fail
    (bag / "metadata.yaml").write_text(
        "rosbag2_bagfile_information:\n  storage_identifier: mcap\n  relative_file_paths: [bag_0.mcap]\n"
        "  topics_with_message_count:\n  - topic_metadata: {name: /detections, "
        "type: ros2_tracker/msg/Detection2DArray}\n    message_count: 3\n")
    res = subprocess.run([*CLI, "replay", str(bag), "--out", str(tmp_path / "o")], env=ros_env,
                         capture_output=True, text=True, timeout=60)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1, res.stderr
    assert "no .mcap file in the bag folder" in lines[0]
    assert not (tmp_path / "o" / "bag").exists()  # nothing started, so --out stays usable


@pytest.mark.parametrize("namespace", ["/", "/cam1", "tracks_publisher"])
def test_another_graph_on_the_same_domain_is_refused(tmp_path, ros_env, monkeypatch, namespace):
    """Two replays on one ROS domain feed each other (their trackers reset, one reported 261 tracks for
    a 60-frame replay with exit 0): a node of the same name already on the domain stops the run. A graph
    in a namespace of its own (/cam1/tracker on /cam1/detections) does not meet the replay's: it was
    refused too."""
    import rclpy
    from rclpy.context import Context

    require_modules(*REPLAY_MODULES)  # the refusal comes once the nodes run, the recorder among them
    domain = int(ros_env["ROS_DOMAIN_ID"])
    monkeypatch.setenv("ROS_LOG_DIR", ros_env["ROS_LOG_DIR"])
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain)
    try:
        if namespace == "tracks_publisher":  # a tracker of another name (ros2 run's tracker_node) on /tracks
            from ros2_tracker.msg import TrackArray

            other = rclpy.create_node("tracker_node", context=ctx)
            other.create_publisher(TrackArray, "/tracks", 10)
        else:
            other = rclpy.create_node("tracker", namespace=namespace, context=ctx)  # another graph's tracker
        # as a graph that has run a while, past its first announcements: a new participant may discover it
        # only at its next periodic one, up to 3 s later (a CI run's check came before that, exit 0)
        time.sleep(1.0)
        res = subprocess.run([*CLI, "replay", "--frames", "5", "--no-video", "--domain-id", str(domain),
                              "--out", str(tmp_path / "o")], env=ros_env, capture_output=True, text=True,
                             timeout=120)
        other.destroy_node()
    finally:
        ctx.try_shutdown()
    if namespace == "/cam1":
        assert res.returncode == 0, res.stderr
        return
    assert res.returncode == 1, res.stderr
    if namespace == "tracks_publisher":  # it was accepted, then both trackers' tracks were recorded
        assert "another graph runs on this ROS domain (topics /tracks (2 publishers))" in res.stderr
        return
    assert "another graph runs on this ROS domain (nodes tracker twice)" in res.stderr


def test_another_graph_discovered_during_the_replay_still_fails_the_run(tmp_path, ros_env, monkeypatch):
    """The other-graph check ran once, when the nodes were wired: a graph this process discovered only
    later (a loaded machine: seen in a stress run) went unnoticed and the run passed. It is checked again
    after the replay. Here the other /tracks publisher appears once the replay's tracks flow."""
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    from ros2_tracker.msg import TrackArray

    require_modules(*REPLAY_MODULES)
    domain = int(ros_env["ROS_DOMAIN_ID"])
    monkeypatch.setenv("ROS_LOG_DIR", ros_env["ROS_LOG_DIR"])
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain)
    try:
        node = rclpy.create_node("late_tracker", context=ctx)
        seen: list[bytes] = []
        node.create_subscription(TrackArray, "/tracks", seen.append, 100, raw=True)
        executor = SingleThreadedExecutor(context=ctx)
        executor.add_node(node)
        proc = subprocess.Popen([*CLI, "replay", "--frames", "60", "--rate", "1", "--no-video", "--domain-id",
                                 str(domain), "--out", str(tmp_path / "o")], env=ros_env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        end = time.monotonic() + 90
        while not seen and proc.poll() is None and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        assert seen, "no tracks from the replay"
        node.create_publisher(TrackArray, "/tracks", 10)  # from now on another graph publishes tracks
        out, err = proc.communicate(timeout=120)
        node.destroy_node()
    finally:
        ctx.try_shutdown()
    assert proc.returncode == 1, out + err
    assert "another graph runs on this ROS domain (topics /tracks (2 publishers))" in err


def test_two_runs_in_the_same_second_get_their_own_folders(tmp_path):
    from ros2_tracker.cli.runs import new_run_folder

    folders = [new_run_folder("replay-x", root=tmp_path) for _ in range(3)]
    assert len(set(folders)) == 3 and all(f.is_dir() and not any(f.iterdir()) for f in folders)
    assert folders[1].name in (f"{folders[0].name}-2", folders[1].name)  # same second: a suffix


def test_the_video_goes_on_past_the_last_image_of_the_source(tmp_path):
    """Detections beyond the sequence's last image (a det file longer than seqLength): the frames after it
    are drawn on a grey canvas instead of ending the run in a traceback (StopIteration)."""
    import cv2

    from ros2_tracker.cli.replay import _write_video, resolve_source
    from ros2_tracker.nodes.recording import TrackRows
    from ros2_tracker.viz.sequence import FrameTracks

    seq = tmp_path / "SEQ"
    (seq / "img1").mkdir(parents=True)
    (seq / "det").mkdir()
    for k in (1, 2, 3):
        cv2.imwrite(str(seq / "img1" / f"{k:06d}.jpg"), np.full((120, 160, 3), 40 * k, np.uint8))
    (seq / "seqinfo.ini").write_text("[Sequence]\nname=SEQ\nframeRate=10\nseqLength=3\nimWidth=160\n"
                                     "imHeight=120\nimExt=.jpg\nimDir=img1\n")
    (seq / "det" / "det.txt").write_text("".join(f"{k},-1,10,10,30,60,0.9\n" for k in range(1, 6)))
    src = resolve_source(seq, detections=None, detector=False, frames=None)
    snaps = [FrameTracks(k, np.array([1]), np.array([[10.0, 10.0, 40.0, 70.0]]), np.array([1]))
             for k in range(1, 6)]
    rows = TrackRows(np.arange(1, 6), np.ones(5, int), np.zeros((5, 4)), np.ones(5), snaps, [])
    video = _write_video(src, rows, tmp_path / "SEQ_tracks.mp4")
    cap = cv2.VideoCapture(str(video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5


@pytest.mark.data
@pytest.mark.slow
def test_detector_in_the_graph(tmp_path, ros_env):
    model = require_shared("models", "yolox_nano.onnx")
    require_shared("data", "TUD-Campus", "img1")
    require_modules(*REPLAY_MODULES, "onnxruntime")
    out = tmp_path / "det"
    _cli(["replay", str(TUD), "--detector", "--model", str(model), "--frames", "12", "--no-video", "--out",
          str(out), "--domain-id", ros_env["ROS_DOMAIN_ID"]], ros_env)
    profile = json.loads((out / "latency.json").read_text())
    assert profile["stages"]["detector"]["count"] == 12 and profile["detector"] is True
    rows = read_mot(out / "results" / "TUD-Campus.txt")
    assert len(rows) > 0 and rows.last_frame <= 12


@pytest.mark.data
@pytest.mark.slow
def test_a_recorded_bag_replayed_with_gt_scores_like_its_sequence(tud, tmp_path, ros_env):
    """Field note: rosbag -> HOTA/MOTA/IDF1 in one command. A bag has no gt/gt.txt: `--gt` scores it
    against the sequence it was recorded from (its frames are numbered in stamp order)."""
    _, runs = tud
    out = tmp_path / "from_bag"
    res = _cli(["replay", str(runs[0][0] / "bag"), "--gt", str(TUD / "gt" / "gt.txt"), "--no-video",
                "--out", str(out)], ros_env)
    default_domain = int(res.stdout.split("on ROS_DOMAIN_ID=", 1)[1].split()[0])
    assert default_domain in PRIVATE_DOMAIN_IDS, res.stdout  # no --domain-id: below the ephemeral ports
    from_bag = json.loads((out / "metrics.json").read_text())
    from_sequence = json.loads((runs[0][0] / "metrics.json").read_text())["TUD-Campus"]
    (scores,) = from_bag.values()
    for name in ("HOTA", "MOTA", "IDF1"):
        assert scores[name] == pytest.approx(from_sequence[name], abs=1e-6), (name, res.stdout)
    bad = subprocess.run([*CLI, "replay", str(runs[0][0] / "bag"), "--gt", str(tmp_path / "none.txt")],
                         env=ros_env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--gt" in bad.stderr and "file not found" in bad.stderr


@pytest.mark.data
@pytest.mark.slow
def test_a_bag_of_two_cameras_replays_the_one_named_by_bag_namespace(tud, tmp_path, ros_env):
    """A robot's bag holds /cam1/detections and /cam2/detections; the replay CLI (nodes in the root
    namespace) replayed the first of them, with a warning in nodes.log only. --bag-namespace picks one."""
    from ros2_tracker.io.bag import BagWriter, read_bag

    _, runs = tud
    two = tmp_path / "two_cameras"
    source = list(read_bag(runs[0][0] / "bag", topics=["/detections"]))
    kind = source[0].msgtype
    with BagWriter(two, {"/cam1/detections": kind, "/cam2/detections": kind}) as bag:
        for k, m in enumerate(source):  # cam1 has the last third of the frames only: its scores differ
            if k >= len(source) - len(source) // 3:
                bag.write("/cam1/detections", m.data, m.log_time_ns)
            bag.write("/cam2/detections", m.data, m.log_time_ns + 1)
    out = tmp_path / "cam2"
    _cli(["replay", str(two), "--bag-namespace", "/cam2", "--gt", str(TUD / "gt" / "gt.txt"), "--no-video",
          "--out", str(out)], ros_env)
    (scores,) = json.loads((out / "metrics.json").read_text()).values()
    assert scores["HOTA"] == pytest.approx(json.loads((runs[0][0] / "metrics.json").read_text())
                                           ["TUD-Campus"]["HOTA"], abs=1e-6)
    bad = subprocess.run([*CLI, "replay", str(two), "--bag-namespace", "/cam3"], env=ros_env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--bag-namespace /cam3: no topic of the bag is in it" in bad.stderr
