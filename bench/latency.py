"""End-to-end latency of tracker_node over DDS, beside a bare relay node (the transport floor).

For each number of objects per frame (10 / 100 / 500), this script publishes ``Detection2DArray``
messages at 30 Hz (N boxes on a grid, each swaying sideways, so the tracker keeps N confirmed tracks)
and measures, per frame, the time from ``publish()`` of the detections to the arrival of the
``TrackArray`` with the same stamp in this process's subscription callback (after rclpy
deserialised it). Two targets run one after the other, each as its own process with default
settings (``spinning.spin_until_shutdown``: a SingleThreadedExecutor, each wait bounded at 0.5 s):

- **relay**: a bare node that subscribes to the detections, converts them to arrays
  (``detections_to_arrays``), builds a TrackArray of the same N tracks with the same trajectory
  length (10 points, as tracker.yaml's 2.0 s / 0.2 s) through the same ``tracks_to_msg``, and
  publishes it. It is the floor any node in Python pays for DDS, (de)serialisation and messages.
- **tracker_node**: ``python -m ros2_tracker.nodes.tracker_node --params-file config/tracker.yaml``.
  Markers and the annotated image are not built (nobody subscribes to them).

Beside them: the node's own processing time (its ``~/timing`` topic: convert, update, trajectories,
build and publish) and the core's time for the same frames in this process (``Tracker.update``, and
update + ``predict_trajectories``). The first frames (warm-up, discovery) are not counted.

Then, for ``--profile-objects`` (100), where tracker_node's callback spends its time: a
``TrackerNode`` runs in this process (config/tracker.yaml, a subscriber to ``tracks`` in another
process), fed the same frames at 30 Hz, and each step of ``TrackerNode._process`` is timed (the
steps are called one by one, in the callback's order). Beside them, the message costs the callback
does not see: deserialising the Detection2DArray (before the callback), serialising it (the
publisher) and deserialising the TrackArray (the subscriber).

Usage (from the repository root; about 4 minutes)::

    .venv/bin/python bench/latency.py                 # writes the table into BENCHMARKS.md
    .venv/bin/python bench/latency.py --objects 100 --frames 300 --no-markdown

The script also runs the relay node itself (``bench/latency.py relay --ros-args -r __ns:=/x``) and
the profile's subscriber (``bench/latency.py sink``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCHMARKS_MD, OUT, REPO, command_line, machine_line, markdown_table, update_section

FPS = 30.0
T0 = 1000.0  # stamp of frame 0 [s]
TRAJECTORY_POINTS = 10  # config/tracker.yaml: trajectory_horizon_s 2.0 / trajectory_step_s 0.2
IMAGE_W, IMAGE_H = 1920, 1080


# --------------------------------------------------------------------------------------- data
def frame_boxes(n: int, k: int) -> np.ndarray:
    """N non-overlapping boxes (xyxy px) on a grid over a 1920x1080 image, swaying +-8 px at 0.5 Hz."""
    cols = int(np.ceil(np.sqrt(n * IMAGE_W / IMAGE_H)))
    rows = int(np.ceil(n / cols))
    cw, ch = IMAGE_W / cols, IMAGE_H / rows
    i = np.arange(n)
    x0 = (i % cols) * cw + 0.2 * cw + 8.0 * np.sin(2 * np.pi * 0.5 * k / FPS + i)
    y0 = (i // cols) * ch + 0.1 * ch
    return np.stack([x0, y0, x0 + 0.5 * cw, y0 + 0.8 * ch], axis=1)


def percentiles_ms(seconds: list[float]) -> tuple[float, float]:
    a = np.asarray(seconds) * 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


# ------------------------------------------------------------------------------ the relay node
def relay_main() -> int:
    """The bare relay: detections in, a TrackArray of the same size out, nothing else."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from ros2_tracker.core.track import TrackSet, Trajectories
    from ros2_tracker.nodes.conversions import detections_to_arrays, tracks_to_msg
    from ros2_tracker.nodes.spinning import spin_until_shutdown

    msgs = importlib.import_module("ros2_tracker.msg")

    class Relay(Node):
        def __init__(self) -> None:
            super().__init__("relay")
            reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
            self.pub = self.create_publisher(msgs.TrackArray, "tracks", QoSProfile(depth=10))
            self.create_subscription(msgs.Detection2DArray, "detections", self.on_detections, reliable)

        def on_detections(self, msg) -> None:
            det = detections_to_arrays(msg)
            n = len(det.boxes_xyxy)
            ids = np.arange(n, dtype=np.int64)
            z4, z1 = np.zeros((n, 4)), np.zeros(n)
            tracks = TrackSet(ids, det.boxes_xyxy, det.scores, det.classes, np.ones(n, np.int8), z4, z4,
                              np.ones(n, np.int64), z1, z1, ids)
            times = np.arange(1, TRAJECTORY_POINTS + 1) * 0.2
            traj = Trajectories(ids, times, np.zeros((n, TRAJECTORY_POINTS, 2)),
                                np.zeros((n, TRAJECTORY_POINTS, 3)))
            self.pub.publish(tracks_to_msg(tracks, traj, msg.header, msgs))

    try:
        with rclpy.init():
            node = Relay()
            spin_until_shutdown(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


def sink_main() -> int:
    """A subscriber to ``tracks`` that does nothing (so the profiled node publishes to a real reader)."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    from ros2_tracker.nodes.spinning import spin_until_shutdown

    msgs = importlib.import_module("ros2_tracker.msg")
    try:
        with rclpy.init():
            node = rclpy.create_node("latency_sink")
            node.create_subscription(msgs.TrackArray, "tracks", lambda _msg: None, 10)
            spin_until_shutdown(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


PROFILE_STAGES = ("stamp check + detections_to_arrays", "Tracker.update", "predict_trajectories",
                  "published_tracks", "tracks_to_msg", "publish tracks", "= own time (as ~/timing)",
                  "timing message", "markers (no subscriber)")
WIRE_STAGES = ("deserialize Detection2DArray (before the callback)", "serialize Detection2DArray (publisher)",
               "deserialize TrackArray (subscriber)")


def callback_profile(n: int, frames: int, warmup: int, env: dict) -> dict[str, list[float]]:
    """Seconds per step of tracker_node's detection callback, in this process, frames paced at 30 Hz.

    Mirrors ``TrackerNode._process`` (without images) step by step; keep the two in step.
    """
    import rclpy
    from rclpy.serialization import deserialize_message, serialize_message
    from std_msgs.msg import Header, String

    from ros2_tracker.nodes.conversions import (
        arrays_to_detections,
        detections_to_arrays,
        published_tracks,
        seconds_to_stamp,
        tracks_to_msg,
    )
    from ros2_tracker.nodes.tracker_node import TrackerNode

    msgs = importlib.import_module("ros2_tracker.msg")
    out: dict[str, list[float]] = {k: [] for k in (*PROFILE_STAGES, *WIRE_STAGES)}
    sink = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "sink", "--ros-args", "-r",
                             "__ns:=/latency_profile"], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    context = rclpy.Context()
    rclpy.init(args=["--ros-args", "--params-file", str(REPO / "config" / "tracker.yaml"), "-r",
                     "__ns:=/latency_profile"], context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    try:
        node = TrackerNode(context=context)
        end = time.monotonic() + 30.0
        while node._tracks_pub.get_subscription_count() == 0:
            if time.monotonic() > end or sink.poll() is not None:
                raise RuntimeError("the profile's tracks subscriber did not come up")
            time.sleep(0.05)
        cfg, clock = node._cfg, time.perf_counter
        start = clock()
        for k in range(warmup + frames):
            while (wait := start + k / FPS - clock()) > 0:
                time.sleep(wait)
            header = Header(frame_id="camera", stamp=seconds_to_stamp(T0 + k / FPS))
            sent = arrays_to_detections(frame_boxes(n, k), np.full(n, 0.9), np.zeros(n, int), header, msgs)
            t = [clock()]
            wire = serialize_message(sent)
            t.append(clock())
            msg = deserialize_message(wire, msgs.Detection2DArray)
            t.append(clock())  # the callback starts here
            node._in_order(msg)  # the stamp check; these frames are always in order
            det = node._cap_detections(detections_to_arrays(msg))
            t.append(clock())
            tracks = node._update(det)
            t.append(clock())
            traj = node._tracker.predict_trajectories()
            t.append(clock())
            tracks, traj = published_tracks(tracks, traj, publish_lost=cfg.publish_lost,
                                            publish_tentative=cfg.publish_tentative)
            t.append(clock())
            tracks_msg = tracks_to_msg(tracks, traj, msg.header, node._msgs)
            t.append(clock())
            node._tracks_pub.publish(tracks_msg)
            t.append(clock())
            node._timing_pub.publish(String(data=json.dumps(
                {"stamp": det.stamp_s, "stage": "tracker", "seconds": t[-1] - t[2]})))
            t.append(clock())
            node._publish_markers(tracks, traj, msg.header)
            t.append(clock())
            tracks_wire = serialize_message(tracks_msg)
            t0 = clock()
            deserialize_message(tracks_wire, msgs.TrackArray)
            sub = clock() - t0
            if k < warmup:
                continue
            d = np.diff(t)
            steps = [*d[2:7], d[7], t[8] - t[2], d[8], d[9]]
            for name, v in zip(PROFILE_STAGES, steps, strict=True):
                out[name].append(float(v))
            for name, v in zip(WIRE_STAGES, (d[1], d[0], sub), strict=True):
                out[name].append(float(v))
        node.destroy_node()
    finally:
        context.try_shutdown()
        sink.terminate()
        try:
            sink.wait(10)
        except subprocess.TimeoutExpired:
            sink.kill()
    return out


# ------------------------------------------------------------------------------------ the driver
def core_times(n: int, frames: int) -> tuple[list[float], list[float]]:
    """Per-frame seconds of Tracker.update, and of update + predict_trajectories, on the same data."""
    from ros2_tracker.core import Tracker, TrackerConfig
    from ros2_tracker.io.params import load_config
    from ros2_tracker.nodes.node_config import tracker_node_param_names

    cfg = load_config(TrackerConfig, REPO / "config" / "tracker.yaml",
                      allowed_extra=tracker_node_param_names())
    tracker = Tracker(cfg)
    scores = np.full(n, 0.9)
    update, both = [], []
    for k in range(frames):
        boxes = frame_boxes(n, k)
        t0 = time.perf_counter()
        tracker.update(boxes, scores, stamp=T0 + k / FPS)
        t1 = time.perf_counter()
        tracker.predict_trajectories()
        t2 = time.perf_counter()
        update.append(t1 - t0)
        both.append(t2 - t0)
    return update, both


def target_command(target: str, ns: str) -> list[str]:
    """The command line of the relay or the tracker node, in namespace ``ns``."""
    if target == "relay":
        cmd = [sys.executable, str(Path(__file__).resolve()), "relay", "--ros-args"]
    else:
        cmd = [sys.executable, "-m", "ros2_tracker.nodes.tracker_node", "--ros-args", "--params-file",
               str(REPO / "config" / "tracker.yaml")]
    return [*cmd, "-r", f"__ns:={ns}"]


class Channel:
    """One target as seen from the probe: its detections publisher and the replies' timings."""

    def __init__(self, node, target: str, ns: str, msgs) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from std_msgs.msg import String

        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.target, self.ns = target, ns
        self.sent: dict[int, float] = {}
        self.latency: dict[int, float] = {}
        self.sizes: dict[int, int] = {}
        self.node_time: dict[int, float] = {}
        node.create_subscription(msgs.TrackArray, f"{ns}/tracks", self.on_tracks, reliable)
        node.create_subscription(String, f"{ns}/tracker_node/timing", self.on_timing, 100)
        self.pub = node.create_publisher(msgs.Detection2DArray, f"{ns}/detections", reliable)

    def on_tracks(self, msg) -> None:
        now = time.perf_counter()
        key = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        if key in self.sent:
            self.latency[key] = now - self.sent[key]
            self.sizes[key] = len(msg.ids)

    def on_timing(self, msg) -> None:
        d = json.loads(msg.data)
        self.node_time[round(d["stamp"] * 1e9)] = d["seconds"]

    def publish(self, msg) -> None:
        self.sent[msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec] = time.perf_counter()
        self.pub.publish(msg)

    def result(self, n: int, warmup: int) -> dict:
        keys = sorted(self.sent)[warmup:]
        got = [self.latency[k] for k in keys if k in self.latency]
        return {
            "target": self.target, "objects": n, "frames": len(keys), "received": len(got),
            "tracks_per_msg": float(np.median([self.sizes[k] for k in keys if k in self.sizes] or [0])),
            "latency_s": got,
            "node_time_s": [self.node_time[k] for k in keys if k in self.node_time],
        }


class Probe:
    """This process's side: publishes a schedule of detection messages at 30 Hz and times the replies."""

    def __init__(self, context) -> None:
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        self.node = Node("latency_probe", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)

    def wait_for(self, channel: Channel, proc: subprocess.Popen, timeout: float = 30.0) -> None:
        end = time.monotonic() + timeout
        while channel.pub.get_subscription_count() == 0 or \
                self.node.count_publishers(f"{channel.ns}/tracks") == 0:
            if proc.poll() is not None or time.monotonic() > end:
                err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
                raise RuntimeError(f"{proc.args} did not come up: {err}")
            self.executor.spin_once(timeout_sec=0.05)

    def run(self, schedule: list[tuple[Channel, object]]) -> None:
        """Publish ``schedule`` (channel, message) at 30 Hz, then wait up to 3 s for the last replies."""
        start = time.perf_counter()
        for k, (channel, msg) in enumerate(schedule):
            due = start + k / FPS
            while (wait := due - time.perf_counter()) > 0:
                self.executor.spin_once(timeout_sec=wait)
            channel.publish(msg)
        channels = {id(c): c for c, _ in schedule}.values()
        end = time.monotonic() + 3.0
        while time.monotonic() < end and any(len(c.latency) < len(c.sent) for c in channels):
            self.executor.spin_once(timeout_sec=0.05)


def interleave(channels: list[Channel], frames: list, block: int) -> list[tuple[Channel, object]]:
    """Blocks of ``block`` frames to each channel in turn; every channel gets all ``frames`` in order
    (so each target sees continuous 30 Hz stamps of its own)."""
    schedule = []
    for start in range(0, len(frames), block):
        for channel in channels:
            schedule += [(channel, msg) for msg in frames[start:start + block]]
    return schedule


def measure_pair(n: int, frames: int, warmup: int, env: dict, block: int = 30) -> dict[str, dict]:
    """Run the relay and the tracker node side by side, fed alternately in one-second blocks, so both
    meet the same background load; each gets ``warmup`` + ``frames`` frames of ``n`` objects."""
    import rclpy
    from rclpy.context import Context
    from std_msgs.msg import Header

    from ros2_tracker.nodes.conversions import arrays_to_detections, seconds_to_stamp

    msgs = importlib.import_module("ros2_tracker.msg")
    prebuilt = [arrays_to_detections(frame_boxes(n, k), np.full(n, 0.9), np.zeros(n, int),
                                     Header(frame_id="camera", stamp=seconds_to_stamp(T0 + k / FPS)), msgs)
                for k in range(warmup + frames)]
    procs: list[subprocess.Popen] = []
    context = Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    try:
        probe = Probe(context)
        channels = [Channel(probe.node, t, f"/latency_{t}_{n}", msgs) for t in ("relay", "tracker")]
        for channel in channels:
            procs.append(subprocess.Popen(target_command(channel.target, channel.ns), env=env, cwd=REPO,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        for channel, proc in zip(channels, procs, strict=True):
            probe.wait_for(channel, proc)
        probe.run(interleave(channels, prebuilt, block))
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        context.try_shutdown()
    return {c.target: c.result(n, warmup) for c in channels}


def fmt(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.2f} / {pair[1]:.2f}"


def report(results: dict, argv: list[str], machine: str) -> str:
    rows = []
    for n, r in sorted((k, v) for k, v in results.items() if isinstance(k, int)):
        relay, node = percentiles_ms(r["relay"]["latency_s"]), percentiles_ms(r["tracker"]["latency_s"])
        lost = sum(r[t]["frames"] - r[t]["received"] for t in ("relay", "tracker"))
        rows.append([
            str(n), str(r["tracker"]["frames"]), fmt(relay), fmt(node),
            f"{node[0] - relay[0]:+.2f} / {node[1] - relay[1]:+.2f}",
            fmt(percentiles_ms(r["tracker"]["node_time_s"])), fmt(percentiles_ms(r["core_update_s"])),
            fmt(percentiles_ms(r["core_both_s"])), f"{int(r['tracker']['tracks_per_msg'])}" + (
                f" ({lost} lost)" if lost else ""),
        ])
    table = markdown_table(
        ["objects / frame", "frames", "relay p50 / p99 [ms]", "**tracker_node** p50 / p99 [ms]",
         "node - relay p50 / p99 [ms]", "node's own time p50 / p99 [ms]", "core update p50 / p99 [ms]",
         "core update + trajectories p50 / p99 [ms]", "tracks / msg"], rows)
    verdict = []
    if 100 in results:  # the targets
        r = results[100]
        node99 = percentiles_ms(r["tracker"]["latency_s"])[1]
        added = node99 - percentiles_ms(r["relay"]["latency_s"])[1]
        relay99 = percentiles_ms(r["relay"]["latency_s"])[1]
        core99 = percentiles_ms(r["core_both_s"])[1]
        verdict.append(f"Targets at 100 objects: p99 ≤ 5 ms → {node99:.2f} ms "
                       f"({'met' if node99 <= 5 else 'NOT met'}); tracker adds ≤ 1 ms p99 over the relay → "
                       f"{added:+.2f} ms ({'met' if added <= 1 else 'NOT met'}). For scale: the bare relay "
                       f"alone (DDS, nested Detection2DArray in, flat TrackArray out, in rclpy) takes "
                       f"{relay99:.2f} ms p99, and "
                       f"the core's update + trajectories alone {core99:.2f} ms p99 with warm caches.")
    profile = profile_report(results.get("profile", {}))
    load = results.get("load", {})
    return "\n".join([
        "Latency from `publish()` of a Detection2DArray to the arrival of its TrackArray in a subscriber "
        f"(another process, Fast DDS shared memory, {FPS:.0f} Hz, rclpy SingleThreadedExecutor everywhere; "
        "the subscriber's deserialisation is included). "
        "*relay* = a bare node doing only conversion + message build + publish of the same size (the floor); "
        "both run side by side and are fed in alternating one-second blocks, so they meet the same "
        "background load. *node's own time* = tracker_node's `~/timing` (convert, update, trajectories, "
        "build, publish); *core* = `Tracker.update` (+ `predict_trajectories`) on the same frames in one "
        "process, back to back (warm caches). Tracks carry 10-point trajectories; no markers or images "
        "(nobody subscribes).",
        "",
        table,
        "",
        *(v + "\n" for v in verdict),
        *profile,
        f"`{command_line('bench/latency.py', argv)}` · {machine} · load average "
        f"{load.get('start', float('nan')):.2f} at the start, {load.get('end', float('nan')):.2f} at the end",
    ])


def profile_report(profiles: dict[str, dict[str, list[float]]]) -> list[str]:
    """Markdown lines: per-step p50 / p99 / mean of tracker_node's callback (one column per size)."""
    if not profiles:
        return []
    sizes = sorted(profiles, key=int)
    rows = []
    for name in (*PROFILE_STAGES, *WIRE_STAGES):
        cells = []
        for n in sizes:
            a = np.asarray(profiles[n][name]) * 1e3
            cells.append(f"{np.percentile(a, 50):.2f} / {np.percentile(a, 99):.2f} / {a.mean():.2f}")
        rows.append([f"**{name}**" if name.startswith("=") else name, *cells])
    frames = len(next(iter(profiles[sizes[0]].values())))
    return [
        f"Where tracker_node's callback spends its time ({frames} frames at {FPS:.0f} Hz, the node in this "
        "process with config/tracker.yaml, its `tracks` read by another process; each step of "
        "`TrackerNode._process` timed in turn). The last three rows happen outside the callback (in "
        "rclpy before it, in the publisher, in the subscriber). Frames 1/30 s apart run the same code "
        "about twice as slowly as back to back (colder caches): compare *Tracker.update* here with "
        "*core update* above.",
        "",
        markdown_table(["step", *(f"{n} objects: p50 / p99 / mean [ms]" for n in sizes)], rows),
        "",
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["relay"]:
        return relay_main()
    if argv[:1] == ["sink"]:
        return sink_main()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--frames", type=int, default=900, help="measured frames per run (after warm-up; "
                        "900: a p99 from the 9 slowest, steadier than from 4)")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--profile-objects", type=int, nargs="*", default=[100],
                        help="objects per frame of the in-process callback profile (none: skip it)")
    parser.add_argument("--no-markdown", "--no-write", dest="no_markdown", action="store_true",
                        help="print the table, leave BENCHMARKS.md alone (--no-write: the old name)")
    parser.add_argument("--report-only", action="store_true",
                        help="no measurement: rebuild the table from bench/out/latency.json")
    args = parser.parse_args(argv)
    if args.report_only:
        saved = json.loads((OUT / "latency.json").read_text())
        text = report({int(k) if k.isdigit() else k: v for k, v in saved["results"].items()}, saved["argv"],
                      saved["machine"])
        print(text)
        if not args.no_markdown:
            update_section(BENCHMARKS_MD, "latency", text)
        return 0
    from ros2_tracker.launching import private_domain_id

    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(private_domain_id(os.getpid()))
    env.setdefault("ROS_LOG_DIR", str(OUT / "ros_log"))
    os.environ["ROS_LOG_DIR"] = env["ROS_LOG_DIR"]
    results: dict = {"load": {"start": os.getloadavg()[0]}}
    for n in args.objects:
        update, both = core_times(n, args.warmup + args.frames)
        results[n] = {"core_update_s": update[args.warmup:], "core_both_s": both[args.warmup:]}
        for target, r in measure_pair(n, args.frames, args.warmup, env).items():
            results[n][target] = r
            p50, p99 = percentiles_ms(r["latency_s"]) if r["latency_s"] else (float("nan"),) * 2
            print(f"{n:4d} objects  {target:8s} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  "
                  f"received {r['received']}/{r['frames']}", flush=True)
    for n in args.profile_objects:
        results.setdefault("profile", {})[str(n)] = callback_profile(n, args.frames, args.warmup, env)
    results["load"]["end"] = os.getloadavg()[0]
    machine = machine_line()
    text = report(results, argv, machine)
    print(text)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "latency.json").write_text(json.dumps({"argv": argv, "machine": machine, "results": results}))
    if not args.no_markdown:
        update_section(BENCHMARKS_MD, "latency", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
