"""Re-identification benchmark: OSNet embedder speed, OSNet distances on ground-truth crops, and tracking
with and without appearance beside boxmot's appearance trackers, on the same detections in the same run.

    .venv/bin/python bench/reid.py [--sections speed distances tracking video] [--no-peers]
                                   [--markdown BENCHMARKS.md | --no-markdown] [--out DIR]

Sections (default: all), each written between its own ``<!-- bench:reid:<section>:start/end -->`` markers,
so a section run alone leaves the others as they are:

* ``speed``: milliseconds per frame to embed 10 / 30 / 100 crops of a TUD-Campus image with
  ``OnnxEmbedder`` (crop extraction + preprocessing, then ONNX Runtime), batched vs one crop per call,
  1 and 2 threads; median of repeated runs.
* ``distances``: cosine distances between OSNet embeddings of ground-truth people (TUD-Campus,
  PETS09-S3MF1): same identity in other frames vs other identities, for single crops and for a track's
  moving-average memory (momentum 0.9, unoccluded crops only, as the core keeps it) vs the next crop.
  This is what ``appearance_threshold`` / ``reid_threshold`` cut.
* ``tracking``: TUD-Campus (Faster R-CNN and ACF detections), PETS09-S3MF1, MOT17-mini (the first
  frames, which have images: a smoke test) and the rendered synthetic scene. Each sequence's detections
  are embedded once (``SequenceAppearance``: the images read frame by frame, timed), and every tracker
  with re-ID gets those same OSNet embeddings: ros2_tracker as ``features``, boxmot through a
  ``reid_model`` object that returns them (so boxmot's association is compared on identical inputs,
  and boxmot needs no ONNX runtime of its own). boxmot trackers run with their default parameters in
  ``.venv-peers`` (``bench/setup_peers.sh``), with the frames as images (their camera-motion
  compensation runs as by default).
* ``video``: PETS09-S2L1 decoded from ``video/vtest.avi`` (no ground truth here): time per frame and
  identities issued with and without appearance, and an annotated video in ``OUT``.

Internal: ``--peer NAME`` runs one boxmot tracker inside ``.venv-peers`` (imports numpy, OpenCV and
boxmot only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
PEER_VENV = REPO_DIR / ".venv-peers"
DASH = "\u2013"
MEMORY_MOMENTUM = 0.9  # the core's default embedding_momentum
UNOCCLUDED_IOU = 0.3  # the core's default embedding_max_overlap

# Thresholds recommended from the OSNet distance statistics (section "distances"), not from tracking scores:
# appearance_threshold ~ the 5th percentile of different-person memory-vs-crop distances on TUD-Campus and
# PETS09-S3MF1 (0.278, 0.294), reid_threshold ~ their 1st percentile (0.226, 0.217).
RECOMMENDED = {"appearance_threshold": 0.3, "reid_threshold": 0.2}
# The thresholds before RECOMMENDED became TrackerConfig's defaults, kept as a row for comparison.
EARLIER = {"appearance_threshold": 0.4, "reid_threshold": 0.25}

# boxmot trackers with re-ID: label, class, constructor arguments beyond the embeddings
PEERS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "botsort": ("boxmot BotSort + OSNet", "BotSort", {"frame_rate": "fps"}),
    "strongsort": ("boxmot StrongSort + OSNet", "StrongSort", {}),
    "deepocsort": ("boxmot DeepOcSort + OSNet", "DeepOcSort", {}),
    "botsort_noreid": ("boxmot BotSort, no re-ID", "BotSort", {"frame_rate": "fps", "use_embeddings": False}),
}


# ======================================================================================== peer side
class PrecomputedReID:
    """A boxmot ``reid_model``: returns the embeddings computed by ros2_tracker for this frame's boxes."""

    def __init__(self) -> None:
        self.boxes = np.empty((0, 4))
        self.feats = np.empty((0, 0), dtype=np.float32)

    def get_features(self, xyxys: np.ndarray, img: np.ndarray) -> np.ndarray:
        """Rows of the frame's embeddings whose boxes equal ``xyxys`` (to 0.01 px)."""
        del img
        q = np.asarray(xyxys, dtype=np.float64)[:, :4]
        d = np.abs(q[:, None, :] - self.boxes[None, :, :]).max(axis=2)
        idx = d.argmin(axis=1)
        if len(q) and d[np.arange(len(q)), idx].max() > 0.01:
            raise ValueError("boxmot asked for embeddings of boxes that are not this frame's detections")
        return self.feats[idx]


