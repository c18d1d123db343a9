"""Offline refinement (``ros2_tracker.refine``) against online tracking, on the same detections, beside peers.

    .venv/bin/python bench/offline.py [--datasets KEY ...] [--trackers PEER ...] [--no-reid]
                                      [--refine-config F] [--out DIR] [--section FILE]

Every tracker of ``bench/run_bench.py`` (ros2_tracker through ``ros2-tracker track``, each peer through
``bench/peers/run_peer.py`` in its own venv, see ``bench/setup_peers.sh``) tracks each sequence online,
as run_bench does. Each online result file is then refined by the *same* code and parameters
(:func:`ros2_tracker.refine.outputs.refine_and_write`, RefineConfig defaults unless ``--refine-config``):
no tracker gets appearance there, so with the defaults refinement interpolates short gaps and links
nothing (``link_without_appearance`` is off). Where the sequence has images (TUD-Campus, PETS09-S3MF1),
one more row runs ``ros2-tracker track --offline --sequence SEQ --reid-model osnet_x0_25_msmt17.onnx``:
OSNet embeddings drive online association and tracklet linking.

Metrics are TrackEval's HOTA, IDF1, MOTA and IDSW (``ros2_tracker.eval.metrics``), online and offline
side by side; "refine ms" is the wall time of the refinement of the whole sequence (summed over the
sequences of a dataset). Datasets are run_bench's (``--datasets`` keys): tud-campus-frcnn,
tud-campus-acf, tud-stadtmitte, pets09-s3mf1, mot17 (ground truth: first 4-8 frames only, a smoke test),
synthetic and synthetic-varied; mot15 (speed only, no ground truth here) is skipped. The markdown goes
to ``--section`` (default bench/out/sections/offline.md), raw numbers to ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``bench`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, OUT, SHARED, command_footer, markdown_table, write_section_file
from bench.run_bench import (
    ALL_DATASETS,
    DASH,
    OURS,
    Dataset,
    Run,
    Sequence,
    TrackerSpec,
    default_cli,
    load_datasets,
    load_run_peer,
    run_one,
    score,
    tracker_specs,
)

REID_MODEL = SHARED / "models" / "osnet_x0_25_msmt17.onnx"
REID = "ros2_tracker_reid"
REID_DATASETS = ("tud-campus-frcnn", "tud-campus-acf", "pets09-s3mf1")  # sequences with every image


@dataclass
class Variant:
    """One tracker on one dataset: online runs, their refined results, and the scores of both."""

    name: str
    label: str
    online: list[Run]
    offline: list[Run] = field(default_factory=list)
    refine_seconds: float = 0.0
    links: int = 0
    interpolated: int = 0
    error: str | None = None
    offline_error: str | None = None
    metrics: dict[str, dict] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------ running
def refine_run(run: Run, seq: Sequence, config) -> tuple[Run, dict, float]:
    """Refine one online result file into ``<name>.offline.txt``; the refined run, its summary, seconds."""
    from ros2_tracker.io.mot import read_mot
    from ros2_tracker.refine.outputs import offline_results_path, refine_and_write

    rows = read_mot(run.results, allow_empty=True, validate_boxes=False)  # refine_tracks says what is wrong
    path = offline_results_path(run.results)
    refined, marker = refine_and_write(rows.frames, rows.ids, rows.boxes_tlwh, rows.scores, output=path,
                                       online_path=run.results, fps=seq.fps, config=config)
    seconds = json.loads(marker.read_text())["refine_seconds"]
    return Run(run.tracker, run.sequence, path, run.frames), refined.summary(), seconds


def run_reid(cli: Path, seq: Sequence, out: Path, refine_config: Path | None,
             timeout_s: float) -> tuple[Run, Run]:
    """``ros2-tracker track --offline`` with OSNet re-ID: the online and the refined runs."""
    folder = out / REID
    folder.mkdir(parents=True, exist_ok=True)
    results, timing = folder / f"{seq.name}.txt", folder / f"{seq.name}.timing.json"
    cmd = [str(cli), "track", "--detections", str(seq.det), "--output", str(results), "--fps",
           f"{seq.fps:g}", "--frames", str(seq.frames), "--timing", str(timing), "--offline",
           "--sequence", str(seq.det.parents[1]), "--reid-model", str(REID_MODEL)]
    if refine_config is not None:
        cmd += ["--refine-config", str(refine_config)]
    online = Run(REID, seq.name, folder / f"{seq.name}.online.txt", seq.frames)
    offline = Run(REID, seq.name, results, seq.frames)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
        online.error = offline.error = f"exit {proc.returncode}: " + (lines[-1][:200] if lines else "")
    return online, offline


def run_variant(spec: TrackerSpec, ds: Dataset, out: Path, config, timeout_s: float) -> Variant:
    """One tracker over a dataset's sequences, online then refined."""
    v = Variant(spec.name, spec.label, [run_one(spec, seq, out / ds.key, timeout_s) for seq in ds.sequences])
    v.error = next((r.error for r in v.online if r.error), None)
    if v.error:
        return v
    for run, seq in zip(v.online, ds.sequences, strict=True):
        try:
            refined, summary, seconds = refine_run(run, seq, config)
        except ValueError as e:  # e.g. a peer's boxes with negative width: refinement refuses them
            v.offline_error = f"refinement refused {run.results.name}: {e}"[:160]
            return v
        v.offline.append(refined)
        v.refine_seconds += seconds
        v.links += summary["links"]
        v.interpolated += summary["interpolated_rows"]
    return v


