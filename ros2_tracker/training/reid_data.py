"""Re-ID training data: identity crops cut from MOTChallenge ground truth, the split, the P x K sampler.

An identity is one ground-truth track of one sequence (key ``"<sequence>:<track id>"``), so two
sequences never share an identity. :func:`split_identities` keeps evaluation identities out of
training twice over: whole sequences are held out, and a seeded fraction of the identities of each
training sequence too. Crops are cut with the embedders' own pipeline
(:func:`ros2_tracker.appearance.embedder.extract_crops`: clipped box, bilinear resize, aspect not
kept), so training sees the pixels that inference sees.

Ground truth in MOT17 style (9 columns) keeps only rows with consider flag 1, class 1 (pedestrian)
and enough visibility; MOT15 style (TUD, PETS) has no class and keeps every row with conf > 0.
Only frames whose image exists give crops (MOT17-mini has images for its first frames only).

numpy and OpenCV (inside the functions) only; no torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ros2_tracker.io.mot import MotFormatError, read_mot
from ros2_tracker.io.sequence import read_sequence_info

__all__ = ["PKBatchSampler", "ReidCrops", "ReidSplit", "load_sequence_crops", "split_identities"]


@dataclass(frozen=True)
class ReidCrops:
    """Identity crops and where they come from.

    Attributes:
        images: ``(N, H, W, 3)`` uint8 BGR crops, all resized to the network input size.
        identities: ``(N,)`` str identity keys ``"<sequence>:<track id>"``.
        sequences: ``(N,)`` str sequence names.
        frames: ``(N,)`` int64 frame numbers (1-based).
        fps: frame rate [Hz] per sequence name.
    """

    images: np.ndarray
    identities: np.ndarray
    sequences: np.ndarray
    frames: np.ndarray
    fps: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.ndim != 4 or self.images.shape[3] != 3 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be (N, H, W, 3) uint8, got {self.images.shape} "
                             f"{self.images.dtype}")
        for name in ("identities", "sequences", "frames"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, images {n}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def identity_names(self) -> list[str]:
        """Distinct identity keys, sorted."""
        return sorted(set(self.identities.tolist()))

    def labels(self) -> tuple[np.ndarray, list[str]]:
        """``((N,) int64 labels 0..C-1, C identity keys)``, labels in sorted-key order."""
        names, labels = np.unique(self.identities, return_inverse=True)
        return labels.astype(np.int64).reshape(-1), [str(n) for n in names]

    def subset(self, mask_or_index: np.ndarray) -> ReidCrops:
        """The crops selected by a boolean mask or an index array (same fps table)."""
        sel = np.asarray(mask_or_index)
        return ReidCrops(self.images[sel], self.identities[sel], self.sequences[sel], self.frames[sel],
                         dict(self.fps))

    @staticmethod
    def concat(parts: Sequence[ReidCrops], size_hw: Sequence[int] = (0, 0)) -> ReidCrops:
        """All crops of ``parts`` in order; ``size_hw`` gives the image size when ``parts`` is empty."""
        if not parts:
            return ReidCrops(np.empty((0, int(size_hw[0]), int(size_hw[1]), 3), np.uint8),
                             np.empty(0, dtype=str), np.empty(0, dtype=str), np.empty(0, np.int64))
        fps: dict[str, float] = {}
        for p in parts:
            fps.update(p.fps)
        return ReidCrops(np.concatenate([p.images for p in parts]),
                         np.concatenate([p.identities.astype(object) for p in parts]).astype(str),
                         np.concatenate([p.sequences.astype(object) for p in parts]).astype(str),
                         np.concatenate([p.frames for p in parts]).astype(np.int64), fps)


@dataclass(frozen=True)
class ReidSplit:
    """Training and evaluation crops with disjoint identities.

    Attributes:
        train: crops whose identities are trained on.
        eval: crops of identities never trained on (held-out sequences and held-out identities).
    """

    train: ReidCrops
    eval: ReidCrops

    def __post_init__(self) -> None:
        shared = set(self.train.identities.tolist()) & set(self.eval.identities.tolist())
        if shared:
            raise ValueError(f"identities in both training and evaluation: {sorted(shared)[:5]}")

    def summary(self) -> str:
        """One line: identities and crops on each side."""
        return (f"train: {len(self.train.identity_names)} identities, {len(self.train)} crops; "
                f"eval: {len(self.eval.identity_names)} identities, {len(self.eval)} crops")


def load_sequence_crops(root: str | Path, size_hw: Sequence[int], *, min_box_height: float = 32.0,
                        min_visibility: float = 0.3, max_crops_per_identity: int = 0) -> ReidCrops:
    """Cut every usable ground-truth box of a MOTChallenge folder into a crop.

    Args:
        root: sequence folder with ``gt/gt.txt``, ``img1/`` and (optionally) ``seqinfo.ini``.
        size_hw: crop (network input) ``(height, width)`` [px].
        min_box_height: boxes lower than this once clipped to the image are skipped [px]; boxes
            narrower than a quarter of it too.
        min_visibility: MOT17-style ground truth only: rows with a lower visibility are skipped.
        max_crops_per_identity: keep at most this many crops of each track, evenly spaced over its
            usable frames (0 = all): long tracks then do not dominate, and near-copies of
            neighbouring frames are thinned out.

    Returns:
        The crops, in frame order.

    Raises:
        MotFormatError: no folder, no ground truth or no image for any ground-truth frame.
    """
    from ros2_tracker.appearance.embedder import extract_crops
    from ros2_tracker.io.video import read_image

    info = read_sequence_info(root)
    gt = read_mot(info.gt_path, note_unsorted=False)
    keep = _usable_rows(gt.scores, gt.extra, min_visibility)
    frames_with_images = 0
    parts: list[tuple[np.ndarray, np.ndarray, int]] = []
    for frame in np.unique(gt.frames[keep]):
        path = info.frame_path(int(frame))
        if not path.is_file():
            continue
        image = read_image(path)
        if image is None:
            raise MotFormatError(f"{path}: not a readable image")
        frames_with_images += 1
        rows = np.flatnonzero(keep & (gt.frames == frame))
        boxes = _clipped_xyxy(gt.boxes_tlwh[rows], image.shape[:2])
        heights, widths = boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]
        big = (heights >= min_box_height) & (widths >= min_box_height / 4)
        crops, valid = extract_crops(image, boxes[big], size_hw)
        parts.append((crops, gt.ids[rows[big]][valid], int(frame)))
    if frames_with_images == 0:
        raise MotFormatError(f"{info.root}: no image in {info.image_dir} for any ground-truth frame")
    images = np.concatenate([c for c, _, _ in parts]) if parts else np.empty((0, *size_hw, 3), np.uint8)
    ids = np.concatenate([i for _, i, _ in parts]).astype(np.int64)
    frames = np.concatenate([np.full(len(i), f, np.int64) for _, i, f in parts])
    crops = ReidCrops(images, np.array([f"{info.name}:{i}" for i in ids], dtype=str),
                      np.full(len(ids), info.name, dtype=object).astype(str), frames, {info.name: info.fps})
    return crops.subset(_spread(ids, max_crops_per_identity)) if max_crops_per_identity else crops


def _spread(ids: np.ndarray, limit: int) -> np.ndarray:
    """Sorted indices keeping at most ``limit`` rows per id, evenly spaced in row (frame) order."""
    keep = []
    for i in np.unique(ids):
        rows = np.flatnonzero(ids == i)
        if len(rows) > limit:
            rows = rows[np.unique(np.round(np.linspace(0, len(rows) - 1, limit)).astype(int))]
        keep.append(rows)
    return np.sort(np.concatenate(keep)) if keep else np.empty(0, np.int64)


def _usable_rows(conf: np.ndarray, extra: np.ndarray, min_visibility: float) -> np.ndarray:
    """MOT17 style (class[, visibility] after conf): consider flag 1, pedestrians, visible; else conf > 0."""
    if extra.shape[1] in (1, 2):
        keep = (conf == 1) & (extra[:, 0] == 1)
        if extra.shape[1] == 2:
            keep &= extra[:, 1] >= min_visibility
        return keep
    return conf > 0


def _clipped_xyxy(boxes_tlwh: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    h, w = image_hw
    x1 = np.clip(boxes_tlwh[:, 0], 0, w)
    y1 = np.clip(boxes_tlwh[:, 1], 0, h)
    x2 = np.clip(boxes_tlwh[:, 0] + boxes_tlwh[:, 2], 0, w)
    y2 = np.clip(boxes_tlwh[:, 1] + boxes_tlwh[:, 3], 0, h)
    return np.stack([x1, y1, x2, y2], axis=1)


def split_identities(train_parts: Sequence[ReidCrops], eval_parts: Sequence[ReidCrops],
                     eval_identity_fraction: float, seed: int = 0) -> ReidSplit:
    """Split crops into training and evaluation by sequence and by identity.

    Every crop of ``eval_parts`` goes to evaluation; of each training sequence a seeded
    ``round(fraction * identities)`` identities go to evaluation as well, the rest to training.
    Identities with a single crop cannot form a positive pair and are dropped from training.

    Args:
        train_parts: crops of the training sequences (one :class:`ReidCrops` per sequence).
        eval_parts: crops of the held-out sequences.
        eval_identity_fraction: in [0, 1).
        seed: seed of the identity draw.

    Returns:
        The split; its constructor checks that no identity is on both sides.
    """
    if not 0.0 <= eval_identity_fraction < 1.0:
        raise ValueError(f"eval_identity_fraction must be in [0, 1), got {eval_identity_fraction}")
    rng = np.random.default_rng(seed)
    size = (train_parts or eval_parts)[0].images.shape[1:3] if (train_parts or eval_parts) else (0, 0)
    train, held = [], list(eval_parts)
    for part in train_parts:
        names = np.array(part.identity_names)
        n_eval = round(eval_identity_fraction * len(names))
        chosen = set(rng.choice(names, size=n_eval, replace=False).tolist()) if n_eval else set()
        to_eval = np.isin(part.identities, list(chosen))
        held.append(part.subset(to_eval))
        rest = part.subset(~to_eval)
        ids, counts = np.unique(rest.identities, return_counts=True)
        train.append(rest.subset(np.isin(rest.identities, ids[counts >= 2])))
    return ReidSplit(ReidCrops.concat(train, size), ReidCrops.concat(held, size))


class PKBatchSampler:
    """Batches of ``P`` distinct identities x ``K`` crops each (indices into the training crops).

    Each batch draws ``P`` identities uniformly without replacement, then ``K`` of each identity's
    crops, without replacement when it has at least ``K``, with replacement otherwise. Every batch
    therefore has positives for every sample and ``P - 1`` identities of negatives. Deterministic for
    a given ``seed`` and epoch (:meth:`set_epoch`); usable as a torch ``DataLoader(batch_sampler=...)``.

    Args:
        labels: ``(N,)`` int identity label per crop.
        p: identities per batch (at most the number of identities).
        k: crops per identity.
        batches_per_epoch: batches per epoch; 0 = ``ceil(N / (P * K))``.
        seed: random seed.
    """

    def __init__(self, labels: np.ndarray, p: int, k: int, batches_per_epoch: int = 0, seed: int = 0):
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        self._ids, inverse = np.unique(self.labels, return_inverse=True)
        if p < 1 or k < 1:
            raise ValueError(f"P and K must be >= 1, got P={p}, K={k}")
        if len(self._ids) < p:
            raise ValueError(f"P={p} identities per batch, but the training set has only {len(self._ids)}")
        self._members = [np.flatnonzero(inverse == j) for j in range(len(self._ids))]
        self.p, self.k, self.seed = p, k, seed
        self.batches = batches_per_epoch or max(1, math.ceil(len(self.labels) / (p * k)))
        self._epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of an epoch (a different draw each epoch, reproducible)."""
        self._epoch = int(epoch)

    def __len__(self) -> int:
        return self.batches

    def __iter__(self) -> Iterator[list[int]]:
        rng = np.random.default_rng([self.seed, self._epoch])
        for _ in range(self.batches):
            batch: list[int] = []
            for j in rng.choice(len(self._ids), size=self.p, replace=False):
                members = self._members[j]
                batch.extend(rng.choice(members, size=self.k, replace=len(members) < self.k).tolist())
            yield batch
