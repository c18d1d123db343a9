"""Training of the learned motion model: data split by sequence, Gaussian NLL, checkpoints, curve, ONNX.

:func:`train_motion` cuts samples (:mod:`ros2_tracker.motion.data`) from the training sequences, trains
a :class:`~ros2_tracker.motion.model.MotionPredictorNet` with the negative log-likelihood of the true
future centres under the predicted 2-D Gaussians (relative to box height, masked past a trajectory's
end), and writes into ``out_dir``:

* ``checkpoint.pt`` (every epoch; ``torch.load(weights_only=True)``, see
  :func:`~ros2_tracker.motion.model.load_checkpoint`), ``history.json`` (per epoch: training loss,
  held-out NLL and FDE at the horizon relative to box height, seconds);
* ``training_curve.png``: the loss and held-out curves;
* ``motion.onnx`` (with ``export_onnx``), parity with PyTorch checked (<= 1e-4).

Sequences are split by sequence: ``eval_sequences`` are never trained on. Progress is a tqdm bar per
epoch. Threads: ``num_threads`` (the default schedule takes minutes on 2 CPU cores).
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

from ros2_tracker.core.config import ConfigBase, param
from ros2_tracker.core.kalman import MotionNoise
from ros2_tracker.motion.data import SampleSet, SampleSpec, encode_samples, load_tracks, make_samples
from ros2_tracker.training.config import check_sequence_split

__all__ = ["MotionTrainConfig", "MotionTrainResult", "MotionTrainingError", "build_samples", "train_motion"]

Log = Callable[[str], None]


class MotionTrainingError(ValueError):
    """Training cannot run (no data, a missing sequence, ...)."""


@dataclass(frozen=True)
class MotionTrainConfig(ConfigBase):
    """Parameters of ``ros2-tracker train-motion`` (documented in config/motion_train.yaml)."""

    data_root: str = param("../shared/data", "Folder of the MOTChallenge sequences")
    train_sequences: list[str] = param(
        ["TUD-Campus", "MOT17-mini/train/MOT17-04-FRCNN", "MOT17-mini/train/MOT17-05-FRCNN",
         "synthetic:1@10", "synthetic:2@25", "synthetic:3@7", "synthetic:4@15", "synthetic:5@30",
         "synthetic:6@10", "synthetic:7@25", "synthetic:8@7"],
        "Sequences trained on (folders under data_root, or synthetic:<seed>@<fps>)")
    eval_sequences: list[str] = param(["TUD-Stadtmitte", "PETS09-S3MF1", "synthetic:1000@10"],
                                      "Held-out sequences (never trained on)")
    cell: str = param("gru", "Recurrent cell", choices=("gru", "lstm"))
    hidden_size: int = param(64, "Recurrent state size", low=4, high=4096)
    num_layers: int = param(1, "Recurrent layers", low=1, high=8)
    history_steps: int = param(8, "History grid points", low=2, high=256)
    history_step_s: float = param(0.2, "History grid spacing", low=0.005, high=10.0, unit="s")
    step_s: float = param(0.1, "Spacing of predicted points", low=0.005, high=10.0, unit="s")
    horizon_s: float = param(2.0, "Furthest predicted point", low=0.005, high=60.0, unit="s")
    min_history: int = param(3, "Fewer valid history grid points: constant velocity instead", low=1,
                             high=256)
    box_jitter: float = param(0.03, "History box noise relative to height", low=0.0, high=1.0)
    miss_rate: float = param(0.1, "Fraction of history frames left unmeasured", low=0.0, high=0.9)
    lost_fraction: float = param(0.3, "Fraction of samples whose last frames are hidden (lost track)",
                                 low=0.0, high=1.0)
    copies: int = param(1, "Differently degraded copies of every training sample (each also mirrored)",
                        low=1, high=100)
    real_copies: int = param(4, "Ground-truth (non-synthetic) training sequences are drawn this many times "
                             "more often (each draw differently degraded): real walking is scarce here",
                             low=1, high=100)
    rotate_deg: float = param(60.0, "Training samples' centre paths (history and future) are turned by a "
                              "random angle up to this, so no walking direction is learned as typical",
                              low=0.0, high=180.0, unit="deg")
    sample_every_s: float = param(0.1, "One training sample per track every this many seconds (at most one "
                                  "per frame)", low=0.0, high=10.0, unit="s")
    epochs: int = param(12, "Training epochs", low=1, high=100000)
    batch_size: int = param(256, "Samples per batch", low=1, high=1 << 20)
    lr: float = param(3e-3, "Adam learning rate (cosine decay)", low=0.0, high=10.0)
    weight_decay: float = param(1e-5, "Adam weight decay", low=0.0, high=1.0)
    seed: int = param(0, "Seed of data degradation, initialisation and batching", low=0, high=2**31 - 1)
    num_threads: int = param(2, "torch CPU threads", low=1, high=256)
    export_onnx: bool = param(True, "Export motion.onnx (parity checked) after training")

    def check(self) -> None:
        """The model config must be valid; sequences named by strings, at least one to train on, and the
        two lists must not overlap."""
        self.model_config()
        check_sequence_split(self.train_sequences, self.eval_sequences)

    def model_config(self):
        """The :class:`~ros2_tracker.motion.model.MotionModelConfig` part (needs no torch)."""
        from ros2_tracker.motion.model_config import MotionModelConfig

        return MotionModelConfig(cell=self.cell, hidden_size=self.hidden_size, num_layers=self.num_layers,
                                 history_steps=self.history_steps, history_step_s=self.history_step_s,
                                 step_s=self.step_s, horizon_s=self.horizon_s, min_history=self.min_history)

    def sample_spec(self) -> SampleSpec:
        """How samples are cut; held-out samples get the same degradation (a tracker's view)."""
        m = self.model_config()
        return SampleSpec(history_s=(m.history_steps - 1) * m.history_step_s + 0.2,
                          times_s=tuple(m.times_s), box_jitter=self.box_jitter, miss_rate=self.miss_rate,
                          lost_fraction=self.lost_fraction, sample_every_s=self.sample_every_s)


@dataclass
class MotionTrainResult:
    """What :func:`train_motion` produced."""

    checkpoint: Path
    history: list[dict[str, Any]]
    seconds: float
    onnx: dict[str, Any] | None = None
    num_train: int = 0
    eval_counts: dict[str, int] = field(default_factory=dict)


def build_samples(config: MotionTrainConfig, names: list[str], seed: int, copies: int = 1,
                  log: Log | None = None, real_copies: int = 1) -> list[SampleSet]:
    """Sample sets of the named sequences (``copies`` degraded draws each, ``real_copies`` times more for
    ground-truth sequences; every second draw mirrored when there are several).

    Raises:
        MotionTrainingError: a sequence cannot be read.
    """
    spec = config.sample_spec()
    rng = np.random.default_rng(seed)
    out = []
    for name in names:
        try:
            tracks, fps = load_tracks(name, config.data_root)
        except (FileNotFoundError, ValueError) as exc:
            raise MotionTrainingError(str(exc)) from None
        draws = copies * (1 if name.startswith("synthetic:") else real_copies)
        for c in range(draws):
            s = make_samples(name, tracks, fps, spec, rng)
            if draws > 1 and c % 2 == 1:  # mirror: people walk both ways
                s = s._replace(boxes_cxcywh=s.boxes_cxcywh * [-1, 1, 1, 1], future=s.future * [-1, 1])
            if draws > 1 and config.rotate_deg > 0:
                s = _rotate(s, np.radians(config.rotate_deg) * rng.uniform(-1.0, 1.0, s.size))
            out.append(s)
        if log:
            log(f"  {name}: {len(tracks)} tracks at {fps:g} fps, {out[-1].size} samples per copy")
    return out


def _rotate(s: SampleSet, angles: np.ndarray) -> SampleSet:
    """Turn each sample's centres (history and future) by its angle about the image origin; sizes kept."""
    c, n = np.cos(angles), np.sin(angles)
    rot = np.stack([np.stack([c, -n], -1), np.stack([n, c], -1)], -2)  # (N, 2, 2)
    boxes = s.boxes_cxcywh.copy()
    boxes[..., :2] = np.einsum("nij,nkj->nki", rot, s.boxes_cxcywh[..., :2])
    return s._replace(boxes_cxcywh=boxes, future=np.einsum("nij,nkj->nki", rot, s.future))


def targets(samples: SampleSet, config: MotionTrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encoded features (M, G, F), targets (M, T, 2) in heights and mask (M, T) of usable samples."""
    m = config.model_config()
    enc, use = encode_samples(samples, m.history_steps, m.history_step_s, m.min_history, MotionNoise())
    tgt = (samples.future[use] - enc.ref_centre[:, None, :]) / enc.ref_height[:, None, None]
    tgt -= enc.base(np.asarray(m.times_s))  # the network learns a correction to constant velocity
    return enc.features, tgt.astype(np.float32), samples.future_ok[use]


def gaussian_nll(pred, target, mask):
    """Mean 2-D Gaussian NLL (without the constant) over masked (sample, time) entries."""
    import torch

    mu, log_sig, rho = pred[..., :2], pred[..., 2:4].clamp(-7.0, 4.0), torch.tanh(pred[..., 4]) * 0.999
    z = (target - mu) / torch.exp(log_sig)
    one_m = 1.0 - rho * rho
    q = (z[..., 0] ** 2 + z[..., 1] ** 2 - 2.0 * rho * z[..., 0] * z[..., 1]) / one_m
    nll = 0.5 * q + log_sig.sum(-1) + 0.5 * torch.log(one_m)
    w = mask.float()
    return (nll * w).sum() / w.sum().clamp(min=1.0)


def train_motion(config: MotionTrainConfig, out_dir: str | Path, *, progress: bool = True,
                 log: Log = print) -> MotionTrainResult:
    """Train, evaluate on the held-out sequences each epoch, save, plot and export (see the module doc)."""
    import torch

    from ros2_tracker.motion.model import MotionPredictorNet

    torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log(f"training sequences ({config.copies} degraded copies, mirrored):")
    train = [targets(s, config) for s in build_samples(config, config.train_sequences, config.seed,
                                                        2 * config.copies, log, config.real_copies)]
    log("held-out sequences:")
    held = {s.name: targets(s, config) for s in build_samples(config, config.eval_sequences, config.seed + 1,
                                                               1, log)}
    x, y, m = (torch.from_numpy(np.concatenate(a)) for a in zip(*train, strict=True))
    if not len(x):
        raise MotionTrainingError("no training samples: the training sequences are too short for the history")
    log(f"{len(x)} training samples; held out: " + ", ".join(f"{k} {len(v[0])}" for k, v in held.items()))
    model = MotionPredictorNet(config.model_config())
    run = _Run(config, model, out, progress, log)
    t0 = time.perf_counter()
    run.fit(x, y, m, {k: tuple(torch.from_numpy(a) for a in v) for k, v in held.items()})
    result = MotionTrainResult(out / "checkpoint.pt", run.history, time.perf_counter() - t0, num_train=len(x),
                               eval_counts={k: len(v[0]) for k, v in held.items()})
    if config.export_onnx:
        from ros2_tracker.motion.export import export_onnx

        report = export_onnx(model, out / "motion.onnx")
        log(f"exported {report.path}: ONNX Runtime vs PyTorch max |diff| {report.max_abs_diff:.2e}")
        result.onnx = {"path": str(report.path), "max_abs_diff": report.max_abs_diff}
    (out / "history.json").write_text(json.dumps({"history": run.history, "onnx": result.onnx,
                                                  "train_config": config.to_dict()}, indent=1) + "\n")
    plot_curve(run.history, out / "training_curve.png")
    return result


class _Run:
    def __init__(self, config: MotionTrainConfig, model, out: Path, progress: bool, log: Log) -> None:
        import torch

        self.config, self.model, self.out, self.progress, self.log = config, model, out, progress, log
        self.opt = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.gen = torch.Generator().manual_seed(config.seed + 7)
        self.history: list[dict[str, Any]] = []

    def fit(self, x, y, m, held) -> None:
        import torch

        cfg = self.config
        steps = cfg.epochs * math.ceil(len(x) / cfg.batch_size)
        sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: 0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(s, steps) / steps)))
        self.history.append({"epoch": 0, "loss": None, **self._evaluate(held), "seconds": 0.0})
        for epoch in range(1, cfg.epochs + 1):
            start = time.perf_counter()
            loss = self._epoch(x, y, m, sched, epoch)
            row = {"epoch": epoch, "loss": loss, **self._evaluate(held),
                   "seconds": time.perf_counter() - start}
            self.history.append(row)
            self.log(f"epoch {epoch}/{cfg.epochs}: loss {loss:.4f}, {held_out_text(row, cfg.horizon_s)} "
                     f"({row['seconds']:.1f} s)")
            self._save(epoch)

    def _epoch(self, x, y, m, sched, epoch: int) -> float:
        import torch
        from tqdm import tqdm

        self.model.train()
        order = torch.randperm(len(x), generator=self.gen)
        batches = order.split(self.config.batch_size)
        losses = []
        bar = tqdm(batches, desc=f"epoch {epoch}/{self.config.epochs}", disable=not self.progress,
                   leave=False, unit="batch")
        for b in bar:
            loss = gaussian_nll(self.model(x[b]), y[b], m[b])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
            self.opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        return float(np.mean(losses))

    def _evaluate(self, held) -> dict[str, float]:
        import torch

        self.model.eval()
        nll, fde, n = 0.0, 0.0, 0
        with torch.no_grad():
            for x, y, m in held.values():
                if not len(x):
                    continue
                p = self.model(x)
                nll += float(gaussian_nll(p, y, m)) * len(x)
                ok = m[:, -1]
                fde += float((p[ok, -1, :2] - y[ok, -1]).norm(dim=1).sum()) * len(x) / max(int(ok.sum()), 1)
                n += len(x)
        if not n:  # nothing held out (no eval_sequences, or all too short): no score, not a perfect one
            return {"eval_nll": None, "eval_fde_h": None}
        return {"eval_nll": nll / n, "eval_fde_h": fde / n}

    def _save(self, epoch: int) -> None:
        from ros2_tracker.motion.model import save_checkpoint

        save_checkpoint(self.out / "checkpoint.pt", self.model,
                        {"epoch": epoch, "train_config": json.dumps(self.config.to_dict()),
                         "history": json.dumps(self.history)})


def plot_curve(history: list[dict[str, Any]], path: str | Path) -> Path:
    """Training loss and held-out NLL / FDE per epoch (Agg canvas, no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_fde = fig.subplots(1, 2)
    ep = [r["epoch"] for r in history]
    trained = [r for r in history if r["loss"] is not None]
    ax_loss.plot([r["epoch"] for r in trained], [r["loss"] for r in trained], "o-", label="training NLL")
    held = {k: [math.nan if r[k] is None else r[k] for r in history] for k in ("eval_nll", "eval_fde_h")}
    ax_loss.plot(ep, held["eval_nll"], "s-", label="held-out NLL")
    ax_loss.set(xlabel="epoch", ylabel="Gaussian NLL (heights)", title="loss")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend()
    ax_fde.plot(ep, held["eval_fde_h"], "o-", color="tab:green")
    ax_fde.set(xlabel="epoch (0 = before training)", ylabel="FDE at the horizon [box heights]",
               title="held-out FDE")
    ax_fde.grid(alpha=0.3)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p)
    return p


def held_out_text(row: dict[str, Any], horizon_s: float) -> str:
    """The held-out scores of a history row, for the log: NLL and FDE at the horizon [box heights], or
    that nothing was held out."""
    if row["eval_nll"] is None:
        return "no held-out samples"
    return f"held-out NLL {row['eval_nll']:.3f}, FDE@{horizon_s:g}s {row['eval_fde_h']:.3f} heights"
