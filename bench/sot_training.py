"""Learned single-target models: train GOTURN-style and ROLO-style, measure them and MDNet on held-out tracks.

Everything is scored on TUD-Campus, which no model trains on (train: PETS09-S3MF1 + MOT17-mini):

* GOTURN-style (config/sot_train.yaml): training time, held-out crop-pair IoU against "no motion",
  ONNX parity; with ``--ablation`` a second run with the cycle-consistency loss on vtest.avi
  (``cycle_weight`` 0.05; off by default). Then each held-out track is followed from its first box
  for up to ``--frames`` frames by the trained GOTURN (torch and ONNX Runtime), MDNet-style (online
  fine-tuning, no offline training),
  OpenCV's TrackerMIL and a static box ("no motion"), in the same run: mean IoU, success AUC (mean
  over IoU thresholds 0, 0.05, ..., 1 of the share of frames above), mean confidence, ms per update.
* MDNet-style fine-tuning cost: ms per init (head fine-tuning + box regressor), per update, per
  online fine-tuning, with the config's bounds.
* ROLO-style: training time; mean IoU on the held-out tracks with simulated flicker (same draw for
  all) of the LSTM output against the raw detections (a dropped one replaced by the last), on all
  frames and on the dropped ones.

    .venv/bin/python bench/sot_training.py [--out DIR] [--frames 50] [--goturn-steps N] [--rolo-steps N]
                                           [--ablation] [--reuse] [--section bench/out/sections/sot-models.md]

Checkpoints go to ``--out`` (default ~/.cache/ros2_tracker/sot_training; never into the repository).
Writes ``results.json`` there and the markdown section. About 5-10 min on 2 busy CPU cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, command_line, machine_line, markdown_table, write_section_file

HELD_OUT = "TUD-Campus"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path.home() / ".cache" / "ros2_tracker" / "sot_training")
    ap.add_argument("--frames", type=int, default=50, help="frames followed per held-out track")
    ap.add_argument("--goturn-steps", type=int, help="override the config's steps for GOTURN")
    ap.add_argument("--rolo-steps", type=int, help="override the config's rolo_steps")
    ap.add_argument("--ablation", action="store_true",
                    help="also train GOTURN with the cycle loss (cycle_weight 0.05; the default is off)")
    ap.add_argument("--device", default="cpu", help="auto, cpu or cuda (training)")
    ap.add_argument("--threads", type=int, default=1, help="torch / ONNX Runtime threads")
    ap.add_argument("--section", type=Path, default=Path("bench/out/sections/sot-models.md"))
    ap.add_argument("--reuse", action="store_true",
                    help="reuse the models and training figures of the last run in --out (tracking only)")
    args = ap.parse_args(argv)
    if not (DATA / HELD_OUT).is_dir():
        print(f"needs {DATA} (../shared data)", file=sys.stderr)
        return 1
    import torch

    torch.set_num_threads(args.threads)
    from ros2_tracker.training.train_sot import SotTrainConfig

    base = SotTrainConfig(data_root=str(DATA), device=args.device, num_threads=args.threads)
    results: dict = {"machine": machine_line(), "command": command_line("bench/sot_training.py", argv)}
    if args.reuse and (args.out / "results.json").is_file():
        previous = json.loads((args.out / "results.json").read_text())
        results.update({k: v for k, v in previous.items() if k in ("goturn", "goturn_cycle", "rolo")})
    else:
        results["goturn"] = _train_goturn(base, args, args.out / "goturn")
        if args.ablation:
            cycle = base.replace(cycle_weight=0.05)
            results["goturn_cycle"] = _train_goturn(cycle, args, args.out / "goturn_cycle")
        results["rolo"] = _train_rolo(base, args, args.out / "rolo")
    results["tracking"] = _follow_all(args, results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    text = _markdown(results, args)
    write_section_file(args.section, text)
    print(text)
    return 0


def _train_goturn(base, args, out: Path) -> dict:
    from ros2_tracker.training.train_sot import train_goturn

    config = base.replace(steps=args.goturn_steps) if args.goturn_steps else base
    result = train_goturn(config, out, progress=False)
    first, last = result.history[0], result.history[-1]
    return {"checkpoint": str(result.checkpoint), "onnx": result.onnx.get("path", ""),
            "onnx_max_abs_diff": result.onnx.get("max_abs_diff"), "seconds": result.seconds,
            "steps": config.steps, "cycle": config.cycle_weight, "iou_before": first["eval_iou"],
            "iou_after": last["eval_iou"], "iou_no_motion": last["eval_iou_no_motion"],
            "device": result.device}


def _train_rolo(base, args, out: Path) -> dict:
    from ros2_tracker.training.train_sot import train_rolo

    config = base.replace(rolo_steps=args.rolo_steps) if args.rolo_steps else base
    result = train_rolo(config, out, progress=False)
    first, last = result.history[0], result.history[-1]
    return {"checkpoint": str(result.checkpoint), "seconds": result.seconds, "steps": config.rolo_steps,
            "iou_untrained": first["eval_iou"], "iou": last["eval_iou"], "iou_raw": last["eval_iou_raw"],
            "iou_missing": last["eval_iou_missing"], "iou_raw_missing": last["eval_iou_raw_missing"]}


class _Static:
    """Baseline: the first box, forever."""

    name = "static box"

    def init(self, frame, box):
        self._box = np.asarray(box, float)

    def update(self, frame):
        from ros2_tracker.sot.tracker_base import SotResult

        return SotResult(self._box.copy(), 1.0)


class _Mil:
    """OpenCV's TrackerMIL (peer), boxes converted from/to xyxy."""

    name = "OpenCV MIL"

    def init(self, frame, box):
        import cv2

        self._t = cv2.TrackerMIL.create()
        x1, y1, x2, y2 = (float(v) for v in box)
        self._t.init(frame, (int(x1), int(y1), round(x2 - x1), round(y2 - y1)))

    def update(self, frame):
        from ros2_tracker.sot.tracker_base import SotResult

        ok, (x, y, w, h) = self._t.update(frame)
        return SotResult(np.array([x, y, x + w, y + h], float), 1.0 if ok else 0.0)


