"""The re-ID training loop: P x K batches, a similarity loss, evaluation, checkpoints, curve, ONNX export.

:func:`train_reid` trains a :class:`~ros2_tracker.appearance.torch_model.ReidEmbeddingNet` on the
training side of a :class:`~ros2_tracker.training.reid_data.ReidSplit` and writes into ``out_dir``:

* ``checkpoint.pt``: model + training config + history, rewritten after every epoch; it loads with
  ``torch.load(..., weights_only=True)`` (:func:`~ros2_tracker.appearance.torch_model.load_checkpoint`);
* ``history.json``: per epoch mean loss, learning rate, seconds, and rank-1/mAP on the held-out
  identities; ``metrics.json``: the final metrics, per sequence too;
* ``training_curve.png``: loss and rank-1/mAP against epochs (matplotlib Agg canvas, no pyplot);
* ``reid.onnx`` (with ``export_onnx``): the exported model and its parity report in ``metrics.json``.

Progress is a tqdm bar per epoch (``progress=False`` silences it). A fixed "probe" batch (the first
batch of epoch 0, without augmentation) is scored before and after training, so the loss change is
measured on the same samples, with the same mining draw.
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

from ros2_tracker.training.config import ReidTrainConfig
from ros2_tracker.training.reid_data import ReidCrops, ReidSplit, load_sequence_crops, split_identities
from ros2_tracker.training.reid_eval import (
    RetrievalMetrics,
    embed_images,
    evaluate_embeddings,
    torch_embed_fn,
)

__all__ = ["TrainResult", "TrainingError", "build_split", "data_root_folder", "evaluate_model", "plain_copy",
           "plot_training_curve", "resolve_device", "train_reid"]

Log = Callable[[str], None]


class TrainingError(ValueError):
    """Training cannot run as configured (no CUDA, no data, too few identities); the message says why."""


def data_root_folder(path: str | Path) -> Path:
    """The ``data_root`` folder of a training config.

    Raises:
        TrainingError: it is not a folder.
    """
    root = Path(path)
    if not root.is_dir():
        raise TrainingError(f"data_root: {root} is not a folder (MOTChallenge sequences with gt/ and img1/)")
    return root


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        checkpoint: path of ``checkpoint.pt``.
        history: one dict per epoch (``epoch``, ``loss``, ``lr``, ``seconds``, ``rank1``, ``mAP``).
        metrics: final rank-1/mAP, key ``"all"`` and one per evaluation sequence.
        probe_loss: loss on the fixed probe batch ``(before, after)`` training.
        seconds: wall time of the training loop (data loading excluded).
        device: where it ran.
        onnx: ``{"path", "max_abs_diff", ...}`` of the export, empty without one.
    """

    checkpoint: Path
    history: list[dict[str, Any]]
    metrics: dict[str, RetrievalMetrics]
    probe_loss: tuple[float, float]
    seconds: float
    device: str
    onnx: dict[str, Any] = field(default_factory=dict)


def resolve_device(name: str) -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; ``"cuda"`` without CUDA is an error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise TrainingError("device: cuda requested but torch finds no CUDA device (use cpu or auto)")
    return name


def build_split(config: ReidTrainConfig, log: Log | None = None) -> ReidSplit:
    """Cut the crops of the configured sequences and split them by sequence and identity.

    Raises:
        TrainingError: ``data_root`` is not a folder.
        MotFormatError: a sequence folder, its ground truth or its images are missing.
    """
    root = data_root_folder(config.data_root)
    size = (config.input_height, config.input_width)

    def load(rel: str) -> ReidCrops:
        return load_sequence_crops(root / rel, size, min_box_height=config.min_box_height,
                                   min_visibility=config.min_visibility,
                                   max_crops_per_identity=config.max_crops_per_identity)

    train = [load(s) for s in config.train_sequences]
    held_out = [load(s) for s in config.eval_sequences]
    split = split_identities(train, held_out, config.eval_identity_fraction, seed=config.seed)
    if log:
        log(split.summary())
    return split


