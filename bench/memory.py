"""Is memory flat over a long run? 100,000 frames through ``ros2_tracker.core.Tracker``.

    .venv/bin/python bench/memory.py [--frames 100000] [--objects 20] [--every 10000]
                                     [--markdown BENCHMARKS.md | --no-markdown] [--out DIR]

A :mod:`bench.random_walk` stream (objects replaced after ~100 frames on average, so about
``objects * frames / 100`` identities pass through and ids keep growing; misses and false positives
as in the scaling benchmark) is fed to one tracker, frame by frame. Every ``--every`` frames the
process's resident memory (``/proc/self/statm``; peak from ``resource``), ``len(tracker)`` and the
highest track id so far are sampled. Memory is called flat when RSS grows by less than 2 MiB and
less than 2% between the first sample and the last (the first sample is taken after warm-up, so
imports and allocator pools are already in place), and ``len(tracker)`` stays bounded (its maximum
over the later half is at most twice that of the first half). Writes ``OUT/memory.png`` (matplotlib),
``OUT/memory.json`` and the table between ``<!-- bench:memory:... -->`` markers of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCHMARKS_MD, OUT, REPO, command_footer, markdown_table, update_section
from bench.random_walk import RandomWalk, WalkConfig

FPS = 30.0
FLAT_MIB = 2.0
FLAT_FRACTION = 0.02


def rss_mib() -> float:
    """Current resident set size of this process [MiB] (``/proc/self/statm``; peak RSS elsewhere)."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mib()


def peak_rss_mib() -> float:
    """Peak resident set size of this process [MiB] (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def run(frames: int, objects: int, every: int, progress=None) -> list[dict]:
    """Track ``frames`` frames; one sample (dict) every ``every`` frames, the first at frame ``every``."""
    from ros2_tracker.core.tracker import Tracker, TrackerConfig

    walk = RandomWalk(WalkConfig(n_objects=objects, seed=0, mean_life_frames=100.0))
    tracker = Tracker(TrackerConfig())
    samples, max_id, busy = [], 0, 0.0
    for k in range(1, frames + 1):
        b, s = walk.step()
        t0 = time.perf_counter()
        tracks = tracker.update(b, s, stamp=k / FPS)
        busy += time.perf_counter() - t0
        if len(tracks):
            max_id = max(max_id, int(tracks.ids.max()))
        if k % every == 0:
            samples.append({"frame": k, "rss_mib": rss_mib(), "peak_rss_mib": peak_rss_mib(),
                            "tracks": len(tracker), "max_id": max_id, "update_us": 1e6 * busy / every})
            busy = 0.0
        if progress is not None:
            progress(1)
    return samples


def verdict(samples: list[dict]) -> tuple[bool, str]:
    """Whether memory is flat (see the module docstring), and why."""
    if len(samples) < 2:
        return False, "too few samples"
    first, last = samples[0]["rss_mib"], samples[-1]["rss_mib"]
    growth = last - first
    half = len(samples) // 2
    early = max(s["tracks"] for s in samples[:half])
    late = max(s["tracks"] for s in samples[half:])
    flat_rss = growth < FLAT_MIB and growth < FLAT_FRACTION * first
    bounded = late <= 2 * max(early, 1)
    why = (f"RSS {first:.1f} → {last:.1f} MiB ({growth:+.2f} MiB) from frame {samples[0]['frame']:,} to "
           f"{samples[-1]['frame']:,}; live tracks at most {early} (first half) and {late} (second half); "
           f"{samples[-1]['max_id']:,} ids issued")
    return flat_rss and bounded, why


def plot(samples: list[dict], path: Path) -> None:
    """RSS and live tracks against frames, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([s["frame"] for s in samples])
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(x, [s["rss_mib"] for s in samples], "o-", label="RSS [MiB]")
    ax.set_xlabel("frame")
    ax.set_ylabel("RSS [MiB]")
    ax2 = ax.twinx()
    ax2.plot(x, [s["tracks"] for s in samples], "s--", color="tab:orange", label="len(tracker)")
    ax2.set_ylabel("live tracks")
    ax.set_ylim(0, max(s["rss_mib"] for s in samples) * 1.2)
    ax2.set_ylim(0, max(max(s["tracks"] for s in samples) * 1.5, 1))
    ax.set_title("ros2_tracker.core.Tracker memory over a long run")
    handles = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=100_000, help="frames to track")
    p.add_argument("--objects", type=int, default=20, help="objects present in every frame")
    p.add_argument("--every", type=int, default=10_000, help="frames between samples")
    p.add_argument("--out", type=Path, default=OUT / "memory",
                   help="output folder (default: bench/out/memory)")
    p.add_argument("--markdown", type=Path, default=BENCHMARKS_MD, help="file whose table to update")
    p.add_argument("--no-markdown", action="store_true", help="do not touch any markdown file")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the memory benchmark; returns 0 when memory is flat, 1 otherwise."""
    from tqdm import tqdm

    args = parse_args(argv)
    if not 0 < args.every <= args.frames:
        print(f"--every must be in 1..--frames, got {args.every}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=args.frames, unit="frame", unit_scale=True, dynamic_ncols=True) as bar:
        samples = run(args.frames, args.objects, args.every, bar.update)
    flat, why = verdict(samples)
    plot(samples, args.out / "memory.png")
    report = {"flat": flat, "why": why, "samples": samples}
    (args.out / "memory.json").write_text(json.dumps(report, indent=1))
    rows = [[f"{s['frame']:,}", f"{s['rss_mib']:.1f}", str(s["tracks"]), f"{s['max_id']:,}",
             f"{s['update_us']:,.0f}"] for s in samples]
    body = "\n\n".join([
        f"{args.frames:,} frames of {args.objects} random-walk objects at a time (replaced after ~100 "
        "frames, misses, false positives) through one `ros2_tracker.core.Tracker` with the default config.",
        markdown_table(["frame", "RSS MiB", "len(tracker)", "highest id", "update µs (mean)"], rows),
        f"Memory flat: **{'yes' if flat else 'NO'}**: {why}. Plot: `{_shown(args.out / 'memory.png')}` "
        "(not committed).",
        command_footer('bench/memory.py', argv)])
    if not args.no_markdown:
        update_section(args.markdown, "memory", body)
    print(body)
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
