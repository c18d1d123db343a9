"""Re-ID evaluation: rank-1 and mAP of query crops against a gallery of held-out identities.

Protocol (:func:`query_gallery`), run on the evaluation crops of a :class:`ReidSplit` only, so no
evaluated identity was trained on:

* queries: ``queries_per_identity`` crops of each identity (at most one per three of its crops, so
  that queries keep positives in the gallery), spread evenly over its track in time; every other
  crop of the evaluation identities is in the gallery;
* a query is matched only against the gallery of its own sequence (re-identification inside one
  scene, as a tracker needs it; other sequences would be trivial negatives);
* gallery crops of the query's own identity closer in time than ``min_gap_s`` are ignored, like
  the same-camera "junk" images of Market-1501: a neighbouring frame is a near-copy of the query;
* queries left without a positive gallery crop are not counted.

Gallery crops are ranked by Euclidean distance between embeddings (cosine distance for unit rows).
``rank1`` is the fraction of queries whose nearest gallery crop has their identity; ``mAP`` the mean
over queries of the average precision of the ranked gallery.

numpy only; the embedding helpers import torch or onnxruntime inside.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ros2_tracker.training.reid_data import ReidCrops

__all__ = [
    "RetrievalMetrics",
    "embed_images",
    "evaluate_embeddings",
    "onnx_embed_fn",
    "query_gallery",
    "retrieval_metrics",
    "torch_embed_fn",
]

EmbedFn = Callable[[np.ndarray], np.ndarray]
"""``(N, 3, H, W)`` float32 network input -> ``(N, D)`` float32 embeddings."""


class RetrievalMetrics(NamedTuple):
    """Retrieval quality of one query set.

    Attributes:
        rank1: fraction of queries whose nearest gallery crop is a true match, in [0, 1].
        mAP: mean average precision, in [0, 1].
        num_queries: queries counted (with at least one positive in their gallery).
        num_gallery: gallery crops.
    """

    rank1: float
    mAP: float
    num_queries: int
    num_gallery: int


def retrieval_metrics(query: np.ndarray, query_ids: np.ndarray, gallery: np.ndarray, gallery_ids: np.ndarray,
                      ignore: np.ndarray | None = None) -> RetrievalMetrics:
    """Rank-1 and mAP of queries ranked against a gallery by Euclidean distance.

    Args:
        query: ``(Q, D)`` query embeddings.
        query_ids: ``(Q,)`` query identities (any comparable values).
        gallery: ``(G, D)`` gallery embeddings.
        gallery_ids: ``(G,)`` gallery identities.
        ignore: optional ``(Q, G)`` bool, gallery entries left out for a query.

    Returns:
        The metrics; queries with no positive left in their gallery are skipped (0 counted: NaNs).
    """
    q = np.asarray(query, dtype=np.float64)
    g = np.asarray(gallery, dtype=np.float64)
    d2 = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * q @ g.T
    skip = np.zeros(d2.shape, bool) if ignore is None else np.asarray(ignore, bool)
    qi, gi = np.asarray(query_ids), np.asarray(gallery_ids)
    hits, aps = [], []
    for i in range(len(q)):
        keep = np.flatnonzero(~skip[i])
        order = keep[np.argsort(d2[i, keep], kind="stable")]
        match = gi[order] == qi[i]
        if not match.any():
            continue
        ranks = np.flatnonzero(match) + 1  # 1-based ranks of the positives
        aps.append(float(np.mean(np.arange(1, len(ranks) + 1) / ranks)))
        hits.append(bool(match[0]))
    if not aps:
        return RetrievalMetrics(float("nan"), float("nan"), 0, len(g))
    return RetrievalMetrics(float(np.mean(hits)), float(np.mean(aps)), len(aps), len(g))


def query_gallery(crops: ReidCrops, queries_per_identity: int = 1,
                  min_gap_s: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Query and gallery indices of evaluation crops, and the ignored pairs (see the module docstring).

    Args:
        crops: evaluation crops.
        queries_per_identity: queries per identity, evenly spaced over its crops in frame order; at
            most ``max(1, n // 3)`` of an identity's ``n`` crops (an identity with one crop only
            serves as a distractor).
        min_gap_s: same-identity gallery crops closer in time than this are ignored [s].

    Returns:
        ``(query_idx (Q,), gallery_idx (G,), ignore (Q, G) bool)`` into ``crops``.
    """
    queries = []
    for name in crops.identity_names:
        members = np.flatnonzero(crops.identities == name)
        if len(members) < 2:
            continue
        members = members[np.argsort(crops.frames[members], kind="stable")]
        k = min(queries_per_identity, max(1, len(members) // 3))
        queries.extend(members[np.unique(np.round(np.linspace(0, len(members) - 1, k)).astype(int))])
    q = np.asarray(sorted(queries), dtype=np.int64)
    g = np.setdiff1d(np.arange(len(crops)), q)
    fps = np.array([crops.fps.get(s, 30.0) for s in crops.sequences[q]])
    gap_s = np.abs(crops.frames[q][:, None] - crops.frames[g][None, :]) / fps[:, None]
    same_id = crops.identities[q][:, None] == crops.identities[g][None, :]
    other_seq = crops.sequences[q][:, None] != crops.sequences[g][None, :]
    return q, g, other_seq | (same_id & (gap_s < min_gap_s))


def evaluate_embeddings(embeddings: np.ndarray, crops: ReidCrops, queries_per_identity: int = 1,
                        min_gap_s: float = 0.1) -> dict[str, RetrievalMetrics]:
    """Metrics over all evaluation crops (key ``"all"``) and per sequence.

    Args:
        embeddings: ``(N, D)`` embeddings of ``crops`` (in order).
        crops: evaluation crops.
        queries_per_identity: queries per identity (see :func:`query_gallery`).
        min_gap_s: same-identity gallery crops closer in time than this are ignored [s] (see
            :func:`query_gallery`).
    """
    if len(embeddings) != len(crops):
        raise ValueError(f"{len(embeddings)} embeddings for {len(crops)} crops")
    q, g, ignore = query_gallery(crops, queries_per_identity, min_gap_s)
    out = {"all": retrieval_metrics(embeddings[q], crops.identities[q], embeddings[g], crops.identities[g],
                                    ignore)}
    for seq in sorted(set(crops.sequences.tolist())):
        qs = crops.sequences[q] == seq
        gs = crops.sequences[g] == seq
        out[seq] = retrieval_metrics(embeddings[q[qs]], crops.identities[q[qs]], embeddings[g[gs]],
                                     crops.identities[g[gs]], ignore[np.ix_(qs, gs)])
    return out


def embed_images(embed_fn: EmbedFn, images_bgr: np.ndarray, batch_size: int = 64,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> np.ndarray:
    """Embed ``(N, H, W, 3)`` uint8 BGR crops (already at the network size) in batches.

    The crops go through :func:`ros2_tracker.appearance.embedder.to_network_input` (RGB,
    ImageNet mean/std unless given), as in the ONNX Runtime embedder.

    Returns:
        ``(N, D)`` float32 embeddings, L2-normalised here (whatever the model gives).
    """
    from ros2_tracker.appearance.config import IMAGENET_MEAN, IMAGENET_STD
    from ros2_tracker.appearance.embedder import to_network_input

    mean = IMAGENET_MEAN if mean is None else mean
    std = IMAGENET_STD if std is None else std
    parts = [embed_fn(to_network_input(images_bgr[i:i + batch_size], mean, std, rgb=True))
             for i in range(0, len(images_bgr), batch_size)]
    if not parts:
        return np.zeros((0, 0), np.float32)
    out = np.concatenate(parts).astype(np.float32)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def torch_embed_fn(model, device: str = "cpu", backbone_only: bool = False) -> EmbedFn:
    """An :data:`EmbedFn` of a :class:`~ros2_tracker.appearance.torch_model.ReidEmbeddingNet` (eval mode).

    With ``backbone_only`` it returns the pooled 1280-d backbone features instead of the embeddings
    (the "untrained ImageNet backbone" baseline).
    """
    import torch

    def run(x: np.ndarray) -> np.ndarray:
        model.eval()
        with torch.no_grad():
            t = torch.from_numpy(x).to(device)
            out = model.backbone_features(t) if backbone_only else model(t)
        return out.float().cpu().numpy()

    return run


def onnx_embed_fn(path: str | Path, num_threads: int = 0) -> EmbedFn:
    """An :data:`EmbedFn` of an ONNX re-ID model run by ONNX Runtime on the CPU (NCHW input)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = num_threads
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x})[0]

    return run