def evaluate_model(model, crops: ReidCrops, config: ReidTrainConfig, device: str = "cpu",
                   backbone_only: bool = False) -> dict[str, RetrievalMetrics]:
    """Rank-1/mAP of a model on evaluation crops (see :mod:`ros2_tracker.training.reid_eval`)."""
    emb = embed_images(torch_embed_fn(model, device, backbone_only), crops.images, batch_size=128)
    return evaluate_embeddings(emb, crops, config.queries_per_identity, config.eval_min_gap_s)


def train_reid(config: ReidTrainConfig, split: ReidSplit, out_dir: str | Path, *, progress: bool = True,
               log: Log = print) -> TrainResult:
    """Train, evaluate, checkpoint, plot and (optionally) export; see the module docstring.

    Args:
        config: training parameters.
        split: crops at ``(input_height, input_width)``; the training side needs at least
            ``p_identities`` identities with two crops or more.
        out_dir: output folder (created).
        progress: show tqdm bars.
        log: receives one line per epoch and notes.

    Returns:
        The result.

    Raises:
        TrainingError: no CUDA for ``device: cuda``, too few identities, crops of the wrong size.
        PretrainedWeightsError: ``pretrained`` without usable weights.
    """
    import torch

    from ros2_tracker.appearance.torch_model import (
        ReidEmbeddingNet,
        ReidModelConfig,
        load_mobilenet_v2_weights,
    )
    from ros2_tracker.training.losses import build_loss
    from ros2_tracker.training.reid_data import PKBatchSampler

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    size = (config.input_height, config.input_width)
    if split.train.images.shape[1:3] != size:
        raise TrainingError(f"training crops are {split.train.images.shape[1:3]}, the config wants {size}")
    labels, names = split.train.labels()
    if len(names) < config.p_identities:
        raise TrainingError(f"{len(names)} training identities, fewer than "
                            f"p_identities={config.p_identities}")
    previous_threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        torch.manual_seed(config.seed)
        model_config = ReidModelConfig(embedding_dim=config.embedding_dim, input_height=size[0],
                                       input_width=size[1], freeze_blocks=config.freeze_blocks,
                                       num_classes=len(names) if config.loss == "group" else 0)
        model = ReidEmbeddingNet(model_config)
        if config.pretrained:
            load_mobilenet_v2_weights(model.backbone)
        model.to(device)
        run = _Run(config, model, device, split, labels, names, out, progress, log)
        sampler = PKBatchSampler(labels, config.p_identities, config.k_crops, config.batches_per_epoch,
                                 config.seed)
        return run.fit(sampler, build_loss(config, torch.Generator().manual_seed(config.seed)))
    finally:
        torch.set_num_threads(previous_threads)


