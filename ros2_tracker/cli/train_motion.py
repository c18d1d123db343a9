"""``ros2-tracker train-motion``: train the learned trajectory predictor on ground-truth trajectories.

    ros2-tracker train-motion [--config config/motion_train.yaml] [--out runs/motion] [--epochs N]
                              [--data-root DIR] [--cell gru|lstm] [--seed S] [--no-export] [--no-progress]

Training (split by sequence: ``eval_sequences`` are held out) writes ``checkpoint.pt`` (loads with
``torch.load(..., weights_only=True)``), ``motion.onnx`` (ONNX Runtime parity checked, <= 1e-4),
``history.json`` and ``training_curve.png`` into ``--out``. Use the model in the tracker with
``motion_model: learned`` and ``motion_model_path: <out>/motion.onnx`` (config/tracker.yaml form, for
``ros2-tracker track --config`` and the tracker node). Parameters: ``MotionTrainConfig``
(ros2_tracker/training/train_motion.py), documented in config/motion_train.yaml. Needs torch (and onnx
for the export).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ros2_tracker.cli.errors import UserError, require_modules
from ros2_tracker.cli.runs import output_folder


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the subcommand."""
    p = sub.add_parser("train-motion", help="train the learned motion model (trajectory prediction)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="training parameters (config/motion_train.yaml form)")
    p.add_argument("--out", type=Path, default=Path("runs/motion"),
                   help="output folder (default runs/motion)")
    p.add_argument("--data-root", help="folder of the MOTChallenge sequences (overrides data_root)")
    p.add_argument("--epochs", type=int, help="training epochs")
    p.add_argument("--cell", help="gru or lstm")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--no-export", action="store_true", help="skip the ONNX export")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``train-motion``."""
    require_modules("train-motion", "torch")
    from ros2_tracker.io.params import load_config
    from ros2_tracker.motion.export import ExportError
    from ros2_tracker.training.train_motion import (
        MotionTrainConfig,
        MotionTrainingError,
        held_out_text,
        train_motion,
    )

    options = {"data_root": args.data_root, "epochs": args.epochs, "cell": args.cell, "seed": args.seed}
    overrides = {k: v for k, v in options.items() if v is not None}
    if args.no_export:
        overrides["export_onnx"] = False
    config = load_config(MotionTrainConfig, args.config, **overrides)
    try:
        with output_folder(args.out):
            result = train_motion(config, args.out, progress=not args.no_progress, log=print)
    except (MotionTrainingError, ExportError) as exc:
        raise UserError(str(exc)) from None
    last = result.history[-1]
    print(f"{result.num_train} training samples; {held_out_text(last, config.horizon_s)}; training "
          f"{result.seconds:.0f} s")
    print(f"wrote {args.out}/checkpoint.pt, history.json, training_curve.png"
          + (", motion.onnx" if result.onnx else ""))
    return 0
