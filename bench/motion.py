"""Motion-model benchmark: prediction accuracy and tracking effect of the learned model vs constant velocity.

    .venv/bin/python bench/motion.py --model runs/motion/motion.onnx [--config config/motion_train.yaml]
                                     [--section bench/out/sections/motion.md]
                                     [--plot bench/out/sections/motion.png]

Sections of the markdown written to ``--section``:

* accuracy: on each held-out sequence of the training config (never trained on), the same degraded
  histories (box jitter, misses, 30 % lost tails: what a tracker sees) go through three predictors:
  ``cv`` (the Kalman mean, isotropic uncertainty per horizon fitted on the training sequences),
  ``cv+kalman`` (the same mean, the Kalman covariance: the tracker's default) and ``learned`` (the ONNX
  runtime, with its constant-velocity fallback for short histories). ADE/FDE in pixels and box
  heights at 0.5 / 1 / 2 s, NLL (2-D Gaussian, box-height units) and the fraction inside the 1/2-sigma
  ellipses (ideal 0.39 / 0.86);
* tracking: HOTA / IDF1 / IDSW of ``ros2-tracker track``'s tracker with the default constant velocity
  vs ``motion_model: learned`` (lost tracks associated where the model puts them; the detections are
  the same) on the held-out real sequences and the held-out synthetic scene (which has a pillar that
  hides people for 1-2 s);
* latency: milliseconds per frame of the trajectory prediction for 10 and 100 tracks (ONNX Runtime,
  1 thread), CV vs learned, median of repeated runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # run as a script: make ``bench`` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import write_section_file

REPO = Path(__file__).resolve().parents[1]
HORIZONS = (0.5, 1.0, 2.0)


def _accuracy(cfg, model_path: Path):
    from ros2_tracker.core.motion import ConstantVelocityPredictor
    from ros2_tracker.core.tracker import TrackerConfig
    from ros2_tracker.motion import OnnxMotionPredictor
    from ros2_tracker.motion.evaluation import FixedSigmaCV, evaluate_predictor, fit_cv_sigma
    from ros2_tracker.training.train_motion import build_samples

    noise = TrackerConfig().noise
    times = np.asarray(cfg.model_config().times_s)
    train = build_samples(cfg, cfg.train_sequences, cfg.seed, 1)
    sigma = fit_cv_sigma(train, times, noise)
    predictors = {"cv": FixedSigmaCV(times, sigma), "cv+kalman": ConstantVelocityPredictor(),
                  "learned": OnnxMotionPredictor(model_path)}
    rows = {}
    for s in build_samples(cfg, cfg.eval_sequences, cfg.seed + 1, 1):
        lost = ~s.valid[:, -1]
        for name, p in predictors.items():
            rows[(s.name, name, "all")] = evaluate_predictor(p, s, times, HORIZONS, noise)
            rows[(s.name, name, "lost")] = evaluate_predictor(p, s, times, HORIZONS, noise, select=lost)
    return rows


def _accuracy_table(rows, subset: str) -> list[str]:
    out = ["| sequence | predictor | n (2 s) | ADE/FDE 0.5 s [px] | ADE/FDE 1 s [px] | ADE/FDE 2 s [px] | "
           "FDE 0.5/1/2 s [heights] | NLL 0.5/1/2 s | in 1-sigma / 2-sigma at 1 s |",
           "|---|---|---|---|---|---|---|---|---|"]
    for (seq, name, sub), ms in rows.items():
        if sub != subset:
            continue
        m1 = ms[1]
        out.append(f"| {seq} | {name} | {ms[2].count} | "
                   + " | ".join(f"{m.ade_px:.1f} / {m.fde_px:.1f}" for m in ms)
                   + " | " + " / ".join(f"{m.fde_h:.3f}" for m in ms)
                   + " | " + " / ".join(f"{m.nll:.2f}" for m in ms)
                   + f" | {m1.in_1sigma:.2f} / {m1.in_2sigma:.2f} |")
    return out


def _verdict(rows) -> list[str]:
    lines = []
    for (seq, name, sub), ms in rows.items():
        if name != "learned" or sub != "all":
            continue
        cv = rows[(seq, "cv+kalman", "all")]
        wins = [ms[i].fde_px < cv[i].fde_px for i in (1, 2)]
        lines.append(f"- {seq}: learned FDE {ms[1].fde_px:.1f} / {ms[2].fde_px:.1f} px vs constant velocity "
                     f"{cv[1].fde_px:.1f} / {cv[2].fde_px:.1f} px at 1 / 2 s: "
                     + ("**better at both**" if all(wins) else "not better at both"))
    return lines


def _sequences(cfg, tmp: Path) -> list[tuple[str, Path, Path, float]]:
    """(name, det file, gt file, fps) of the held-out sequences with detections."""
    from ros2_tracker.io.sequence import read_sequence_info
    from ros2_tracker.synthetic import SceneConfig, generate_scene

    out = []
    for name in cfg.eval_sequences:
        if name.startswith("synthetic:"):
            seed, fps = name.split(":")[1].split("@")
            scene = generate_scene(SceneConfig(seed=int(seed), fps=float(fps)))
            root = scene.write_mot(tmp / name, render=False)
            out.append((name, root / "det" / "det.txt", root / "gt" / "gt.txt", float(fps)))
            continue
        root = Path(cfg.data_root) / name
        files = [root / "det" / f for f in ("det_frcnn.txt", "det.txt")]
        det = next((f for f in files if f.is_file()), None)
        if det is not None:
            out.append((name, det, root / "gt" / "gt.txt", read_sequence_info(root).fps))
    return out


def _tracking(cfg, model_path: Path) -> list[str]:
    from ros2_tracker.core.tracker import Tracker, TrackerConfig
    from ros2_tracker.eval.metrics import evaluate_sequence
    from ros2_tracker.io.mot import read_mot, write_results
    from ros2_tracker.motion import create_predictor
    from ros2_tracker.offline import track_mot_detections

    lines = ["| sequence (detections) | motion model | HOTA | IDF1 | IDSW | MOTA | update ms/frame |",
             "|---|---|---|---|---|---|---|"]
    learned = TrackerConfig(motion_model="learned", motion_model_path=str(model_path))
    with tempfile.TemporaryDirectory() as tmp:
        for name, det, gt, fps in _sequences(cfg, Path(tmp)):
            dets = read_mot(det)
            for label, tc in (("constant velocity (default)", TrackerConfig()), ("learned", learned)):
                res = track_mot_detections(dets, Tracker(tc, predictor=create_predictor(tc)), fps)
                out = Path(tmp) / f"{name.replace('/', '_')}-{label[:7]}.txt"
                write_results(out, res.frames, res.ids, res.boxes_tlwh, res.scores)
                m = evaluate_sequence(gt, out, name=name)
                lines.append(f"| {name} ({det.name}) | {label} | {m.HOTA:.3f} | {m.IDF1:.3f} | {m.IDSW} | "
                             f"{m.MOTA:.3f} | {1000 * res.update_seconds / max(res.n_frames, 1):.2f} |")
    return lines


def _latency(model_path: Path) -> list[str]:
    from ros2_tracker.core.motion import ConstantVelocityPredictor, MotionHistory
    from ros2_tracker.core.tracker import TrackerConfig
    from ros2_tracker.motion import OnnxMotionPredictor

    rng = np.random.default_rng(0)
    times = np.arange(1, 11) * 0.2
    lines = ["| tracks | constant velocity [ms/frame] | learned (ONNX Runtime, 1 thread) [ms/frame] |",
             "|---|---|---|"]
    learned = OnnxMotionPredictor(model_path, num_threads=1)
    for n in (10, 100):
        k = 48
        t = (np.arange(k) - (k - 1)) / 25.0
        x = 100 + rng.uniform(0, 500, (n, 1)) + rng.uniform(-60, 60, (n, 1)) * t[None, :]
        boxes = np.stack([x, np.full((n, k), 240.0), np.full((n, k), 40.0), np.full((n, k), 100.0)], axis=-1)
        valid = rng.random((n, k)) > 0.1
        mean = np.zeros((n, 8))
        mean[:, :4] = boxes[:, -1]
        cov = np.ones((n, 4, 3))
        h = MotionHistory(boxes, valid, np.broadcast_to(t, (n, k)), 0.0, mean, cov, TrackerConfig().noise)
        cells = []
        for p in (ConstantVelocityPredictor(), learned):
            p.predict(h, times)
            runs = []
            for _ in range(30):
                t0 = time.perf_counter()
                p.predict(h, times)
                runs.append(time.perf_counter() - t0)
            cells.append(f"{1000 * statistics.median(runs):.2f}")
        lines.append(f"| {n} | {cells[0]} | {cells[1]} |")
    return lines


def _plot(rows, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    seqs = sorted({k[0] for k in rows})
    fig = Figure(figsize=(4 * len(seqs), 3.4), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(seqs), squeeze=False)[0]
    for ax, seq in zip(axes, seqs, strict=True):
        for name, style in (("cv+kalman", "o-"), ("learned", "s-")):
            ms = rows[(seq, name, "all")]
            ax.plot([m.horizon_s for m in ms], [m.fde_px for m in ms], style, label=f"{name} (all)")
            ms = rows[(seq, name, "lost")]
            ax.plot([m.horizon_s for m in ms], [m.fde_px for m in ms], style[0] + "--", alpha=0.5,
                    label=f"{name} (lost tracks)")
        ax.set(title=seq, xlabel="horizon [s]", ylabel="FDE [px]")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def _machine() -> str:
    cpu = platform.machine()
    info = Path("/proc/cpuinfo")
    if info.is_file():
        cpu = next((ln.split(":", 1)[1].strip() for ln in info.read_text().splitlines()
                    if ln.startswith("model name")), cpu)
    return f"{cpu}, {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the markdown section and the plot."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True, help="motion.onnx from ros2-tracker train-motion")
    ap.add_argument("--config", type=Path, default=REPO / "config" / "motion_train.yaml")
    ap.add_argument("--section", type=Path, default=Path("bench/out/sections/motion.md"))
    ap.add_argument("--plot", type=Path, default=Path("bench/out/sections/motion.png"))
    args = ap.parse_args(argv)
    from ros2_tracker.io.params import load_config
    from ros2_tracker.training.train_motion import MotionTrainConfig

    cfg = load_config(MotionTrainConfig, args.config)
    if not Path(cfg.data_root).is_absolute():
        cfg = cfg.replace(data_root=str((REPO / cfg.data_root).resolve()))
    t0 = time.perf_counter()
    rows = _accuracy(cfg, args.model)
    _plot(rows, args.plot)
    tracking = _tracking(cfg, args.model)
    latency = _latency(args.model)
    md = ["## Learned motion model (trajectory prediction)", "",
          f"Command: `.venv/bin/python bench/motion.py --model {args.model}` "
          f"({_machine()}, {time.perf_counter() - t0:.0f} s). Held-out "
          f"sequences (never trained on): {', '.join(cfg.eval_sequences)}. Plot: `{args.plot.name}`.", "",
          "### Prediction accuracy, all samples", "", *_accuracy_table(rows, "all"), "",
          "### Prediction accuracy, lost tracks only (last frames hidden)", "",
          *_accuracy_table(rows, "lost"), "",
          "Goal check (FDE at 1 s and 2 s, all samples):", "", *_verdict(rows), "",
          "### Tracking effect (same detections)", "", *tracking, "",
          "### Trajectory prediction time per frame", "", *latency, ""]
    write_section_file(args.section, "\n".join(md) + "\n")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
