"""``ros2-tracker follow``: follow one chosen object through a sequence or video, offline (no ROS).

    ros2-tracker follow SOURCE --box X,Y,W,H [--backend nano] [--model DIR] [--output DIR]
                       [--start-frame K] [--frames N] [--config sot.yaml] [--no-video]
                       [--reid-model OSNET.onnx [--detector-model YOLOX.onnx]]

SOURCE is a MOTChallenge folder (``img1/``) or a video file. ``--box`` is the target's box in frame
``--start-frame`` (default 1): top-left x, y, width, height [px]. The same follower as ``sot_node``
runs (:class:`ros2_tracker.sot.follower.Follower`: backend, cycle-consistency check, tracking /
uncertain / lost, re-acquisition) with the parameters of ``--config`` (``config/sot.yaml`` form).

Writes into ``--output`` (default ``runs/follow-<source>-<time>/``): ``follow.csv`` with one row per
frame (frame, stamp_s, state, confidence, backend_confidence, cycle_iou, x1, y1, x2, y2, event) and
``follow.mp4`` (the frames with the target, its state, confidence and predicted path).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ros2_tracker.cli.errors import UserError
from ros2_tracker.cli.runs import new_run_folder

_COLUMNS = ("frame", "stamp_s", "state", "confidence", "backend_confidence", "cycle_iou", "x1", "y1", "x2",
            "y2", "event")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the subcommand."""
    from ros2_tracker.sot.factory import BACKENDS

    p = sub.add_parser("follow", help="follow one object through a sequence or video (single-target mode)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", type=Path, help="MOTChallenge folder (img1/) or video file")
    p.add_argument("--box", required=True, help="target box in the start frame: x,y,w,h [px] (top-left "
                   "corner, size); write --box=-30,40,80,160 when it starts with a minus sign")
    p.add_argument("--backend", choices=sorted(BACKENDS), help="single-target backend (default: the "
                   "config's, else nano)")
    p.add_argument("--model", type=Path, help="backend model (nano: the NanoTrack v2 folder)")
    p.add_argument("--output", type=Path, help="output folder (default runs/follow-<source>-<time>)")
    p.add_argument("--start-frame", type=int, default=1, help="frame number the box is drawn on (default 1)")
    p.add_argument("--frames", type=int, default=0, help="stop after this many frames (default: all)")
    p.add_argument("--config", type=Path, help="parameters (config/sot.yaml form)")
    p.add_argument("--reid-model", type=Path, help="re-ID ONNX model: re-acquisition checks appearance "
                   "(default: the config's reid_model_path)")
    p.add_argument("--detector-model", type=Path, help="YOLOX ONNX model: re-acquisition searches "
                   "detections too (needs --reid-model; default: the config's detector_model_path)")
    p.add_argument("--no-video", action="store_true", help="skip the annotated video")
    p.set_defaults(run=run)
    return p


def parse_box(text: str) -> np.ndarray:
    """``"x,y,w,h"`` -> (4,) xyxy box [px].

    Raises:
        UserError: not four numbers, or a width/height <= 0.
    """
    try:
        x, y, w, h = (float(v) for v in text.split(","))
    except ValueError:
        raise UserError(f"--box: expected x,y,w,h (four numbers), got {text!r}") from None
    if not all(np.isfinite([x, y, w, h])) or w <= 0 or h <= 0:
        raise UserError(f"--box: width and height must be > 0 (and all finite), got {text!r}")
    return np.array([x, y, x + w, y + h])


def build_follower(args: argparse.Namespace) -> Any:
    """The follower of the options and ``--config`` (ConfigError for bad values or unloadable models)."""
    from ros2_tracker.io.params import load_config
    from ros2_tracker.sot.factory import SotConfig, create_follower
    from ros2_tracker.sot.follower import FollowerConfig
    from ros2_tracker.sot.node_config import SotNodeConfig, sot_param_names

    extra = sot_param_names()
    overrides = {k: v for k, v in (("backend", args.backend), ("model_path", args.model and str(args.model)))
                 if v is not None}
    sot = load_config(SotConfig, args.config, allowed_extra=extra, **overrides)
    follower = load_config(FollowerConfig, args.config, allowed_extra=extra)
    node = load_config(SotNodeConfig, args.config, allowed_extra=extra)
    if sot.backend == "nano" and not sot.model_path:
        raise UserError("--model: the nano backend needs the NanoTrack v2 folder (e.g. "
                        "../shared/models/nanotrack_v2)")
    # the options win over the file's reid_model_path / detector_model_path (as --model over model_path)
    reid = str(args.reid_model) if args.reid_model else node.reid_model_path
    detector = str(args.detector_model) if args.detector_model else node.detector_model_path
    if detector and not reid:
        raise UserError("--detector-model needs --reid-model (detections are compared by appearance)")
    return create_follower(sot, follower, detector_model_path=detector,
                           detector_score_threshold=node.detector_score_threshold,
                           detector_classes=node.detector_classes, reid_model_path=reid)


