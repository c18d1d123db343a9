"""``ros2-tracker demo``: track a sequence with the core tracker (no ROS), evaluate and draw it.

    ros2-tracker demo                                   # built-in synthetic scene
    ros2-tracker demo --sequence ../shared/data/TUD-Campus [--detections det_frcnn.txt]

Writes into ``--out`` (default ``out/demo``): the MOT results file, metrics (JSON/CSV) when the
sequence has ground truth, an annotated video (boxes, ids, predicted paths) and an ids-over-time plot.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from ros2_tracker.cli.errors import UserError, check_scoring_ground_truth, metrics_unavailable
from ros2_tracker.cli.track import choose_fps, warn_score_scale
from ros2_tracker.core.track import TrackState
from ros2_tracker.core.tracker import Tracker, TrackerConfig
from ros2_tracker.io.mot import read_mot, write_results
from ros2_tracker.io.params import load_config
from ros2_tracker.io.sequence import SequenceInfo, read_sequence_info
from ros2_tracker.nodes.node_config import tracker_node_param_names
from ros2_tracker.offline import OfflineResult, track_mot_detections


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the subcommand."""
    p = sub.add_parser("demo", help="track a sequence (default: synthetic), evaluate, draw",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sequence", type=Path, help="MOTChallenge folder (img1/, det/, gt/, seqinfo.ini)")
    p.add_argument("--detections", help="file name under det/ (default det.txt, else the first det/*.txt), "
                   "or a path to a detection file (as track and replay take it)")
    p.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder (default out/demo)")
    p.add_argument("--config", type=Path, help="tracker parameters (config/tracker.yaml form)")
    p.add_argument("--fps", type=float, help="frame rate [Hz] of --sequence (default: its seqinfo.ini, "
                   "else 30 with a note)")
    p.add_argument("--seed", type=int, help="synthetic scene seed (default 0; not with --sequence)")
    p.add_argument("--no-video", action="store_true", help="skip the annotated video")
    p.set_defaults(run=run)
    return p


def prepare_sequence(args: argparse.Namespace) -> SequenceInfo:
    """The sequence to track: the given folder, or a freshly generated synthetic scene."""
    if args.sequence is not None:
        if not args.sequence.is_dir():
            raise UserError(f"--sequence {args.sequence}: not a folder")
        return read_sequence_info(args.sequence)
    from tqdm import tqdm

    from ros2_tracker.synthetic import SceneConfig, generate_scene

    scene = generate_scene(SceneConfig(seed=args.seed or 0))
    folder = args.out / scene.config.sequence_name
    with tqdm(total=scene.num_frames, desc="render synthetic scene", unit="frame", leave=False) as bar:
        scene.write_mot(folder, render=not args.no_video, progress=lambda _f: bar.update())
    return read_sequence_info(folder)


def run(args: argparse.Namespace) -> int:
    """Execute ``demo``."""
    from tqdm import tqdm

    if args.fps is not None and args.sequence is None:
        raise UserError("--fps needs --sequence (the synthetic scene has its own frame rate)")
    if args.detections is not None and args.sequence is None:  # scored against the synthetic ground truth?
        raise UserError("--detections needs --sequence, whose ground truth scores them (the synthetic scene "
                        "brings its own detections)")
    if args.seed is not None and args.sequence is not None:
        raise UserError("--seed is the synthetic scene's; --sequence is tracked as it is")
    config = load_config(TrackerConfig, args.config, allowed_extra=tracker_node_param_names(),
                         node="/tracker")
    info = prepare_sequence(args)
    if info.gt_path.is_file():
        check_scoring_ground_truth(info.gt_path)
    fps = choose_fps(args.fps, info)
    named = args.detections
    is_path = named and (os.sep in named or bool(os.altsep and os.altsep in named))  # ./x.txt is a path
    det_path = Path(named) if is_path else info.detection_path(named)
    dets = read_mot(det_path)
    warn_score_scale(det_path, dets.scores, config)
    from ros2_tracker.motion import create_predictor

    tracker = Tracker(config, predictor=create_predictor(config))
    snapshots: list = []
    with tqdm(total=max(info.length, dets.last_frame), desc=f"track {info.name}", unit="frame") as bar:
        res = track_mot_detections(dets, tracker, fps, last_frame=info.length or None,
                                   on_frame=None if args.no_video else _snapshot(snapshots),
                                   progress=lambda _f: bar.update())
    out = args.out
    results_path = out / "results" / f"{info.name}.txt"
    write_results(results_path, res.frames, res.ids, res.boxes_tlwh, res.scores)
    n_tracks = len(np.unique(res.ids))
    print(f"tracked {res.n_frames} frames of {info.name} ({det_path.name}): {n_tracks} tracks, "
          f"{1e6 * res.update_seconds / max(res.n_frames, 1):.0f} us/frame in Tracker.update")
    written = [("results", results_path)]
    written += _evaluate(info, results_path, out)
    written += _draw(replace(info, fps=fps), res, snapshots, out, args.no_video)
    for what, path in written:
        print(f"  {what:10s} {path}")
    return 0


def _snapshot(store: list):
    from ros2_tracker.viz.sequence import FrameTracks

    def on_frame(frame: int, tracks, tracker: Tracker) -> None:
        keep = tracks.states != TrackState.TENTATIVE
        traj = tracker.predict_trajectories(horizon_s=1.0)  # 1 s keeps the drawing readable
        store.append(FrameTracks(frame, tracks.ids[keep], tracks.boxes_xyxy[keep], tracks.states[keep],
                                 traj.centres[keep], traj.covariances[keep]))

    return on_frame


def _evaluate(info: SequenceInfo, results_path: Path, out: Path) -> list[tuple[str, Path]]:
    if not info.gt_path.is_file():
        print(f"no ground truth ({info.gt_path}): metrics skipped", file=sys.stderr)
        return []
    if (why := metrics_unavailable()) is not None:
        print(f"note: {why}", file=sys.stderr)
        return []
    from ros2_tracker.eval.metrics import evaluate_sequence, format_table, write_csv, write_json

    rows = [(info.name, evaluate_sequence(info.gt_path, results_path, name=info.name))]
    print(format_table(rows))
    unscored = rows[0][1].unscored_rows
    if unscored:  # e.g. MOT17-mini: ground truth for the first frames only
        print(f"note: {info.name}: {unscored} result rows after frame {rows[0][1].num_frames}, the last "
              "with ground truth, are not scored", file=sys.stderr)
    write_json(out / "metrics.json", rows)
    write_csv(out / "metrics.csv", rows)
    return [("metrics", out / "metrics.json")]


def _draw(info: SequenceInfo, res: OfflineResult, snapshots: list, out: Path,
          no_video: bool) -> list[tuple[str, Path]]:
    from ros2_tracker.viz.plots import plot_ids_over_time

    gt = read_mot(info.gt_path, validate_boxes=False, note_unsorted=False) if info.gt_path.is_file() else None
    plot = plot_ids_over_time(res.frames, res.ids, out / f"{info.name}_ids.png",
                              gt_frames=None if gt is None else gt.frames,
                              gt_ids=None if gt is None else gt.ids, title=f"{info.name}: track ids")
    written = [("plot", plot)]
    if not no_video and snapshots:
        from tqdm import tqdm

        from ros2_tracker.viz.sequence import write_tracking_video

        with tqdm(total=len(snapshots), desc="draw video", unit="frame", leave=False) as bar:
            video = write_tracking_video(out / f"{info.name}_tracks.mp4", info, snapshots,
                                         progress=lambda _f: bar.update())
        written.append(("video", video))
    return written
