"""Robustness to a moving camera: the static-camera dev sequences with a panning camera added.

    .venv/bin/python bench/camera_pan.py [--speeds 100 200 400] [--datasets KEY ...]
                                         [--trackers PEER ...] [--config FILE]
                                         [--markdown BENCHMARKS.md | --no-markdown] [--out DIR]

The ground truth we hold is of static cameras, while many sequences a tracker meets (a robot, a car, a
hand-held camera) move. This script makes moving-camera copies of the dev sequences with their real
detections and ground truth: every box of frame ``f`` (detections and ground truth alike) is shifted by the
image motion of a camera that pans back and forth horizontally (period 6 s, peak ``speed`` px/s) and shakes
a little vertically (period 1.3 s, amplitude 5 % of ``speed`` px). The people's own motion, the detector's
errors and the annotation stay as recorded; only the image frame moves. Boxes may leave the image: nothing
is clipped, since the question is association under camera motion, not detection at the border.

For each speed (and 0, the original) ``bench/run_bench.py --data <copies>`` runs ours and the peers on the
same detections, then ours twice more with ``camera_motion_gain`` 0.5 (the opt-in image motion from the
detections), always and gated by ``camera_motion_gate`` 0.85 (``--no-gain-row`` skips both); the table
gives HOTA / IDF1 per tracker and speed, and goes between ``<!-- bench:camera_pan:start/end -->`` markers
in BENCHMARKS.md (raw numbers: ``OUT/results.json``).
"""

from __future__ import annotations

import argparse
import configparser
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    BENCHMARKS_MD,
    DATA,
    OUT,
    REPO,
    command_line,
    machine_line,
    markdown_table,
    update_section,
)

DATASETS = {  # run_bench key: the sequence folder it reads
    "tud-campus-frcnn": "TUD-Campus",
    "tud-campus-acf": "TUD-Campus",
    "tud-stadtmitte": "TUD-Stadtmitte",
    "pets09-s3mf1": "PETS09-S3MF1",
}
PAN_PERIOD_S = 6.0
SHAKE_PERIOD_S = 1.3
SHAKE_FRACTION = 0.05
GAIN = 0.5  # the camera_motion_gain of the extra rows of ours
GATE = 0.85  # the camera_motion_gate of the second extra row
GAIN_ROW = "ros2_tracker_camera_motion_gain"
GATED_ROW = "ros2_tracker_camera_motion_gated"


def pan_offset(frame: int, fps: float, speed: float) -> tuple[float, float]:
    """Image displacement (x, y) [px] of frame ``frame`` (1-based) of a camera panning at peak ``speed``
    px/s: x = speed T / (2 pi) (1 - cos(2 pi t / T)) (velocity speed sin(2 pi t / T): out and back),
    y = 0.05 speed sin(2 pi t / 1.3 s)."""
    t = (frame - 1) / fps
    x = speed * PAN_PERIOD_S / (2 * math.pi) * (1 - math.cos(2 * math.pi * t / PAN_PERIOD_S))
    y = SHAKE_FRACTION * speed * math.sin(2 * math.pi * t / SHAKE_PERIOD_S)
    return x, y


def shift_mot_file(src: Path, dst: Path, fps: float, speed: float) -> None:
    """Copy a MOTChallenge file, moving each row's box by minus the camera's displacement of its frame
    (the scene moves the other way in the image); other columns are kept as written."""
    out = []
    for line in src.read_text().splitlines():
        if not line.strip():
            continue
        cols = line.strip().split(",")
        dx, dy = pan_offset(int(float(cols[0])), fps, speed)
        cols[2], cols[3] = f"{float(cols[2]) - dx:.2f}", f"{float(cols[3]) - dy:.2f}"
        out.append(",".join(cols))
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(out) + "\n")


def panned_copy(src: Path, dst: Path, speed: float) -> float:
    """A moving-camera copy of the sequence folder ``src`` (seqinfo.ini, det/*.txt, gt/gt.txt) in ``dst``;
    returns its frame rate."""
    info = configparser.ConfigParser()
    info.read(src / "seqinfo.ini")
    fps = float(info["Sequence"]["frameRate"])
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "seqinfo.ini", dst / "seqinfo.ini")
    for det in sorted((src / "det").glob("*.txt")):
        shift_mot_file(det, dst / "det" / det.name, fps, speed)
    shift_mot_file(src / "gt" / "gt.txt", dst / "gt" / "gt.txt", fps, speed)
    return fps