def run(args: argparse.Namespace) -> int:
    """Execute ``follow``."""
    from ros2_tracker.io.video import FrameSourceError, open_frame_source

    box = parse_box(args.box)
    if args.start_frame < 1 or args.frames < 0:
        raise UserError("--start-frame must be >= 1 and --frames >= 0")
    follower = build_follower(args)
    try:
        source = open_frame_source(args.source)
    except FrameSourceError as exc:
        raise UserError(str(exc)) from None
    made = args.output is None or not args.output.exists()
    out = args.output or new_run_folder(f"follow-{source.name}")
    out.mkdir(parents=True, exist_ok=True)
    try:
        summary = _follow(follower, source, box, args, out)
    except UserError:
        if not follower.active:  # it never started: no empty follow.csv / follow.mp4 left behind
            _remove_outputs(out, made)
        raise
    finally:
        source.close()
    print(f"followed target through {summary['frames']} frames after the start frame ({follower.name}): "
          f"{summary['tracking']} tracking, {summary['uncertain']} uncertain, {summary['lost']} lost, "
          f"{summary['reacquired']} re-acquisitions, {summary['fps']:.1f} frames/s -> {out}")
    return 0


def _follow(follower: Any, source: Any, box: np.ndarray, args: argparse.Namespace, out: Path) -> dict:
    """The frame loop: start at ``--start-frame``, step, write CSV rows and video frames."""
    from tqdm import tqdm

    counts = {"frames": 0, "tracking": 0, "uncertain": 0, "lost": 0, "reacquired": 0, "seconds": 0.0}
    last = args.start_frame + args.frames - 1 if args.frames else 0
    video = None if args.no_video else _video(out, source.fps)
    total = (last or source.length or 0) - args.start_frame + 1
    with (out / "follow.csv").open("w", newline="") as f, \
            tqdm(total=max(total, 0) or None, desc=f"follow {source.name}", unit="frame") as bar:
        rows = csv.writer(f)
        rows.writerow(_COLUMNS)
        for frame in source.frames(last):
            if frame.number < args.start_frame:
                continue
            bar.update(1)
            if frame.image is None:
                if not follower.active:  # --box is drawn on the start frame: no other frame will do
                    raise UserError(f"{args.source}: the start frame cannot be read: {frame.error}")
                print(f"warning: {frame.error}; skipped", file=sys.stderr)
                continue
            row, drawn = _one_frame(follower, frame, box, source.fps, args.start_frame, counts)
            rows.writerow(row)
            if video is not None:
                video.write(drawn)
    if video is not None:
        video.close()
    if not follower.active:
        raise UserError(f"{args.source}: no readable frame {args.start_frame}")
    counts["fps"] = counts["frames"] / max(counts["seconds"], 1e-9)
    return counts


def _one_frame(follower: Any, frame: Any, box: np.ndarray, fps: float, first: int,
               counts: dict) -> tuple[list, np.ndarray]:
    """Start (first frame) or step the follower; the CSV row and the annotated image."""
    from ros2_tracker.sot.inputs import check_start_box
    from ros2_tracker.viz.draw import draw_tracks

    stamp = (frame.number - 1) / fps
    t0 = time.perf_counter()
    if not follower.active:
        try:
            follower.start(frame.image, box, stamp, target_id=1)
        except ValueError as exc:
            raise UserError(f"--box: {exc}") from None
        counts["seconds"] += time.perf_counter() - t0
        box = check_start_box(box, frame.image.shape[:2])  # as the follower took it: clipped to the image
        row = [frame.number, f"{stamp:.6f}", "tracking", 1.0, 1.0, "", *np.round(box, 2), "start"]
        return row, draw_tracks(frame.image, [1], box[None], labels=["1 start"])
    try:
        res = follower.step(frame.image, stamp)
    except ValueError as exc:
        raise UserError(f"frame {frame.number}: {exc}") from None
    counts["seconds"] += time.perf_counter() - t0
    counts["frames"] += 1
    counts[res.state.value] += 1
    counts["reacquired"] += res.event.startswith("reacquired")
    row = [frame.number, f"{stamp:.6f}", res.state.value, round(res.confidence, 4),
           round(res.backend_confidence, 4), "" if np.isnan(res.cycle_iou) else round(res.cycle_iou, 4),
           *np.round(res.box_xyxy, 2), res.event]
    label = f"{res.state.value} {res.confidence:.2f}"
    drawn = draw_tracks(frame.image, [1], res.box_xyxy[None], [int(res.state.track_state)],
                        res.trajectory[None], res.trajectory_cov[None], [label])
    return row, drawn


def _remove_outputs(out: Path, made: bool) -> None:
    """Remove what a run that never started wrote into ``out`` (the folder too, if this run made it)."""
    for name in ("follow.csv", "follow.mp4"):
        (out / name).unlink(missing_ok=True)
    if made and not any(out.iterdir()):
        out.rmdir()


def _video(out: Path, fps: float) -> Any:
    from ros2_tracker.viz.video import VideoWriter

    return VideoWriter(out / "follow.mp4", fps or 30.0)
