"""``ros2-tracker train-detector``: fine-tune the Faster R-CNN person detector, or evaluate a checkpoint.

    ros2-tracker train-detector [--config config/detector_train.yaml] [--data ../shared/data]
                                [--train TUD-Campus,PETS09-S3MF1] [--val MOT17-mini] [--out runs/detector]
                                [--iterations N] [--device auto|cpu|cuda] [--seed S] [--no-export]
    ros2-tracker train-detector --evaluate runs/detector/checkpoint.pt [--val MOT17-mini]

Frames are split by sequence: ``--train`` sequences are trained on, ``--val`` sequences (a folder of
sequences such as MOT17-mini stands for all of them) give AP@0.5 for persons before and after. Training
writes ``checkpoint.pt`` (loads with ``torch.load(..., weights_only=True)``), ``frcnn_backbone.onnx`` and
``frcnn_roi_heads.onnx`` (the split for Tracktor, ONNX Runtime parity checked), ``history.json``,
``metrics.json``, ``loss.png`` and ``ap.png`` into ``--out``. The default config trains on 2 CPU cores in
a few minutes; on a CUDA device (``--device cuda``) its ``cuda_*`` schedule runs. Parameters:
``DetectorTrainConfig`` (ros2_tracker/training/train_detector.py), documented in
config/detector_train.yaml. Needs torch and torchvision (and onnx + onnxscript for the export).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ros2_tracker.cli.errors import UserError, require_modules
from ros2_tracker.cli.runs import output_folder


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the subcommand."""
    p = sub.add_parser("train-detector", help="fine-tune (or evaluate) the Faster R-CNN person detector",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="training parameters (config/detector_train.yaml form)")
    p.add_argument("--data", help="folder of the MOTChallenge sequences (overrides data_root)")
    p.add_argument("--train", help="comma-separated training sequences (overrides train_sequences)")
    p.add_argument("--val", help="comma-separated held-out sequences (overrides val_sequences)")
    p.add_argument("--out", type=Path, default=Path("runs/detector"),
                   help="output folder (default runs/detector)")
    p.add_argument("--iterations", type=int,
                   help="training iterations (sets both the CPU and the CUDA schedule)")
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--no-export", action="store_true", help="skip the ONNX export")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--evaluate", type=Path, metavar="CHECKPOINT", help="only evaluate this checkpoint")
    p.set_defaults(run=run)
    return p


def _names(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UserError(f"expected comma-separated sequence names, got {text!r}")
    return names


def _config(args: argparse.Namespace):
    from ros2_tracker.io.params import load_config
    from ros2_tracker.training.train_detector import DetectorTrainConfig

    options = {"data_root": args.data, "train_sequences": _names(args.train),
               "val_sequences": _names(args.val), "device": args.device, "seed": args.seed}
    overrides = {k: v for k, v in options.items() if v is not None}
    if args.iterations is not None:
        overrides["iterations"] = overrides["cuda_iterations"] = args.iterations
    if args.no_export:
        overrides["export_onnx"] = False
    return load_config(DetectorTrainConfig, args.config, **overrides)


def run(args: argparse.Namespace) -> int:
    """Execute ``train-detector``."""
    require_modules("train-detector", "torch", "torchvision")
    from ros2_tracker.appearance.torch_model import PretrainedWeightsError
    from ros2_tracker.regression.backends.torchvision_frcnn import DetectorCheckpointError
    from ros2_tracker.regression.export import ExportError
    from ros2_tracker.training.train_reid import TrainingError

    config = _config(args)
    try:
        if args.evaluate is not None:
            return _evaluate(args.evaluate, config)
        with output_folder(args.out):
            return _train(config, args.out, progress=not args.no_progress)
    except (TrainingError, DetectorCheckpointError, PretrainedWeightsError, ExportError) as exc:
        raise UserError(str(exc)) from None


def _train(config, out: Path, progress: bool) -> int:
    from ros2_tracker.training.train_detector import train_detector

    result = train_detector(config, out, progress=progress, log=print)
    print(_ap_table(result.ap_before, result.ap_after))
    print(f"training: {result.iterations} iterations in {result.seconds / 60:.1f} min on {result.device}")
    print(f"wrote {out}/checkpoint.pt, history.json, metrics.json, loss.png, ap.png"
          + (", frcnn_backbone.onnx, frcnn_roi_heads.onnx" if result.onnx else ""))
    return 0


def _evaluate(checkpoint: Path, config) -> int:
    from ros2_tracker.core.config import ConfigError
    from ros2_tracker.regression.backends.torchvision_frcnn import load_checkpoint
    from ros2_tracker.training.config import check_sequence_split
    from ros2_tracker.training.detector_data import load_frames
    from ros2_tracker.training.detector_eval import evaluate_detector
    from ros2_tracker.training.train_detector import frame_options
    from ros2_tracker.training.train_reid import resolve_device

    device = resolve_device(config.device)
    model, payload = load_checkpoint(checkpoint, device)
    trained_on = ((payload.get("extra") or {}).get("train_config") or {}).get("train_sequences") or []
    try:  # "held-out" only if the checkpoint never saw them
        check_sequence_split(list(trained_on) or ["?"], list(config.val_sequences), "val_sequences")
    except ConfigError as exc:
        raise UserError(f"--evaluate: {checkpoint} was trained on {trained_on}: {exc}") from None
    config = config.replace(min_size=model.config.min_size, max_size=model.config.max_size)
    val = load_frames(config.data_root, config.val_sequences, max_frames=config.max_val_frames,
                      **frame_options(config))
    aps = {k: v.ap for k, v in evaluate_detector(model, val, device).items()}
    print(_ap_table(None, aps))
    return 0


def _ap_table(before: dict[str, float] | None, after: dict[str, float]) -> str:
    lines = [f"{'held-out AP@0.5':<28} {'before':>7} {'after':>7}" if before else
             f"{'held-out AP@0.5':<28} {'AP':>7}"]
    for name, ap in after.items():
        if before is not None:
            lines.append(f"{name:<28} {before.get(name, float('nan')):>7.3f} {ap:>7.3f}")
        else:
            lines.append(f"{name:<28} {ap:>7.3f}")
    return "\n".join(lines)