def reid_variant(cli: Path, ds: Dataset, out: Path, refine_config: Path | None, timeout_s: float) -> Variant:
    """ros2_tracker with OSNet re-ID, online and ``--offline`` (linking with appearance)."""
    v = Variant(REID, "**ros2_tracker** + OSNet re-ID", [])
    for seq in ds.sequences:
        online, offline = run_reid(cli, seq, out / ds.key, refine_config, timeout_s)
        v.online.append(online)
        v.offline.append(offline)
        if online.error:
            v.error = online.error
            return v
        marker = json.loads(Path(f"{offline.results}.offline.json").read_text())
        v.refine_seconds += marker["refine_seconds"]
        v.links += marker["summary"]["links"]
        v.interpolated += marker["summary"]["interpolated_rows"]
    return v


def score_variant(ds: Dataset, v: Variant) -> None:
    """TrackEval metrics of the online and offline runs (errors are recorded, never raised)."""
    if v.error:
        return
    try:
        v.metrics = {"online": score(ds, v.online)}
        if not v.offline_error:
            v.metrics["offline"] = score(ds, v.offline)
    except Exception as e:  # a malformed peer output must not stop the other rows
        v.error = f"scoring failed: {e}"[:200]


# ------------------------------------------------------------------------------------------ tables
def _pct(v: float) -> str:
    return f"{100 * v:.1f}"


def _pair(m: dict, key: str, percent: bool = True) -> list[str]:
    on, off = m["online"][key], m["offline"][key]
    fmt = _pct if percent else str
    delta = (f"{100 * (off - on):+.1f}" if percent else f"{off - on:+d}")
    return [fmt(on), fmt(off), delta]


def dataset_table(ds: Dataset, variants: list[Variant]) -> str:
    """Markdown: one row per tracker, online → offline for each metric."""
    header = ["tracker", "HOTA on", "HOTA off", "Δ", "IDF1 on", "IDF1 off", "Δ", "MOTA on", "MOTA off", "Δ",
              "IDSW on", "IDSW off", "Δ", "links", "interp. boxes", "refine ms"]
    rows = []
    for v in variants:
        if v.error:
            rows.append([v.label, f"failed: {v.error}", *[DASH] * (len(header) - 2)])
            continue
        m = v.metrics
        if v.offline_error:
            on = m["online"]
            rows.append([v.label, _pct(on["HOTA"]), v.offline_error, DASH, _pct(on["IDF1"]), DASH, DASH,
                         _pct(on["MOTA"]), DASH, DASH, str(on["IDSW"]), *[DASH] * 5])
            continue
        rows.append([v.label, *_pair(m, "HOTA"), *_pair(m, "IDF1"), *_pair(m, "MOTA"),
                     *_pair(m, "IDSW", percent=False), str(v.links), str(v.interpolated),
                     f"{1e3 * v.refine_seconds:.1f}"])
    frames = sum(s.frames for s in ds.sequences)
    fps = ", ".join(sorted({f"{s.fps:g}" for s in ds.sequences}))
    return "\n".join([f"#### {ds.title}", "", f"{ds.note} {frames:,} frames at {fps} Hz.", "",
                      markdown_table(header, rows)])


INTRO = """\
## Offline refinement: tracklet linking and interpolation (`track --offline`, `replay --offline`)

For recorded data processed as a batch, `ros2_tracker.refine` links tracklets across gaps (motion
consistency from a constant-velocity fit at each tracklet end, fused with the cosine distance of the
tracklets' mean OSNet embeddings, gated, solved as one assignment with dummy nodes by
`core.assignment.assign`) and interpolates boxes linearly through gaps of at most `max_gap_s`. Each row
below is one tracker on the same detections: its online result, then the same refinement (same code,
`RefineConfig` defaults) applied to that result file. Online results are never modified: the refined
file is written beside them and marked offline by `<results>.offline.json`.
"""

