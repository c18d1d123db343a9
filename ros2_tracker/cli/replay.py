"""``ros2-tracker replay``: run a recorded sequence through the ROS graph and report what came out.

    ros2-tracker replay [SOURCE] [--out DIR] [--detector [--model F]] [--detections F] [--rate R]
                        [--config F] [--frames N] [--no-video] [--domain-id N] [--gt F]
                        [--bag-namespace NS]
                        [--offline [--refine-config F]]

SOURCE is a MOTChallenge folder, a video file or a rosbag2 bag (default: the built-in synthetic scene,
generated into ``--out``). The nodes of ``launch/pipeline.launch.py`` run as separate processes over DDS
on their own ``ROS_DOMAIN_ID`` (logs under ``--out``): replay_node -> (the source's recorded detections,
or detector_node with ``--detector``) -> tracker_node -> recorder_node. Rate 0 (default) is lock-step:
the replay publishes frame k + 1 once frame k's tracks came out, so the run is deterministic and as fast
as the graph keeps up. A progress bar follows the tracks topic.

When the replay ends the recorder is stopped cleanly and its bag is read back into:

* ``results/<name>.txt``: MOTChallenge results, the confirmed tracks matched in each frame (state
  CONFIRMED, time_since_update 0; with ``report_lost_s`` > 0 also lost tracks that long), the rows
  ``ros2-tracker track`` writes;
* ``metrics.json`` / ``metrics.csv`` when the source has ground truth (gt/gt.txt, or ``--gt F``: a
  recorded bag scored against the sequence it was recorded from);
* ``latency.json`` and a printed table: p50/p99 per stage from the nodes' ``~/timing`` topics, and end to
  end, from the replay publishing the frame (the DDS source timestamp of its ``/clock`` message, sent
  just before the frame) to the recorder receiving its tracks;
* ``<name>_tracks.mp4`` (unless ``--no-video``) and ``<name>_ids.png``;
* ``bag/`` (the recording) and ``logs/nodes.log`` (every node's output);
* with ``--offline``: ``results/<name>.offline.txt``, the recorded tracks refined as a batch
  (``ros2_tracker.refine``: tracklets linked across gaps, short gaps interpolated), marked offline by
  ``results/<name>.offline.txt.offline.json``, and, with ground truth, ``metrics_offline.json`` with
  the online and offline metrics side by side. The online results are left as they are.

Exit status: 0 on success, 1 when a node failed, 2 for a bad SOURCE or option (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ros2_tracker.cli.errors import (
    USER_ERRORS,
    UserError,
    check_frames_option,
    check_scoring_ground_truth,
    metrics_unavailable,
)
from ros2_tracker.cli.refining import add_offline_options
from ros2_tracker.cli.runs import new_run_folder
from ros2_tracker.io.files import write_text
from ros2_tracker.launching import (
    NodeSpec,
    Supervisor,
    package_share_directory,
    parse_launch_file,
    private_domain_id,
)
from ros2_tracker.nodes.recording import TrackRows, format_latency, latency_profile, tracks_from_bag

__all__ = [
    "GraphRun",
    "ReplaySource",
    "add_parser",
    "resolve_source",
    "run",
]

NAMES = {"replay": "replay", "detector": "detector", "tracker": "tracker", "recorder": "recorder"}
"""Node names, as launch/pipeline.launch.py gives them (their ~/timing topics are /<name>/timing)."""
_READY_TIMEOUT_S = 60.0
# A participant already on the domain may be discovered only at its next periodic announcement (every 3 s
# by Fast DDS's default; seen here after up to 2.4 s on an idle machine): the other-graph check before the
# first frame waits until the CLI's own participant has run this long.
_DISCOVERY_S = 4.0
_DETECTIONS = "ros2_tracker/msg/Detection2DArray"


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the subcommand."""
    p = sub.add_parser("replay", help="replay a sequence through the ROS graph: results, metrics, latency",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", nargs="?", type=Path, metavar="SOURCE",
                   help="MOTChallenge folder, video file or rosbag2 bag (default: synthetic scene)")
    p.add_argument("--out", type=Path, metavar="DIR",
                   help="output folder (default runs/replay-<name>-<time>)")
    p.add_argument("--detector", action="store_true", help="detect on the images with detector_node (YOLOX)")
    p.add_argument("--model", type=Path, metavar="F", help="YOLOX ONNX model for --detector "
                   "(default ../shared/models/yolox_nano.onnx when present)")
    p.add_argument("--detections", type=Path, metavar="F",
                   help="MOTChallenge detections to replay (default det/det.txt)")
    p.add_argument("--gt", type=Path, metavar="F",
                   help="MOTChallenge ground truth to score against (default: the sequence's gt/gt.txt; "
                        "a bag has none: its frames are numbered 1, 2, ... in stamp order, so give the gt "
                        "of the sequence it was recorded from)")
    p.add_argument("--bag-namespace", metavar="NS",
                   help="a bag of several cameras: replay the topics of this one (e.g. /cam2 for "
                        "/cam2/detections; default: /detections, else the first with a warning in the log)")
    p.add_argument("--rate", type=float, default=0.0, metavar="R",
                   help="1.0 real time, 2.0 twice as fast, 0 lock-step as fast as possible (default 0)")
    p.add_argument("--config", type=Path, metavar="F",
                   help="tracker parameters (default config/tracker.yaml)")
    p.add_argument("--frames", type=int, metavar="N", help="replay only the first N frames")
    p.add_argument("--no-video", action="store_true", help="skip the annotated video")
    p.add_argument("--domain-id", type=int, metavar="N",
                   help="ROS_DOMAIN_ID of the graph (default: derived from the pid, in 1..101, the ROS 2 "
                   "docs' safe range on Linux)")
    add_offline_options(p)
    p.set_defaults(run=run)
    return p


