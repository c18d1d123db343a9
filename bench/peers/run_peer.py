"""Run ONE peer tracker over a MOTChallenge detection file, with the same contract as ``ros2-tracker track``.

    python run_peer.py --tracker NAME --detections DET.txt --output RES.txt --fps F [--timing T.json]
                       [--frames N] [--frame-times]
    python run_peer.py --list

Runs inside a peer's own virtual environment (``.venv-peers/`` or ``.venv-norfair/``, made by
``bench/setup_peers.sh``), so it imports numpy and the peer only: never ``ros2_tracker``, which is not
installed there. Every frame from 1 to the last frame of the detection file (or ``--frames``) is fed to
the peer, empty frames included, with all detections of the frame; peers that have their own score
thresholds keep them. Each peer is built with its documented default parameters; see ``PEERS`` for
what each one is given (frame rate where the API takes one, no images, no re-ID).

Output rows are ``frame,id,x,y,w,h,conf,-1,-1,-1`` (top-left box, pixels) for the tracks the peer
reports in that frame; ids are renumbered 1, 2, ... in order of first appearance (boxmot counts from 0,
motpy uses UUID strings). ``--timing`` writes ``{"update_seconds": S, "frames": N, "tracker": NAME,
"version": V}`` where S is the wall time spent inside the peer's update call only: building the peer's
input objects and reading its output are outside the clock. ``--frame-times`` adds each update's time
(``"frame_seconds": [...]``, one per frame) for percentiles.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

# A peer adapter: prepare(boxes_xyxy (N, 4) float, scores (N,)) -> the peer's input for one frame;
# update(input) -> the peer's output; extract(output) -> (ids (M,), boxes_xyxy (M, 4), scores (M,)),
# ids of any hashable type.
Prepare = Callable[[np.ndarray, np.ndarray], Any]
Update = Callable[[Any], Any]
Extract = Callable[[Any], tuple[list, np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Peer:
    """How to build one peer tracker.

    Attributes:
        package: distribution name (its version goes into the timing file).
        label: display name, e.g. ``"trackers ByteTrack"``.
        build: ``build(fps) -> (prepare, update, extract)``.
        settings: what the peer is given beyond its defaults, for the benchmark notes.
        venv: the venv (relative to the repository root) that ``bench/setup_peers.sh`` installs it in.
    """

    package: str
    label: str
    build: Callable[[float], tuple[Prepare, Update, Extract]]
    settings: str
    venv: str = ".venv-peers"


# ------------------------------------------------------------------------------------------ detection io
def read_detections(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimal MOTChallenge det reader: ``frame, id, x, y, w, h, conf, ...`` comma-separated rows.

    Returns:
        frames (N,) int, boxes_xyxy (N, 4) float, scores (N,) float, sorted by frame (stable).
    """
    rows = [ln.split(",") for ln in Path(path).read_text().splitlines() if ln.strip()]
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty((0, 4)), np.empty(0)
    data = np.array([[float(v) for v in r[:7]] for r in rows])
    order = np.argsort(data[:, 0], kind="stable")
    data = data[order]
    frames = data[:, 0].astype(np.int64)
    x, y, w, h = data[:, 2], data[:, 3], data[:, 4], data[:, 5]
    return frames, np.stack([x, y, x + w, y + h], axis=1), data[:, 6]


