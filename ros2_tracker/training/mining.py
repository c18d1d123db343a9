"""Pair and triplet selection inside a batch: batch-hard, semi-hard and distance-weighted sampling.

Each miner takes the ``(B, B)`` Euclidean distance matrix of the batch's embeddings and the ``(B,)``
labels and returns index tensors, so the losses stay simple and the selection is tested on its own.
Selection is not differentiated (indices only); the loss is computed on the selected distances.

* :func:`batch_hard` (Hermans et al., 2017): per anchor, the farthest positive and the nearest negative.
* :func:`semi_hard` (Schroff et al., FaceNet 2015): per anchor-positive pair, the nearest negative that
  is farther than the positive; it lies in the margin band ``d(a,p) < d(a,n) < d(a,p) + m`` when one
  exists there (positive loss), beyond it otherwise (zero loss). With no negative farther than the
  positive, the farthest negative (the least hard one) is taken, as TensorFlow Addons does.
* :func:`distance_weighted` (Manmatha et al., ICCV 2017): per anchor-positive pair, one negative
  drawn with probability ``min(lambda, 1/q(d))``, where ``q(d) ∝ d^(n-2) (1 - d^2/4)^((n-3)/2)`` is the
  density of distances between points uniform on the unit sphere in ``n`` dimensions: the draw is
  spread evenly over distances instead of crowding at ``sqrt(2)`` like uniform sampling. Distances
  are clamped below at ``cutoff``; negatives beyond ``nonzero_cutoff`` (no loss) are not drawn.
"""

from __future__ import annotations

import torch

Triplets = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""``(anchors, positives, negatives)``: three ``(T,)`` index tensors into the batch."""

__all__ = ["Triplets", "batch_hard", "distance_weighted", "distance_weights", "pairwise_distances",
           "semi_hard"]


def pairwise_distances(embeddings: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``(B, B)`` Euclidean distances between the rows of ``(B, D)`` embeddings.

    Differentiable everywhere (``sqrt`` of a clamped square: the diagonal has a zero, finite gradient).
    """
    sq = (embeddings.unsqueeze(1) - embeddings.unsqueeze(0)).pow(2).sum(-1)
    return torch.sqrt(sq.clamp_min(eps)) * (sq > eps)


def _masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)
    return same & ~eye, ~same


def batch_hard(dist: torch.Tensor, labels: torch.Tensor) -> Triplets:
    """Hardest positive and hardest negative of every anchor.

    Args:
        dist: ``(B, B)`` distances.
        labels: ``(B,)`` identity labels.

    Returns:
        ``(anchors, positives, negatives)``: ``(T,)`` index tensors, one triplet per anchor that has at
        least one positive and one negative (the farthest positive, the nearest negative).
    """
    pos, neg = _masks(labels)
    has = pos.any(1) & neg.any(1)
    d = dist.detach()
    hardest_pos = torch.where(pos, d, torch.full_like(d, -torch.inf)).argmax(1)
    hardest_neg = torch.where(neg, d, torch.full_like(d, torch.inf)).argmin(1)
    anchors = torch.nonzero(has).reshape(-1)
    return anchors, hardest_pos[anchors], hardest_neg[anchors]


def semi_hard(dist: torch.Tensor, labels: torch.Tensor) -> Triplets:
    """One negative per anchor-positive pair: the nearest one farther than the positive.

    Args:
        dist: ``(B, B)`` distances.
        labels: ``(B,)`` identity labels.

    Returns:
        ``(anchors, positives, negatives)``: ``(T,)`` index tensors over every ordered positive pair
        ``(a, p)``, ``a != p``, whose anchor has a negative. See the module docstring for the fallback.
    """
    pos, neg = _masks(labels)
    d = dist.detach()
    a, p = torch.nonzero(pos & neg.any(1, keepdim=True), as_tuple=True)
    d_ap = d[a, p].unsqueeze(1)  # (T, 1)
    d_an = d[a]  # (T, B)
    negs = neg[a]
    farther = negs & (d_an > d_ap)
    inf = torch.full_like(d_an, torch.inf)
    nearest_farther = torch.where(farther, d_an, inf).argmin(1)
    farthest = torch.where(negs, d_an, -inf).argmax(1)
    n = torch.where(farther.any(1), nearest_farther, farthest)
    return a, p, n


def distance_weights(dist: torch.Tensor, dim: int, cutoff: float = 0.5, nonzero_cutoff: float = 1.4,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """Sampling weights ``1 / q(d)`` of distances between unit vectors in ``dim`` dimensions.

    ``log q(d) = (dim - 2) log d + (dim - 3) / 2 * log(1 - d^2 / 4)``, with ``d`` clamped to
    ``[cutoff, 1.999]``. Each row is scaled so its largest weight is 1 (the scale cancels when a
    row is normalised into probabilities; it keeps ``exp`` from overflowing in high dimensions).
    Entries with ``d >= nonzero_cutoff`` or outside ``mask`` get weight 0.

    Args:
        dist: ``(..., B)`` distances, in [0, 2] for unit vectors.
        dim: embedding dimension ``n`` (>= 2).
        cutoff: lower clamp of the distance.
        nonzero_cutoff: distances at or above this get weight 0.
        mask: optional bool tensor of ``dist``'s shape: the entries that may be drawn.

    Returns:
        Weights of the shape of ``dist``, in [0, 1]; a row with no admissible entry is all zero.
    """
    d = dist.detach().clamp(min=cutoff, max=1.999)
    log_w = -((dim - 2.0) * torch.log(d) + (dim - 3.0) / 2.0 * torch.log(1.0 - 0.25 * d * d))
    keep = dist.detach() < nonzero_cutoff
    if mask is not None:
        keep = keep & mask
    log_w = torch.where(keep, log_w, torch.full_like(log_w, -torch.inf))
    row_max = log_w.amax(-1, keepdim=True)
    return torch.exp(log_w - torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max)))


def distance_weighted(dist: torch.Tensor, labels: torch.Tensor, dim: int, *, cutoff: float = 0.5,
                      nonzero_cutoff: float = 1.4, generator: torch.Generator | None = None) -> Triplets:
    """One negative per anchor-positive pair, drawn with distance-weighted probabilities.

    An anchor whose negatives all lie beyond ``nonzero_cutoff`` draws uniformly among its negatives.

    Args:
        dist: ``(B, B)`` distances between unit embeddings.
        labels: ``(B,)`` identity labels.
        dim: embedding dimension.
        cutoff: lower clamp of the distance (see :func:`distance_weights`).
        nonzero_cutoff: distances at or above this get weight 0 (see :func:`distance_weights`).
        generator: torch random generator (reproducible draws).

    Returns:
        ``(anchors, positives, negatives)`` index tensors over every ordered positive pair.
    """
    pos, neg = _masks(labels)
    w = distance_weights(dist, dim, cutoff, nonzero_cutoff, mask=neg)
    empty = w.sum(1, keepdim=True) <= 0
    w = torch.where(empty, neg.to(w.dtype), w)
    a, p = torch.nonzero(pos & neg.any(1, keepdim=True), as_tuple=True)
    if len(a) == 0:
        return a, p, a.clone()
    probs = w[a]
    if generator is not None and generator.device != probs.device:
        probs = probs.to(generator.device)  # draw where the generator lives (a CPU stream on a GPU run)
    n = torch.multinomial(probs, 1, generator=generator).reshape(-1).to(a.device)
    return a, p, n