NOTES = """\
Notes:

* *How the defaults were chosen* (config/refine.yaml; not tuned on these tables' metrics):
  `max_gap_s` 1.0 s is the order of the 20-frame interpolation window of ByteTrack/StrongSORT at 25-30 Hz;
  interpolation is skipped across gaps whose end boxes differ in height by more than 1.5x or whose
  centre would move faster than 2 box heights/s (a brisk walk is about 1), the marks of an identity
  switch or a partial detection. The motion gate (0.3 box heights + 0.3 per second of gap) is a
  pedestrian's velocity uncertainty. `appearance_gate` 0.25 comes from the re-ID model's distance
  statistics, not from tracking scores: on ground-truth boxes of TUD-Campus, PETS09-S3MF1 and
  MOT17-mini (OSNet x0.25, mean embedding of the first vs the second half of each identity), every
  same-identity distance was below 0.18 (99th percentile 0.16), and 1.7 % of different-identity
  pairs fell below 0.25.
* *Motion-only linking is off by default* (`link_without_appearance: false`): the online tracker
  already coasts through gaps at constant velocity for `max_lost_s`, so the fragments it leaves are
  the ones motion could not decide. Switched on, it joined different people in the crowded
  TUD-Stadtmitte (IDF1 80.2 → 74.8 during development) and gained nothing elsewhere. Without
  appearance, the offline rows therefore show interpolation only (links = 0).
* The MOT15 ground truth (TUD, PETS) does not annotate people while fully occluded, so boxes
  interpolated through a full occlusion count as false positives there even when they are right;
  MOT17-style ground truth annotates them.
* MOT17-mini's ground truth covers only the first 4-8 frames of each sequence: its rows are a smoke test.
"""


# ------------------------------------------------------------------------------------------ main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    peers = list(load_run_peer().PEERS)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", choices=ALL_DATASETS, metavar="KEY", default=list(ALL_DATASETS),
                   help=f"datasets (default: all with ground truth): {', '.join(ALL_DATASETS)}")
    p.add_argument("--trackers", nargs="*", choices=peers, metavar="PEER",
                   help=f"peers beside ros2_tracker (default: all): {', '.join(peers)}")
    p.add_argument("--no-reid", action="store_true", help="skip the ros2_tracker + OSNet rows")
    p.add_argument("--refine-config", type=Path, help="refinement parameters (config/refine.yaml form)")
    p.add_argument("--data", type=Path, default=DATA,
                   help="MOTChallenge data folder (default ../shared/data)")
    p.add_argument("--out", type=Path, default=OUT / "offline",
                   help="results folder (default bench/out/offline)")
    p.add_argument("--section", type=Path, default=Path("bench/out/sections/offline.md"),
                   help="markdown file to write (BENCHMARKS.md section)")
    p.add_argument("--cli", type=Path, default=default_cli(), help="the ros2-tracker executable")
    p.add_argument("--peers-venv", type=Path, default=Path(".venv-peers").resolve())
    p.add_argument("--norfair-venv", type=Path, default=Path(".venv-norfair").resolve())
    p.add_argument("--timeout", type=float, default=600.0, help="seconds allowed for one tracker run")
    return p.parse_args(argv)


def run_dataset(ds: Dataset, specs: list[TrackerSpec], args: argparse.Namespace, config) -> list[Variant]:
    """Every tracker (and the re-ID row where images exist) on one dataset, scored."""
    variants = [run_variant(spec, ds, args.out, config, args.timeout) for spec in specs]
    if not args.no_reid and ds.key in REID_DATASETS and REID_MODEL.exists():
        variants.insert(1, reid_variant(args.cli, ds, args.out, args.refine_config, args.timeout))
    for v in variants:
        score_variant(ds, v)
    return variants


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code (1 when ros2_tracker itself failed)."""
    from tqdm import tqdm

    from ros2_tracker.io.params import load_config
    from ros2_tracker.refine import RefineConfig

    args = parse_args(argv)
    config = load_config(RefineConfig, args.refine_config)
    peers = list(load_run_peer().PEERS if args.trackers is None else args.trackers)
    args.out.mkdir(parents=True, exist_ok=True)
    datasets, skipped = load_datasets(args.datasets, args.data, args.out)
    skipped += [f"{ds.key}: skipped, speed only (no ground truth here to score refinement)" for ds in datasets
                if not ds.scored]
    datasets = [ds for ds in datasets if ds.scored]
    specs, skipped_peers = tracker_specs(peers, args.cli, {".venv-peers": args.peers_venv,
                                                           ".venv-norfair": args.norfair_venv})
    for msg in skipped + skipped_peers:
        print(msg, file=sys.stderr)
    results: dict[str, list[Variant]] = {}
    for ds in tqdm(datasets, unit="dataset", dynamic_ncols=True):
        results[ds.key] = run_dataset(ds, specs, args, config)
    footer = command_footer('bench/offline.py', argv)
    tables = [dataset_table(ds, results[ds.key]) for ds in datasets]
    text = "\n\n".join([INTRO, *tables, NOTES, footer]) + "\n"
    write_section_file(args.section, text)
    (args.out / "results.json").write_text(json.dumps(
        {key: [{"tracker": v.name, "error": v.error, "offline_error": v.offline_error, "metrics": v.metrics,
                "links": v.links, "interpolated": v.interpolated, "refine_seconds": v.refine_seconds}
               for v in vs]
         for key, vs in results.items()}, indent=1))
    print(text)
    failed = [v for vs in results.values() for v in vs if v.name == OURS and v.error]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