def write_results(path: Path, rows: list[tuple[int, int, np.ndarray, float]]) -> None:
    """Write ``(frame, id, box_xyxy, score)`` rows as ``frame,id,x,y,w,h,conf,-1,-1,-1``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for frame, tid, b, s in rows:
            f.write(f"{frame},{tid},{b[0]:.2f},{b[1]:.2f},{b[2] - b[0]:.2f},{b[3] - b[1]:.2f},{s:.4f},"
                    "-1,-1,-1\n")


# ------------------------------------------------------------------------------------------ peers
def _roboflow(class_name: str, **kwargs: Any) -> Callable[[float], tuple[Prepare, Update, Extract]]:
    """Roboflow ``trackers``: ``Tracker(frame_rate=fps).update(sv.Detections) -> sv.Detections``."""

    def build(fps: float) -> tuple[Prepare, Update, Extract]:
        import supervision as sv
        import trackers

        tracker = getattr(trackers, class_name)(frame_rate=fps, **kwargs)

        def prepare(boxes: np.ndarray, scores: np.ndarray) -> Any:
            if not len(boxes):
                return sv.Detections.empty()
            return sv.Detections(xyxy=boxes.astype(np.float32), confidence=scores.astype(np.float32),
                                 class_id=np.zeros(len(boxes), dtype=int))

        def extract(out: Any) -> tuple[list, np.ndarray, np.ndarray]:
            if out.tracker_id is None or not len(out):
                return [], np.empty((0, 4)), np.empty(0)
            keep = out.tracker_id >= 0  # -1: detection not (yet) part of a confirmed track
            conf = out.confidence[keep] if out.confidence is not None else np.ones(int(keep.sum()))
            return out.tracker_id[keep].tolist(), out.xyxy[keep], conf

        return prepare, tracker.update, extract

    return build


def _boxmot(class_name: str, **kwargs: Any) -> Callable[[float], tuple[Prepare, Update, Extract]]:
    """boxmot: ``Tracker(frame_rate=fps).update(dets (N, 6) [x1,y1,x2,y2,conf,cls], img=None)``."""

    def build(fps: float) -> tuple[Prepare, Update, Extract]:
        import boxmot

        tracker = getattr(boxmot, class_name)(frame_rate=max(1, round(fps)), **kwargs)

        def prepare(boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
            return np.concatenate([boxes, scores[:, None], np.zeros((len(boxes), 1))], axis=1)

        def update(dets: np.ndarray) -> np.ndarray:
            return tracker.update(dets, None)

        def extract(out: np.ndarray) -> tuple[list, np.ndarray, np.ndarray]:
            # rows: x1, y1, x2, y2, id, conf, cls, det_index
            if not len(out):
                return [], np.empty((0, 4)), np.empty(0)
            return out[:, 4].astype(np.int64).tolist(), out[:, :4], out[:, 5]

        return prepare, update, extract

    return build


def _motpy(fps: float) -> tuple[Prepare, Update, Extract]:
    """motpy: ``MultiObjectTracker(dt=1/fps).step([Detection(box=xyxy, score=s)]) -> [Track]``."""
    from motpy import Detection, MultiObjectTracker

    tracker = MultiObjectTracker(dt=1.0 / fps)

    def prepare(boxes: np.ndarray, scores: np.ndarray) -> list:
        return [Detection(box=b, score=float(s)) for b, s in zip(boxes, scores, strict=True)]

    def extract(tracks: list) -> tuple[list, np.ndarray, np.ndarray]:
        if not tracks:
            return [], np.empty((0, 4)), np.empty(0)
        scores = [t.score if t.score is not None else 1.0 for t in tracks]
        return [t.id for t in tracks], np.array([t.box for t in tracks], dtype=float), np.array(scores)

    return prepare, tracker.step, extract


# Norfair's Tracker has no default distance: these are the values of norfair's own MOTChallenge demo
# (demos/motmetrics4norfair: IoU distance 1 - IoU < 0.9, detection_threshold 0.5, hit_counter_max 8,
# pointwise_hit_counter_max 3); everything else (filter, initialization_delay) is the Tracker default.
NORFAIR_SETTINGS = {"distance_function": "iou", "distance_threshold": 0.9, "detection_threshold": 0.5,
                    "hit_counter_max": 8, "pointwise_hit_counter_max": 3}


def _norfair(fps: float) -> tuple[Prepare, Update, Extract]:
    """norfair: ``Tracker(**NORFAIR_SETTINGS).update([Detection(points=[[x1,y1],[x2,y2]])])``."""
    from norfair import Detection, Tracker

    del fps  # norfair counts frames (``period``), it takes no frame rate
    tracker = Tracker(**NORFAIR_SETTINGS)

    def prepare(boxes: np.ndarray, scores: np.ndarray) -> list | None:
        if not len(boxes):
            return None  # the documented way to advance the filters on a frame without detections
        return [Detection(points=b.reshape(2, 2), scores=np.array([s, s])) for b, s in
                zip(boxes, scores, strict=True)]

    def update(dets: list | None) -> list:
        return tracker.update(detections=dets)

    def extract(objs: list) -> tuple[list, np.ndarray, np.ndarray]:
        if not objs:
            return [], np.empty((0, 4)), np.empty(0)
        boxes = np.array([o.estimate.reshape(4) for o in objs], dtype=float)
        scores = np.array([float(o.last_detection.scores[0]) if o.last_detection.scores is not None
                           else 1.0 for o in objs])
        return [o.id for o in objs], boxes, scores

    return prepare, update, extract


PEERS: dict[str, Peer] = {
    "rf_sort": Peer("trackers", "trackers SORT", _roboflow("SORTTracker"), "frame_rate=fps"),
    "rf_bytetrack": Peer("trackers", "trackers ByteTrack", _roboflow("ByteTrackTracker"), "frame_rate=fps"),
    "rf_ocsort": Peer("trackers", "trackers OC-SORT", _roboflow("OCSORTTracker"), "frame_rate=fps"),
    "rf_botsort": Peer("trackers", "trackers BoT-SORT", _roboflow("BoTSORTTracker"),
                       "frame_rate=fps; no images, so no camera-motion compensation"),
    "rf_cbiou": Peer("trackers", "trackers C-BIoU", _roboflow("CBIoUTracker"), "frame_rate=fps"),
    "boxmot_bytetrack": Peer("boxmot", "boxmot ByteTrack", _boxmot("ByteTrack"),
                             "frame_rate=round(fps)"),
    "boxmot_botsort": Peer("boxmot", "boxmot BotSort",
                           _boxmot("BotSort", use_embeddings=False, use_cmc=False),
                           "frame_rate=round(fps), use_embeddings=False (no re-ID), "
                           "use_cmc=False (no images)"),
    "motpy": Peer("motpy", "motpy", _motpy, "dt=1/fps"),
    "norfair": Peer("norfair", "norfair", _norfair,
                    "IoU distance < 0.9, detection_threshold 0.5, hit_counter_max 8, "
                    "pointwise_hit_counter_max 3 (norfair's MOTChallenge demo)", venv=".venv-norfair"),
}


# ------------------------------------------------------------------------------------------ run
@dataclass
class PeerRun:
    """Result rows and timing of one run (see :func:`run_peer`)."""

    rows: list[tuple[int, int, np.ndarray, float]]
    update_seconds: float
    n_frames: int
    frame_seconds: list[float]


def run_peer(name: str, det_path: Path, fps: float, last_frame: int | None = None) -> PeerRun:
    """Feed every frame 1..``last_frame`` (default: the last frame with detections) to peer ``name`` and
    collect its reported tracks; as ``ros2-tracker track --frames``, detections after ``last_frame`` are
    left out."""
    frames, boxes, scores = read_detections(det_path)
    last = last_frame if last_frame else (int(frames.max()) if len(frames) else 0)
    prepare, update, extract = PEERS[name].build(fps)
    starts = np.searchsorted(frames, np.arange(1, last + 2))
    ids: dict[Any, int] = {}
    rows: list[tuple[int, int, np.ndarray, float]] = []
    per_frame: list[float] = []
    clock = time.perf_counter
    for k, frame in enumerate(range(1, last + 1)):
        sl = slice(starts[k], starts[k + 1])
        inp = prepare(boxes[sl], scores[sl])
        t0 = clock()
        out = update(inp)
        per_frame.append(clock() - t0)
        tids, tboxes, tscores = extract(out)
        for tid, b, s in zip(tids, tboxes, tscores, strict=True):
            rows.append((frame, ids.setdefault(tid, len(ids) + 1), b, float(s)))
    return PeerRun(rows, float(sum(per_frame)), last, per_frame)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tracker", choices=sorted(PEERS), help="peer to run")
    p.add_argument("--detections", type=Path, help="MOTChallenge det.txt")
    p.add_argument("--output", type=Path, help="results file to write")
    p.add_argument("--fps", type=float, help="sequence frame rate [Hz]")
    p.add_argument("--timing", type=Path, help="write update time (JSON) here")
    p.add_argument("--frames", type=int, help="number of frames (default: last frame with detections)")
    p.add_argument("--frame-times", action="store_true",
                   help='add "frame_seconds": [...] (each update) to --timing')
    p.add_argument("--list", action="store_true", help="print the peers (name, package, label, settings)")
    args = p.parse_args(argv)
    if args.list:
        print(json.dumps({k: {"package": v.package, "label": v.label, "settings": v.settings, "venv": v.venv}
                          for k, v in PEERS.items()}, indent=1))
        return 0
    missing = [f"--{k}" for k in ("tracker", "detections", "output", "fps") if getattr(args, k) is None]
    if missing:
        p.error("required: " + ", ".join(missing))
    if not args.fps > 0:
        p.error(f"--fps must be > 0, got {args.fps}")
    if not args.detections.is_file():
        print(f"error: {args.detections}: file not found", file=sys.stderr)
        return 2
    res = run_peer(args.tracker, args.detections, args.fps, args.frames)
    write_results(args.output, res.rows)
    if args.timing:
        args.timing.parent.mkdir(parents=True, exist_ok=True)
        timing = {"update_seconds": res.update_seconds, "frames": res.n_frames, "tracker": args.tracker,
                  "version": _version(PEERS[args.tracker].package)}
        if args.frame_times:
            timing["frame_seconds"] = res.frame_seconds
        args.timing.write_text(json.dumps(timing))
    print(f"{args.tracker}: tracked {res.n_frames} frames, {len({r[1] for r in res.rows})} tracks "
          f"-> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