# ------------------------------------------------------------------------------------------ the source
@dataclass
class ReplaySource:
    """What is replayed.

    Attributes:
        path: folder, video file or bag.
        kind: ``mot`` | ``video`` | ``bag``.
        name: sequence name (results file name).
        fps: frame rate [Hz] the replay stamps frames with (0 for bags: recorded stamps).
        length: number of frames to replay (0 when unknown).
        gt_path: ground truth, when there is one.
        has_images: frames to show / detect on.
        detections: MOT detection file replayed (None: the detector, or a bag's own detections).
        sequence_length: seqLength of the sequence's seqinfo.ini (0 when unknown).
        bag_roles: what the replay republishes of a bag: ``{topic: role}``
            (:func:`ros2_tracker.nodes.replay_node.bag_roles`; empty for other sources).
        picture_topic: a bag's topic of the camera's pictures (the replay's choice, with or without the
            detector), which the video draws the tracks on; None without one.
    """

    path: Path
    kind: str
    name: str
    fps: float = 0.0
    length: int = 0
    gt_path: Path | None = None
    has_images: bool = False
    detections: Path | None = None
    sequence_length: int = 0
    bag_roles: dict[str, str] = field(default_factory=dict)
    picture_topic: str | None = None

    @property
    def compressed_images(self) -> bool:
        """A bag whose pictures are replayed only as sensor_msgs/CompressedImage (on image/compressed)."""
        roles = set(self.bag_roles.values())
        return "compressed" in roles and "image" not in roles

    @property
    def compressed_depth(self) -> bool:
        """A bag whose depth images are replayed as image_transport's compressedDepth (on
        depth/compressedDepth)."""
        return "compressed_depth" in self.bag_roles.values()


def _synthetic_source(args: argparse.Namespace, out: Path) -> Path:
    try:
        from ros2_tracker.synthetic import SceneConfig, generate_scene
    except ImportError:
        raise UserError("no SOURCE given and the synthetic scene generator is unavailable") from None
    from tqdm import tqdm

    config = SceneConfig(num_frames=min(args.frames, 200)) if args.frames else SceneConfig()
    scene = generate_scene(config)
    render = args.detector or not args.no_video
    with tqdm(total=scene.num_frames, desc="render synthetic scene", unit="frame", leave=False,
              disable=not render) as bar:
        return scene.write_mot(out / "source" / config.sequence_name, render=render,
                               progress=lambda _f: bar.update())


def resolve_source(path: Path, *, detections: Path | None, detector: bool,
                   frames: int | None, bag_namespace: str = "") -> ReplaySource:
    """Check SOURCE (and ``--detections``) and describe them; every problem is a one-line :class:`UserError`.

    ``length`` is the number of frames the replay will publish: the frames with ``detector`` (images
    are replayed), else the longer of seqinfo.ini's seqLength and the detections' last frame.
    """
    from ros2_tracker.io.video import VIDEO_SUFFIXES
    from ros2_tracker.nodes.replay_node import is_bag

    if not path.exists():
        raise UserError(f"SOURCE {path}: no such file or folder")
    if is_bag(path):
        src = _bag_source(path, detector, bag_namespace)
    elif path.is_dir() and any((path / p).exists() for p in ("seqinfo.ini", "det", "img1")):
        src = _mot_source(path)
    elif path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
        src = _video_source(path)
    else:
        raise UserError(f"SOURCE {path}: not a MOTChallenge folder, a video file "
                        f"({', '.join(VIDEO_SUFFIXES)}) or a rosbag2 bag (metadata.yaml / .mcap)")
    if detections is not None:
        src.detections = detections
    if detector and not src.has_images:
        raise UserError(f"SOURCE {path}: --detector needs images, and this source has none")
    if not detector and src.kind != "bag":
        if src.detections is None:
            raise UserError(f"SOURCE {path}: no detections (det/det.txt); give --detections FILE or use "
                            "--detector")
        src.length = max(src.sequence_length, _last_frame(src.detections))
    if frames:
        src.length = min(src.length, frames) if src.length else frames
    return src