def run_speed(speed: float, datasets: list[str], args: argparse.Namespace) -> dict:
    """run_bench on the copies at ``speed``: ours and the peers, then (unless ``--no-gain-row``) ours twice
    more with ``camera_motion_gain``, always and gated; results.json's content, the extra runs' rows of ours
    under :data:`GAIN_ROW` and :data:`GATED_ROW` (``--config`` applies to the first run only)."""
    data = args.out / f"data_{speed:g}"
    for seq in sorted({DATASETS[k] for k in datasets}):
        panned_copy(args.data / seq, data / seq, speed)
    print(f"camera pan {speed:g} px/s: {' '.join(datasets)}", flush=True)
    results = _run_bench(data, datasets, args.out / f"run_{speed:g}", args.trackers, args.config)
    if args.gain_row:
        for row, gate in ((GAIN_ROW, 0.0), (GATED_ROW, GATE)):
            config = args.out / f"{row}.yaml"
            config.write_text(f"/**:\n  ros__parameters:\n    camera_motion_gain: {GAIN}\n"
                              f"    camera_motion_gate: {gate}\n")
            ours = _run_bench(data, datasets, args.out / f"run_{speed:g}_{row}", [], config)
            for key, rows in ours.items():
                results[key][row] = rows["ros2_tracker"]
    return results


def _run_bench(data: Path, datasets: list[str], out: Path, trackers: list[str] | None,
               config: Path | None) -> dict:
    cmd = [sys.executable, str(REPO / "bench" / "run_bench.py"), "--data", str(data), "--datasets", *datasets,
           "--repeat", "1", "--no-markdown", "--out", str(out)]
    if trackers is not None:
        cmd += ["--trackers", *trackers]
    if config is not None:
        cmd += ["--config", str(config)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "results.json").read_text())


def table(results: dict[float, dict], key: str, labels: dict[str, str]) -> str:
    """Markdown table of one dataset: a row per tracker, HOTA / IDF1 per speed."""
    speeds = sorted(results)
    trackers = list(results[speeds[0]][key])
    for k, row in enumerate((GAIN_ROW, GATED_ROW)):  # right under ours
        if row in trackers:
            trackers.remove(row)
            trackers.insert(1 + k, row)
    header = ["tracker", *(f"{s:g} px/s" for s in speeds)]
    rows = []
    for name in trackers:
        cells = [labels.get(name, name)]
        for s in speeds:
            runs = results[s].get(key, {}).get(name) or [{}]
            m = runs[0].get("metrics") or {}
            cells.append(f"{100 * m['HOTA']:.1f} / {100 * m['IDF1']:.1f}" if "HOTA" in m else "failed")
        rows.append(cells)
    return markdown_table(header, rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--speeds", type=float, nargs="+", default=[100.0, 200.0, 400.0],
                   help="peak pan speeds [px/s] (0, the original, is always run)")
    p.add_argument("--datasets", nargs="+", choices=sorted(DATASETS), default=list(DATASETS))
    p.add_argument("--trackers", nargs="*", help="peers (default: all; none: ours only)")
    p.add_argument("--config", type=Path, help="our tracker's parameter file")
    p.add_argument("--no-gain-row", dest="gain_row", action="store_false",
                   help=f"skip the extra rows of ours with camera_motion_gain {GAIN}")
    p.add_argument("--data", type=Path, default=DATA, help="folder of the original sequences")
    p.add_argument("--out", type=Path, default=OUT / "camera_pan")
    p.add_argument("--markdown", type=Path, default=BENCHMARKS_MD)
    p.add_argument("--no-markdown", action="store_true")
    args = p.parse_args(argv)
    if any(s < 0 for s in args.speeds):
        p.error("--speeds must be >= 0")
    missing = [k for k in args.datasets if not (args.data / DATASETS[k] / "gt" / "gt.txt").is_file()]
    if missing:
        print(f"camera_pan: no ground truth for {', '.join(missing)} under {args.data}", file=sys.stderr)
        return 2
    results = {s: run_speed(s, args.datasets, args) for s in sorted({0.0, *args.speeds})}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({f"{s:g}": r for s, r in results.items()}, indent=1))
    from bench.run_bench import load_run_peer

    labels = {"ros2_tracker": "**ros2_tracker**", GAIN_ROW: f"**ros2_tracker**, `camera_motion_gain` {GAIN}",
              GATED_ROW: f"**ros2_tracker**, gain {GAIN}, `camera_motion_gate` {GATE}",
              **{k: v.label for k, v in load_run_peer().PEERS.items()}}
    parts = [f"HOTA / IDF1 with the camera panning at a peak of 0 (the original) to {max(args.speeds):g} "
             "px/s (per frame: speed / fps, e.g. 8 px at 200 px/s and 25 Hz, 29 px at 7 Hz)."]
    for key in args.datasets:
        parts += [f"**{key}**", table(results, key, labels)]
    parts.append(f"Command: `{command_line('bench/camera_pan.py', argv)}` · {machine_line()}")
    body = "\n\n".join(parts)
    print(body)
    if not args.no_markdown:
        update_section(args.markdown, "camera_pan", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
