"""``ros2-tracker track --tracker tracktor``: Tracktor over a sequence's images, MOTChallenge results out.

    ros2-tracker track --tracker tracktor --sequence SEQ [--detections det.txt | --private]
                       --output RES.txt [--tracktor-config config/tracktor.yaml] [--regressor-model M.pt]
                       [--reid-model osnet.onnx] [--frames N] [--fps F] [--timing T.json]

The options are registered on the ``track`` parser by :func:`add_arguments`; ``cli/track.py`` hands the
run to :func:`run_tracktor`. ``--timing`` writes ``update_seconds`` (inside ``Tracktor.step``: networks and
camera-motion compensation included) and its parts ``encode_seconds``, ``regress_seconds``,
``detect_seconds``, ``cmc_seconds``, ``embed_seconds``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from ros2_tracker.cli.errors import UserError, require_modules
from ros2_tracker.cmc.ecc import CmcConfig
from ros2_tracker.core.tracker import TrackerConfig, strongest
from ros2_tracker.io.files import write_text
from ros2_tracker.io.mot import MotRows, read_mot, write_results
from ros2_tracker.io.params import load_config
from ros2_tracker.regression.config import RegressorConfig
from ros2_tracker.regression.tracktor import TracktorConfig

__all__ = ["add_arguments", "build_camera_motion", "check_core_args", "load_tracktor_configs", "run_tracktor",
           "tracktor_param_names"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the Tracktor options of ``track``."""
    g = parser.add_argument_group("Tracktor (--tracker tracktor; needs --sequence)")
    g.add_argument("--tracktor-config", type=Path, help="Tracktor, regressor and camera-motion "
                   "parameters (config/tracktor.yaml form)")
    g.add_argument("--regressor-model", type=Path, help="detector archive for the box regressor (default: "
                   "regressor_model_path of the config), e.g. d2go_faster_rcnn_fbnetv3a_C4_int8_coco.pt")
    g.add_argument("--private", action="store_true", help="use the regressor's own detections instead of "
                   "--detections")


def tracktor_param_names() -> set[str]:
    """Every parameter name config/tracktor.yaml may hold."""
    return {s.name for cls in (TracktorConfig, RegressorConfig, CmcConfig) for s in cls.specs()}


def load_tracktor_configs(path, **regressor_overrides) -> tuple[TracktorConfig, RegressorConfig, CmcConfig]:
    """The three configs of a tracktor.yaml (or defaults when ``path`` is None)."""
    names = tracktor_param_names()
    reg_names = {s.name for s in RegressorConfig.specs()}
    t_over = {k: v for k, v in regressor_overrides.items() if k not in reg_names}
    r_over = {k: v for k, v in regressor_overrides.items() if k in reg_names}
    return (load_config(TracktorConfig, path, allowed_extra=names, node="/tracker", **t_over),
            load_config(RegressorConfig, path, allowed_extra=names, node="/tracker", **r_over),
            load_config(CmcConfig, path, allowed_extra=names, node="/tracker"))


def _check_args(args: argparse.Namespace) -> None:
    if args.sequence is None:
        raise UserError("--tracker tracktor needs --sequence (a MOTChallenge folder with img1/, or a video)")
    if args.detections is None and not args.private:
        raise UserError("--tracker tracktor needs --detections det.txt (public) or --private (its own)")
    if args.detections is not None and args.private:
        raise UserError("--detections and --private exclude each other")
    if getattr(args, "offline", False) or getattr(args, "cmc", False):
        raise UserError("--offline and --cmc are options of the core tracker; Tracktor's camera-motion "
                        "compensation is its config's cmc field")
    if args.config is not None:
        raise UserError("--config is the core tracker's; Tracktor reads --tracktor-config")


def _build(args: argparse.Namespace):
    from ros2_tracker.cmc.ecc import EccAligner
    from ros2_tracker.regression.factory import create_regressor
    from ros2_tracker.regression.tracktor import Tracktor

    overrides = {}
    if args.regressor_model is not None:
        overrides["regressor_model_path"] = str(args.regressor_model)
    tcfg, rcfg, ccfg = load_tracktor_configs(args.tracktor_config, **overrides)
    regressor = create_regressor(rcfg)
    embedder = None
    if args.reid_model is not None:
        from ros2_tracker.appearance import EmbedderConfig, create_embedder

        extra = {"num_threads": args.reid_threads} if args.reid_threads is not None else {}
        embedder = create_embedder(load_config(EmbedderConfig, args.reid_config,
                                               model_path=str(args.reid_model), **extra))
    return Tracktor(regressor, tcfg, embedder=embedder, aligner=EccAligner(ccfg) if tcfg.cmc else None)