def _mot_source(path: Path) -> ReplaySource:
    from ros2_tracker.io.sequence import read_sequence_info
    from ros2_tracker.io.video import open_frame_source

    info = read_sequence_info(path)
    det = path / "det" / "det.txt"
    src = ReplaySource(path, "mot", info.name, info.fps, info.length, has_images=info.has_images,
                       gt_path=info.gt_path if info.gt_path.is_file() else None,
                       detections=det if det.is_file() else None, sequence_length=info.length)
    if src.has_images:
        frames = open_frame_source(path)
        src.fps, src.length = frames.fps, frames.length
        frames.close()
    return src


def _video_source(path: Path) -> ReplaySource:
    from ros2_tracker.io.video import FrameSourceError, open_frame_source

    try:
        video = open_frame_source(path)
    except FrameSourceError as exc:
        raise UserError(f"SOURCE {exc}") from None
    seq = video.sequence
    video.close()
    return ReplaySource(path, "video", video.name, video.fps, video.length, has_images=True,
                        gt_path=seq.gt_path if seq is not None and seq.gt_path.is_file() else None,
                        sequence_length=seq.length if seq is not None else 0)


def _last_frame(detections: Path) -> int:
    from ros2_tracker.io.mot import MotFormatError, read_mot

    try:
        return read_mot(detections, note_unsorted=False).last_frame
    except MotFormatError as exc:
        raise UserError(f"detections {exc}") from None


def _bag_source(path: Path, detector: bool, bag_namespace: str = "") -> ReplaySource:
    from ros2_tracker.io.bag import BagError, bag_files, bag_topics
    from ros2_tracker.nodes.replay_node import ReplayConfig, bag_roles

    try:
        bag_files(path)  # metadata.yaml alone lists topics: a folder without its .mcap files is no bag
        topics = bag_topics(path)
        types = frozenset(topics.values())
    except BagError as exc:
        raise UserError(f"SOURCE {exc}") from None
    if not detector and _DETECTIONS not in types:
        raise UserError(f"SOURCE {path}: the bag has no {_DETECTIONS} topic; use --detector")
    try:  # as build_specs' replay will choose them (a bag_namespace without topics: told by build_specs)
        roles = bag_roles(ReplayConfig(source=str(path), publish_images=detector,
                                       bag_namespace=bag_namespace), topics)
        # pictures, as the replay would choose them: a compressedDepth stream is a CompressedImage, not one
        shown = roles if detector else bag_roles(ReplayConfig(source=str(path), bag_namespace=bag_namespace),
                                                 topics)
    except BagError:
        roles, shown = {}, {}
    pictures = [topic for topic, role in shown.items() if role in ("image", "compressed")]
    return ReplaySource(path, "bag", path.stem if path.is_file() else path.name, has_images=bool(pictures),
                        bag_roles=roles, picture_topic=pictures[0] if pictures else None)


# --------------------------------------------------------------------------------------------- the graph
def _default_model() -> Path | None:
    cand = Path(__file__).resolve().parents[2] / ".." / "shared" / "models" / "yolox_nano.onnx"
    return cand.resolve() if cand.is_file() else None


def _check_bag_namespace(src: ReplaySource, namespace: str) -> None:
    """``--bag-namespace``: a bag with topics in that namespace (UserError otherwise, before any node)."""
    if src.kind != "bag":
        raise UserError("--bag-namespace needs a bag as SOURCE")
    from ros2_tracker.io.bag import bag_topics

    ns, topics = "/" + namespace.strip("/"), sorted(bag_topics(src.path))
    if not any(t.startswith(ns.rstrip("/") + "/") for t in topics):
        raise UserError(f"--bag-namespace {namespace}: no topic of the bag is in it (topics: "
                        f"{', '.join(topics)})")


def build_specs(src: ReplaySource, args: argparse.Namespace, bag: Path) -> dict[str, NodeSpec]:
    """The nodes of launch/pipeline.launch.py for this replay, with the replay CLI's own settings."""
    share = package_share_directory("ros2_tracker")
    model = args.model or (_default_model() if args.detector else None)  # checked by _check_args
    values = {"source": str(src.path.resolve()), "rate": repr(float(args.rate)),
              "use_detector": "true" if args.detector else "false", "record": "true", "bag": str(bag),
              "model_path": str(Path(model).resolve()) if model else ""}
    if args.config is not None:
        if not args.config.is_file():
            raise UserError(f"--config {args.config}: file not found")
        values["params_file"] = str(args.config.resolve())
    specs = {s.name: s for s in parse_launch_file(share / "launch" / "pipeline.launch.py").node_specs(values)}
    # wait_for_subscribers: the detector (on image) or the tracker (on detections), plus the CLI's "go"
    # subscription (run_graph); the replay adds the recorder's (wait_for_recorder). start_stamp 0: frame k
    # is stamped (k - 1) / fps, which tracks_from_bag relies on.
    replay = specs[NAMES["replay"]].with_params(
        publish_images=bool(args.detector), max_frames=int(args.frames or 0), progress_every=0,
        start_stamp=0.0, wait_for_subscribers=2,
        wait_for_subscribers_timeout_s=2 * _READY_TIMEOUT_S)
    if src.detections is not None and not args.detector:
        replay = replay.with_params(detections_file=str(src.detections.resolve()))
    if args.bag_namespace:
        _check_bag_namespace(src, args.bag_namespace)
        replay = replay.with_params(bag_namespace=args.bag_namespace)
    specs[NAMES["replay"]] = replay
    if args.detector:  # every image reaches the detector (the launch file's default is best effort)
        specs[NAMES["detector"]] = specs[NAMES["detector"]].with_params(
            image_qos="reliable", input="compressed" if src.compressed_images else "raw")
    if src.compressed_depth:  # the bag's depth is image_transport's compressedDepth: so it is republished
        specs[NAMES["tracker"]] = specs[NAMES["tracker"]].with_params(depth_input="compressedDepth")
    topics = ["/tracks", "/detections", "/clock", "/replay/timing", "/tracker/timing"]
    if args.detector:
        topics.append("/detector/timing")
    recorder = specs[NAMES["recorder"]]
    specs[NAMES["recorder"]] = recorder.with_params(topics=topics, max_wait_s=_READY_TIMEOUT_S)
    return specs


