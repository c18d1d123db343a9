"""``ros2-tracker track``: MOTChallenge detections in, MOTChallenge results out (the benchmark contract).

    ros2-tracker track --detections DET.txt --output RES.txt [--config F] [--fps F] [--timing T.json]

``--timing`` writes ``{"update_seconds": S}``: the time inside the tracker's update calls only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ros2_tracker.cli.errors import UserError
from ros2_tracker.core.tracker import Tracker, TrackerConfig
from ros2_tracker.io.mot import read_mot, write_results
from ros2_tracker.io.params import load_config
from ros2_tracker.io.sequence import find_sequence_root, read_sequence_info
from ros2_tracker.nodes.node_config import tracker_node_param_names
from ros2_tracker.offline import track_mot_detections


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the subcommand."""
    p = sub.add_parser("track", help="track MOTChallenge detections, write MOTChallenge results",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detections", required=True, type=Path, help="MOTChallenge det.txt")
    p.add_argument("--output", required=True, type=Path, help="results file to write")
    p.add_argument("--config", type=Path, help="tracker parameters (config/tracker.yaml form)")
    p.add_argument("--fps", type=float, help="frame rate [Hz]; default: the sequence's seqinfo.ini, else 30")
    p.add_argument("--timing", type=Path, help='write {"update_seconds": S} here')
    p.add_argument("--frames", type=int, help="number of frames (default: the last frame with detections, "
                   "or seqLength)")
    p.set_defaults(run=run)
    return p


def resolve_fps(det_path: Path, fps: float | None) -> tuple[float, int]:
    """Frame rate and sequence length: from --fps, else the sequence's seqinfo.ini, else 30 Hz."""
    root = find_sequence_root(det_path)
    info = read_sequence_info(root) if root else None
    length = info.length if info else 0
    if fps is not None:
        if not fps > 0:
            raise UserError(f"--fps must be > 0, got {fps}")
        return fps, length
    if info and info.fps_known:
        return info.fps, length
    print("note: no frame rate given (--fps) or found in seqinfo.ini; assuming 30 Hz", file=sys.stderr)
    return 30.0, length


def run(args: argparse.Namespace) -> int:
    """Execute ``track``."""
    config = load_config(TrackerConfig, args.config, allowed_extra=tracker_node_param_names())
    dets = read_mot(args.detections)
    fps, length = resolve_fps(args.detections, args.fps)
    tracker = Tracker(config)
    res = track_mot_detections(dets, tracker, fps, last_frame=args.frames or length or None)
    write_results(args.output, res.frames, res.ids, res.boxes_tlwh, res.scores)
    if args.timing:
        args.timing.parent.mkdir(parents=True, exist_ok=True)
        args.timing.write_text(json.dumps({"update_seconds": res.update_seconds, "frames": res.n_frames}))
    if tracker.dropped_detections:
        print(f"warning: {tracker.dropped_detections} invalid detections dropped", file=sys.stderr)
    print(f"tracked {res.n_frames} frames, {len(set(res.ids.tolist()))} tracks -> {args.output}")
    return 0