def _read_frames(images: str, frames: int):
    """Yield (frame, BGR image) 1..frames from a MOT folder (img1/NNNNNN.jpg) or a video file."""
    import cv2

    p = Path(images)
    if p.is_dir():
        for f in range(1, frames + 1):
            yield f, cv2.imread(str(p / "img1" / f"{f:06d}.jpg"))
        return
    cap = cv2.VideoCapture(str(p))
    for f in range(1, frames + 1):
        ok, img = cap.read()
        yield f, (img if ok else None)
    cap.release()


def run_peer(args: argparse.Namespace) -> int:
    """Track one sequence with boxmot tracker ``args.peer`` (inside ``.venv-peers``)."""
    from importlib import metadata

    import boxmot

    label, cls, extra = PEERS[args.peer]
    data = np.load(args.features)
    frames, boxes, scores, feats = data["frames"], data["boxes_xyxy"], data["scores"], data["features"]
    kwargs = {k: (max(1, round(args.fps)) if v == "fps" else v) for k, v in extra.items()}
    reid = PrecomputedReID()
    if kwargs.get("use_embeddings", True):
        kwargs["reid_model"] = reid
    tracker = getattr(boxmot, cls)(**kwargs)
    starts = np.searchsorted(frames, np.arange(1, args.frames + 2))
    ids: dict[int, int] = {}
    rows: list[str] = []
    seconds = 0.0
    for k, (frame, image) in enumerate(_read_frames(args.sequence, args.frames)):
        sl = slice(starts[k], starts[k + 1])
        dets = np.concatenate([boxes[sl], scores[sl, None], np.zeros((sl.stop - sl.start, 1))], axis=1)
        reid.boxes, reid.feats = boxes[sl], feats[sl]
        t0 = time.perf_counter()
        out = tracker.update(dets, image)
        seconds += time.perf_counter() - t0
        for r in np.asarray(out).reshape(-1, 8) if len(out) else []:
            tid = ids.setdefault(int(r[4]), len(ids) + 1)
            rows.append(f"{frame},{tid},{r[0]:.2f},{r[1]:.2f},{r[2] - r[0]:.2f},{r[3] - r[1]:.2f},{r[5]:.4f},"
                        "-1,-1,-1\n")
    Path(args.output).write_text("".join(rows))
    Path(args.timing).write_text(json.dumps({"update_seconds": seconds, "frames": args.frames,
                                             "version": metadata.version("boxmot"), "label": label}))
    return 0


# ======================================================================================== our side
def _ours():  # imports of the main venv, kept out of the peer side
    sys.path.insert(0, str(REPO_DIR))
    from bench import common

    return common


@dataclass
class Part:
    """One sequence (or the image-covered start of one) to track.

    Attributes:
        name: sequence name.
        det: detection file.
        gt: ground truth (None: no ground truth).
        fps: frame rate [Hz].
        frames: frames to track, 1..frames.
        images: MOT folder (img1/) or video file of the frames.
    """

    name: str
    det: Path
    gt: Path | None
    fps: float
    frames: int
    images: Path


@dataclass
class Dataset:
    """A table of the tracking section: one or more parts scored together."""

    key: str
    title: str
    note: str
    parts: list[Part]
    boxmot_ok: bool = True  # False: scores outside [0, 1], which boxmot rejects


@dataclass
class Embedded:
    """One part's detections with their OSNet embeddings (``features.npz``) and the embedding time."""

    path: Path
    detections: int
    embed_seconds: float
    read_seconds: float
    frames_without_appearance: int


@dataclass
class Run:
    """One tracker on one dataset: results per part, update time, scores."""

    label: str
    results: list[Path] = field(default_factory=list)
    update_seconds: float = 0.0
    frames: int = 0
    error: str = ""
    metrics: Any = None
    ids: int = 0


def _part(root: Path, det_name: str, frames: int | None = None) -> Part:
    from ros2_tracker.io.sequence import read_sequence_info

    info = read_sequence_info(root)
    gt = info.gt_path if info.gt_path.is_file() else None
    return Part(info.name, root / "det" / det_name, gt, info.fps, frames or info.length, root)