@dataclass
class GraphRun:
    """How the graph run went.

    Attributes:
        wall_s: from letting the replay go to the last new tracks message [s] (includes the time the
            replay takes to see the go; :func:`latency_profile`'s ``span_s`` does not).
        frames_seen: distinct stamps of tracks the CLI received.
        exit_codes: every node's exit code.
        failed: why the run failed ('' when it did not).
        warnings: what went wrong without costing the run anything (a node that had to be killed after
            the recorder had closed a complete bag).
    """

    wall_s: float = 0.0
    frames_seen: int = 0
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    failed: str = ""
    warnings: list[str] = field(default_factory=list)


class _Watcher:
    """The CLI's own rclpy node (private context): counts tracks messages and checks graph readiness."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions

        from ros2_tracker.io.bag import cdr_header_stamp_ns

        self._rclpy = rclpy
        self.context = Context()
        rclpy.init(args=[], context=self.context, domain_id=domain_id,
                   signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node("replay_cli", context=self.context)
        self.started = time.monotonic()
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.stamps: set[int] = set()
        self.last_arrival = 0.0  # time.monotonic() of the latest new stamp
        self._stamp_of = cdr_header_stamp_ns
        from ros2_tracker.msg import TrackArray

        self.node.create_subscription(TrackArray, "/tracks", self._on_tracks, 100, raw=True)

    def _on_tracks(self, data: bytes) -> None:
        stamp = self._stamp_of(data)
        if stamp not in self.stamps:
            self.stamps.add(stamp)
            self.last_arrival = time.monotonic()

    def go(self, topic: str) -> None:
        """Subscribe to the replay's first topic: the last subscriber the replay waits for."""
        from rclpy.qos import qos_profile_sensor_data

        msg_type = _message_type(topic)
        self.node.create_subscription(msg_type, topic, lambda _data: None, qos_profile_sensor_data, raw=True)

    def spin(self, seconds: float) -> None:
        """Process callbacks for about ``seconds``."""
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            self.executor.spin_once(timeout_sec=min(left, 0.05))

    def subscribers(self, topic: str) -> set[str]:
        """Names of the nodes subscribed to ``topic``."""
        return {i.node_name for i in self.node.get_subscriptions_info_by_topic(topic)}

    def publishers(self, topic: str) -> set[str]:
        """Names of the nodes publishing ``topic``."""
        return {i.node_name for i in self.node.get_publishers_info_by_topic(topic)}

    def running_twice(self, names: Iterable[str]) -> list[str]:
        """Those of ``names`` that more than one node of the root namespace, the replay's, has (another
        graph shares the domain and its topics; one in a namespace of its own has topics of its own)."""
        seen = [n for n, ns in self.node.get_node_names_and_namespaces() if ns == "/"]
        return sorted(n for n in set(names) if seen.count(n) > 1)

    def shared_topics(self) -> list[str]:
        """The graph's topics (one publisher each: the replay or detector, the tracker) that more nodes
        publish: another graph on the domain, whatever its nodes' names."""
        counts = {t: self.node.count_publishers(t) for t in ("/detections", "/tracks")}
        return [f"{t} ({n} publishers)" for t, n in counts.items() if n > 1]

    def close(self) -> None:
        """Destroy the node and shut the private context down."""
        self.executor.shutdown()
        self.node.destroy_node()
        self._rclpy.shutdown(context=self.context)