class _Run:
    """State of one training run (model, optimiser, data on the device, history)."""

    def __init__(self, config: ReidTrainConfig, model, device: str, split: ReidSplit, labels: np.ndarray,
                 names: list[str], out: Path, progress: bool, log: Log):
        import torch

        from ros2_tracker.appearance.config import IMAGENET_MEAN, IMAGENET_STD
        from ros2_tracker.appearance.embedder import to_network_input

        self.config, self.model, self.device, self.split = config, model, device, split
        self.names, self.out, self.progress, self.log = names, out, progress, log
        images = to_network_input(split.train.images, IMAGENET_MEAN, IMAGENET_STD)
        self.images = torch.from_numpy(images).to(device)
        self.labels = torch.from_numpy(labels).to(device)
        backbone = [p for p in model.backbone.parameters() if p.requires_grad]
        head = [p for n, p in model.named_parameters() if not n.startswith("backbone.") and p.requires_grad]
        self.optimizer = torch.optim.Adam([{"params": backbone}, {"params": head,
                                                                   "lr": config.lr * config.head_lr_scale}],
                                          lr=config.lr, weight_decay=config.weight_decay)
        self.aug_gen = torch.Generator().manual_seed(config.seed + 1)
        self.history: list[dict[str, Any]] = []
        self.metrics: dict[str, RetrievalMetrics] = {}

    def fit(self, sampler, loss_fn) -> TrainResult:
        import torch

        cfg = self.config
        steps = cfg.epochs * len(sampler)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: 0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(s, steps) / steps)))
        probe = next(iter(sampler))
        probe_start = self._probe_loss(probe)
        if cfg.eval_every:
            self._evaluate_into(0, {"epoch": 0, "loss": float("nan"), "lr": cfg.lr, "seconds": 0.0})
        t0 = time.perf_counter()
        for epoch in range(1, cfg.epochs + 1):
            sampler.set_epoch(epoch - 1)
            start = time.perf_counter()
            losses = self._epoch(sampler, loss_fn, scheduler, epoch)
            row = {"epoch": epoch, "loss": float(np.mean(losses)), "lr": scheduler.get_last_lr()[0],
                   "seconds": time.perf_counter() - start}
            if cfg.eval_every and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
                self._evaluate_into(epoch, row)
            else:
                self.history.append(row)
            self._log_epoch(row)
            self._save()
        seconds = time.perf_counter() - t0
        if not self.metrics or self.history[-1].get("rank1") is None:
            self._evaluate_into(cfg.epochs, self.history.pop())
        probe_end = self._probe_loss(probe)
        result = TrainResult(self.out / "checkpoint.pt", self.history, self.metrics, (probe_start, probe_end),
                             seconds, self.device)
        if cfg.export_onnx:
            result.onnx = self._export()
        self._save()
        self._write_reports(result)
        return result

    def _epoch(self, sampler, loss_fn, scheduler, epoch: int) -> list[float]:
        from tqdm import tqdm

        self.model.train()
        losses: list[float] = []
        bar = tqdm(sampler, total=len(sampler), desc=f"epoch {epoch}/{self.config.epochs}",
                   disable=not self.progress, leave=False, unit="batch")
        for batch in bar:
            x = self.images[batch]
            if self.config.augment:
                x = augment(x, self.aug_gen)
            emb, logits = self.model.forward_train(x)
            loss = loss_fn(emb, self.labels[batch], logits)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
        return losses

    def _probe_loss(self, batch: list[int]) -> float:
        import torch

        from ros2_tracker.training.losses import build_loss

        self.model.eval()
        with torch.no_grad():
            emb, logits = self.model.forward_train(self.images[batch])
            loss = build_loss(self.config, torch.Generator().manual_seed(self.config.seed + 2))
            return float(loss(emb, self.labels[batch], logits))

    def _evaluate_into(self, epoch: int, row: dict[str, Any]) -> None:
        if len(self.split.eval):
            self.metrics = evaluate_model(self.model, self.split.eval, self.config, self.device)
            row.update(rank1=self.metrics["all"].rank1, mAP=self.metrics["all"].mAP)
        self.history.append(row)
        if epoch == 0 and "rank1" in row:
            self.log(f"before training: rank-1 {row['rank1']:.3f}, mAP {row['mAP']:.3f}")

    def _log_epoch(self, row: dict[str, Any]) -> None:
        text = f"epoch {row['epoch']}/{self.config.epochs}: loss {row['loss']:.4f} ({row['seconds']:.1f} s)"
        if "rank1" in row:
            text += f", rank-1 {row['rank1']:.3f}, mAP {row['mAP']:.3f}"
        self.log(text)

    def _save(self) -> None:
        from ros2_tracker.appearance.torch_model import save_checkpoint

        metrics = {k: m._asdict() for k, m in self.metrics.items()}
        extra = plain_copy({"train_config": self.config.to_dict(), "epoch": self.history[-1]["epoch"],
                        "history": self.history, "metrics": metrics})
        save_checkpoint(self.out / "checkpoint.pt", self.model, identities=self.names, extra=extra)

    def _export(self) -> dict[str, Any]:
        from ros2_tracker.appearance.export import export_onnx

        report = export_onnx(self.model, self.out / "reid.onnx")
        self.log(f"exported {report.path}: ONNX Runtime vs PyTorch max |diff| {report.max_abs_diff:.2e}")
        return {"path": str(report.path), "input_shape": list(report.input_shape),
                "embedding_dim": report.embedding_dim, "max_abs_diff": report.max_abs_diff,
                "max_norm_error": report.max_norm_error}

    def _write_reports(self, result: TrainResult) -> None:
        (self.out / "history.json").write_text(json.dumps(plain_copy(self.history), indent=1) + "\n")
        metrics = {"metrics": {k: m._asdict() for k, m in result.metrics.items()},
                   "probe_loss": {"before": result.probe_loss[0], "after": result.probe_loss[1]},
                   "train_seconds": result.seconds, "device": result.device, "onnx": result.onnx,
                   "split": self.split.summary(), "config": self.config.to_dict()}
        (self.out / "metrics.json").write_text(json.dumps(plain_copy(metrics), indent=1) + "\n")
        plot_training_curve(self.history, self.out / "training_curve.png",
                            title=f"{self.config.loss} ({self.config.mining})")


