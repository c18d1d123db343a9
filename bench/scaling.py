"""Update time of the core tracker at 10 / 100 / 1000 objects per frame, beside peers in the same run.

    .venv/bin/python bench/scaling.py [--objects 10 100 1000] [--frames 300] [--trackers rf_sort rf_bytetrack]
                                      [--markdown BENCHMARKS.md | --no-markdown] [--out DIR]

For each object count, a :mod:`bench.random_walk` stream (random-walk boxes over an image whose side
grows with sqrt(objects), 5% misses, 2% false positives, objects replaced after ~300 frames) is
generated once and written as a MOTChallenge det file. ``ros2_tracker.core.Tracker`` (default
config) is timed in-process on the same boxes (rounded as in the file); each peer runs
``bench/peers/run_peer.py --frame-times`` on the det file inside its venv. Every update call is timed
on its own; the table gives the median, the 99th percentile and the mean in µs. The target for ours
is a median of at most 2 ms at 1000 objects. Writes the table between ``<!-- bench:scaling:... -->``
markers of BENCHMARKS.md and the raw numbers to ``OUT/scaling.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCHMARKS_MD, OUT, REPO, command_footer, markdown_table, update_section
from bench.random_walk import RandomWalk, WalkConfig, write_mot_detections

FPS = 30.0
TARGET_US = 2000.0  # median update time of ours at 1000 objects
TARGET_OBJECTS = 1000
PEER_LABELS = {"rf_sort": "trackers SORT", "rf_bytetrack": "trackers ByteTrack"}


def make_frames(n_objects: int, n_frames: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_frames`` frames of ``(boxes_xyxy, scores)``, rounded to the det file's precision."""
    walk = RandomWalk(WalkConfig(n_objects=n_objects, seed=seed))
    frames = []
    for _ in range(n_frames):
        b, s = walk.step()
        frames.append((np.round(b, 2), np.round(s, 4)))
    return frames


def time_ours(frames: list[tuple[np.ndarray, np.ndarray]], fps: float = FPS) -> tuple[np.ndarray, int]:
    """Seconds of each ``Tracker.update`` over ``frames``, and the live tracks at the end."""
    from ros2_tracker.core.tracker import Tracker, TrackerConfig

    tracker = Tracker(TrackerConfig())
    out = np.empty(len(frames))
    clock = time.perf_counter
    for k, (b, s) in enumerate(frames):
        t0 = clock()
        tracker.update(b, s, stamp=k / fps)
        out[k] = clock() - t0
    return out, len(tracker)


def time_peer(name: str, python: Path, det: Path, n_frames: int, out: Path) -> np.ndarray:
    """Seconds of each update of peer ``name`` (run_peer.py in its venv) over the det file."""
    timing = out / f"{name}.timing.json"
    cmd = [str(python), str(REPO / "bench" / "peers" / "run_peer.py"), "--tracker", name, "--detections",
           str(det), "--output", str(out / f"{name}.txt"), "--fps", f"{FPS:g}", "--frames", str(n_frames),
           "--timing", str(timing), "--frame-times"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()] or ["no output"]
        raise RuntimeError(f"{name} exited {proc.returncode}: {lines[-1][:200]}")
    return np.asarray(json.loads(timing.read_text())["frame_seconds"])


def summary(seconds: np.ndarray) -> dict[str, float]:
    """Median, 99th percentile and mean [µs]."""
    us = 1e6 * np.asarray(seconds)
    return {"median_us": float(np.median(us)), "p99_us": float(np.percentile(us, 99)),
            "mean_us": float(us.mean())}