def _wait_ready(watcher: _Watcher, sup: Supervisor, recorded: list[str], image_topic: str | None) -> str:
    """Wait until every recorded topic has the recorder's subscription and every node listens; '' if so.

    ``image_topic``: the detector's input, when there is a detector.
    """
    need = {t: {NAMES["recorder"]} for t in recorded}
    need.setdefault("/detections", set()).add(NAMES["tracker"])
    if image_topic:
        need[image_topic] = {NAMES["detector"]}
    # this graph's own publishers, listed before another graph's are looked for (shared_topics counts them)
    own = {"/tracks": NAMES["tracker"], "/detections": NAMES["detector"] if image_topic else NAMES["replay"]}
    end = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < end:
        if sup.stop_requested:  # Ctrl-C while starting: the nodes' exit is ours, not a failure
            return "interrupted"
        dead = [n for n in sup.names if sup.returncode(n) is not None]
        if dead:
            return f"{dead[0]} exited with code {sup.returncode(dead[0])} while starting"
        if (all(names <= watcher.subscribers(t) for t, names in need.items())
                and all(name in watcher.publishers(t) for t, name in own.items())
                and time.monotonic() - watcher.started >= _DISCOVERY_S):
            return _other_graph(watcher, sup)
        watcher.spin(0.1)
    late = sorted(t for t, names in need.items() if not names <= watcher.subscribers(t))
    if not late:
        unseen = sorted(t for t, name in own.items() if name not in watcher.publishers(t))
        return f"no publisher of {', '.join(unseen)} after {_READY_TIMEOUT_S:g} s"
    return f"the nodes were not subscribed to {', '.join(late)} after {_READY_TIMEOUT_S:g} s"


def _other_graph(watcher: _Watcher, sup: Supervisor) -> str:
    """Why another graph on this ROS domain meets this one (the two would feed each other: wrong results,
    or a failure at the end), or ''. Checked when the nodes are wired and this process's participant has
    run ``_DISCOVERY_S`` (a graph started before it may be discovered only then), and again after the
    replay: one started or discovered during it still fails the run."""
    twice = watcher.running_twice(sup.names)
    if twice:
        return (f"another graph runs on this ROS domain (nodes {', '.join(twice)} twice): choose a free one "
                "with --domain-id")
    shared = watcher.shared_topics()
    if shared:
        return (f"another graph runs on this ROS domain (topics {', '.join(shared)}): choose a free one "
                "with --domain-id")
    return ""


def run_graph(specs: dict[str, NodeSpec], src: ReplaySource, env: dict[str, str], log_path: Path,
              domain_id: int) -> GraphRun:
    """Start every node at once; when all are wired, let the replay go; stop the rest when it ends.

    The replay waits for ``wait_for_subscribers`` subscribers on its first topic, one of which is this
    process's "go" subscription, created only once the recorder records every topic and the tracker
    (and detector) listen. So no message is lost to discovery, while discovery of all processes
    overlaps their start-up.
    """
    from tqdm import tqdm

    run = GraphRun()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    image_topic = None
    if NAMES["detector"] in specs:
        image_topic = "/image/compressed" if src.compressed_images else "/image"
    recorded = list(specs[NAMES["recorder"]].params["topics"])
    watcher = _Watcher(domain_id)  # first, so that every node discovers it while starting
    try:
        with log_path.open("w") as log:
            sup = Supervisor(log, env)
            try:
                with sup.forwarding_signals():  # before the first node starts: Ctrl-C then stops them all
                    sup.start_all(list(specs.values()))
                    run.failed = _wait_ready(watcher, sup, recorded, image_topic)
                    if not run.failed:
                        start = time.monotonic()
                        watcher.go(image_topic or "/detections")
                        run.failed = _follow(sup, watcher, src, tqdm)
                        run.wall_s = max(watcher.last_arrival - start, 0.0)
                        _settle(watcher)
                        run.failed = run.failed or _other_graph(watcher, sup)
            finally:
                sup.shutdown()
                for line in sup.report().splitlines():
                    sup.log(line)
    finally:
        run.frames_seen = len(watcher.stamps)
        watcher.close()
    run.exit_codes = sup.exit_codes()
    if not run.failed:
        run.failed, run.warnings = _judge_exits(run.exit_codes, {n: sup.signals_sent(n) for n in sup.names})
    return run


def _judge_exits(codes: dict[str, int | None], sent: dict[str, list[str]]) -> tuple[str, list[str]]:
    """Why a run whose every frame was tracked failed by its nodes' exits ('' if it did not), and warnings.

    Nodes are stopped with SIGINT; the recorder must close its bag itself (exit 0). Another node that
    ignored SIGINT and SIGTERM and was killed in the stop (a hang in its shutdown, seen once on a loaded CI
    in the detector) cost nothing once the recorder closed the bag: a warning, its stacks in the log."""
    recorder, failed, warnings = NAMES["recorder"], "", []
    for n, rc in codes.items():
        if rc == 0 or (rc == -signal.SIGINT and n != recorder):
            continue
        if (rc is not None and rc in (-signal.SIGTERM, -signal.SIGKILL) and sent.get(n, [])[:1] == ["SIGINT"]
                and n != recorder and codes.get(recorder) == 0):  # killed in the stop, the bag complete
            warnings.append(f"{n} did not stop on SIGINT and was killed ({signal.Signals(-rc).name}; its "
                            f"Python stacks are in the log): the recording is complete")
        elif not failed:
            failed = f"{n} exited with code {rc}"
    return failed, warnings


