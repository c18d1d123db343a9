"""Training of the learned single-target models: GOTURN-style regression and ROLO-style recurrence.

:func:`train_goturn` trains :class:`~ros2_tracker.sot.goturn.GoturnNet` on crop pairs from the
ground-truth tracks of ``train_sequences`` (:class:`~ros2_tracker.sot.pairs.PairSampler`, GOTURN's
Laplace motion augmentation) with an L1 loss on the box in search-window coordinates, plus, every
``cycle_every`` steps after the first ``cycle_warmup``, ``cycle_weight`` x a self-supervised
cycle-consistency loss on unlabelled video (Wang, Jabri, Efros, CVPR 2019): random boxes are tracked
``cycle_length`` frames forward and back again with differentiable crops (``grid_sample``), and the
distance between the returned box and the start (in start-box sizes) is penalised. That loss alone is
minimised by "nothing moves", so it only regularises the supervised one, lightly and after a warm-up.
It is off by default (``cycle_weight: 0``): on the data here it lowered the held-out pair IoU
(bench/sot_training.py --ablation measures it against training without it).

:func:`train_rolo` trains :class:`~ros2_tracker.sot.rolo.RoloNet` on windows of ground-truth tracks
whose detections are simulated by :func:`~ros2_tracker.sot.pairs.simulate_flicker` (dropped runs,
jitter, a neighbour's box), with appearance features of the detections' crops, each window played
backwards and/or mirrored at random (a few sequences' walking directions must not become a prior);
the loss is the L1 offset of the ground truth from the prediction, in predicted-box sizes.

Both write into ``out_dir``: ``checkpoint.pt`` (``torch.load(..., weights_only=True)``; state dict +
architecture + training config + history), ``history.json``, ``metrics.json``, ``training_curve.png``
(loss and held-out score against steps) and, for GOTURN with ``export_onnx``, ``goturn.onnx``
(parity checked). Evaluation is on ``eval_sequences`` (never trained on): GOTURN, the mean IoU of
the predicted box on held-out pairs against "no motion"; ROLO, the mean IoU of its boxes against
the raw flickering detections (missing ones: the last detection held) on held-out tracks.

:class:`SotTrainConfig` has no heavy imports; torch, torchvision and OpenCV are imported inside.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ros2_tracker.core.config import ConfigBase, param
from ros2_tracker.training.config import check_sequence_split
from ros2_tracker.training.train_reid import TrainingError, data_root_folder, plain_copy, resolve_device

__all__ = ["SotTrainConfig", "SotTrainResult", "TrainingError", "load_tracks", "plot_sot_curve",
           "train_goturn", "train_rolo"]

MODELS = ("goturn", "rolo")
DEVICES = ("auto", "cpu", "cuda")
Log = Callable[[str], None]


@dataclass(frozen=True)
class SotTrainConfig(ConfigBase):
    """Parameters of ``ros2-tracker train-sot`` (both models; each reads its own section)."""

    # --- data -----------------------------------------------------------------------------------------
    data_root: str = param("../shared/data", "Folder the sequence paths are relative to")
    train_sequences: list[str] = param(
        ["PETS09-S3MF1", "MOT17-mini/train/MOT17-02-FRCNN", "MOT17-mini/train/MOT17-04-FRCNN",
         "MOT17-mini/train/MOT17-05-FRCNN", "MOT17-mini/train/MOT17-09-FRCNN",
         "MOT17-mini/train/MOT17-10-FRCNN", "MOT17-mini/train/MOT17-11-FRCNN",
         "MOT17-mini/train/MOT17-13-FRCNN"],
        "MOTChallenge folders (gt/gt.txt + img1/) whose tracks are trained on")
    eval_sequences: list[str] = param(["TUD-Campus"], "MOTChallenge folders held out for evaluation")
    min_visibility: float = param(0.3, "MOT17-style ground truth: minimum visibility of a box", low=0.0,
                                  high=1.0)
    min_box_height: float = param(24.0, "Lower ground-truth boxes are not used", low=4.0, high=10000.0,
                                  unit="px")
    # --- GOTURN-style model and data --------------------------------------------------------------------
    input_size: int = param(96, "GOTURN: side of the square crops", low=32, high=512, unit="px")
    context: float = param(2.0, "GOTURN: crop window size over box size", low=1.2, high=5.0)
    trunk_blocks: int = param(7, "GOTURN: frozen MobileNetV2 blocks (shared conv layers)", low=2, high=14)
    conv_channels: int = param(64, "GOTURN: channels of the trainable conv layer", low=4, high=512)
    fc_dim: int = param(512, "GOTURN: width of the fully connected layers", low=16, high=4096)
    still_fraction: float = param(0.5, "GOTURN: share of still-image pairs (both crops from one frame, "
                                  "search window moved by the motion model)", low=0.0, high=1.0)
    video_jitter: float = param(0.5, "GOTURN: probability that a video pair's search window is moved by the "
                                "motion model too", low=0.0, high=1.0)
    shift_scale: float = param(0.2, "GOTURN motion model: Laplace scale of the centre shift, in box sizes "
                               "(paper: 1/5)", low=0.0, high=2.0)
    size_scale: float = param(1 / 15, "GOTURN motion model: Laplace scale of the size factor (paper: "
                              "1/15)", low=0.0, high=1.0)
    max_gap: int = param(3, "GOTURN: largest frame gap of a video pair", low=1, high=100)
    # --- cycle consistency (GOTURN) -----------------------------------------------------------------
    cycle_video: str = param("PETS09-S2L1/video/vtest.avi", "Unlabelled video of the cycle-consistency "
                             "loss, relative to data_root ('' = no cycle loss)")
    cycle_weight: float = param(0.0, "Weight of the cycle-consistency loss, in start-box sizes against the "
                                "supervised L1 in search-window units (0 = off; 0.05 and 0.2 lowered the "
                                "held-out pair IoU here, see bench/sot_training.py --ablation)", low=0.0,
                                high=100.0)
    cycle_every: int = param(4, "Add the cycle loss every N steps", low=1, high=100000)
    cycle_warmup: int = param(100, "Steps of supervised training before the cycle loss starts (an untrained "
                              "regressor only learns 'nothing moves' from it)", low=0, high=10_000_000)
    cycle_length: int = param(3, "Frames tracked forward (then as many back)", low=1, high=30)
    cycle_batch: int = param(4, "Random start boxes per cycle step", low=1, high=256)
    cycle_frames: int = param(120, "Video frames decoded for the cycle loss", low=4, high=100000)
    cycle_scale: float = param(0.5, "Video frames are scaled by this factor", low=0.1, high=1.0)
    # --- ROLO-style model and data ------------------------------------------------------------------
    rolo_hidden: int = param(64, "ROLO: LSTM hidden size", low=4, high=2048)
    rolo_appearance: bool = param(True, "ROLO: feed the appearance similarity of each detection to the start "
                                  "box")
    rolo_steps: int = param(300, "ROLO: optimiser steps (GOTURN: steps)", low=1, high=10_000_000)
    rolo_seq_len: int = param(8, "ROLO: frames per training window", low=3, high=1000)
    rolo_batch: int = param(16, "ROLO: windows per batch", low=1, high=4096)
    flicker_drop: float = param(0.25, "ROLO data: share of dropped detections", low=0.0, high=0.95)
    flicker_run: float = param(2.0, "ROLO data: mean length of a run of dropped detections", low=1.0,
                               high=100.0, unit="frames")
    flicker_jitter: float = param(0.05, "ROLO data: std of each side's jitter, in box sizes", low=0.0,
                                  high=1.0)
    flicker_swap: float = param(0.05, "ROLO data: probability of a neighbour's box as the detection",
                                low=0.0, high=1.0)
    # --- optimisation -----------------------------------------------------------------------------------
    steps: int = param(300, "GOTURN: optimiser steps (ROLO: rolo_steps)", low=1, high=10_000_000)
    batch_size: int = param(32, "GOTURN: crop pairs per step", low=1, high=4096)
    lr: float = param(1e-3, "Adam learning rate (cosine-annealed to 1%)", low=0.0, high=1.0)
    weight_decay: float = param(1e-5, "Adam weight decay", low=0.0, high=1.0)
    eval_every: int = param(100, "Evaluate on the held-out sequences every N steps (0 = at the end)",
                            low=0, high=10_000_000)
    eval_samples: int = param(192, "GOTURN: held-out pairs of the evaluation (fixed draw)", low=1,
                              high=100000)
    device: str = param("auto", "auto (CUDA when available), cpu or cuda", choices=DEVICES)
    num_threads: int = param(1, "CPU threads for torch (0 = torch's default)", low=0, high=256)
    seed: int = param(0, "Seed of sampling, augmentation and initialisation", low=0, high=2**31 - 1)
    export_onnx: bool = param(True, "GOTURN: export goturn.onnx with an ONNX Runtime parity check")

    def check(self) -> None:
        """Train and evaluation sequences must be disjoint (split by sequence)."""
        check_sequence_split(self.train_sequences, self.eval_sequences)

    def goturn_model(self) -> dict[str, Any]:
        """Architecture fields of :class:`~ros2_tracker.sot.goturn.GoturnModelConfig`."""
        return {"input_size": self.input_size, "context": self.context, "trunk_blocks": self.trunk_blocks,
                "conv_channels": self.conv_channels, "fc_dim": self.fc_dim}


@dataclass
class SotTrainResult:
    """What a training run produced.

    Attributes:
        checkpoint: ``checkpoint.pt``.
        history: one dict per evaluation (``step``, ``loss``, held-out score, ``seconds``).
        metrics: final held-out figures (model-specific keys).
        seconds: wall time of the loop.
        device: where it ran.
        onnx: export report (``path``, ``max_abs_diff``), empty without one.
    """

    checkpoint: Path
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    seconds: float
    device: str
    onnx: dict[str, Any]


def load_tracks(config: SotTrainConfig, sequences: list[str], min_length: int = 2):
    """Ground-truth tracks of the named sequences (see :func:`~ros2_tracker.sot.pairs.load_gt_tracks`).

    Raises:
        TrainingError: ``data_root`` missing, or no usable track.
        MotFormatError: a sequence folder is malformed.
    """
    from ros2_tracker.sot.pairs import load_gt_tracks

    root = data_root_folder(config.data_root)
    tracks = []
    for name in sequences:
        if not (root / name).is_dir():
            raise TrainingError(f"{root / name}: sequence folder not found")
        tracks += load_gt_tracks(root / name, min_length=min_length, min_visibility=config.min_visibility,
                                 min_box_height=config.min_box_height)
    if not tracks:
        raise TrainingError(f"no ground-truth track of {min_length} frames or more with images in "
                            f"{', '.join(sequences)}")
    return tracks


def _cosine(step: int, steps: int) -> float:
    return 0.01 + 0.99 * 0.5 * (1.0 + np.cos(np.pi * min(step, steps) / steps))


# ------------------------------------------------------------------------------------------------------
# GOTURN-style regression
# ------------------------------------------------------------------------------------------------------


def train_goturn(config: SotTrainConfig, out_dir: str | Path, *, progress: bool = True,
                 log: Log = print) -> SotTrainResult:
    """Train the GOTURN-style network, evaluate, checkpoint, plot, export (see the module docstring).

    Raises:
        TrainingError: no data, no CUDA for ``device: cuda``, unreadable cycle video.
        PretrainedWeightsError: the ImageNet trunk weights are missing.
        SotExportError: the ONNX export failed its parity check.
    """
    import torch

    from ros2_tracker.sot.goturn import GoturnModelConfig, GoturnNet
    from ros2_tracker.sot.pairs import FrameStore, PairSampler

    out = Path(out_dir)
    device = resolve_device(config.device)
    frames = FrameStore()
    kw = {"size": config.input_size, "context": config.context, "max_gap": config.max_gap,
          "still_fraction": config.still_fraction, "video_jitter": config.video_jitter,
          "shift_scale": config.shift_scale, "size_scale": config.size_scale}
    sampler = PairSampler(load_tracks(config, config.train_sequences), frames, **kw)
    eval_pairs = None
    if config.eval_sequences:
        eval_sampler = PairSampler(load_tracks(config, config.eval_sequences), frames, **kw)
        eval_pairs = eval_sampler.sample(config.eval_samples, np.random.default_rng(config.seed + 99))
    video = _load_cycle_video(config, log) if config.cycle_video and config.cycle_weight > 0 else None
    out.mkdir(parents=True, exist_ok=True)  # after the data loaded: a failed start leaves no empty folder
    previous_threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        torch.manual_seed(config.seed)
        net = GoturnNet(GoturnModelConfig(**config.goturn_model())).to(device)
        run = _GoturnRun(config, net, device, sampler, eval_pairs, video, out, progress, log)
        return run.fit()
    finally:
        torch.set_num_threads(previous_threads)


def _load_cycle_video(config: SotTrainConfig, log: Log) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 BGR frames of the cycle video, scaled by ``cycle_scale``."""
    import cv2

    path = Path(config.data_root) / config.cycle_video
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while len(frames) < config.cycle_frames:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(cv2.resize(frame, None, fx=config.cycle_scale, fy=config.cycle_scale,
                                     interpolation=cv2.INTER_AREA))
    finally:
        cap.release()
    if len(frames) < config.cycle_length + 1:
        raise TrainingError(f"cycle_video: {path}: {len(frames)} readable frames, need "
                            f"{config.cycle_length + 1} (cycle_video: '' trains without the cycle loss)")
    log(f"cycle-consistency video: {len(frames)} frames of {path.name} at {frames[0].shape[1]}x"
        f"{frames[0].shape[0]}")
    return np.stack(frames)