def table(results: list[dict]) -> str:
    """Markdown table: one row per (objects, tracker)."""
    rows = []
    ours = {r["objects"]: r["median_us"] for r in results
            if r["tracker"] == "ros2_tracker" and "median_us" in r}
    for r in results:
        if "error" in r:
            rows.append([str(r["objects"]), r["label"], f"failed: {r['error']}", "", "", ""])
            continue
        ratio = ours.get(r["objects"], float("nan")) / r["median_us"]
        rows.append([f"{r['objects']:,}", r["label"], f"{r['median_us']:,.0f}", f"{r['p99_us']:,.0f}",
                     f"{r['mean_us']:,.0f}", f"{ratio:.2f}\u00d7"])
    header = ["objects/frame", "tracker", "median µs", "p99 µs", "mean µs", "ours ÷ this (median)"]
    return markdown_table(header, rows, "llrrrr")


def target_line(results: list[dict]) -> str:
    """Whether ours meets the 2 ms median target at 1000 objects."""
    mine = [r for r in results if r["tracker"] == "ros2_tracker" and r["objects"] == TARGET_OBJECTS]
    if not mine:
        return f"(target not measured: run with {TARGET_OBJECTS} objects)"
    med = mine[0]["median_us"]
    verdict = "met" if med <= TARGET_US else "NOT met"
    return (f"Target, ros2_tracker median ≤ {TARGET_US:,.0f} µs at {TARGET_OBJECTS:,} objects: **{verdict}** "
            f"({med:,.0f} µs).")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objects", type=int, nargs="+", default=[10, 100, 1000], help="objects per frame")
    p.add_argument("--frames", type=int, default=300, help="frames per run")
    p.add_argument("--trackers", nargs="*", default=list(PEER_LABELS), choices=sorted(PEER_LABELS),
                   help="peers to time beside ours (none: ours only)")
    p.add_argument("--peers-venv", type=Path, default=REPO / ".venv-peers", help="venv of the peers")
    p.add_argument("--out", type=Path, default=OUT / "scaling",
                   help="work folder (default: bench/out/scaling)")
    p.add_argument("--markdown", type=Path, default=BENCHMARKS_MD, help="file whose table to update")
    p.add_argument("--no-markdown", action="store_true", help="do not touch any markdown file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the scaling benchmark; returns the exit code."""
    from tqdm import tqdm

    args = parse_args(argv)
    python = args.peers_venv / "bin" / "python"
    peers = list(args.trackers)
    if peers and not python.exists():
        print(f"peers skipped: {python} is missing (run bash bench/setup_peers.sh)", file=sys.stderr)
        peers = []
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    with tqdm(total=len(args.objects) * (1 + len(peers)), unit="run", dynamic_ncols=True) as bar:
        for n in args.objects:
            bar.set_postfix_str(f"{n} objects: generating")
            frames = make_frames(n, args.frames)
            work = args.out / f"n{n}"
            work.mkdir(parents=True, exist_ok=True)
            det = work / "det.txt"
            write_mot_detections(det, frames)
            bar.set_postfix_str(f"{n} objects: ros2_tracker")
            sec, live = time_ours(frames)
            results.append({"objects": n, "tracker": "ros2_tracker", "label": "**ros2_tracker**",
                            "live_tracks_at_end": live, **summary(sec)})
            bar.update()
            for name in peers:
                bar.set_postfix_str(f"{n} objects: {name}")
                row = {"objects": n, "tracker": name, "label": PEER_LABELS[name]}
                try:
                    row.update(summary(time_peer(name, python, det, args.frames, work)))
                except RuntimeError as e:
                    row["error"] = str(e)
                results.append(row)
                bar.update()
    body = "\n\n".join([
        f"{args.frames} frames per run of random-walk boxes (`bench/random_walk.py`: image side "
        "300 px \u00d7 sqrt(objects), 5% misses, 2% false positives, objects replaced after ~300 "
        "frames); every update timed on its own.",
        table(results), target_line(results),
        command_footer('bench/scaling.py', argv)])
    if not args.no_markdown:
        update_section(args.markdown, "scaling", body)
    (args.out / "scaling.json").write_text(json.dumps(results, indent=1))
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