def run_tracktor(args: argparse.Namespace) -> int:
    """Execute ``track --tracker tracktor``."""
    from tqdm import tqdm

    from ros2_tracker.io.video import FrameSourceError, open_frame_source
    from ros2_tracker.regression.offline import track_sequence

    _check_args(args)
    if args.fps is not None and not args.fps > 0:
        raise UserError(f"--fps must be > 0, got {args.fps}")
    require_modules("track --tracker tracktor", "torch", "torchvision")  # both regressor backends
    dets = read_mot(args.detections) if args.detections is not None else None
    capped, cap = 0, TrackerConfig().max_detections
    if dets is not None:
        dets, capped = cap_detections_per_frame(dets, cap)
    try:
        source = open_frame_source(args.sequence, args.fps or 0.0)
    except FrameSourceError as exc:
        raise UserError(f"--sequence: {exc}") from None
    tracktor = _build(args)  # after the cheap checks: loading the networks takes seconds
    last = args.frames or 0
    total = min(last, source.length) if last and source.length else (last or source.length or None)
    try:
        with tqdm(total=total, desc=f"tracktor {source.name}", unit="frame", leave=False,
                  disable=not sys.stderr.isatty()) as bar:  # as `track`: no bar drawn into a log file
            res = track_sequence(tracktor, source, source.fps, detections=dets, last_frame=last,
                                 progress=lambda _f: bar.update())
    except FrameSourceError as exc:
        raise UserError(f"--sequence: {exc}") from None
    finally:
        source.close()
    write_results(args.output, res.frames, res.ids, res.boxes_tlwh, res.scores)
    if args.timing:
        args.timing.parent.mkdir(parents=True, exist_ok=True)
        write_text(args.timing, json.dumps({
            "update_seconds": res.update_seconds, "frames": res.n_frames,
            "encode_seconds": tracktor.encode_seconds, "regress_seconds": tracktor.regress_seconds,
            "detect_seconds": tracktor.detect_seconds, "cmc_seconds": tracktor.cmc_seconds,
            "embed_seconds": tracktor.embed_seconds, "regressor": tracktor.regressor.name,
            "embedder": tracktor.embedder.name if tracktor.embedder is not None else None}))
    if capped:
        print(f"warning: {capped} detections not tracked: frames with more than max_detections ({cap}) "
              "keep the highest-scoring", file=sys.stderr)
    if tracktor.size_changes:
        print(f"warning: the image size changed {tracktor.size_changes} time(s) within --sequence: Tracktor "
              "restarted its tracks there (new ids)", file=sys.stderr)
    if tracktor.dropped_detections:
        print(f"warning: {tracktor.dropped_detections} invalid detections dropped (NaN, empty or outside "
              "the image)", file=sys.stderr)
    print(f"tracked {res.n_frames} frames, {len(set(res.ids.tolist()))} tracks -> {args.output}")
    return 0


def cap_detections_per_frame(dets: MotRows, limit: int) -> tuple[MotRows, int]:
    """At most ``limit`` rows per frame, the highest-scoring (as the core tracker's ``max_detections``
    keeps them, through the same `strongest`: Tracktor's non-maximum suppression is N x N), and how many rows
    were left out."""
    keep = np.ones(len(dets), dtype=bool)
    present, counts = np.unique(dets.frames, return_counts=True)
    for frame in present[counts > limit].tolist():  # the rare crowded frames only
        rows = (dets.frames == frame).nonzero()[0]
        keep[rows] = False
        keep[rows[strongest(dets.scores[rows], limit)]] = True
    dropped = int((~keep).sum())
    if not dropped:
        return dets, 0
    return MotRows(dets.frames[keep], dets.ids[keep], dets.boxes_tlwh[keep], dets.scores[keep],
                   dets.extra[keep]), dropped


def check_core_args(args: argparse.Namespace) -> None:
    """``track`` with the core tracker: the options that only Tracktor takes are refused."""
    if args.detections is None:
        raise UserError("--detections is required (only --tracker tracktor --private works without it)")
    if args.private or args.tracktor_config is not None or args.regressor_model is not None:
        raise UserError("--private, --tracktor-config and --regressor-model need --tracker tracktor")
    if args.cmc and args.sequence is None:
        raise UserError("--cmc needs --sequence (the images to estimate the camera motion from)")


def build_camera_motion(args: argparse.Namespace, tracker, features, frames=None):
    """The ``--cmc`` feature source for the core tracker, chained in front of ``features`` (None without
    ``--cmc``). ECC parameters are the defaults of :class:`~ros2_tracker.cmc.ecc.CmcConfig`. ``frames``:
    the appearance source's :class:`~ros2_tracker.io.video.FrameCursor`, shared so each image is decoded
    once (None: ``--sequence`` is opened here)."""
    if not args.cmc:
        return None
    from ros2_tracker.cmc.ecc import EccAligner
    from ros2_tracker.cmc.sequence import SequenceMotion
    from ros2_tracker.io.video import FrameSourceError, open_frame_source

    if frames is None:
        try:
            frames = open_frame_source(args.sequence)
        except FrameSourceError as exc:
            raise UserError(f"--sequence: {exc}") from None
    return SequenceMotion(tracker, EccAligner(CmcConfig()), frames, features)