def _follow(sup: Supervisor, watcher: _Watcher, src: ReplaySource, tqdm: Any) -> str:
    """Spin the watcher with a progress bar until the replay exits or every frame's tracks came; ''
    or why it failed.

    The replay exits a moment after its last frame (it waits for the acknowledgements of its
    reliable subscribers); when the number of frames is known, their tracks are enough.
    """
    replay = NAMES["replay"]
    with tqdm(total=src.length or None, desc=f"replay {src.name}", unit="frame") as bar:
        while sup.returncode(replay) is None:
            if src.length and len(watcher.stamps) >= src.length:
                return ""
            if sup.stop_requested:
                sup.wait(10.0)
                return "interrupted"
            others = [n for n in sup.names if n != replay and sup.returncode(n) is not None]
            if others:
                return f"{others[0]} exited with code {sup.returncode(others[0])} during the replay"
            watcher.spin(0.1)
            bar.update(len(watcher.stamps) - bar.n)
        watcher.spin(0.2)
        bar.update(len(watcher.stamps) - bar.n)
    rc = sup.returncode(replay)
    if rc == 2:
        return "the replay could not start (bad source or parameter; see the log)"
    return "" if rc == 0 else f"replay exited with code {rc}"


def _message_type(topic: str) -> type:
    from sensor_msgs.msg import CompressedImage, Image

    from ros2_tracker.msg import Detection2DArray

    return {"/image": Image, "/image/compressed": CompressedImage}.get(topic, Detection2DArray)


def _settle(watcher: _Watcher, quiet_s: float = 0.5, limit_s: float = 5.0) -> None:
    """After the replay: wait until no new tracks arrived for ``quiet_s`` (the recorder has them too)."""
    end = time.monotonic() + limit_s
    count, since = len(watcher.stamps), time.monotonic()
    while time.monotonic() < end and time.monotonic() - since < quiet_s:
        watcher.spin(0.05)
        if len(watcher.stamps) != count:
            count, since = len(watcher.stamps), time.monotonic()


# --------------------------------------------------------------------------------------------- outputs
def _evaluate(src: ReplaySource, results: Path, out: Path, frames: int | None) -> list[tuple[str, Path]]:
    if src.gt_path is None:
        print("no ground truth: metrics skipped", file=sys.stderr)
        return []
    if (why := metrics_unavailable()) is not None:
        print(f"note: {why}", file=sys.stderr)
        return []
    from ros2_tracker.eval.metrics import evaluate_sequence, format_table, write_csv, write_json

    rows = [(src.name, evaluate_sequence(src.gt_path, results, name=src.name, num_frames=frames))]
    print(format_table(rows))
    write_json(out / "metrics.json", rows)
    write_csv(out / "metrics.csv", rows)
    return [("metrics", out / "metrics.json")]


def _draw(src: ReplaySource, rows: TrackRows, out: Path, no_video: bool) -> list[tuple[str, Path]]:
    from ros2_tracker.io.mot import read_mot
    from ros2_tracker.viz.plots import plot_ids_over_time

    gt_frames = gt_ids = None
    if src.gt_path is not None:
        gt = read_mot(src.gt_path, validate_boxes=False, note_unsorted=False)
        shown = gt.frames <= max(rows.message_frames, default=0)  # --frames: the same span
        gt_frames, gt_ids = gt.frames[shown], gt.ids[shown]
    plot = plot_ids_over_time(rows.frames, rows.ids, out / f"{src.name}_ids.png", gt_frames=gt_frames,
                              gt_ids=gt_ids, title=f"{src.name}: track ids (ROS graph)")
    written = [("plot", plot)]
    if not no_video and rows.snapshots:
        video = out / f"{src.name}_tracks.mp4"
        if src.kind == "bag" and src.picture_topic is not None:  # the bag's own pictures
            from ros2_tracker.viz.recorded import write_recorded_video

            video = write_recorded_video(video, src.path, src.picture_topic, rows, title=src.name)[0]
        else:
            video = _write_video(src, rows, video)
        written.append(("video", video))
    return written


def _write_video(src: ReplaySource, rows: TrackRows, path: Path) -> Path:
    """Frames of the source (grey canvas for bags without pictures, or missing frames) with the tracks
    drawn."""
    from tqdm import tqdm

    from ros2_tracker.io.video import open_frame_source
    from ros2_tracker.viz.recorded import annotated_frame
    from ros2_tracker.viz.video import VideoWriter

    by_frame = {s.frame: s for s in rows.snapshots}
    with_images = src.has_images and src.kind != "bag"
    frames = open_frame_source(src.path).frames(max(by_frame)) if with_images else None
    size = None
    with VideoWriter(path, src.fps or 30.0) as video, tqdm(total=max(by_frame), desc="draw video",
                                                           unit="frame", leave=False) as bar:
        for k in range(1, max(by_frame) + 1):
            # (None past the source's end: detections may run beyond its last image or video frame)
            frame = next(frames, None) if frames is not None else None
            image = annotated_frame(frame.image if frame is not None else None, by_frame.get(k),
                                    f"{src.name}  frame {k}", size)
            size = size or (image.shape[1], image.shape[0])
            video.write(image)
            bar.update()
        return Path(video.path)