def load_datasets(data: Path, work: Path) -> tuple[list[Dataset], list[str]]:
    """The tracking datasets whose data is present, and a note for each one skipped."""
    out, skipped = [], []
    specs = [
        ("tud-campus-frcnn", "TUD-Campus, Faster R-CNN detections", "det_frcnn.txt", "TUD-Campus",
         "71 frames at 25 Hz, 640x480; the SORT authors' Faster R-CNN detections."),
        ("tud-campus-acf", "TUD-Campus, MOT15 public (ACF) detections", "det.txt", "TUD-Campus",
         "Same frames, MOT15 public ACF detections (scores not in [0, 1]: boxmot rejects them)."),
        ("pets09-s3mf1", "PETS09-S3MF1", "det.txt", "PETS09-S3MF1",
         "107 frames at 7 Hz, 768x576; det.txt of unknown origin."),
    ]
    for key, title, det, folder, note in specs:
        if (data / folder / "img1").is_dir():
            out.append(Dataset(key, title, note, [_part(data / folder, det)],
                               boxmot_ok=key != "tud-campus-acf"))
        else:
            skipped.append(f"{key}: no images under {data / folder}")
    mot = data / "MOT17-mini" / "train"
    if mot.is_dir():
        parts = []
        for root in sorted(mot.iterdir()):
            n_img = len(list((root / "img1").glob("*.jpg")))
            if n_img:
                parts.append(_part(root, "det.txt", n_img))
        note = (f"{len(parts)} MOT17 train sequences, public Faster R-CNN detections, only the first frames "
                f"(those with images and ground truth, {sum(p.frames for p in parts)} in all): a smoke test; "
                "tracks are only a few frames long, so appearance has little to do.")
        out.append(Dataset("mot17-mini", "MOT17-mini, first frames", note, parts))
    try:
        out.append(_synthetic(work))
    except ImportError as exc:
        skipped.append(f"synthetic: ros2_tracker.synthetic is not available ({exc})")
    return out, skipped


def _synthetic(work: Path) -> Dataset:
    from ros2_tracker.synthetic.scene import SceneConfig, generate_scene

    config = SceneConfig()
    root = work / "synthetic" / config.sequence_name
    if not (root / "img1" / f"{config.num_frames:06d}.jpg").is_file():
        generate_scene(config).write_mot(root, render=True)
    note = (f"`ros2_tracker.synthetic` default scene, rendered (seed {config.seed}, {config.num_frames} "
            f"frames at {config.fps:g} Hz, {config.num_objects} people at a time, a pillar occluder, bursty "
            "misses, false positives); each identity has its own clothing colours.")
    return Dataset("synthetic", "Synthetic street scene (rendered)", note, [_part(root, "det.txt")])


def embed_part(part: Part, embedder, out: Path) -> Embedded:
    """Embed every detection of frames 1..part.frames from its image; save ``features.npz``."""
    from ros2_tracker.core.boxes import tlwh_to_xyxy
    from ros2_tracker.io.mot import read_mot
    from ros2_tracker.io.video import open_frame_source
    from ros2_tracker.offline import SequenceAppearance

    dets = read_mot(part.det)
    source = open_frame_source(part.images)
    app = SequenceAppearance(source, embedder)
    frames, boxes, scores, feats = [], [], [], []
    all_boxes = tlwh_to_xyxy(dets.boxes_tlwh)
    for frame, idx in dets.by_frame(1, part.frames):
        b = all_boxes[idx]
        f = app(frame, b)
        if f is None:
            f = np.zeros((len(b), embedder.dim), dtype=np.float32)
        frames.append(np.full(len(b), frame))
        boxes.append(b)
        scores.append(dets.scores[idx])
        feats.append(f)
    source.close()
    path = out / f"{part.name}.features.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, frames=np.concatenate(frames).astype(np.int64), boxes_xyxy=np.concatenate(boxes),
             scores=np.concatenate(scores), features=np.concatenate(feats))
    return Embedded(path, int(sum(len(b) for b in boxes)), app.embed_seconds, app.read_seconds,
                    app.frames_without_appearance)


class StoredFeatures:
    """A ``FeatureSource`` replaying a ``features.npz`` (rows in the detection file's frame order)."""

    def __init__(self, path: Path, frames: int) -> None:
        data = np.load(path)
        self.feats = data["features"]
        self.boxes = data["boxes_xyxy"]
        self.starts = np.searchsorted(data["frames"], np.arange(1, frames + 2))

    def __call__(self, frame: int, boxes_xyxy: np.ndarray) -> np.ndarray | None:
        """The frame's stored embeddings (checked against the boxes); None for frames with an invalid row."""
        sl = slice(self.starts[frame - 1], self.starts[frame])
        if not np.allclose(self.boxes[sl], boxes_xyxy):
            raise ValueError(f"frame {frame}: stored boxes differ from the detections")
        f = self.feats[sl]
        return f if (np.linalg.norm(f, axis=1) > 0.5).all() else None


