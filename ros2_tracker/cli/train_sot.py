"""``ros2-tracker train-sot``: train the GOTURN-style or the ROLO-style single-target model.

    ros2-tracker train-sot --model goturn|rolo [--config config/sot_train.yaml] [--out runs/sot/MODEL]
                           [--steps N] [--device auto|cpu|cuda] [--data-root DIR] [--seed S]
                           [--cycle-weight W | --no-cycle] [--no-export] [--no-progress]

Writes ``checkpoint.pt`` (loads with ``torch.load(..., weights_only=True)``; give it to the backend as
``model_path``: ``follow --model``, sot_node's ``model_path``), ``history.json``, ``metrics.json`` and
``training_curve.png`` into ``--out``, and for GOTURN ``goturn.onnx`` (ONNX Runtime parity checked).
Prints the held-out figures: GOTURN, mean IoU on crop pairs of the evaluation sequences against "no
motion"; ROLO, mean IoU on held-out tracks against the raw flickering detections. Parameters:
``SotTrainConfig`` (ros2_tracker/training/train_sot.py), documented in config/sot_train.yaml. Needs torch
and torchvision.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ros2_tracker.cli.errors import UserError, require_modules
from ros2_tracker.cli.runs import output_folder


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the subcommand."""
    p = sub.add_parser("train-sot", help="train the GOTURN-style or ROLO-style single-target model",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, choices=("goturn", "rolo"), help="which model to train")
    p.add_argument("--config", type=Path, help="training parameters (config/sot_train.yaml form)")
    p.add_argument("--out", type=Path, help="output folder (default runs/sot/MODEL)")
    p.add_argument("--data-root", help="folder of the MOTChallenge sequences (overrides data_root)")
    p.add_argument("--steps", type=int, help="optimiser steps (steps or rolo_steps)")
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--cycle-weight", type=float, help="GOTURN: weight of the cycle-consistency loss "
                   "(default from the config: 0 = off)")
    p.add_argument("--no-cycle", action="store_true", help="GOTURN: no cycle-consistency loss")
    p.add_argument("--no-export", action="store_true", help="GOTURN: skip the ONNX export")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)
    return p


def _config(args: argparse.Namespace):
    from ros2_tracker.io.params import load_config
    from ros2_tracker.training.train_sot import SotTrainConfig

    given = (("--cycle-weight", args.cycle_weight is not None), ("--no-cycle", args.no_cycle),
             ("--no-export", args.no_export))
    goturn_only = [flag for flag, present in given if present]
    if args.model != "goturn" and goturn_only:
        raise UserError(f"{', '.join(goturn_only)}: GOTURN's option(s), not {args.model}'s")
    if args.no_cycle and args.cycle_weight is not None:
        raise UserError("--cycle-weight and --no-cycle contradict each other: give one")
    steps = "steps" if args.model == "goturn" else "rolo_steps"
    options = {"data_root": args.data_root, steps: args.steps, "device": args.device, "seed": args.seed,
               "cycle_weight": args.cycle_weight}
    overrides = {k: v for k, v in options.items() if v is not None}
    if args.no_cycle:
        overrides["cycle_video"] = ""
    if args.no_export:
        overrides["export_onnx"] = False
    return load_config(SotTrainConfig, args.config, **overrides)


def run(args: argparse.Namespace) -> int:
    """Execute ``train-sot``."""
    require_modules("train-sot", "torch", "torchvision")
    from ros2_tracker.appearance.torch_model import PretrainedWeightsError
    from ros2_tracker.io.mot import MotFormatError
    from ros2_tracker.sot.sot_export import SotCheckpointError, SotExportError
    from ros2_tracker.training.train_sot import TrainingError, train_goturn, train_rolo

    config = _config(args)
    out = args.out or Path("runs/sot") / args.model
    train = train_goturn if args.model == "goturn" else train_rolo
    try:
        with output_folder(out):
            result = train(config, out, progress=not args.no_progress, log=print)
    except (TrainingError, PretrainedWeightsError, MotFormatError, SotCheckpointError, SotExportError) as exc:
        raise UserError(str(exc)) from None
    m = result.metrics
    if args.model == "goturn" and "eval_iou" in m:
        print(f"held-out pairs: mean IoU {m['eval_iou']:.3f} (no motion {m['eval_iou_no_motion']:.3f})")
    elif "eval_iou" in m:
        print(f"held-out tracks: mean IoU {m['eval_iou']:.3f} (raw detections {m['eval_iou_raw']:.3f}); "
              f"dropped frames {m['eval_iou_missing']:.3f} (held detection {m['eval_iou_raw_missing']:.3f})")
    print(f"training {result.seconds:.0f} s on {result.device}; wrote {out}/checkpoint.pt, history.json, "
          f"metrics.json, training_curve.png" + (", goturn.onnx" if result.onnx else ""))
    return 0
