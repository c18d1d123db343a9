"""``ros2-tracker track``: MOTChallenge detections in, MOTChallenge results out (the benchmark contract).

    ros2-tracker track --detections DET.txt --output RES.txt [--config F] [--fps F] [--timing T.json]
                       [--sequence SEQ --reid-model MODEL.onnx [--reid-config F] [--reid-threads N]]
                       [--offline [--refine-config F]]

``--timing`` writes ``{"update_seconds": S}``: the time inside the tracker's update calls only.

With ``--reid-model``, each frame's image is read from ``--sequence`` (a MOTChallenge folder with
``img1/``, or a video file whose decoded frame f-1 is MOT frame f) and the detections get appearance
embeddings (``ros2_tracker.appearance``), passed to the tracker as ``features``. ``--timing`` then also
reports ``embed_seconds`` (inside the embedder), ``read_seconds`` (image reading and decoding),
``embedded_frames`` and ``frames_without_appearance`` (missing images, boxes without a crop, or
embedder failures: those frames are tracked by motion only); ``update_seconds`` stays the tracker's.

With ``--offline`` the sequence is processed as a batch (``ros2_tracker.refine``): online tracking runs
exactly as without it and its results go to ``RES.online.txt`` beside ``--output``; then tracklets are
linked across gaps (by motion and appearance: the ``--reid-model`` embeddings already computed) and
short gaps are interpolated, and ``--output`` gets the refined results, a valid MOTChallenge file,
marked offline by ``RES.txt.offline.json`` (refinement parameters, links, counts). Parameters:
``--refine-config`` (config/refine.yaml form).

With ``--cmc --sequence SEQ`` the core tracker's tracks are moved by the camera motion between
consecutive images (ECC, ``ros2_tracker.cmc``) before each update; ``--timing`` adds ``cmc_seconds``,
``cmc_failures`` and ``cmc_frames_without_image`` (both also a warning: those frames are not compensated).
``--tracker tracktor --sequence SEQ [--detections DET.txt | --private]`` runs Tracktor instead (a
detector's regression head on every image; see ``ros2_tracker.regression.command``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ros2_tracker.cli.errors import UserError, check_frames_option, check_output_files
from ros2_tracker.core.boxes import tlwh_to_xyxy
from ros2_tracker.core.tracker import Tracker, TrackerConfig, score_scale_warning
from ros2_tracker.io.calibration import load_ground_homography, orient_homography
from ros2_tracker.io.files import write_text
from ros2_tracker.io.mot import MotRows, read_mot, write_results
from ros2_tracker.io.params import load_config
from ros2_tracker.io.sequence import SequenceInfo, find_sequence_root, fps_problem, read_sequence_info
from ros2_tracker.nodes.node_config import tracker_node_param_names
from ros2_tracker.offline import OfflineResult, SequenceAppearance, track_mot_detections
from ros2_tracker.refine import RefineConfig
from ros2_tracker.refine.embeddings import EmbeddingRecorder
from ros2_tracker.regression.command import add_arguments as add_tracktor_arguments
from ros2_tracker.regression.command import build_camera_motion, check_core_args, run_tracktor

if TYPE_CHECKING:
    from ros2_tracker.cmc.sequence import SequenceMotion


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the subcommand."""
    p = sub.add_parser("track", help="track MOTChallenge detections, write MOTChallenge results",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--detections", type=Path, help="MOTChallenge det.txt (required, except with --tracker "
                   "tracktor --private)")
    p.add_argument("--output", required=True, type=Path, help="results file to write")
    p.add_argument("--config", type=Path, help="tracker parameters (config/tracker.yaml form)")
    p.add_argument("--fps", type=float, help="frame rate [Hz]; default: the sequence's seqinfo.ini, else 30")
    p.add_argument("--timing", type=Path, help='write {"update_seconds": S} here')
    p.add_argument("--frames", type=int, help="track frames 1..N (detections after N are left out, with a "
                   "note); default: seqLength, or the last frame with detections if that is later")
    p.add_argument("--calibration", type=Path, help="camera calibration (Tsai .xml as in PETS 2009, or 9 "
                   "numbers of an image-to-ground homography): enables the ground-plane gate "
                   "max_ground_distance_m")
    reid = p.add_argument_group("appearance (re-identification)")
    reid.add_argument("--sequence", type=Path, help="images of the detections: MOTChallenge folder (img1/) "
                      "or video file, for --reid-model, --cmc or --tracker tracktor")
    reid.add_argument("--reid-model", type=Path, help="re-ID ONNX model (e.g. osnet_x0_25_msmt17.onnx): "
                      "detections get appearance embeddings")
    reid.add_argument("--reid-config", type=Path, help="embedder parameters (EmbedderConfig fields: "
                      "input_size, mean, std, batch_size, ...) in config/*.yaml form")
    reid.add_argument("--reid-threads", type=int, help="ONNX Runtime threads for the embedder "
                      "(default 1; 0 = all cores)")
    offline = p.add_argument_group("offline refinement (the whole sequence at once)")
    offline.add_argument("--offline", action="store_true", help="after online tracking, link tracklets "
                         "across gaps and interpolate short gaps; --output gets the refined results, "
                         "RES.online.txt the online ones, RES.txt.offline.json marks the output offline")
    offline.add_argument("--refine-config", type=Path, help="refinement parameters (config/refine.yaml "
                         "form); needs --offline")
    p.add_argument("--tracker", choices=("sort", "tracktor"), default="sort", help="sort: the core tracker "
                   "on --detections; tracktor: a detector's regression head on --sequence's images "
                   "(ros2_tracker.regression)")
    p.add_argument("--cmc", action="store_true", help="core tracker: camera-motion compensation (ECC) from "
                   "--sequence's images")
    add_tracktor_arguments(p)
    p.set_defaults(run=run)
    return p


def resolve_fps(det_path: Path, fps: float | None) -> tuple[float, int]:
    """Frame rate and sequence length: from --fps, else the sequence's seqinfo.ini, else 30 Hz."""
    root = find_sequence_root(det_path)
    info = read_sequence_info(root) if root else None
    return choose_fps(fps, info), info.length if info else 0


def choose_fps(fps: float | None, info: SequenceInfo | None) -> float:
    """--fps (checked), else ``info``'s seqinfo.ini frame rate, else 30 Hz with a note on stderr."""
    if fps is not None:
        problem = fps_problem(fps)
        if problem:
            raise UserError(f"--fps {problem}")
        return fps
    if info and info.fps_known:
        return info.fps
    print("note: no frame rate given (--fps) or found in seqinfo.ini; assuming 30 Hz", file=sys.stderr)
    return 30.0


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
    if args.reid_model is None and args.sequence is not None and getattr(args, "cmc", False):
        return None  # --sequence gives the images of --cmc only
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


def warn_score_scale(path: Path, scores: np.ndarray, config: TrackerConfig) -> None:
    """Warn on stderr when a detection file's scores exceed 1 while the thresholds assume [0, 1]
    (``core.tracker.score_scale_warning``); ``track`` and ``demo`` both check their input."""
    finite = scores[np.isfinite(scores)]
    note = score_scale_warning(float(finite.max()), config) if len(finite) else None
    if note:
        print(f"warning: {path}: {note}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    """Execute ``track``."""
    check_frames_option(args.frames)
    if args.tracker == "tracktor":
        return _run_tracktor(args)
    check_core_args(args)
    _check_outputs(args)
    config = load_config(TrackerConfig, args.config, allowed_extra=tracker_node_param_names(),
                         node="/tracker")
    dets = _first_frames(read_mot(args.detections), args.frames)
    if args.calibration is not None:
        config = _with_calibration(config, args.calibration, dets)
    warn_score_scale(args.detections, dets.scores, config)
    fps, length = resolve_fps(args.detections, args.fps)
    if length and args.frames is None and dets.last_frame > length:
        print(f"note: {int((dets.frames > length).sum())} detection rows after seqLength {length} are "
              f"tracked (up to frame {dets.last_frame}); MOTChallenge evaluators reject result rows beyond "
              f"seqLength: --frames {length} leaves them out", file=sys.stderr)
    refine_config = _refine_config(args)
    appearance = build_appearance(args)
    features = _recording(appearance) if refine_config is not None else appearance
    from ros2_tracker.motion import create_predictor

    tracker = Tracker(config, predictor=create_predictor(config))
    motion = build_camera_motion(args, tracker, features,
                                 frames=appearance.frames if appearance is not None else None)
    last = args.frames or length or None
    with _progress_bar(max(dets.last_frame, last or 0), args.detections.name) as bar:
        res = track_mot_detections(dets, tracker, fps, last_frame=last, features=motion or features,
                                   progress=None if bar.disable else lambda _frame: bar.update())
    tracks = len(set(res.ids.tolist()))
    if refine_config is None:
        write_results(args.output, res.frames, res.ids, res.boxes_tlwh, res.scores)
    else:
        tracks = _write_offline(args, res, fps, refine_config, features)
    if args.timing:
        _write_timing(args.timing, res, appearance, motion)
    _warn_what_was_left_out(res, tracker, appearance, motion)
    print(f"tracked {res.n_frames} frames, {tracks} tracks -> {args.output}")
    return 0


def _write_timing(path: Path, res: OfflineResult, appearance: SequenceAppearance | None,
                  motion: SequenceMotion | None) -> None:
    """``--timing``: ``update_seconds`` (the contract) and the other stages' costs and counts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    timing: dict = {"update_seconds": res.update_seconds, "frames": res.n_frames}
    if appearance is not None:
        timing.update(embed_seconds=appearance.embed_seconds, read_seconds=appearance.read_seconds,
                      embedded_frames=appearance.embedded_frames,
                      frames_without_appearance=appearance.frames_without_appearance,
                      embedder=appearance.embedder.name)
    if motion is not None:
        timing.update(cmc_seconds=motion.aligner.seconds, cmc_failures=motion.aligner.failures,
                      cmc_frames_without_image=motion.frames_without_image)
    write_text(path, json.dumps(timing))


def _warn_what_was_left_out(res: OfflineResult, tracker: Tracker, appearance: SequenceAppearance | None,
                            motion: SequenceMotion | None) -> None:
    """One warning per kind of input the run could not use (dropped detections, frames without images)."""
    if tracker.dropped_detections:
        print(f"warning: {tracker.dropped_detections} invalid detections dropped", file=sys.stderr)
    if tracker.excess_detections:
        print(f"warning: {tracker.excess_detections} detections not tracked: frames with more than "
              f"max_detections ({tracker.config.max_detections}) keep the highest-scoring", file=sys.stderr)
    if motion is not None and motion.frames_without_image:
        print(f"warning: {motion.frames_without_image} of {res.n_frames} frames have no image in --sequence: "
              "tracked without camera-motion compensation", file=sys.stderr)
    if motion is not None and motion.aligner.failures:
        print(f"warning: camera-motion compensation failed on {motion.aligner.failures} frames (the identity "
              "warp was used)", file=sys.stderr)
    if appearance is not None and appearance.frames_without_appearance:
        print(f"warning: {appearance.frames_without_appearance} frames tracked without appearance, e.g. "
              f"{appearance.problems[0]}", file=sys.stderr)


def _run_tracktor(args: argparse.Namespace) -> int:
    if args.calibration is not None:  # it would be ignored: Tracktor has no ground-plane gate
        raise UserError("--calibration needs the core tracker (--tracker sort)")
    _check_outputs(args)
    return run_tracktor(args)


def _with_calibration(config: TrackerConfig, path: Path, dets: MotRows) -> TrackerConfig:
    """``config`` with the ground-plane homography of ``path``, its sign chosen so the detections stand in
    front of the camera (a note says when it was flipped: 9 numbers given with the opposite sign)."""
    h, flipped = orient_homography(load_ground_homography(path), tlwh_to_xyxy(dets.boxes_tlwh))
    if flipped:
        print(f"note: {path}: the homography put most detections' foot points behind the camera (w < 0); "
              "using it with the opposite sign (the same mapping)", file=sys.stderr)
    return config.replace(ground_homography=h)


def _check_outputs(args: argparse.Namespace) -> None:
    """The files written (``--output``, with --offline the online results beside it, ``--timing``) must not
    be any file read, nor one another, and must be creatable where asked (:func:`check_output_files`)."""
    from ros2_tracker.refine.outputs import online_results_path

    outputs = {"--output": args.output, "--timing": args.timing,
               "--offline's online results": online_results_path(args.output) if args.offline else None}
    inputs = {name: getattr(args, attr, None) for name, attr in (
        ("--detections", "detections"), ("--config", "config"), ("--calibration", "calibration"),
        ("--reid-model", "reid_model"), ("--reid-config", "reid_config"),
        ("--refine-config", "refine_config"), ("--sequence", "sequence"),
        ("--tracktor-config", "tracktor_config"), ("--regressor-model", "regressor_model"))}
    check_output_files(outputs, inputs)


def _first_frames(dets: MotRows, frames: int | None) -> MotRows:
    """The detections of frames 1..``frames`` (all without it); a note names the rows left out."""
    if frames is None or dets.last_frame <= frames:
        return dets
    keep = dets.frames <= frames
    print(f"note: --frames {frames}: {int((~keep).sum())} detection rows after frame {frames} are not "
          "tracked", file=sys.stderr)
    return MotRows(dets.frames[keep], dets.ids[keep], dets.boxes_tlwh[keep], dets.scores[keep],
                   dets.extra[keep])


def _progress_bar(frames: int, name: str):
    """A progress bar on stderr when it is a terminal (a long recording takes a while: every frame up to
    the last is tracked); disabled otherwise, so logs and benchmark runs stay clean."""
    from tqdm import tqdm

    return tqdm(total=frames, desc=f"track {name}", unit="frame", leave=False,
                disable=not sys.stderr.isatty())


def _refine_config(args: argparse.Namespace) -> RefineConfig | None:
    """The refinement parameters with ``--offline`` (None without it)."""
    if not args.offline:
        if args.refine_config is not None:
            raise UserError("--refine-config needs --offline")
        return None
    return load_config(RefineConfig, args.refine_config)


def _recording(appearance: SequenceAppearance | None) -> EmbeddingRecorder | None:
    """``--offline``: keep the embeddings online tracking computes, for linking (None without appearance)."""
    return None if appearance is None else EmbeddingRecorder(appearance)


def _write_offline(args: argparse.Namespace, res: OfflineResult, fps: float, refine_config: RefineConfig,
                   recorder: EmbeddingRecorder | None) -> int:
    """``--offline``: the online rows to RES.online.txt, the refined ones to --output, and the marker;
    returns the number of tracks written to --output."""
    from ros2_tracker.refine.outputs import online_results_path, refine_and_write

    online = online_results_path(args.output)
    write_results(online, res.frames, res.ids, res.boxes_tlwh, res.scores)
    embeddings = recorder.row_embeddings(res.frames, res.det_indices) if recorder is not None else None
    refined, marker = refine_and_write(res.frames, res.ids, res.boxes_tlwh, res.scores, output=args.output,
                                       online_path=online, fps=fps, config=refine_config,
                                       embeddings=embeddings)
    summary = refined.summary()
    if embeddings is None and refine_config.link and not refine_config.link_without_appearance:
        print("note: --offline without --sequence/--reid-model: no appearance, so tracklets are not linked "
              "(link_without_appearance is off); gaps are interpolated", file=sys.stderr)
    print(f"offline: {summary['links']} links ({summary['ids_before']} -> {summary['ids_after']} ids), "
          f"{summary['interpolated_rows']} interpolated boxes; online results -> {online}, "
          f"marker -> {marker}")
    return int(summary["ids_after"])