def run_ours(ds: Dataset, feats: dict[str, Embedded] | None, config, label: str, out: Path) -> Run:
    """ros2_tracker over every part of ``ds``; with ``feats``, the stored OSNet embeddings as features."""
    from ros2_tracker.core.tracker import Tracker
    from ros2_tracker.io.mot import MotRows, read_mot, write_results
    from ros2_tracker.offline import track_mot_detections

    run = Run(label)
    for part in ds.parts:
        source = StoredFeatures(feats[part.name].path, part.frames) if feats else None
        dets = read_mot(part.det)
        keep = dets.frames <= part.frames  # MOT17-mini: only the first frames
        dets = MotRows(dets.frames[keep], dets.ids[keep], dets.boxes_tlwh[keep], dets.scores[keep],
                       dets.extra[keep])
        res = track_mot_detections(dets, Tracker(config), part.fps, last_frame=part.frames, features=source)
        path = out / f"{part.name}.{_slug(label)}.txt"
        write_results(path, res.frames, res.ids, res.boxes_tlwh, res.scores)
        run.results.append(path)
        run.update_seconds += res.update_seconds
        run.frames += part.frames
        run.ids += len(set(res.ids.tolist()))
    return run


def run_boxmot(ds: Dataset, name: str, feats: dict[str, Embedded], out: Path) -> Run:
    """boxmot tracker ``name`` in ``.venv-peers`` over every part, one process per part."""
    label = PEERS[name][0]
    run = Run(label)
    python = PEER_VENV / "bin" / "python"
    if not python.is_file():
        run.error = f"{PEER_VENV} missing (bash bench/setup_peers.sh)"
        return run
    if not ds.boxmot_ok:
        run.error = "not run: boxmot rejects scores outside [0, 1]"
        return run
    env = dict(os.environ, BOXMOT_REID_BACKEND="opencv")  # never let boxmot install a runtime
    for part in ds.parts:
        res, timing = out / f"{part.name}.{name}.txt", out / f"{part.name}.{name}.json"
        cmd = [str(python), str(Path(__file__).resolve()), "--peer", name, "--features",
               str(feats[part.name].path), "--sequence", str(part.images), "--output", str(res),
               "--fps", f"{part.fps:g}", "--frames", str(part.frames), "--timing", str(timing)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env, cwd=out)
        if p.returncode != 0:
            last = (p.stderr.strip().splitlines() or ["?"])[-1]
            run.error = f"failed: exit {p.returncode}: {last[:160]}"
            return run
        t = json.loads(timing.read_text())
        run.results.append(res)
        run.update_seconds += t["update_seconds"]
        run.frames += part.frames
        run.ids += len({ln.split(",")[1] for ln in res.read_text().splitlines() if ln})
    return run


def score(ds: Dataset, run: Run) -> None:
    """TrackEval metrics of ``run`` (combined over the parts)."""
    from ros2_tracker.eval.metrics import evaluate_many, evaluate_sequence

    if run.error or not run.results:
        return
    if len(ds.parts) == 1:
        run.metrics = evaluate_sequence(ds.parts[0].gt, run.results[0], name=ds.parts[0].name)
    else:
        items = [(p.name, p.gt, r, p.frames) for p, r in zip(ds.parts, run.results, strict=True)]
        run.metrics = evaluate_many(items)[-1][1]


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label.lower()).strip("_")


def _pct(v: float) -> str:
    return f"{100 * v:.1f}"


# ---------------------------------------------------------------------------------------- sections
def section_speed(model: Path, image_path: Path, reps: int) -> str:
    """Embedder time per frame at 10 / 30 / 100 crops."""
    import cv2

    from ros2_tracker.appearance import EmbedderConfig, create_embedder, extract_crops

    common = _ours()
    image = cv2.imread(str(image_path))
    rng = np.random.default_rng(0)
    rows = []
    for threads in (1, 2):
        for batch in (1, 32):
            cfg = EmbedderConfig(model_path=str(model), num_threads=threads, batch_size=batch)
            emb = create_embedder(cfg)
            for n in (10, 30, 100):
                h = rng.uniform(60, 250, n)
                w = 0.41 * h
                x = rng.uniform(0, image.shape[1] - w)
                y = rng.uniform(0, image.shape[0] - h)
                boxes = np.stack([x, y, x + w, y + h], axis=1)
                emb.embed(image, boxes)  # warm-up
                crop_t, total_t = [], []
                for _ in range(reps):
                    t0 = time.perf_counter()
                    crops, _valid = extract_crops(image, boxes, (256, 128))
                    t1 = time.perf_counter()
                    emb.embed_crops(crops)
                    t2 = time.perf_counter()
                    crop_t.append(t1 - t0)
                    total_t.append(t2 - t0)
                crop_ms, total_ms = 1e3 * np.median(crop_t), 1e3 * np.median(total_t)
                rows.append([str(n), "one call" if batch >= n else f"{batch} per call", str(threads),
                             f"{crop_ms:.1f}", f"{total_ms - crop_ms:.1f}", f"**{total_ms:.1f}**",
                             f"{total_ms / n:.2f}"])
    table = common.markdown_table(["crops/frame", "batching", "threads", "crop + preprocess ms",
                                   "inference ms", "ms/frame", "ms/crop"], rows, "lllrrrr")
    return (f"### Embedder speed (OSNet x0.25, ONNX Runtime, CPU)\n\n`OnnxEmbedder` on a {image.shape[1]}x"
            f"{image.shape[0]} TUD-Campus frame with random person-sized boxes, 256x128 crops; median of "
            f"{reps} runs after a warm-up. \"one call\": all crops in one batch (`batch_size` >= crops)."
            "\n\n" + table)