# ------------------------------------------------------------------------------------------------- run
def _domain_id(args: argparse.Namespace) -> int:
    if args.domain_id is not None:
        if not 0 <= args.domain_id <= 232:
            raise UserError(f"--domain-id must be in 0..232, got {args.domain_id}")
        return args.domain_id
    return private_domain_id(os.getpid())


def _check_args(args: argparse.Namespace) -> None:
    _check_rate(args.rate)
    if args.model is not None and not args.detector:
        raise UserError("--model is the detector's: give --detector too (or leave --model out)")
    if args.detector and args.detections is not None:
        raise UserError("--detections replays recorded detections, --detector detects on the images: "
                        "give one")
    if args.detector:
        _check_detector_model(args.model or _default_model())
    check_frames_option(args.frames)
    if args.out is not None and (args.out / "bag").exists():
        raise UserError(f"--out {args.out}: already holds a replay (bag/); choose another folder")
    if args.refine_config is not None and not args.offline:
        raise UserError("--refine-config needs --offline")
    if args.offline:
        from ros2_tracker.cli.refining import load_refine_config

        load_refine_config(args.refine_config)  # a bad parameter file fails now, not after the replay
    if args.config is not None:
        _check_tracker_file(args.config)
    if args.gt is not None and not args.gt.is_file():
        raise UserError(f"--gt {args.gt}: file not found")
    if args.domain_id is not None:
        _domain_id(args)  # out of range: before a run folder is made


def _check_rate(rate: float) -> None:
    """``--rate`` within the replay node's range (ReplayConfig's ``rate``), before any node starts."""
    from ros2_tracker.core.config import ConfigError
    from ros2_tracker.nodes.replay_node import ReplayConfig

    try:
        next(s for s in ReplayConfig.specs() if s.name == "rate").validate(rate)
    except ConfigError as exc:
        raise UserError(f"--{exc}") from None


def _check_detector_model(model: Path | None) -> None:
    """The detector's model opens (YOLOX through ONNX Runtime, as detector_node will), before any node starts:
    a wrong file is one line here instead of a node dying at start. ConfigError (exit 2) otherwise."""
    from ros2_tracker.detection.config import DetectorConfig
    from ros2_tracker.detection.yolox import YoloxDetector

    if model is None:
        raise UserError("--detector needs --model F.onnx")
    if not Path(model).is_file():
        raise UserError(f"--model {model}: model file not found")
    YoloxDetector(DetectorConfig(model_path=str(model)))


def _check_tracker_file(path: Path) -> None:
    """``--config`` as the tracker node will read it, checked before any node starts (as ``track`` checks
    it): a misspelt name fails instead of being ignored, a bad value is one line instead of a node dying
    at start. ConfigError (exit 2) otherwise."""
    from ros2_tracker.cmc.ecc import CmcConfig
    from ros2_tracker.core.tracker import TrackerConfig
    from ros2_tracker.io.params import load_config
    from ros2_tracker.nodes.node_config import tracker_node_param_names
    from ros2_tracker.regression.config import RegressorConfig
    from ros2_tracker.regression.tracktor import TracktorConfig

    if not path.is_file():
        raise UserError(f"--config {path}: file not found")
    node_names = tracker_node_param_names().union(*({s.name for s in c.specs()} for c in
                                                    (CmcConfig, TracktorConfig, RegressorConfig)))
    load_config(TrackerConfig, path, allowed_extra=node_names, node="/" + NAMES["tracker"])


def run(args: argparse.Namespace) -> int:
    """Execute ``replay``."""
    _check_args(args)
    made = args.out is None or not args.out.exists()
    out = args.out or new_run_folder(f"replay-{(args.source.name if args.source else 'synthetic')}")
    bag = (out / "bag").resolve()
    try:
        src, specs = _prepare(args, out, bag)
    except USER_ERRORS:  # nothing ran: no run folder left behind (unless it was the user's own)
        if made:
            shutil.rmtree(out, ignore_errors=True)
        raise
    domain_id = _domain_id(args)
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_LOG_DIR=str((out / "ros_log").resolve()))
    os.environ["ROS_LOG_DIR"] = env["ROS_LOG_DIR"]  # this process's own rclpy node logs there too
    what = "detector_node" if args.detector else (src.detections.name if src.detections else "the bag's")
    print(f"replay {src.name} ({src.kind}, {src.length or '?'} frames, detections: {what}, rate "
          f"{args.rate:g}) on ROS_DOMAIN_ID={domain_id} -> {out}")
    graph = run_graph(specs, src, env, out / "logs" / "nodes.log", domain_id)
    if graph.failed:
        _print_log_tail(out / "logs" / "nodes.log")
        print(f"ros2-tracker replay: error: {graph.failed} (log: {out / 'logs' / 'nodes.log'})",
              file=sys.stderr)
        return 130 if graph.failed == "interrupted" else 1
    for warning in graph.warnings:
        print(f"ros2-tracker replay: warning: {warning} (log: {out / 'logs' / 'nodes.log'})", file=sys.stderr)
    return _report(src, args, out, bag, graph)


