"""How reliably tracker_node stops on SIGTERM: the nodes' bounded-wait spin against plain ``rclpy.spin``.

    .venv/bin/python bench/node_stop.py [--runs 200] [--timeout 5] [--no-markdown]

Starts tracker_node (``config/tracker.yaml``, ``use_images:=false``) again and again, sends SIGTERM 1.2-2 s
after the start, and counts the stops that take longer than ``--timeout`` seconds (the process is then
killed). Two variants run side by side, one process each at a time, so both meet the same load:

- **bounded** (what the nodes do): ``nodes.spinning.spin_until_shutdown``, each executor wait bounded at
  0.5 s;
- **rclpy.spin**: the same node spun by ``rclpy.spin``, whose wait is unbounded. rclpy's signal handler
  shuts the context down from C++, where the Python callback that wakes an executor does not run, so that
  wait can sleep on after SIGTERM.

The table goes between ``<!-- bench:node_stop:start/end -->`` markers in BENCHMARKS.md. The script also runs
the node itself (``bench/node_stop.py node VARIANT --ros-args ...``).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import BENCHMARKS_MD, REPO, command_footer, markdown_table, report

VARIANTS = ("bounded", "rclpy.spin")


def run_node(variant: str, ros_args: list[str]) -> int:
    """tracker_node's ``main`` with the given spin (a child process of this script)."""
    import rclpy

    from ros2_tracker.nodes import spinning
    from ros2_tracker.nodes.tracker_node import TrackerNode

    if variant == "rclpy.spin":
        def plain(node) -> None:  # the nodes' spin before ed6e9d8
            try:
                rclpy.spin(node)
            except Exception:
                if rclpy.ok():
                    raise

        spinning.spin_until_shutdown = plain  # run_node looks it up at call time
    return spinning.run_node(TrackerNode, "tracker_node", ros_args)


def stop_times(variant: str, runs: int, timeout: float, domain: int, out: dict[str, list[float]]) -> None:
    """Start and SIGTERM the node ``runs`` times; append each stop's seconds (inf: killed) to ``out``."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain))
    cmd = [sys.executable, str(Path(__file__).resolve()), "node", variant, "--ros-args", "--params-file",
           str(REPO / "config" / "tracker.yaml"), "-p", "use_images:=false"]
    rng = random.Random(domain)
    for _ in range(runs):
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.2 + 0.8 * rng.random())
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
            out[variant].append(time.monotonic() - t0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            out[variant].append(float("inf"))


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "node":
        return run_node(sys.argv[2], sys.argv[3:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=200, help="SIGTERMs per variant")
    p.add_argument("--timeout", type=float, default=5.0, help="a stop slower than this counts as hung [s]")
    p.add_argument("--markdown", type=Path, default=BENCHMARKS_MD)
    p.add_argument("--no-markdown", "--no-write", dest="no_markdown", action="store_true",
                   help="do not touch any markdown file (--no-write: the old name)")
    args = p.parse_args(argv)
    if args.runs < 1 or args.timeout <= 0:
        p.error("--runs must be >= 1 and --timeout > 0")
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    base = 100 + os.getpid() % 50
    workers = [threading.Thread(target=stop_times, args=(v, args.runs, args.timeout, base + k, times))
               for k, v in enumerate(VARIANTS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    rows = []
    for v in VARIANTS:
        t = sorted(times[v])
        done = [x for x in t if x != float("inf")]
        label = "**bounded** (the nodes' spin)" if v == "bounded" else "`rclpy.spin`"
        p50, top = (f"{done[len(done) // 2]:.2f}", f"{max(done):.2f}") if done else ("\u2013", "\u2013")
        rows.append([label, str(len(t)), str(len(t) - len(done)), p50, top])
    text = "\n".join([
        "tracker_node started and sent SIGTERM 1.2-2 s later, the two spins side by side; hung: no exit "
        f"within {args.timeout:g} s (then killed).",
        "",
        markdown_table(["spin", "SIGTERMs", "hung", "stop p50 [s]", "stop max (not hung) [s]"], rows),
        "",
        command_footer('bench/node_stop.py', argv),
    ])
    report(text, "node_stop", None if args.no_markdown else args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