def _trackers(results: dict) -> list[tuple[str, object]]:
    from ros2_tracker.sot.goturn import GoturnConfig, GoturnTracker
    from ros2_tracker.sot.mdnet import MdnetTracker

    g = results["goturn"]
    out = [("GOTURN-style (torch)", GoturnTracker(GoturnConfig(checkpoint_path=g["checkpoint"])))]
    if g["onnx"]:
        onnx = GoturnTracker(GoturnConfig(runtime="onnx", onnx_path=g["onnx"]))
        out.append(("GOTURN-style (ONNX Runtime)", onnx))
    if "goturn_cycle" in results:
        out.append(("GOTURN-style, cycle loss 0.05",
                    GoturnTracker(GoturnConfig(checkpoint_path=results["goturn_cycle"]["checkpoint"]))))
    out += [("MDNet-style", MdnetTracker()), ("OpenCV MIL", _Mil()), ("static box", _Static())]
    return out + _rolo_trackers(results)


def _rolo_trackers(results: dict) -> list[tuple[str, object]]:
    """ROLO on real YOLOX-nano detections, and the same matching with an untrained net (the raw detection
    when one matches, else the last box) as its baseline."""
    from ros2_tracker.detection import DetectorConfig, YoloxDetector
    from ros2_tracker.sot.rolo import RoloConfig, RoloModelConfig, RoloNet, RoloTracker
    from ros2_tracker.sot.sot_export import save_sot_checkpoint

    model = DATA.parent / "models" / "yolox_nano.onnx"
    if not model.is_file():
        return []
    detector = YoloxDetector(DetectorConfig(model_path=str(model), score_threshold=0.3))
    net = RoloNet(RoloModelConfig())
    plain = save_sot_checkpoint(Path(results["rolo"]["checkpoint"]).parent / "untrained.pt", "rolo",
                                net.config.to_dict(), net.state_dict())
    trained = RoloConfig(checkpoint_path=results["rolo"]["checkpoint"])
    return [("ROLO-style on YOLOX-nano", RoloTracker(trained, detector=detector)),
            ("YOLOX-nano matched, else last box",
             RoloTracker(RoloConfig(checkpoint_path=str(plain)), detector=detector))]


