"""Single-target benchmark (OTB-style one-pass evaluation): every registered backend on the same targets.

    .venv/bin/python bench/sot.py [--backends nano mil ...] [--model NAME=PATH ...] [--no-follower] [--reid]
                                  [--max-targets N] [--markdown FILE] [--out DIR]

Targets: every ground-truth identity of TUD-Campus, PETS09-S3MF1 and the seven MOT17-mini sequences
that is visible long enough (rule in :mod:`ros2_tracker.sot.evaluation`: the longest gap-free run from
the first frame where the person is >= 50 px tall, >= 90 % inside the image and, in MOT17, >= 50 %
visible; at least 20 frames, or every image frame of a MOT17-mini sequence, which has only 4-8).
Each backend starts on the first frame's ground truth and is never re-initialised; the first frame is
not scored. Rows:

* every backend of ``ros2_tracker.sot.factory.BACKENDS`` (NanoTrack v2, OpenCV's MIL, and whatever
  the learned backends register): the raw backend. A backend whose model is not given (``--model
  NAME=PATH``; nano defaults to ../shared/models/nanotrack_v2) or cannot be loaded is listed as skipped
  with the reason;
* ``nano + follower``: what ``sot_node`` runs: NanoTrack inside :class:`Follower` (cycle-consistency
  check every 2 frames, lost state with the predicted box, wider-search re-acquisition, no detector);
  with ``--reid`` also ``nano + follower + re-ID``: re-acquisition checks OSNet appearance and searches
  YOLOX-nano detections too.

Columns: success AUC (mean success over IoU thresholds 0..1 step 0.05) and precision at 20 px, each
the mean of the targets' own figures as OTB averages its sequences, then both over all scored frames
pooled (long targets weigh more), the AUC per dataset (mean over its targets), and FPS = scored
frames / time inside ``update`` (``step`` for the follower; image decoding excluded). Writes
``OUT/success.png`` (success plots, mean over targets), ``OUT/sot.json`` and ``OUT/sot.md``;
``--markdown FILE`` also puts the table between the ``<!-- bench:sot:start/end -->`` markers of FILE.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, OUT, command_line, machine_line, markdown_table, update_section
from ros2_tracker.core.config import ConfigError
from ros2_tracker.sot.evaluation import (
    OTB_THRESHOLDS,
    SequenceScore,
    evaluate_backend,
    single_target_sequences,
    summarise_targets,
)
from ros2_tracker.sot.factory import BACKENDS, SotConfig, create_follower, create_sot_tracker

DATASETS = {"TUD-Campus": ["TUD-Campus"], "PETS09-S3MF1": ["PETS09-S3MF1"],
            "MOT17-mini": [f"MOT17-mini/train/MOT17-{n:02d}-FRCNN" for n in (2, 4, 5, 9, 10, 11, 13)]}
FOLLOWER = "nano + follower"
FOLLOWER_REID = "nano + follower + re-ID"
MODELS = DATA.parent / "models"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command-line options (see the module docstring)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backends", nargs="*", help="backends to run (default: every registered one)")
    p.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                   help="model of a backend (nano default: ../shared/models/nanotrack_v2)")
    p.add_argument("--no-follower", action="store_true", help="skip the nano + follower rows")
    p.add_argument("--reid", action="store_true", help="add a nano + follower row with re-acquisition by "
                   "YOLOX-nano + OSNet (../shared/models)")
    p.add_argument("--max-targets", type=int, default=0, help="at most this many targets per sequence "
                   "(tallest first; 0 = all)")
    p.add_argument("--markdown", type=Path, help="also write the table into this markdown file")
    p.add_argument("--out", type=Path, default=OUT / "sot", help="output folder")
    return p.parse_args(argv)


def build_trackers(args: argparse.Namespace) -> tuple[dict, dict]:
    """``({row name: tracker}, {row name: why skipped})``."""
    models = {"nano": str(MODELS / "nanotrack_v2")}
    for item in args.model:
        name, _, path = item.partition("=")
        models[name] = path
    trackers, skipped = {}, {}
    for name in args.backends or list(BACKENDS):
        try:
            trackers[name] = create_sot_tracker(SotConfig(backend=name, model_path=models.get(name, "")))
        except (ConfigError, OSError, ImportError) as exc:
            skipped[name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if not args.no_follower and "nano" in trackers:
        trackers[FOLLOWER] = create_follower(SotConfig(model_path=models["nano"]))
        if args.reid:
            trackers[FOLLOWER_REID] = create_follower(
                SotConfig(model_path=models["nano"]), detector_model_path=str(MODELS / "yolox_nano.onnx"),
                reid_model_path=str(MODELS / "osnet_x0_25_msmt17.onnx"))
    return trackers, skipped


def targets(args: argparse.Namespace) -> dict[str, list]:
    """Dataset -> its single-target sequences."""
    out = {}
    for dataset, folders in DATASETS.items():
        seqs = []
        for folder in folders:
            found = single_target_sequences(DATA / folder)
            if args.max_targets:
                found = sorted(found, key=lambda s: -(s.boxes_xyxy[0, 3] - s.boxes_xyxy[0, 1]))
                found = found[: args.max_targets]
            seqs += found
        out[dataset] = seqs
    return out


def run(trackers: dict, by_dataset: dict[str, list]) -> dict[str, dict[str, list[SequenceScore]]]:
    """Every tracker on every target (frames decoded once per target)."""
    import cv2
    from tqdm import tqdm

    cv2.setNumThreads(1)
    scores: dict[str, dict[str, list[SequenceScore]]] = {n: {d: [] for d in by_dataset} for n in trackers}
    total = sum(len(s) for s in by_dataset.values())
    with tqdm(total=total, desc="sot targets", unit="target") as bar:
        for dataset, seqs in by_dataset.items():
            for seq in seqs:
                info_dir = seq.folder / "img1"
                images = [cv2.imread(str(info_dir / f"{k:06d}.jpg")) for k in seq.frames]
                for name, tracker in trackers.items():
                    scores[name][dataset].append(evaluate_backend(tracker, seq, images))
                bar.update(1)
    return scores


def summarise(scores: dict, skipped: dict, by_dataset: dict) -> tuple[list[list[str]], dict]:
    """Table rows (one per tracker, then the skipped backends) and the JSON data behind them."""
    rows, data = [], {}
    for name, per in scores.items():
        r = summarise_targets([s for d in per.values() for s in d])
        seconds = sum(s.update_seconds for d in per.values() for s in d)
        per_auc = {d: summarise_targets(v)["auc"] for d, v in per.items() if v}
        data[name] = {**r, "fps": r["frames"] / max(seconds, 1e-9), "auc_per_dataset": per_auc}
        rows.append([name, f"{r['auc']:.3f}", f"{r['precision20']:.3f}", f"{r['auc_pooled']:.3f}",
                     f"{r['precision20_pooled']:.3f}",
                     *(f"{per_auc.get(d, float('nan')):.3f}" for d in by_dataset),
                     f"{data[name]['fps']:.1f}"])
    for name, why in skipped.items():
        rows.append([f"{name} (skipped: {why})", *["-"] * (5 + len(by_dataset))])
    return rows, data


def plot(data: dict, path: Path) -> None:
    """OTB success plot of every tracker (AUC in the legend) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.0), dpi=120)
    for name, r in data.items():
        ax.plot(OTB_THRESHOLDS, r["success_curve"], label=f"{name} [{r['auc']:.3f}]")
    ax.set_xlabel("overlap threshold (IoU)")
    ax.set_ylabel("success rate")
    ax.set_title("Success plot, one-pass evaluation, mean over targets\n"
                 "(TUD-Campus, PETS09-S3MF1, MOT17-mini)", fontsize=10)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; writes OUT/success.png, sot.json, sot.md (and ``--markdown``)."""
    args = parse_args(argv)
    if not DATA.is_dir():
        print(f"needs {DATA} (../shared)", file=sys.stderr)
        return 2
    trackers, skipped = build_trackers(args)
    by_dataset = targets(args)
    scores = run(trackers, by_dataset)
    rows, data = summarise(scores, skipped, by_dataset)
    counts = {d: (len(s), sum(len(x) - 1 for x in s)) for d, s in by_dataset.items()}
    header = ["backend", "success AUC", "precision @20 px", "AUC, frames pooled", "precision, frames pooled",
              *(f"AUC {d}" for d in by_dataset), "FPS"]
    body = (markdown_table(header, rows) + "\n\n"
            + "Targets (scored frames): " + ", ".join(f"{d} {n} ({f})" for d, (n, f) in counts.items())
            + f".\n\n`{command_line('bench/sot.py', argv)}` · {machine_line()}\n")
    args.out.mkdir(parents=True, exist_ok=True)
    plot(data, args.out / "success.png")
    (args.out / "sot.json").write_text(json.dumps({"results": data, "skipped": skipped, "targets": counts},
                                                  indent=1))
    (args.out / "sot.md").write_text(body)
    if args.markdown:
        update_section(args.markdown, "sot", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