class _GoturnRun:
    """State of one GOTURN training run."""

    def __init__(self, config: SotTrainConfig, net, device: str, sampler, eval_pairs, video, out: Path,
                 progress: bool, log: Log):
        import torch

        self.config, self.net, self.device, self.sampler = config, net, device, sampler
        self.eval_pairs, self.video, self.out, self.progress, self.log = eval_pairs, video, out, progress, log
        params = [p for p in net.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
        self.rng = np.random.default_rng(config.seed)
        self.history: list[dict[str, Any]] = []
        self.losses: list[float] = []
        self.cycle_losses: list[float] = []

    def fit(self) -> SotTrainResult:
        import torch
        from tqdm import tqdm

        cfg = self.config
        scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: _cosine(s, cfg.steps))
        self._evaluate(0)
        t0 = time.perf_counter()
        bar = tqdm(range(1, cfg.steps + 1), desc="goturn", disable=not self.progress, unit="step")
        for step in bar:
            self.net.train()
            loss = self._supervised_loss()
            self.losses.append(float(loss.detach()))
            if self.video is not None and step > cfg.cycle_warmup and step % cfg.cycle_every == 0:
                cycle = self._cycle_loss()
                self.cycle_losses.append(float(cycle.detach()))
                loss = loss + cfg.cycle_weight * cycle
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            scheduler.step()
            bar.set_postfix(l1=f"{self.losses[-1]:.4f}")
            if (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps:
                self._evaluate(step, time.perf_counter() - t0)
                self._save()
        seconds = time.perf_counter() - t0
        metrics = dict(self.history[-1])
        onnx = self._export() if cfg.export_onnx else {}
        result = SotTrainResult(self.out / "checkpoint.pt", self.history, metrics, seconds, self.device, onnx)
        _write_reports(self.out, result, cfg, "goturn", ("eval_iou", "eval_iou_no_motion"))
        return result

    def _tensor(self, crops: np.ndarray):
        import torch

        from ros2_tracker.sot.goturn import to_input

        return torch.from_numpy(to_input(crops)).to(self.device)

    def _supervised_loss(self):
        import torch

        pairs = self.sampler.sample(self.config.batch_size, self.rng)
        pred = self.net(self._tensor(pairs.targets), self._tensor(pairs.searches))
        return torch.nn.functional.l1_loss(pred, torch.from_numpy(pairs.boxes_norm).to(self.device))

    def _cycle_loss(self):
        """Forward ``cycle_length`` frames from random boxes, then back; L1 to the start in box sizes."""
        import torch

        cfg = self.config
        t_len, h, w = self.video.shape[:3]
        k = cfg.cycle_length
        starts = self.rng.integers(0, t_len - k, cfg.cycle_batch)
        clip = np.stack([self.video[s:s + k + 1] for s in starts], axis=1)  # (k+1, B, H, W, 3)
        frames = [self._tensor(c) for c in clip]  # (B, 3, H, W) each, normalised
        box0 = torch.from_numpy(_random_boxes(self.rng, cfg.cycle_batch, (h, w))).float().to(self.device)
        box = box0
        steps = [(i, i + 1) for i in range(k)] + [(i + 1, i) for i in reversed(range(k))]
        for src, dst in steps:
            box = self._track_step(frames[src], frames[dst], box)
        return ((box - box0).abs() / _box_sizes(box0)).mean()

    def _track_step(self, frame_prev, frame_next, box):
        """Differentiable GOTURN step: box in ``frame_prev`` -> box in ``frame_next``."""
        window = _context_window_t(box, self.config.context)
        s = self.config.input_size
        target = _crop_t(frame_prev, window, s)
        search = _crop_t(frame_next, window, s)
        norm = self.net(target, search)
        size = (window[:, 2:] - window[:, :2]).repeat(1, 2)
        return norm * size + window[:, :2].repeat(1, 2)

    def _evaluate(self, step: int, seconds: float = 0.0) -> None:
        row: dict[str, Any] = {"step": step, "seconds": round(seconds, 2),
                               "loss": float(np.mean(self.losses[-50:])) if self.losses else float("nan")}
        if self.cycle_losses:
            row["cycle_loss"] = float(np.mean(self.cycle_losses[-10:]))
        if self.eval_pairs is not None:
            row.update(evaluate_goturn_pairs(self.net, self.eval_pairs, self.device))
        self.history.append(row)
        loss = f"{row['loss']:.4f}" if self.losses else "- (before training)"
        text = f"step {step}/{self.config.steps}: loss {loss}"
        if "eval_iou" in row:
            text += f", held-out IoU {row['eval_iou']:.3f} (no motion {row['eval_iou_no_motion']:.3f})"
        self.log(text)

    def _save(self) -> None:
        from ros2_tracker.sot.sot_export import save_sot_checkpoint

        save_sot_checkpoint(self.out / "checkpoint.pt", "goturn", self.net.config.to_dict(),
                            self.net.state_dict(), extra=plain_copy({"train_config": self.config.to_dict(),
                                                                 "history": self.history}))

    def _export(self) -> dict[str, Any]:
        from ros2_tracker.sot.sot_export import export_goturn_onnx

        report = export_goturn_onnx(self.net, self.out / "goturn.onnx")
        self.log(f"exported {report.path}: ONNX Runtime vs PyTorch max |diff| {report.max_abs_diff:.2e}")
        return {"path": str(report.path), "max_abs_diff": report.max_abs_diff,
                "batch_sizes": list(report.batch_sizes)}


def evaluate_goturn_pairs(net, pairs, device: str = "cpu") -> dict[str, float]:
    """Mean IoU of the network's boxes with the truth on crop pairs, and of "no motion" (the centred box).

    Args:
        net: :class:`~ros2_tracker.sot.goturn.GoturnNet`.
        pairs: :class:`~ros2_tracker.sot.pairs.CropPairs`.
        device: where the network is.

    Returns:
        ``{"eval_iou", "eval_iou_no_motion", "eval_l1"}``.
    """
    import torch

    from ros2_tracker.core.costs import iou_matrix
    from ros2_tracker.sot.goturn import to_input

    net.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(pairs.boxes_norm), 64):
            t = torch.from_numpy(to_input(pairs.targets[i:i + 64])).to(device)
            s = torch.from_numpy(to_input(pairs.searches[i:i + 64])).to(device)
            preds.append(net(t, s).cpu().numpy())
    pred = np.concatenate(preds).astype(np.float64)
    truth = pairs.boxes_norm.astype(np.float64)
    lo, hi = 0.5 - 0.5 / net.config.context, 0.5 + 0.5 / net.config.context
    still = np.tile([lo, lo, hi, hi], (len(truth), 1))
    def diag(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.array([iou_matrix(a[j:j + 1], b[j:j + 1])[0, 0] for j in range(len(a))])

    return {"eval_iou": float(diag(pred, truth).mean()),
            "eval_iou_no_motion": float(diag(still, truth).mean()),
            "eval_l1": float(np.abs(pred - truth).mean())}


def _random_boxes(rng: np.random.Generator, n: int, image_hw: tuple[int, int]) -> np.ndarray:
    """``(n, 4)`` person-shaped random boxes (height 12-30 % of the image, width 35-60 % of it) inside it."""
    h, w = image_hw
    bh = rng.uniform(0.12, 0.3, n) * h
    bw = bh * rng.uniform(0.35, 0.6, n)
    x1 = rng.uniform(0, w - bw)
    y1 = rng.uniform(0, h - bh)
    return np.stack([x1, y1, x1 + bw, y1 + bh], axis=1)


def _box_sizes(box):
    return (box[:, 2:] - box[:, :2]).repeat(1, 2).clamp_min(1.0)


def _context_window_t(box, context: float):
    import torch

    c = (box[:, :2] + box[:, 2:]) / 2
    half = (box[:, 2:] - box[:, :2]).clamp_min(2.0) * (context / 2)
    return torch.cat([c - half, c + half], dim=1)


def _crop_t(frames, windows, size: int):
    """Differentiable ``size x size`` crops of ``(B, 4)`` pixel windows from ``(B, 3, H, W)`` frames."""
    import torch
    import torch.nn.functional as F

    b, _, h, w = frames.shape
    scale = torch.tensor([2.0 / w, 2.0 / h, 2.0 / w, 2.0 / h], device=frames.device)
    nw = windows * scale - 1.0  # pixel edges -> [-1, 1] (align_corners=False convention)
    theta = torch.zeros(b, 2, 3, device=frames.device, dtype=frames.dtype)
    theta[:, 0, 0] = (nw[:, 2] - nw[:, 0]) / 2
    theta[:, 0, 2] = (nw[:, 2] + nw[:, 0]) / 2
    theta[:, 1, 1] = (nw[:, 3] - nw[:, 1]) / 2
    theta[:, 1, 2] = (nw[:, 3] + nw[:, 1]) / 2
    grid = F.affine_grid(theta, [b, 3, size, size], align_corners=False)
    return F.grid_sample(frames, grid, mode="bilinear", padding_mode="border", align_corners=False)


# ------------------------------------------------------------------------------------------------------
# ROLO-style recurrence
# ------------------------------------------------------------------------------------------------------


@dataclass
class RoloTrack:
    """A ground-truth track with the appearance features of its boxes and of its neighbours.

    Attributes:
        boxes_xyxy: ``(T, 4)`` ground truth [px].
        features: ``(T, C)`` appearance features of those boxes.
        others: frame index ``t`` -> ``((M, 4) boxes, (M, C) features)`` of the other identities.
        track: the :class:`~ros2_tracker.sot.pairs.GtTrack`.
    """

    boxes_xyxy: np.ndarray
    features: np.ndarray
    others: dict[int, tuple[np.ndarray, np.ndarray]]
    track: Any


def rolo_tracks(config: SotTrainConfig, sequences: list[str], trunk, crop_size: int,
                min_length: int) -> list[RoloTrack]:
    """Tracks of at least ``min_length`` frames with features of every ground-truth box of their frames."""
    from ros2_tracker.sot.pairs import FrameStore
    from ros2_tracker.sot.rolo import appearance_features

    frames = FrameStore()
    everyone = load_tracks(config, sequences, min_length=1)
    per_frame: dict[tuple[Path, int], list[tuple[int, np.ndarray]]] = {}
    for tr in everyone:
        for f, b in zip(tr.frames, tr.boxes_xyxy, strict=True):
            per_frame.setdefault((tr.sequence, int(f)), []).append((tr.track_id, b))
    feats: dict[tuple[Path, int, int], np.ndarray] = {}
    for (seq, f), rows in per_frame.items():
        out = appearance_features(trunk, frames.frame(seq, f), np.stack([b for _, b in rows]), crop_size)
        feats.update({(seq, f, tid): out[k] for k, (tid, _) in enumerate(rows)})
        frames.drop(seq, f)  # each frame is needed once
    result = []
    for tr in everyone:
        if len(tr.frames) < min_length:
            continue
        others = {}
        for t, f in enumerate(tr.frames):
            rows = [(tid, b) for tid, b in per_frame[(tr.sequence, int(f))] if tid != tr.track_id]
            if rows:
                others[t] = (np.stack([b for _, b in rows]),
                             np.stack([feats[(tr.sequence, int(f), tid)] for tid, _ in rows]))
        result.append(RoloTrack(tr.boxes_xyxy, np.stack([feats[(tr.sequence, int(f), tr.track_id)]
                                                          for f in tr.frames]), others, tr))
    if not result:
        raise TrainingError(f"no track of {min_length} frames or more in {', '.join(sequences)}")
    return result


def flicker_window(rt: RoloTrack, start: int, length: int, config: SotTrainConfig, rng: np.random.Generator,
                   *, reverse: bool = False,
                   mirror: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Simulated detections of a window of a track, optionally played backwards and/or mirrored.

    Reversal and mirroring (``x -> -x``; the model only sees relative offsets) augment the few
    training tracks so that the dominant walking direction of a sequence is not learnt as a prior.

    Returns:
        ``(dets (L, 4) with NaN rows where missing, appearance (L, C), truth (L, 4))``.
    """
    from ros2_tracker.sot.pairs import GtTrack, simulate_flicker

    idx = np.arange(start, start + length)[::-1 if reverse else 1]
    flip = (lambda b: np.stack([-b[:, 2], b[:, 1], -b[:, 0], b[:, 3]], 1)) if mirror else (lambda b: b)
    truth = flip(rt.boxes_xyxy[idx])
    others = {k: flip(rt.others[int(t)][0]) for k, t in enumerate(idx) if int(t) in rt.others}
    window = GtTrack(rt.track.sequence, rt.track.track_id, np.arange(length), truth)
    dets, source = simulate_flicker(window, others, rng, p_drop=config.flicker_drop,
                                    mean_drop_run=config.flicker_run, jitter=config.flicker_jitter,
                                    p_swap=config.flicker_swap)
    app = np.where((source == 1)[:, None], rt.features[idx], 0.0).astype(np.float32)
    for k in np.flatnonzero(source == -1):
        feats = rt.others[int(idx[k])][1]
        app[k] = feats[int(np.argmin(np.abs(others[int(k)] - dets[k]).sum(1)))]
    return dets, app, truth


def evaluate_rolo(net, tracks: list[RoloTrack], config: SotTrainConfig, seed: int = 1234) -> dict[str, float]:
    """Mean IoU with the truth of the net's boxes and of the raw flickering detections (missing: held).

    Every track is run whole from its first box, with one fixed flicker draw (``seed``).

    Returns:
        ``{"eval_iou", "eval_iou_raw", "eval_iou_missing", "eval_iou_raw_missing"}`` (frames after the
        first; ``*_missing``: frames whose detection was dropped).
    """
    from ros2_tracker.core.costs import iou_matrix
    from ros2_tracker.sot.rolo import run_rolo

    rng = np.random.default_rng(seed)
    net.eval()
    ious, raws, missing = [], [], []
    for rt in tracks:
        dets, app, _ = flicker_window(rt, 0, len(rt.boxes_xyxy), config, rng)
        out = run_rolo(net, dets, app, rt.boxes_xyxy[0])
        raw = dets.copy()
        for t in range(1, len(raw)):
            if not np.isfinite(raw[t]).all():
                raw[t] = raw[t - 1]
        for t in range(1, len(raw)):
            truth = rt.boxes_xyxy[t:t + 1]
            ious.append(iou_matrix(out[t:t + 1], truth)[0, 0])
            raws.append(iou_matrix(raw[t:t + 1], truth)[0, 0])
            missing.append(not np.isfinite(dets[t]).all())
    ious_a, raws_a, miss = np.array(ious), np.array(raws), np.array(missing, dtype=bool)
    return {"eval_iou": float(ious_a.mean()), "eval_iou_raw": float(raws_a.mean()),
            "eval_iou_missing": float(ious_a[miss].mean()) if miss.any() else float("nan"),
            "eval_iou_raw_missing": float(raws_a[miss].mean()) if miss.any() else float("nan")}


def train_rolo(config: SotTrainConfig, out_dir: str | Path, *, progress: bool = True,
               log: Log = print) -> SotTrainResult:
    """Train the ROLO-style LSTM on flicker-simulated detections of ground-truth tracks.

    Raises:
        TrainingError: no data, no CUDA for ``device: cuda``.
        PretrainedWeightsError: the ImageNet trunk weights are missing.
    """
    import torch

    from ros2_tracker.sot.goturn import build_trunk
    from ros2_tracker.sot.rolo import RoloModelConfig, RoloNet

    out = Path(out_dir)
    device = resolve_device(config.device)
    previous_threads = torch.get_num_threads()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    try:
        torch.manual_seed(config.seed)
        model_config = RoloModelConfig(hidden=config.rolo_hidden, appearance=config.rolo_appearance)
        trunk = build_trunk(14)
        crop = model_config.crop_size
        train = rolo_tracks(config, config.train_sequences, trunk, crop, config.rolo_seq_len)
        held_out = (rolo_tracks(config, config.eval_sequences, trunk, crop, 2)
                    if config.eval_sequences else [])
        log(f"ROLO data: {len(train)} training tracks of >= {config.rolo_seq_len} frames, "
            f"{len(held_out)} held-out tracks")
        out.mkdir(parents=True, exist_ok=True)
        net = RoloNet(model_config)
        return _RoloRun(config, net, device, train, held_out, out, progress, log).fit()
    finally:
        torch.set_num_threads(previous_threads)


class _RoloRun:
    """State of one ROLO training run."""

    def __init__(self, config: SotTrainConfig, net, device: str, train: list[RoloTrack],
                 held_out: list[RoloTrack], out: Path, progress: bool, log: Log):
        import torch

        self.config, self.net, self.device, self.train, self.held_out = config, net, device, train, held_out
        self.out, self.progress, self.log = out, progress, log
        self.optimizer = torch.optim.Adam(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.rng = np.random.default_rng(config.seed)
        spans = np.array([len(t.boxes_xyxy) - config.rolo_seq_len + 1 for t in train], dtype=np.float64)
        self.weights = spans / spans.sum()
        self.history: list[dict[str, Any]] = []
        self.losses: list[float] = []

    def fit(self) -> SotTrainResult:
        import torch
        from tqdm import tqdm

        cfg = self.config
        scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: _cosine(s, cfg.rolo_steps))
        self._evaluate(0)
        t0 = time.perf_counter()
        bar = tqdm(range(1, cfg.rolo_steps + 1), desc="rolo", disable=not self.progress, unit="step")
        self.net.to(self.device)
        for step in bar:
            self.net.train()
            loss = self._loss()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.net.parameters(), 5.0)
            self.optimizer.step()
            scheduler.step()
            self.losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{self.losses[-1]:.4f}")
            if (cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.rolo_steps:
                self._evaluate(step, time.perf_counter() - t0)
                self._save()
        result = SotTrainResult(self.out / "checkpoint.pt", self.history, dict(self.history[-1]),
                                time.perf_counter() - t0, self.device, {})
        _write_reports(self.out, result, cfg, "rolo", ("eval_iou", "eval_iou_raw"))
        return result

    def _loss(self):
        import torch

        from ros2_tracker.sot.rolo import encode_boxes

        cfg = self.config
        length = cfg.rolo_seq_len
        dets, apps, truth = [], [], []
        for k in self.rng.choice(len(self.train), size=cfg.rolo_batch, p=self.weights):
            rt = self.train[k]
            start = int(self.rng.integers(0, len(rt.boxes_xyxy) - length + 1))
            reverse, mirror = self.rng.random(2) < 0.5
            d, a, gt = flicker_window(rt, start, length, cfg, self.rng, reverse=reverse, mirror=mirror)
            dets.append(d)
            apps.append(a)
            truth.append(gt)
        as_t = lambda x: torch.from_numpy(np.stack(x)).float().to(self.device)  # noqa: E731
        gt = as_t(truth)
        out = self.net(as_t(dets), as_t(apps), gt[:, 0])
        return encode_boxes(gt[:, 1:].reshape(-1, 4), out[:, 1:].reshape(-1, 4)).abs().mean()

    def _evaluate(self, step: int, seconds: float = 0.0) -> None:
        row: dict[str, Any] = {"step": step, "seconds": round(seconds, 2),
                               "loss": float(np.mean(self.losses[-50:])) if self.losses else float("nan")}
        if self.held_out:
            self.net.cpu()
            row.update(evaluate_rolo(self.net, self.held_out, self.config))
            self.net.to(self.device)
        self.history.append(row)
        loss = f"{row['loss']:.4f}" if self.losses else "- (before training)"
        text = f"step {step}/{self.config.rolo_steps}: loss {loss}"
        if "eval_iou" in row:
            text += (f", held-out IoU {row['eval_iou']:.3f} (raw detections {row['eval_iou_raw']:.3f}; "
                     f"dropped frames {row['eval_iou_missing']:.3f} vs {row['eval_iou_raw_missing']:.3f})")
        self.log(text)

    def _save(self) -> None:
        from ros2_tracker.sot.sot_export import save_sot_checkpoint

        save_sot_checkpoint(self.out / "checkpoint.pt", "rolo", self.net.config.to_dict(),
                            self.net.state_dict(),
                            extra=plain_copy({"train_config": self.config.to_dict(),
                                              "history": self.history}))


# ------------------------------------------------------------------------------------------------------
# shared reporting
# ------------------------------------------------------------------------------------------------------


def _write_reports(out: Path, result: SotTrainResult, config: SotTrainConfig, model: str,
                   score_keys: tuple[str, str]) -> None:
    (out / "history.json").write_text(json.dumps(plain_copy(result.history), indent=1) + "\n")
    metrics = {"model": model, "metrics": result.metrics, "train_seconds": result.seconds,
               "device": result.device, "onnx": result.onnx, "config": config.to_dict()}
    (out / "metrics.json").write_text(json.dumps(plain_copy(metrics), indent=1) + "\n")
    plot_sot_curve(result.history, out / "training_curve.png", score_keys, title=f"{model} training")


def plot_sot_curve(history: list[dict[str, Any]], path: str | Path, score_keys: tuple[str, str],
                   title: str = "") -> Path:
    """Loss (left axis) and a held-out score with its baseline (right axis) against steps, as a PNG.

    Args:
        history: rows with ``step``, ``loss`` and optionally the two ``score_keys``.
        path: PNG to write.
        score_keys: ``(model score, baseline score)`` keys, e.g. ``("eval_iou", "eval_iou_no_motion")``.
        title: figure title.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    steps = [r["step"] for r in history]
    ax.plot(steps, [r.get("loss", np.nan) for r in history], "o-", color="tab:blue", label="training loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss", color="tab:blue")
    if any(score_keys[0] in r for r in history):
        ax2 = ax.twinx()
        ax2.plot(steps, [r.get(score_keys[0], np.nan) for r in history], "s-", color="tab:red",
                 label=score_keys[0])
        ax2.plot(steps, [r.get(score_keys[1], np.nan) for r in history], "--", color="tab:gray",
                 label=score_keys[1])
        ax2.set_ylabel("held-out mean IoU", color="tab:red")
        ax2.legend(loc="lower right", fontsize=8)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    p = Path(path)
    fig.savefig(p)
    return p
