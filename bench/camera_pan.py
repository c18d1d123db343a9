"""Robustness to a moving camera: the static-camera dev sequences with a panning (or zooming) camera added.

    .venv/bin/python bench/camera_pan.py [--motion pan|zoom] [--speeds ...] [--datasets KEY ...]
                                         [--trackers PEER ...] [--config FILE] [--section NAME]
                                         [--markdown BENCHMARKS.md | --no-markdown] [--out DIR]

The ground truth we hold is of static cameras, while many sequences a tracker meets (a robot, a car, a
hand-held camera) move. This script makes moving-camera copies of the dev sequences with their real
detections and ground truth: every box of frame ``f`` (detections and ground truth alike) is shifted by the
image motion of a camera that pans back and forth horizontally (period 6 s, peak ``speed`` px/s) and shakes
a little vertically (period 1.3 s, amplitude 5 % of ``speed`` px). The people's own motion, the detector's
errors and the annotation stay as recorded; only the image frame moves. Boxes may leave the image: nothing
is clipped, since the question is association under camera motion, not detection at the border.
``--datasets synthetic-varied`` pans run_bench's sixteen generated scenes instead (or as well): scenes that
took no part in choosing ``camera_motion_gate``. ``--motion zoom`` scales every box of a frame about the image
centre instead, zooming in and back out (peak rate ``speed`` %/s, same period): a crude stand-in for a camera
that moves forward, as a robot does (real forward motion also has parallax: near people grow faster).

For each speed (and 0, the original) ``bench/run_bench.py --data <copies>`` runs ours (defaults:
``camera_motion_gain`` 0.5 held back by ``camera_motion_gate`` 0.6) and the peers on the same detections,
then ours twice more: with the gain always applied (gate 0) and without it (gain 0; ``--no-gain-row`` skips
both); the table gives HOTA / IDF1 per tracker and speed, and goes between
``<!-- bench:SECTION:start/end -->`` markers in BENCHMARKS.md (``--section``, default camera_pan; raw
numbers: ``OUT/results.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

if __package__ in (None, ""):  # run as a script: make ``bench`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    BENCHMARKS_MD,
    DATA,
    OUT,
    REPO,
    command_footer,
    markdown_table,
    report,
)
from ros2_tracker.io.sequence import read_sequence_info

DATASETS = {  # run_bench key: the sequence folder it reads
    "tud-campus-frcnn": "TUD-Campus",
    "tud-campus-acf": "TUD-Campus",
    "tud-stadtmitte": "TUD-Stadtmitte",
    "pets09-s3mf1": "PETS09-S3MF1",
}
HELD_OUT = "synthetic-varied"  # run_bench's sixteen generated scenes: took no part in choosing the gate
PAN_PERIOD_S = 6.0
SHAKE_PERIOD_S = 1.3
SHAKE_FRACTION = 0.05


class Motion(NamedTuple):
    """One kind of camera motion: the unit of its ``--speeds`` and their default values."""

    unit: str
    speeds: tuple[float, ...]


MOTIONS = {"pan": Motion("px/s", (100.0, 200.0, 400.0)), "zoom": Motion("%/s", (10.0, 20.0, 30.0))}
# extra rows of ours, each run with its own parameters beside the defaults (camera_motion_gain 0.5 held back
# by camera_motion_gate 0.6): the gain always applied, and no gain at all (the defaults before 2026-11-27)
EXTRA_ROWS = {
    "ros2_tracker_gain_always": ("`camera_motion_gate` 0 (gain always on)", {"camera_motion_gate": 0.0}),
    "ros2_tracker_gain_off": ("`camera_motion_gain` 0 (off)", {"camera_motion_gain": 0.0}),
}


def pan_offset(frame: int, fps: float, speed: float) -> tuple[float, float]:
    """Image displacement (x, y) [px] of frame ``frame`` (1-based) of a camera panning at peak ``speed``
    px/s: x = speed T / (2 pi) (1 - cos(2 pi t / T)) (velocity speed sin(2 pi t / T): out and back),
    y = 0.05 speed sin(2 pi t / 1.3 s)."""
    t = (frame - 1) / fps
    x = speed * PAN_PERIOD_S / (2 * math.pi) * (1 - math.cos(2 * math.pi * t / PAN_PERIOD_S))
    y = SHAKE_FRACTION * speed * math.sin(2 * math.pi * t / SHAKE_PERIOD_S)
    return x, y


def zoom_scale(frame: int, fps: float, rate: float) -> float:
    """Image scale of frame ``frame`` (1-based) of a camera zooming in and back out (a camera moving towards
    the scene and back, as if every person were at one depth) at a peak rate of ``rate`` %/s: the log of
    the scale changes at rate/100 sin(2 pi t / T) per second, so s = exp(rate/100 T / (2 pi) (1 - cos(2 pi t
    / T))), T = 6 s (1.21x at its largest for 10 %/s, 1.77x for 30 %/s)."""
    t = (frame - 1) / fps
    log_peak = math.log(zoom_peak(rate))
    return math.exp(0.5 * log_peak * (1 - math.cos(2 * math.pi * t / PAN_PERIOD_S)))


def zoom_peak(rate: float) -> float:
    """The largest scale of :func:`zoom_scale` at ``rate`` %/s: exp(rate/100 T / pi)."""
    return math.exp(rate / 100.0 * PAN_PERIOD_S / math.pi)


def camera_transform(frame: int, fps: float, motion: str, speed: float,
                     centre: tuple[float, float]) -> tuple[float, float, float]:
    """(s, tx, ty): where the camera's motion puts an image point of frame ``frame``: x' = s x + tx,
    y' = s y + ty. ``pan``: s = 1 and minus :func:`pan_offset` (the scene moves against the camera);
    ``zoom``: :func:`zoom_scale` about the image ``centre``."""
    if motion == "zoom":
        s = zoom_scale(frame, fps, speed)
        return s, centre[0] * (1.0 - s), centre[1] * (1.0 - s)
    dx, dy = pan_offset(frame, fps, speed)
    return 1.0, -dx, -dy


def shift_mot_file(src: Path, dst: Path, fps: float, speed: float, motion: str = "pan",
                   centre: tuple[float, float] = (0.0, 0.0)) -> None:
    """Copy a MOTChallenge file, moving each row's box as the camera's motion moves the image at its frame
    (:func:`camera_transform`; a zoom scales the box too); other columns are kept as written."""
    out = []
    for line in src.read_text().splitlines():
        if not line.strip():
            continue
        cols = line.strip().split(",")
        s, tx, ty = camera_transform(int(float(cols[0])), fps, motion, speed, centre)
        cols[2], cols[3] = f"{s * float(cols[2]) + tx:.2f}", f"{s * float(cols[3]) + ty:.2f}"
        if s != 1.0:
            cols[4], cols[5] = f"{s * float(cols[4]):.2f}", f"{s * float(cols[5]):.2f}"
        out.append(",".join(cols))
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("\n".join(out) + "\n")


def moving_camera_copy(src: Path, dst: Path, speed: float, motion: str = "pan") -> float:
    """A moving-camera copy of the sequence folder ``src`` (seqinfo.ini, det/*.txt, gt/gt.txt) in ``dst``;
    returns its frame rate. ``motion``: ``pan`` (``speed`` px/s) or ``zoom`` (``speed`` %/s, about the
    image centre of seqinfo.ini's imWidth / imHeight)."""
    info = read_sequence_info(src)
    if not info.fps_known:  # the motion is per second: a guessed frame rate would give another speed
        raise ValueError(f"{src / 'seqinfo.ini'}: no frameRate")
    if motion == "zoom" and not (info.width and info.height):
        raise ValueError(f"{src / 'seqinfo.ini'}: no imWidth / imHeight (the zoom's centre)")
    fps, centre = info.fps, (info.width / 2.0, info.height / 2.0)
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "seqinfo.ini", dst / "seqinfo.ini")
    for det in sorted((src / "det").glob("*.txt")):
        shift_mot_file(det, dst / "det" / det.name, fps, speed, motion, centre)
    shift_mot_file(src / "gt" / "gt.txt", dst / "gt" / "gt.txt", fps, speed, motion, centre)
    return fps


def run_speed(speed: float, datasets: list[str], args: argparse.Namespace) -> dict:
    """run_bench on the copies at ``speed``: ours and the peers, then (unless ``--no-gain-row``) ours once
    more per :data:`EXTRA_ROWS` entry; results.json's content, with the extra runs' rows of ours under their
    keys (``--config`` applies to the first run only)."""
    data = args.out / f"data_{speed:g}"
    for seq in sorted({DATASETS[k] for k in datasets if k in DATASETS}):
        moving_camera_copy(args.data / seq, data / seq, speed, args.motion)
    if HELD_OUT in datasets:
        for src in sorted((args.out / "source" / HELD_OUT).iterdir()):
            moving_camera_copy(src, data / HELD_OUT / src.name, speed, args.motion)
    print(f"camera {args.motion} {speed:g} {MOTIONS[args.motion].unit}: {' '.join(datasets)}", flush=True)
    results = _run_bench(data, datasets, args.out / f"run_{speed:g}", args.trackers, args.config)
    if args.gain_row:
        for row, (_, params) in EXTRA_ROWS.items():
            config = args.out / f"{row}.yaml"
            config.write_text("/**:\n  ros__parameters:\n"
                              + "".join(f"    {k}: {v}\n" for k, v in params.items()))
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


def table(results: dict[float, dict], key: str, labels: dict[str, str], unit: str = "px/s") -> str:
    """Markdown table of one dataset: a row per tracker, HOTA / IDF1 per speed (in ``unit``)."""
    speeds = sorted(results)
    trackers = list(results[speeds[0]][key])
    for k, row in enumerate(EXTRA_ROWS):  # right under ours
        if row in trackers:
            trackers.remove(row)
            trackers.insert(1 + k, row)
    header = ["tracker", *(f"{s:g} {unit}" for s in speeds)]
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
    p.add_argument("--motion", choices=sorted(MOTIONS), default="pan",
                   help="pan: the camera turns (default); zoom: it moves towards the scene and back")
    p.add_argument("--speeds", type=float, nargs="+",
                   help="peak speeds: " + "; ".join(
                       f"{k} [{m.unit.replace('%', '%%')}] (default {' '.join(f'{v:g}' for v in m.speeds)})"
                       for k, m in MOTIONS.items()) + "; 0, the original, is always run")
    p.add_argument("--datasets", nargs="+", choices=[*sorted(DATASETS), HELD_OUT], default=list(DATASETS),
                   help=f"default: the four static dev sequences; {HELD_OUT}: run_bench's sixteen generated "
                   "scenes (written under OUT/source first), a check on scenes that took no part in choosing "
                   "the gate")
    p.add_argument("--trackers", nargs="*", help="peers (default: all; none: ours only)")
    p.add_argument("--config", type=Path, help="our tracker's parameter file")
    p.add_argument("--no-gain-row", dest="gain_row", action="store_false",
                   help="skip the extra rows of ours (gain always on, gain off)")
    p.add_argument("--data", type=Path, default=DATA, help="folder of the original sequences")
    p.add_argument("--out", type=Path, help="work folder (default: bench/out/camera_MOTION)")
    p.add_argument("--markdown", type=Path, default=BENCHMARKS_MD)
    p.add_argument("--no-markdown", action="store_true")
    p.add_argument("--section", help="name of the <!-- bench:NAME:start/end --> markers to write between "
                   "(default: camera_MOTION)")
    args = p.parse_args(argv)
    args.speeds = args.speeds or list(MOTIONS[args.motion].speeds)
    args.out = args.out or OUT / f"camera_{args.motion}"
    args.section = args.section or f"camera_{args.motion}"
    if any(s < 0 for s in args.speeds):
        p.error("--speeds must be >= 0")
    missing = [k for k in args.datasets
               if k in DATASETS and not (args.data / DATASETS[k] / "gt" / "gt.txt").is_file()]
    if missing:
        print(f"camera_pan: no ground truth for {', '.join(missing)} under {args.data}", file=sys.stderr)
        return 2
    if HELD_OUT in args.datasets:
        from bench.run_bench import write_synthetic_suite

        write_synthetic_suite(args.out / "source" / HELD_OUT)
    try:
        results = {s: run_speed(s, args.datasets, args) for s in sorted({0.0, *args.speeds})}
    except ValueError as exc:  # a sequence without the frame rate (or, for a zoom, the image size)
        print(f"camera_pan: {exc}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({f"{s:g}": r for s, r in results.items()}, indent=1))
    from bench.run_bench import load_run_peer

    labels = {"ros2_tracker": "**ros2_tracker**",
              **{k: f"**ros2_tracker**, {v[0]}" for k, v in EXTRA_ROWS.items()},
              **{k: v.label for k, v in load_run_peer().PEERS.items()}}
    if args.motion == "zoom":
        parts = [f"HOTA / IDF1 with the camera zooming in and back out at a peak rate of 0 (the original) to "
                 f"{max(args.speeds):g} %/s about the image centre (at its largest "
                 f"{zoom_peak(max(args.speeds)):.2f}x)."]
    else:
        parts = [f"HOTA / IDF1 with the camera panning at a peak of 0 (the original) to {max(args.speeds):g} "
                 "px/s (per frame: speed / fps, e.g. 8 px at 200 px/s and 25 Hz, 29 px at 7 Hz)."]
    for key in args.datasets:
        parts += [f"**{key}**", table(results, key, labels, MOTIONS[args.motion].unit)]
    parts.append(command_footer('bench/camera_pan.py', argv))
    body = "\n\n".join(parts)
    report(body, args.section, None if args.no_markdown else args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
