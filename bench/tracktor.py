"""Tracktor (D2Go Faster R-CNN regression head) beside the core tracker and the peers, on the same detections.

    .venv/bin/python bench/tracktor.py [--datasets KEY ...] [--peers PEER ...] [--s2l1-frames N]
                                       [--out DIR] [--section bench/out/sections/tracktor.md]

For each dataset (``bench/run_bench.py`` keys: ``tud-campus-acf``, ``tud-campus-frcnn``, ``pets09-s3mf1``,
``mot17``), every tracker runs as its own process, one after another, on the same det file:

* ``tracktor public``: ``ros2-tracker track --tracker tracktor`` with the det file, refined by the D2Go heads
  (CMC and OSNet re-ID on, config/tracktor.yaml defaults);
* ``tracktor public, unmasked CMC``: the same with ``cmc_exclude_boxes: false`` (ECC aligns the whole
  image, walking people included);
* ``tracktor private``: the same with the D2Go detector's own detections (``--private``);
* ``core`` and ``core + CMC``: ``ros2-tracker track`` (TrackerConfig defaults) without and with ``--cmc``;
* the peers of ``bench/peers/run_peer.py`` (their own venvs; ``bench/run_bench.py``'s runner).

MOT17-mini has images and ground truth only for the first 4-8 frames of each sequence: every tracker is run
and scored on those frames only (TrackEval's combined score over the 7 sequences). Scores come from
``ros2_tracker.eval.metrics``; "ms/frame" is the time inside the tracker's update (for Tracktor: the
networks, CMC and re-ID included; for the others: association only, the detector is not counted).
PETS09-S2L1 (ground truth withheld) is tracked from ``video/vtest.avi`` with its public det.txt: speed and an
annotated video (``OUT/pets09-s2l1.mp4``) only. The markdown section goes to ``--section``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, OUT, REPO, command_line, machine_line, markdown_table, write_section_file
from bench.run_bench import Dataset, Run, Sequence, default_cli, load_datasets, load_run_peer, run_one, score
from bench.run_bench import tracker_specs as peer_specs

MODELS = DATA.parent / "models"
D2GO = MODELS / "d2go_faster_rcnn" / "d2go_faster_rcnn_fbnetv3a_C4_int8_coco.pt"
OSNET = MODELS / "osnet_x0_25_msmt17.onnx"
DATASETS = ("tud-campus-acf", "tud-campus-frcnn", "pets09-s3mf1", "mot17")
OURS = ("tracktor public", "tracktor public, unmasked CMC", "tracktor private", "core", "core + CMC")
TIMING_PARTS = ("encode_seconds", "regress_seconds", "detect_seconds", "cmc_seconds", "embed_seconds")


def image_frames(seq: Sequence) -> Sequence:
    """``seq`` limited to the frames that have images (MOT17-mini: the first 4-8)."""
    img = seq.det.parent.parent / "img1"
    n = 0
    while (img / f"{n + 1:06d}.jpg").is_file():
        n += 1
    return dataclasses.replace(seq, frames=min(n, seq.frames)) if n else seq


def our_command(kind: str, cli: Path, seq: Sequence, results: Path, timing: Path) -> list[str]:
    """The ``ros2-tracker track`` command of one of :data:`OURS`."""
    root = seq.det.parent.parent
    common = ["--output", str(results), "--fps", f"{seq.fps:g}", "--timing", str(timing), "--frames",
              str(seq.frames)]
    if kind.startswith("tracktor"):
        dets = ["--private"] if kind.endswith("private") else ["--detections", str(seq.det)]
        config = REPO / "config" / "tracktor.yaml"
        if kind.endswith("unmasked CMC"):  # the whole image aligned, moving people included
            config = results.parent / "tracktor_unmasked.yaml"
            config.write_text((REPO / "config" / "tracktor.yaml").read_text().replace(
                "cmc_exclude_boxes: true", "cmc_exclude_boxes: false"))
        return [str(cli), "track", "--tracker", "tracktor", "--sequence", str(root), *dets,
                "--regressor-model", str(D2GO), "--reid-model", str(OSNET), "--tracktor-config", str(config),
                *common]
    cmc = ["--cmc", "--sequence", str(root)] if kind.endswith("CMC") else []
    return [str(cli), "track", "--detections", str(seq.det), *cmc, *common]


def run_ours(kind: str, cli: Path, seq: Sequence, out: Path, timeout_s: float) -> tuple[Run, dict]:
    """Run one of ours; the Run (errors recorded, never raised) and its timing JSON."""
    folder = out / kind.replace(" ", "_").replace("+", "plus").replace(",", "")
    folder.mkdir(parents=True, exist_ok=True)
    results, timing = folder / f"{seq.name}.txt", folder / f"{seq.name}.timing.json"
    timing.unlink(missing_ok=True)
    run = Run(kind, seq.name, results, seq.frames)
    try:
        proc = subprocess.run(our_command(kind, cli, seq, results, timing), capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        run.error = f"timed out after {timeout_s:g} s"
        return run, {}
    if proc.returncode != 0 or not timing.exists():
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        run.error = f"exit {proc.returncode}: " + (lines[-1].strip()[:200] if lines else "no output")
        return run, {}
    t = json.loads(timing.read_text())
    run.update_seconds = float(t["update_seconds"])
    run.frames = int(t.get("frames", seq.frames))
    return run, t


def bench_dataset(ds: Dataset, cli: Path, peers: list, out: Path, timeout_s: float) -> dict:
    """Every tracker on every sequence of ``ds``; metrics and timings per tracker."""
    seqs = tuple(image_frames(s) for s in ds.sequences)
    ds = dataclasses.replace(ds, sequences=seqs)
    table: dict[str, dict] = {}
    for kind in (*OURS, *(p.name for p in peers)):
        runs, timings = [], []
        spec = next((p for p in peers if p.name == kind), None)
        for seq in seqs:
            print(f"  {ds.key}: {kind} on {seq.name} ({seq.frames} frames)", file=sys.stderr)
            if spec is None:
                run, t = run_ours(kind, cli, seq, out / ds.key, timeout_s)
                timings.append(t)
            else:
                run = run_one(spec, seq, out / ds.key, timeout_s)
            runs.append(run)
        table[kind] = _summarise(ds, runs, timings, spec.label if spec else kind)
    return table


def _summarise(ds: Dataset, runs: list[Run], timings: list[dict], label: str) -> dict:
    errors = [r.error for r in runs if r.error]
    entry: dict = {"label": label, "error": errors[0] if errors else None}
    if errors:
        return entry
    frames = sum(r.frames for r in runs)
    entry["ms_per_frame"] = 1e3 * sum(r.update_seconds or 0.0 for r in runs) / max(frames, 1)
    entry["frames"] = frames
    for part in TIMING_PARTS:
        if any(part in t for t in timings):
            total = sum(t.get(part, 0.0) for t in timings)
            entry[part.replace("_seconds", "_ms")] = 1e3 * total / max(frames, 1)
    entry["metrics"] = score(ds, runs)
    return entry


def s2l1_video(frames: int, out: Path) -> dict:
    """Tracktor (public det.txt, CMC, re-ID) on PETS09-S2L1's video: speed and an annotated video."""
    from ros2_tracker.appearance import EmbedderConfig, create_embedder
    from ros2_tracker.cmc import EccAligner
    from ros2_tracker.io.mot import read_mot
    from ros2_tracker.io.video import open_frame_source
    from ros2_tracker.regression.config import RegressorConfig
    from ros2_tracker.regression.factory import create_regressor
    from ros2_tracker.regression.offline import track_sequence
    from ros2_tracker.regression.tracktor import Tracktor
    from ros2_tracker.viz.draw import draw_tracks
    from ros2_tracker.viz.video import VideoWriter

    root = DATA / "PETS09-S2L1"
    source = open_frame_source(root / "video" / "vtest.avi")
    tracktor = Tracktor(create_regressor(RegressorConfig(regressor_model_path=str(D2GO))),
                        embedder=create_embedder(EmbedderConfig(model_path=str(OSNET))), aligner=EccAligner())
    with VideoWriter(out / "pets09-s2l1.mp4", source.fps) as video:
        def draw(_frame, image, tracks):
            shown = tracks.confirmed_and_updated()
            video.write(draw_tracks(image, shown.ids, shown.boxes_xyxy))

        t0 = time.perf_counter()
        res = track_sequence(tracktor, source, source.fps, detections=read_mot(root / "det" / "det.txt"),
                             last_frame=frames, on_frame=draw)
        wall = time.perf_counter() - t0
    source.close()
    n = max(res.n_frames, 1)
    return {"frames": res.n_frames, "tracks": len(set(res.ids.tolist())),
            "ms_per_frame": 1e3 * res.update_seconds / n,
            "wall_ms_per_frame": 1e3 * wall / n, "video": str(video.path),
            **{p.replace("_seconds", "_ms"): 1e3 * getattr(tracktor, p) / n for p in TIMING_PARTS}}