def _gt_crops_stats(seq_root: Path, embedder) -> dict:
    """Embeddings of every ground-truth box of a sequence, with ids, frames and an unoccluded flag."""
    import cv2

    from ros2_tracker.core.appearance import unoccluded
    from ros2_tracker.core.boxes import tlwh_to_xyxy
    from ros2_tracker.io.mot import read_mot
    from ros2_tracker.io.sequence import read_sequence_info

    info = read_sequence_info(seq_root)
    gt = read_mot(info.gt_path)
    keep = gt.scores != 0
    frames, ids, boxes = gt.frames[keep], gt.ids[keep], tlwh_to_xyxy(gt.boxes_tlwh[keep])
    feats = np.zeros((len(frames), embedder.dim), dtype=np.float32)
    clear = np.zeros(len(frames), dtype=bool)
    for f in np.unique(frames):
        idx = np.flatnonzero(frames == f)
        img = cv2.imread(str(info.frame_path(int(f))))
        if img is None:
            continue
        feats[idx] = embedder.embed(img, boxes[idx])
        clear[idx] = unoccluded(boxes[idx], UNOCCLUDED_IOU)
    ok = np.linalg.norm(feats, axis=1) > 0.5
    return {"frames": frames[ok], "ids": ids[ok], "feats": feats[ok], "clear": clear[ok], "name": info.name}


def _memory_pairs(d: dict) -> tuple[np.ndarray, np.ndarray]:
    """Distances from each identity's moving-average memory (before the update) to its next crop (same)
    and to the other identities' crops in that frame (different); memory updated from unoccluded crops."""
    same, diff = [], []
    memory: dict[int, np.ndarray] = {}
    frames, ids, feats, clear = d["frames"], d["ids"], d["feats"], d["clear"]
    for f in np.unique(frames):
        idx = np.flatnonzero(frames == f)
        for i in idx:
            m = memory.get(int(ids[i]))
            if m is None:
                continue
            same.append(1.0 - float(m @ feats[i]))
            diff.extend((1.0 - feats[idx[ids[idx] != ids[i]]] @ m).tolist())
        for i in idx:
            if not clear[i] and int(ids[i]) in memory:
                continue
            m = memory.get(int(ids[i]))
            v = feats[i] if m is None else MEMORY_MOMENTUM * m + (1 - MEMORY_MOMENTUM) * feats[i]
            memory[int(ids[i])] = v / np.linalg.norm(v)
    return np.asarray(same), np.asarray(diff)