def _prepare(args: argparse.Namespace, out: Path, bag: Path) -> tuple[ReplaySource, dict[str, NodeSpec]]:
    """The source (the synthetic scene written into ``out`` first) and the nodes to start."""
    if args.source is None:
        out.mkdir(parents=True, exist_ok=True)
        source_path = _synthetic_source(args, out)
    else:
        source_path = args.source
    src = resolve_source(source_path, detections=args.detections, detector=args.detector, frames=args.frames,
                         bag_namespace=args.bag_namespace or "")
    if args.gt is not None:
        src.gt_path = args.gt
    if src.gt_path is not None:
        check_scoring_ground_truth(src.gt_path, args.frames)
    out.mkdir(parents=True, exist_ok=True)
    return src, build_specs(src, args, bag)


def _report(src: ReplaySource, args: argparse.Namespace, out: Path, bag: Path, graph: GraphRun) -> int:
    from ros2_tracker.io.mot import write_results

    rows = tracks_from_bag(bag, src.fps if src.kind != "bag" else 0.0,
                           report_lost_s=_tracker_config(args).report_lost_s, snapshots=not args.no_video)
    results = out / "results" / f"{src.name}.txt"
    write_results(results, rows.frames, rows.ids, rows.boxes_tlwh, rows.scores, world=rows.positions)
    profile = latency_profile(bag)
    n = len(rows.stamps_ns)
    seconds = profile.get("span_s", graph.wall_s)
    profile.update(frames=n, fps=n / max(seconds, 1e-9), rate=args.rate, detector=bool(args.detector))
    missing = (src.length - n) if src.length else 0
    note = f"; {missing} frames without tracks" if missing > 0 else ""
    print(f"replayed {n} frames in {seconds:.2f} s ({profile['fps']:.1f} fps): {len(np.unique(rows.ids))} "
          f"tracks{note}")
    written = [("results", results)]
    written += _evaluate(src, results, out, args.frames)
    if args.offline:
        written += _offline(src, args, rows, results, out)
    write_text(out / "latency.json", json.dumps(profile, indent=2) + "\n")
    print(format_latency(profile))
    written.append(("latency", out / "latency.json"))
    written += _draw(src, rows, out, args.no_video)
    written += [("bag", out / "bag"), ("logs", out / "logs" / "nodes.log")]
    for what, path in written:
        print(f"  {what:8s} {path}")
    warn_logged_problems(out / "logs" / "nodes.log")
    return 0


_LOSS_PHRASES = ("[ERROR]", "never reached", "never received", "stamps went back", "stamps jump",
                 "resetting the tracker", "resetting Tracktor", "dropped as late")


def warn_logged_problems(log: Path, shown: int = 5) -> int:
    """Say on stderr what the nodes logged that the results may lack (errors: a truncated bag, messages
    lost between nodes, stamps that went back or jumped): a replay that ends with exit 0 may still have
    lost frames, and the log is where the nodes said so. Returns the number of such lines."""
    if not log.is_file():
        return 0
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines()
             if any(p in ln for p in _LOSS_PHRASES)]
    if lines:
        print(f"warning: the nodes logged {len(lines)} problem(s) the results may reflect (all in {log}):",
              file=sys.stderr)
        for line in lines[:shown]:
            print(f"  {line}", file=sys.stderr)
    return len(lines)


def _tracker_config(args: argparse.Namespace) -> Any:
    """The TrackerConfig of the tracker node's parameters (``--config``, else the defaults); the file's
    parameters of other nodes are left to those nodes, which checked them at start."""
    from ros2_tracker.core.tracker import TrackerConfig
    from ros2_tracker.io.params import load_ros_yaml

    values = load_ros_yaml(args.config, node="/" + NAMES["tracker"]) if args.config is not None else {}
    names = {s.name for s in TrackerConfig.specs()}
    return TrackerConfig.from_dict({k: v for k, v in values.items() if k in names})


def _offline(src: ReplaySource, args: argparse.Namespace, rows: TrackRows, results: Path,
             out: Path) -> list[tuple[str, Path]]:
    """``--offline``: refine the recorded tracks into a file of their own and score online vs offline."""
    from ros2_tracker.cli.refining import load_refine_config, refine_recorded
    from ros2_tracker.refine.outputs import fps_from_stamps

    return refine_recorded(rows.frames, rows.ids, rows.boxes_tlwh, rows.scores, results=results,
                           fps=src.fps if src.fps > 0 else fps_from_stamps(rows.stamps_ns),
                           config=load_refine_config(args.refine_config), classes=rows.classes,
                           world=rows.positions, gt=src.gt_path, name=src.name, num_frames=args.frames,
                           json_path=out / "metrics_offline.json")


def _print_log_tail(path: Path, lines: int = 15) -> None:
    if path.is_file():
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        print("\n".join(tail), file=sys.stderr)

