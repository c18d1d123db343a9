"""``ros2-tracker train-reid``: train the re-ID embedder on MOTChallenge identity crops, or evaluate one.

    ros2-tracker train-reid [--config config/reid_train.yaml] [--out runs/reid] [--loss L] [--mining M]
                            [--epochs N] [--device auto|cpu|cuda] [--data-root DIR] [--no-export]
    ros2-tracker train-reid --evaluate runs/reid/checkpoint.pt [--config ...]

Training writes ``checkpoint.pt`` (loads with ``torch.load(..., weights_only=True)``), ``reid.onnx``
(ONNX Runtime parity checked), ``history.json``, ``metrics.json`` and ``training_curve.png`` into
``--out``, and prints rank-1 / mAP on identities never trained on (held-out sequences and a held-out
fraction of each training sequence's identities). ``--evaluate`` scores a checkpoint on the same
split. Parameters: ``ReidTrainConfig`` (ros2_tracker/training/config.py), documented in
config/reid_train.yaml. Needs torch and torchvision (and onnx + onnxscript for the export).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ros2_tracker.cli.errors import UserError, require_modules
from ros2_tracker.cli.runs import output_folder


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the subcommand."""
    p = sub.add_parser("train-reid", help="train (or evaluate) the re-ID embedder on MOTChallenge crops",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help="training parameters (config/reid_train.yaml form)")
    p.add_argument("--out", type=Path, default=Path("runs/reid"), help="output folder (default runs/reid)")
    p.add_argument("--data-root", help="folder of the MOTChallenge sequences (overrides data_root)")
    p.add_argument("--loss", help="contrastive, triplet, group or multi_similarity")
    p.add_argument("--mining", help="all, batch_hard, semi_hard or distance_weighted")
    p.add_argument("--epochs", type=int, help="training epochs")
    p.add_argument("--device", help="auto, cpu or cuda")
    p.add_argument("--seed", type=int, help="random seed")
    p.add_argument("--no-export", action="store_true", help="skip the ONNX export")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--evaluate", type=Path, metavar="CHECKPOINT",
                   help="only evaluate this checkpoint on the configured split")
    p.set_defaults(run=run)
    return p


def _config(args: argparse.Namespace):
    from ros2_tracker.io.params import load_config
    from ros2_tracker.training.config import ReidTrainConfig

    options = {"data_root": args.data_root, "loss": args.loss, "mining": args.mining, "epochs": args.epochs,
               "device": args.device, "seed": args.seed}
    overrides = {k: v for k, v in options.items() if v is not None}
    if args.no_export:
        overrides["export_onnx"] = False
    if args.loss is not None and args.mining is None:
        overrides["mining"] = {"contrastive": "all", "triplet": "batch_hard"}.get(args.loss, "all")
    return load_config(ReidTrainConfig, args.config, **overrides)


def run(args: argparse.Namespace) -> int:
    """Execute ``train-reid``."""
    require_modules("train-reid", "torch", "torchvision")
    from ros2_tracker.appearance.export import ExportError
    from ros2_tracker.appearance.torch_model import CheckpointError, PretrainedWeightsError
    from ros2_tracker.training.train_reid import TrainingError

    config = _config(args)
    try:
        if args.evaluate is not None:
            return _evaluate(args.evaluate, config)
        with output_folder(args.out):
            return _train(config, args.out, progress=not args.no_progress)
    except (TrainingError, CheckpointError, PretrainedWeightsError, ExportError) as exc:
        raise UserError(str(exc)) from None
    except ValueError as exc:  # e.g. one sequence under two folder names: identities on both sides
        raise UserError(f"data: {exc}") from None


def _train(config, out: Path, progress: bool) -> int:
    from ros2_tracker.training.train_reid import build_split, train_reid

    split = build_split(config, log=print)
    result = train_reid(config, split, out, progress=progress, log=print)
    print(_metrics_table(result.metrics))
    before, after = result.probe_loss
    print(f"loss on a fixed batch: {before:.4f} -> {after:.4f}; "
          f"training {result.seconds:.0f} s on {result.device}")
    print(f"wrote {out}/checkpoint.pt, history.json, metrics.json, training_curve.png"
          + (", reid.onnx" if result.onnx else ""))
    return 0


def _evaluate(checkpoint: Path, config) -> int:
    from ros2_tracker.appearance.torch_model import load_checkpoint
    from ros2_tracker.training.train_reid import build_split, evaluate_model, resolve_device

    device = resolve_device(config.device)
    model, payload = load_checkpoint(checkpoint, device)
    config = config.replace(input_height=model.config.input_height, input_width=model.config.input_width)
    split = build_split(config, log=print)
    trained = set(map(str, payload.get("identities") or ()))
    seen = sorted(trained & set(map(str, split.eval.identities)))
    if seen:  # another seed, fraction or sequence list than the checkpoint's training
        raise UserError(f"--evaluate: {len(seen)} evaluation identities were trained on by {checkpoint} "
                        f"(e.g. {', '.join(seen[:3])}): give the config and --seed it was trained with")
    print(_metrics_table(evaluate_model(model, split.eval, config, device)))
    return 0


def _metrics_table(metrics) -> str:
    lines = [f"{'split':<18} {'queries':>7} {'gallery':>7} {'rank-1':>7} {'mAP':>7}"]
    for name, m in metrics.items():
        lines.append(f"{name:<18} {m.num_queries:>7d} {m.num_gallery:>7d} {m.rank1:>7.3f} {m.mAP:>7.3f}")
    return "\n".join(lines)