def _follow_all(args, results: dict) -> dict:
    from ros2_tracker.sot.pairs import FrameStore, load_gt_tracks

    root = DATA / HELD_OUT
    tracks = load_gt_tracks(root, min_length=20)
    frames = FrameStore()
    table = {}
    for name, tracker in _trackers(results):
        ious, confs, ms, extra = [], [], [], {}
        for track in tracks:
            n = min(len(track.frames), args.frames + 1)
            tracker.init(frames.frame(root, track.frames[0]), track.boxes_xyxy[0])
            for f, truth in zip(track.frames[1:n], track.boxes_xyxy[1:n], strict=True):
                t0 = time.perf_counter()
                r = tracker.update(frames.frame(root, f))
                ms.append((time.perf_counter() - t0) * 1e3)
                ious.append(_iou(r.box_xyxy, truth))
                confs.append(r.confidence)
        timing = getattr(tracker, "timing", None)
        if timing is not None:  # MDNet: the last track's costs
            extra = {"init_ms": timing.init_ms, "finetune_ms": float(np.mean(timing.finetune_ms)),
                     "finetunes": len(timing.finetune_ms)}
        iou = np.array(ious)
        auc = float(np.mean([(iou > t).mean() for t in np.linspace(0, 1, 21)]))
        table[name] = {"mean_iou": float(iou.mean()), "success_auc": auc, "confidence": float(np.mean(confs)),
                       "ms": float(np.median(ms)), "frames": len(iou), "tracks": len(tracks), **extra}
        print(f"{name}: mean IoU {iou.mean():.3f}, AUC {auc:.3f}, {np.median(ms):.1f} ms/update")
    return table


def _iou(a, b) -> float:
    from ros2_tracker.core.costs import iou_matrix

    return float(iou_matrix(np.asarray(a, float)[None], np.asarray(b, float)[None])[0, 0])


def _markdown(results: dict, args) -> str:
    g, r = results["goturn"], results["rolo"]
    train_rows = [["GOTURN-style (supervised)", f"{g['steps']}", f"{g['seconds']:.0f}",
                   f"pair IoU {g['iou_before']:.3f} → {g['iou_after']:.3f} "
                   f"(no motion {g['iou_no_motion']:.3f})",
                   f"{g['onnx_max_abs_diff']:.1e}" if g["onnx_max_abs_diff"] is not None else "-"]]
    if "goturn_cycle" in results:
        n = results["goturn_cycle"]
        train_rows.append([f"GOTURN-style (+ cycle loss x {n['cycle']:g})", f"{n['steps']}",
                           f"{n['seconds']:.0f}",
                           f"pair IoU {n['iou_before']:.3f} → {n['iou_after']:.3f}",
                           f"{n['onnx_max_abs_diff']:.1e}" if n["onnx_max_abs_diff"] is not None else "-"])
    train_rows.append(["ROLO-style", f"{r['steps']}", f"{r['seconds']:.0f}",
                       f"track IoU {r['iou']:.3f} vs raw detections {r['iou_raw']:.3f}; dropped frames "
                       f"{r['iou_missing']:.3f} vs {r['iou_raw_missing']:.3f} "
                       f"(untrained {r['iou_untrained']:.3f})",
                       "-"])
    follow_rows = []
    for name, m in results["tracking"].items():
        cost = f"{m['ms']:.1f}"
        if "init_ms" in m:
            cost += f" (init {m['init_ms']:.0f}, fine-tune {m['finetune_ms']:.0f} x {m['finetunes']})"
        follow_rows.append([name, f"{m['mean_iou']:.3f}", f"{m['success_auc']:.3f}", f"{m['confidence']:.2f}",
                            cost])
    any_track = next(iter(results["tracking"].values()))
    return "\n".join([
        "### Learned single-target models (GOTURN-style, MDNet-style, ROLO-style)",
        "",
        "Training (held out: TUD-Campus; trained on PETS09-S3MF1 + MOT17-mini; the ablation row adds the "
        "cycle-consistency loss on unlabelled vtest.avi after 100 supervised steps):",
        "",
        markdown_table(["model", "steps", "train s", "held-out result", "ONNX max abs diff"], train_rows,
                       "lrrlr"),
        "",
        f"Following each {HELD_OUT} identity from its first box ({any_track['tracks']} tracks, "
        f"{any_track['frames']} updates, up to {args.frames} frames each), same run:",
        "",
        markdown_table(["tracker", "mean IoU", "success AUC", "mean confidence", "ms / update"], follow_rows),
        "",
        f"Command: `{results['command']}`",
        "",
        f"Machine: {results['machine']} (training device: {g['device']}, {args.threads} torch thread(s))",
        "",
        "Notes: pair IoU = mean IoU of the regressed box with the truth on a fixed draw of held-out crop "
        "pairs "
        "(video pairs and GOTURN-augmented still pairs); \"no motion\" = the centred box. ROLO's raw "
        "detections are the ground truth with simulated flicker (drops, 5 % jitter, neighbour swaps), a "
        "dropped one replaced by the last. Success AUC: mean over IoU thresholds 0, 0.05, …, 1. The OTB "
        "table of every backend is bench/sot.py's.",
        "",
    ])


if __name__ == "__main__":
    sys.exit(main())