def augment(images, generator):
    """Random horizontal flip, shift (up to 1/8 of the size, zero = mean-colour fill) and erasing.

    Args:
        images: ``(B, 3, H, W)`` normalised float tensor.
        generator: CPU torch generator.

    Returns:
        A new tensor of the same shape.
    """
    import torch

    b, _, h, w = images.shape
    flip = torch.rand(b, generator=generator) < 0.5
    x = torch.where(flip.to(images.device)[:, None, None, None], images.flip(3), images)
    ph, pw = max(1, h // 8), max(1, w // 8)
    padded = torch.nn.functional.pad(x, (pw, pw, ph, ph))
    dy = torch.randint(0, 2 * ph + 1, (b,), generator=generator).tolist()
    dx = torch.randint(0, 2 * pw + 1, (b,), generator=generator).tolist()
    x = torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])
    erase = (torch.rand(b, generator=generator) < 0.5).tolist()
    sizes = torch.rand(b, 2, generator=generator) * 0.4 + 0.2  # erased box: 20-60 % of each side
    corners = torch.rand(b, 2, generator=generator)
    for i in range(b):
        if erase[i]:
            eh, ew = int(sizes[i, 0] * h), int(sizes[i, 1] * w)
            y0, x0 = int(corners[i, 0] * (h - eh)), int(corners[i, 1] * (w - ew))
            x[i, :, y0:y0 + eh, x0:x0 + ew] = 0.0
    return x


def plot_training_curve(history: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Loss and rank-1/mAP per epoch, saved as an image (format from the suffix).

    Uses a ``Figure`` on its own ``FigureCanvasAgg``: no pyplot, no global backend.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_eval = fig.subplots(1, 2)
    trained = [r for r in history if r["epoch"] > 0]
    ax_loss.plot([r["epoch"] for r in trained], [r["loss"] for r in trained], "o-", color="tab:red")
    ax_loss.set_xlim(left=0)
    ax_loss.set(xlabel="epoch", ylabel="training loss (mean per epoch)", title=f"loss {title}".strip())
    ax_loss.grid(alpha=0.3)
    evals = [r for r in history if r.get("rank1") is not None]
    for key, colour in (("rank1", "tab:blue"), ("mAP", "tab:green")):
        ax_eval.plot([r["epoch"] for r in evals], [r[key] for r in evals], "o-", color=colour, label=key)
    ax_eval.set(xlabel="epoch (0 = before training)", ylabel="held-out identities", ylim=(0, 1.02),
                title="rank-1 / mAP")
    ax_eval.grid(alpha=0.3)
    ax_eval.legend(loc="lower right")
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    return p


def plain_copy(value: Any) -> Any:
    """JSON/``weights_only``-safe copy: numpy scalars to Python numbers, NaN to None."""
    if isinstance(value, dict):
        return {str(k): plain_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_copy(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
