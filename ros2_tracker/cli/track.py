"""``ros2-tracker track``: MOTChallenge detections in, MOTChallenge results out (the benchmark contract).

    ros2-tracker track --detections DET.txt --output RES.txt [--config F] [--fps F] [--timing T.json]
                       [--sequence SEQ --reid-model MODEL.onnx [--reid-config F] [--reid-threads N]]

``--timing`` writes ``{"update_seconds": S}``: the time inside the tracker's update calls only.

With ``--reid-model``, each frame's image is read from ``--sequence`` (a MOTChallenge folder with
``img1/``, or a video file whose decoded frame f-1 is MOT frame f) and the detections get appearance
embeddings (``ros2_tracker.appearance``), passed to the tracker as ``features``. ``--timing`` then also
reports ``embed_seconds`` (inside the embedder), ``read_seconds`` (image reading and decoding),
``embedded_frames`` and ``frames_without_appearance`` (missing images, boxes without a crop, or
embedder failures: those frames are tracked by motion only); ``update_seconds`` stays the tracker's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ros2_tracker.cli.errors import UserError
from ros2_tracker.core.tracker import Tracker, TrackerConfig
from ros2_tracker.io.calibration import load_ground_homography
from ros2_tracker.io.mot import read_mot, write_results
from ros2_tracker.io.params import load_config
from ros2_tracker.io.sequence import find_sequence_root, read_sequence_info
from ros2_tracker.nodes.node_config import tracker_node_param_names
from ros2_tracker.offline import SequenceAppearance, track_mot_detections


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
    p.add_argument("--calibration", type=Path, help="camera calibration (Tsai .xml as in PETS 2009, or 9 "
                   "numbers of an image-to-ground homography): enables the ground-plane gate "
                   "max_ground_distance_m")
    reid = p.add_argument_group("appearance (re-identification)")
    reid.add_argument("--sequence", type=Path, help="images of the detections: MOTChallenge folder (img1/) "
                      "or video file; needs --reid-model")
    reid.add_argument("--reid-model", type=Path, help="re-ID ONNX model (e.g. osnet_x0_25_msmt17.onnx): "
                      "detections get appearance embeddings")
    reid.add_argument("--reid-config", type=Path, help="embedder parameters (EmbedderConfig fields: "
                      "input_size, mean, std, batch_size, ...) in config/*.yaml form")
    reid.add_argument("--reid-threads", type=int, help="ONNX Runtime threads for the embedder "
                      "(default 1; 0 = all cores)")
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


def build_appearance(args: argparse.Namespace) -> SequenceAppearance | None:
    """The per-frame embedding source of ``--sequence``/``--reid-model``, or None without them.

    Raises:
        UserError: one of the two options without the other, or a sequence that cannot be read.
        ConfigError: bad embedder parameters or a model that cannot be loaded.
    """
    if args.reid_model is None and args.sequence is None:
        if args.reid_config is not None or args.reid_threads is not None:
            raise UserError("--reid-config and --reid-threads need --reid-model")
        return None
    if args.reid_model is None or args.sequence is None:
        raise UserError("--sequence and --reid-model go together: the images and the re-ID model")
    from ros2_tracker.appearance import EmbedderConfig, create_embedder
    from ros2_tracker.io.video import FrameSourceError, open_frame_source

    overrides: dict = {"model_path": str(args.reid_model)}
    if args.reid_threads is not None:
        overrides["num_threads"] = args.reid_threads
    embedder = create_embedder(load_config(EmbedderConfig, args.reid_config, **overrides))
    try:
        source = open_frame_source(args.sequence)
    except FrameSourceError as exc:
        raise UserError(f"--sequence: {exc}") from None
    return SequenceAppearance(source, embedder)


def run(args: argparse.Namespace) -> int:
    """Execute ``track``."""
    config = load_config(TrackerConfig, args.config, allowed_extra=tracker_node_param_names())
    if args.calibration is not None:
        config = config.replace(ground_homography=load_ground_homography(args.calibration))
    dets = read_mot(args.detections)
    fps, length = resolve_fps(args.detections, args.fps)
    appearance = build_appearance(args)
    tracker = Tracker(config)
    res = track_mot_detections(dets, tracker, fps, last_frame=args.frames or length or None,
                               features=appearance)
    write_results(args.output, res.frames, res.ids, res.boxes_tlwh, res.scores)
    if args.timing:
        args.timing.parent.mkdir(parents=True, exist_ok=True)
        timing: dict = {"update_seconds": res.update_seconds, "frames": res.n_frames}
        if appearance is not None:
            timing.update(embed_seconds=appearance.embed_seconds, read_seconds=appearance.read_seconds,
                          embedded_frames=appearance.embedded_frames,
                          frames_without_appearance=appearance.frames_without_appearance,
                          embedder=appearance.embedder.name)
        args.timing.write_text(json.dumps(timing))
    if tracker.dropped_detections:
        print(f"warning: {tracker.dropped_detections} invalid detections dropped", file=sys.stderr)
    if appearance is not None and appearance.frames_without_appearance:
        print(f"warning: {appearance.frames_without_appearance} frames tracked without appearance, e.g. "
              f"{appearance.problems[0]}", file=sys.stderr)
    print(f"tracked {res.n_frames} frames, {len(set(res.ids.tolist()))} tracks -> {args.output}")
    return 0