def _crop_pairs(d: dict, rng: np.random.Generator, limit: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """Single-crop distances: same identity in two different frames vs two identities (any frames)."""
    feats, ids, frames = d["feats"], d["ids"], d["frames"]
    i, j = np.triu_indices(len(feats), k=1)
    if len(i) > limit:
        pick = rng.choice(len(i), limit, replace=False)
        i, j = i[pick], j[pick]
    dist = 1.0 - np.einsum("ij,ij->i", feats[i], feats[j])
    same = (ids[i] == ids[j]) & (frames[i] != frames[j])
    return dist[same], dist[ids[i] != ids[j]]


def _row(name: str, same: np.ndarray, diff: np.ndarray, thresholds: tuple[float, ...]) -> list[str]:
    q = lambda a, p: f"{np.percentile(a, p):.3f}"  # noqa: E731
    cells = [name, f"{len(same):,} / {len(diff):,}", q(same, 50), q(same, 95), q(same, 99), q(diff, 1),
             q(diff, 5), q(diff, 50)]
    for t in thresholds:
        cells.append(f"{100 * np.mean(same > t):.1f} / {100 * np.mean(diff <= t):.2f}")
    return cells


def section_distances(data: Path, embedder) -> tuple[str, dict]:
    """OSNet cosine distances on ground-truth crops; returns the markdown and the raw numbers."""
    common = _ours()
    rng = np.random.default_rng(0)
    thresholds = (0.2, 0.25, 0.3, 0.4, 0.5)
    rows, raw = [], {}
    all_mem_same, all_mem_diff = [], []
    for folder in ("TUD-Campus", "PETS09-S3MF1"):
        if not (data / folder / "img1").is_dir():
            continue
        d = _gt_crops_stats(data / folder, embedder)
        cs, cd = _crop_pairs(d, rng)
        ms, md = _memory_pairs(d)
        all_mem_same.append(ms)
        all_mem_diff.append(md)
        rows.append(_row(f"{d['name']}: crop vs crop", cs, cd, thresholds))
        rows.append(_row(f"{d['name']}: memory vs next crop", ms, md, thresholds))
        raw[d["name"]] = {"memory_same_median": float(np.median(ms)),
                          "memory_diff_p1": float(np.percentile(md, 1))}
    ms, md = np.concatenate(all_mem_same), np.concatenate(all_mem_diff)
    grid = np.linspace(0.05, 0.6, 111)
    err = [(np.mean(ms > t) + np.mean(md <= t)) / 2 for t in grid]
    best = float(grid[int(np.argmin(err))])
    raw.update(memory_same=ms, memory_diff=md, best_threshold=best)
    header = ["pairs", "same / different pairs", "same p50", "same p95", "same p99", "different p1",
              "different p5", "different p50"]
    header += [f"at {t:g}: same rejected % / different accepted %" for t in thresholds]
    table = common.markdown_table(header, rows, "l" + "r" * (len(header) - 1))
    text = ("### OSNet cosine distances on ground-truth people\n\n"
            "Cosine distance 1 - a.b between OSNet x0.25 (MSMT17) embeddings of ground-truth boxes. "
            "\"crop vs crop\": one crop against another (same person in another frame / another person, "
            "any frames). \"memory vs next crop\": each person's moving-average memory (momentum "
            f"{MEMORY_MOMENTUM}, updated only from crops overlapping no other person by IoU > "
            f"{UNOCCLUDED_IOU}, as the core keeps it) against that person's next crop (same) and against "
            "the other people in that frame (different): the comparison the tracker makes. Columns \"at t\": "
            "share of same-person pairs a threshold t would reject, and of different-person pairs it "
            "would accept.\n\n"
            + table + f"\n\nThreshold minimising the mean of the two error rates on the memory pairs of both "
            f"sequences: **{best:.3f}** (same rejected {100 * np.mean(ms > best):.1f} %, different accepted "
            f"{100 * np.mean(md <= best):.2f} %).")
    return text, raw


def section_tracking(datasets: list[Dataset], model: Path, out: Path, peers: list[str],
                     configs: list[tuple[str, Any]]) -> tuple[str, list]:
    """Tracking tables, one per dataset."""
    from ros2_tracker.appearance import EmbedderConfig, create_embedder

    common = _ours()
    embedder = create_embedder(EmbedderConfig(model_path=str(model)))
    texts, raw, summary = [], [], []
    for ds in datasets:
        work = out / ds.key
        work.mkdir(parents=True, exist_ok=True)
        feats = {p.name: embed_part(p, embedder, work) for p in ds.parts}
        runs = [run_ours(ds, feats if use else None, cfg, label, work) for label, cfg, use in configs]
        runs += [run_boxmot(ds, name, feats, work) for name in peers]
        for r in runs:
            score(ds, r)
        n_det = sum(e.detections for e in feats.values())
        frames = sum(p.frames for p in ds.parts)
        embed_s = sum(e.embed_seconds for e in feats.values())
        rows = []
        for r in runs:
            if r.error:
                rows.append([r.label, r.error, DASH, DASH, DASH, DASH, DASH, DASH])
                continue
            m = r.metrics
            rows.append([f"**{r.label}**" if r.label.startswith("ros2_tracker") else r.label, _pct(m.HOTA),
                         _pct(m.IDF1), _pct(m.AssA), _pct(m.MOTA), str(m.IDSW), str(r.ids),
                         f"{1e6 * r.update_seconds / max(r.frames, 1):,.0f}"])
        table = common.markdown_table(["tracker", "HOTA", "IDF1", "AssA", "MOTA", "IDSW", "ids",
                                       "update µs/frame"], rows)
        no_app = sum(e.frames_without_appearance for e in feats.values())
        texts.append(f"### {ds.title}\n\n{ds.note} {frames} frames, {n_det:,} detections. OSNet embedding "
                     f"(shared by every re-ID row): {1e3 * embed_s / frames:.1f} ms/frame "
                     f"({1e3 * embed_s / max(n_det, 1):.1f} ms/crop), not in the update column"
                     + (f"; {no_app} frames without appearance" if no_app else "") + ".\n\n" + table)
        raw.append({"dataset": ds.key, "frames": frames, "detections": n_det, "embed_seconds": embed_s,
                    "runs": [{"label": r.label, "error": r.error, "update_seconds": r.update_seconds,
                              "ids": r.ids, "metrics": r.metrics.as_dict() if r.metrics else None}
                             for r in runs]})
        summary.append(_summary_row(ds, runs))
        print(f"[reid] {ds.key}: done", file=sys.stderr)
    steps = "motion → OSNet earlier → OSNet rec."
    head = ["sequence", f"IDF1: {steps}", f"IDSW: {steps}", "best boxmot + OSNet IDF1"]
    intro = ("Summary (IDF1 in %; \"OSNet rec.\": the recommended thresholds, appearance_threshold "
             f"{RECOMMENDED['appearance_threshold']}, reid_threshold {RECOMMENDED['reid_threshold']}, chosen "
             "from the distance statistics above, not from these scores, and TrackerConfig's defaults; "
             f"\"OSNet earlier\": the earlier {EARLIER['appearance_threshold']} / "
             f"{EARLIER['reid_threshold']}):\n\n")
    return intro + common.markdown_table(head, summary, "llll") + "\n\n" + "\n\n".join(texts), raw


def _summary_row(ds: Dataset, runs: list[Run]) -> list[str]:
    ours = [r for r in runs if r.label.startswith("ros2_tracker") and r.metrics]
    peers = [r for r in runs if r.label.endswith("OSNet") and not r.label.startswith("ros2") and r.metrics]
    idf1 = " → ".join(_pct(r.metrics.IDF1) for r in ours)
    idsw = " → ".join(str(r.metrics.IDSW) for r in ours)
    best = max(peers, key=lambda r: r.metrics.IDF1, default=None)
    peer = f"{_pct(best.metrics.IDF1)} ({best.label.split(' + ')[0]})" if best else DASH
    return [ds.title, idf1, idsw, peer]


def section_video(data: Path, model: Path, out: Path, configs: list[tuple[str, Any]]) -> tuple[str, list]:
    """PETS09-S2L1 from vtest.avi: speed and identities with/without appearance; annotated video."""
    import cv2

    from ros2_tracker.appearance import EmbedderConfig, create_embedder
    from ros2_tracker.core.tracker import Tracker
    from ros2_tracker.io.mot import read_mot
    from ros2_tracker.io.sequence import read_sequence_info
    from ros2_tracker.io.video import open_frame_source
    from ros2_tracker.offline import SequenceAppearance, track_mot_detections
    from ros2_tracker.viz.draw import draw_tracks
    from ros2_tracker.viz.video import VideoWriter

    common = _ours()
    root = data / "PETS09-S2L1"
    info = read_sequence_info(root)
    dets = read_mot(root / "det" / "det.txt")
    rows, raw = [], []
    for label, cfg, use in configs:
        app = None
        video_path = out / f"PETS09-S2L1.{_slug(label)}.mp4"
        if use:
            app = SequenceAppearance(open_frame_source(root / "video" / "vtest.avi"),
                                     create_embedder(EmbedderConfig(model_path=str(model))))
            writer = VideoWriter(video_path, info.fps)

            def draw(frame, tracks, tracker, app=app, writer=writer):
                rep = tracks.confirmed_and_updated()
                if app.last_image is not None:
                    img = draw_tracks(app.last_image, rep.ids, rep.boxes_xyxy)
                    cv2.putText(img, f"frame {frame}", (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6,
                                (255, 255, 255), 1, cv2.LINE_AA)
                    writer.write(img)
        t0 = time.perf_counter()
        res = track_mot_detections(dets, Tracker(cfg), info.fps, last_frame=info.length, features=app,
                                   on_frame=draw if use else None)
        wall = time.perf_counter() - t0
        if use:
            writer.close()
        n = res.n_frames
        lengths = np.bincount(np.unique(res.ids, return_inverse=True)[1]) if len(res.ids) else np.zeros(1)
        emb_ms = 1e3 * app.embed_seconds / n if app else 0.0
        read_ms = 1e3 * app.read_seconds / n if app else 0.0
        rows.append([f"**{label}**", str(n), str(len(np.unique(res.ids))), f"{lengths.mean():.1f}",
                     f"{1e6 * res.update_seconds / n:,.0f}", f"{read_ms:.1f}" if app else DASH,
                     f"{emb_ms:.1f}" if app else DASH, f"{1e3 * wall / n:.1f}"])
        raw.append({"label": label, "frames": n, "ids": len(np.unique(res.ids)),
                    "update_seconds": res.update_seconds, "embed_seconds": app.embed_seconds if app else 0.0,
                    "video": str(video_path) if use else None,
                    "frames_without_appearance": app.frames_without_appearance if app else 0})
    n_det = len(dets)
    table = common.markdown_table(["tracker", "frames", "ids", "mean track length (frames)",
                                   "update µs/frame", "video decode ms/frame", "embed ms/frame",
                                   "total ms/frame"], rows)
    return (f"### PETS09-S2L1 from video (no ground truth here)\n\n`video/vtest.avi` decoded frame by frame "
            f"(decoded frame f-1 = MOT frame f), MOT15 public detections (det.txt, {n_det:,} rows, "
            f"{n_det / info.length:.1f} per frame), {info.length} frames at {info.fps:g} Hz. Fewer ids "
            "mean fewer broken tracks or more people merged into one id: without ground truth only the "
            "annotated videos (`bench/out/reid/video/`, not committed) tell; they show the OSNet runs."
            "\n\n" + table), raw


# ======================================================================================== main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sections", nargs="+", default=["speed", "distances", "tracking", "video"],
                   choices=["speed", "distances", "tracking", "video"])
    p.add_argument("--no-peers", action="store_true", help="skip boxmot")
    p.add_argument("--markdown", type=Path, help="file to update (default BENCHMARKS.md)")
    p.add_argument("--no-markdown", action="store_true")
    p.add_argument("--out", type=Path, help="work folder (default bench/out/reid)")
    p.add_argument("--reps", type=int, default=20, help="speed: repetitions per measurement")
    # internal: one boxmot run inside .venv-peers
    p.add_argument("--peer", choices=sorted(PEERS), help=argparse.SUPPRESS)
    p.add_argument("--features", help=argparse.SUPPRESS)
    p.add_argument("--sequence", help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    p.add_argument("--fps", type=float, help=argparse.SUPPRESS)
    p.add_argument("--frames", type=int, help=argparse.SUPPRESS)
    p.add_argument("--timing", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def tracker_configs():
    """ros2_tracker rows: (label, TrackerConfig, with appearance)."""
    from ros2_tracker.core.tracker import TrackerConfig

    base = TrackerConfig()
    return [("ros2_tracker, motion only", base, False),
            ("ros2_tracker + OSNet, earlier thresholds", base.replace(**EARLIER), True),
            ("ros2_tracker + OSNet, recommended thresholds", base.replace(**RECOMMENDED), True)]


def main(argv: list[str] | None = None) -> int:
    """Run the chosen sections; each replaces its own ``reid:<section>`` block of BENCHMARKS.md."""
    args = parse_args(argv)
    if args.peer:
        return run_peer(args)
    common = _ours()
    model = common.SHARED / "models" / "osnet_x0_25_msmt17.onnx"
    if not model.is_file() or not common.DATA.is_dir():
        print(f"reid bench: needs {model} and {common.DATA} (../shared); nothing done", file=sys.stderr)
        return 0
    out = (args.out or common.OUT / "reid").resolve()
    out.mkdir(parents=True, exist_ok=True)
    from ros2_tracker.appearance import EmbedderConfig, create_embedder

    parts, raw = {}, {}
    if "speed" in args.sections:
        parts["speed"] = section_speed(model, common.DATA / "TUD-Campus" / "img1" / "000001.jpg", args.reps)
        print("[reid] speed: done", file=sys.stderr)
    if "distances" in args.sections:
        text, d = section_distances(common.DATA, create_embedder(EmbedderConfig(model_path=str(model))))
        parts["distances"] = text
        raw["best_threshold"] = d["best_threshold"]
        np.savez(out / "distances.npz", memory_same=d["memory_same"], memory_diff=d["memory_diff"])
        print("[reid] distances: done", file=sys.stderr)
    configs = tracker_configs()
    if "tracking" in args.sections:
        datasets, skipped = load_datasets(common.DATA, out)
        peers = [] if args.no_peers else ["botsort", "strongsort", "deepocsort", "botsort_noreid"]
        text, raw["tracking"] = section_tracking(datasets, model, out, peers, configs)
        parts["tracking"] = ("## Tracking with and without appearance\n\n" + text
                             + "".join(f"\n\nSkipped: {s}" for s in skipped))
    if "video" in args.sections and (common.DATA / "PETS09-S2L1" / "video" / "vtest.avi").is_file():
        text, raw["video"] = section_video(common.DATA, model, out / "video", configs)
        parts["video"] = text
        print("[reid] video: done", file=sys.stderr)
    (out / "results.json").write_text(json.dumps(raw, indent=1, default=float))
    footer = common.command_footer("bench/reid.py", argv)
    for name, text in parts.items():  # a section run alone leaves the others' blocks as they are
        body = f"{text}\n\n{footer}"
        print(body + "\n")
        if not args.no_markdown:
            common.update_section(args.markdown or common.BENCHMARKS_MD, f"reid:{name}", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