def _fmt(v, pct=True) -> str:
    if v is None:
        return "\u2013"
    return f"{100 * v:.1f}" if pct else f"{v:.1f}"


def markdown(results: dict, s2l1: dict | None, argv: list[str]) -> str:
    """The BENCHMARKS section: one table per dataset, the Tracktor time split, the S2L1 run."""
    parts = ["## Tracktor (D2Go Faster R-CNN) beside the core tracker and the peers\n"]
    for key, table in results.items():
        rows = []
        for entry in table.values():
            m = entry.get("metrics") or {}
            if entry["error"]:
                rows.append([entry["label"], "failed: " + entry["error"][:60], "", "", "", "", "", ""])
                continue
            rows.append([entry["label"], _fmt(m.get("HOTA")), _fmt(m.get("MOTA")), _fmt(m.get("IDF1")),
                         str(m.get("IDSW", "")), str(m.get("FP", "")), str(m.get("FN", "")),
                         f"{entry['ms_per_frame']:.2f}"])
        parts.append(f"### {key}\n\n" + markdown_table(
            ["tracker", "HOTA", "MOTA", "IDF1", "IDSW", "FP", "FN", "ms/frame"], rows) + "\n")
    split = [[f"{key}: {kind}", *(_fmt(e.get(p.replace("_seconds", "_ms")), pct=False) for p in TIMING_PARTS),
              _fmt(e.get("ms_per_frame"), pct=False)]
             for key, table in results.items() for kind, e in table.items()
             if kind.startswith("tracktor") and not e["error"]]
    if split:
        parts.append("### Tracktor time per frame [ms], CPU\n\n" + markdown_table(
            ["run", "encode (backbone)", "regress (heads)", "detect (RPN+heads)", "CMC (ECC)", "re-ID",
             "total"], split) + "\n")
    if s2l1:
        s = s2l1
        parts.append(f"### PETS09-S2L1 from video/vtest.avi (ground truth withheld: speed and a look)\n\n"
                     f"{s['frames']} frames, {s['tracks']} tracks, Tracktor {s['ms_per_frame']:.1f} ms/frame "
                     f"(encode {s['encode_ms']:.1f}, regress {s['regress_ms']:.1f}, CMC {s['cmc_ms']:.1f}, "
                     f"re-ID {s['embed_ms']:.1f}); with decoding and drawing {s['wall_ms_per_frame']:.1f} "
                     f"ms/frame. Video: `{s['video']}`.\n")
    parts.append(f"Command: `{command_line('bench/tracktor.py', argv)}`  \nMachine: {machine_line()}\n")
    return "\n".join(parts)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    peers = list(load_run_peer().PEERS)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="*", choices=DATASETS, default=list(DATASETS))
    p.add_argument("--peers", nargs="*", choices=peers, default=["rf_sort", "rf_bytetrack", "rf_ocsort",
                                                                 "boxmot_bytetrack", "norfair"])
    p.add_argument("--peers-venv", type=Path, default=REPO / ".venv-peers")
    p.add_argument("--s2l1-frames", type=int, default=795, help="PETS09-S2L1 video frames (0 = skip)")
    p.add_argument("--out", type=Path, default=OUT / "tracktor")
    p.add_argument("--section", type=Path, default=Path("bench/out/sections/tracktor.md"))
    p.add_argument("--timeout", type=float, default=600.0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not D2GO.is_file() or not OSNET.is_file():
        print(f"needs {D2GO} and {OSNET} (../shared)", file=sys.stderr)
        return 1
    cli = default_cli()
    datasets, skipped = load_datasets(args.datasets, DATA, args.out / "work")
    specs, skipped_peers = peer_specs(args.peers, cli, {".venv-peers": args.peers_venv})
    for msg in skipped + skipped_peers:
        print(msg, file=sys.stderr)
    peers = [s for s in specs if s.name != "ros2_tracker"]
    results = {ds.key: bench_dataset(ds, cli, peers, args.out, args.timeout) for ds in datasets}
    s2l1 = s2l1_video(args.s2l1_frames, args.out) if args.s2l1_frames > 0 else None
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"datasets": results, "s2l1": s2l1}, indent=1,
                                                      default=str))
    text = markdown(results, s2l1, sys.argv[1:] if argv is None else argv)
    write_section_file(args.section, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
