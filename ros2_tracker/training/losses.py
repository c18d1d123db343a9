"""Similarity-learning losses for re-ID embeddings, one ``torch.nn.Module`` each.

Every loss is called as ``loss(embeddings, labels, logits=None) -> scalar``: ``(B, D)`` embeddings
(unit rows from the model; the formulas do not assume it except where stated), ``(B,)`` integer
identity labels, and for :class:`GroupLoss` the ``(B, C)`` classifier logits. ``d`` is the Euclidean
distance, ``S`` the cosine similarity.

* :class:`ContrastiveLoss`: ``y·d² + (1-y)·max(0, m² - d²)`` per pair, ``y = 1`` for the same
  identity, averaged over the pairs. This is the issue's form: the margin acts on *squared*
  distances (Hadsell et al.'s original is ``(1-y)·max(0, m - d)²``). Both push negatives out to
  ``d = m`` and stop there; along ``d`` this one pushes a negative with force ``2d`` (gently when it
  is very close), Hadsell's with ``2(m - d)`` (hardest when very close); this one is smooth at
  ``d = 0``, where Hadsell's needs the gradient of ``d`` itself.
* :class:`TripletLoss`: ``max(0, d(a,p) - d(a,n) + m)`` averaged over mined triplets (batch-hard,
  semi-hard or distance-weighted, :mod:`ros2_tracker.training.mining`).
* :class:`MultiSimilarityLoss` (Wang et al., CVPR 2019): pairs mined by relative similarity, then
  ``1/alpha·log(1 + sum_P exp(-alpha(S - lambda))) + 1/beta·log(1 + sum_N exp(beta(S - lambda)))``
  per anchor, summed over anchors with both kinds of pair and divided by ``B``.
* :class:`GroupLoss` (Elezi et al., ECCV 2020): a classifier's softmax gives the initial label
  assignment ``X``; ``W`` holds the non-negative cosine similarities of the embeddings (zero
  diagonal); a few replicator-dynamics steps ``x_ik <- x_ik·pi_ik / sum_m x_im·pi_im`` with
  ``pi = W·X`` refine ``X`` while labelled anchors stay one-hot; the loss is the cross-entropy of the refined
  probabilities of the other samples (plus ``ce_weight`` x the classifier's own cross-entropy).
  Gradients flow through the refinement into both the embeddings (via ``W``) and the classifier.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ros2_tracker.training.mining import batch_hard, distance_weighted, pairwise_distances, semi_hard

__all__ = [
    "ContrastiveLoss",
    "GroupLoss",
    "MultiSimilarityLoss",
    "TripletLoss",
    "build_loss",
    "replicator_dynamics",
]


def _zero(embeddings: torch.Tensor) -> torch.Tensor:
    """A zero loss that is still connected to the graph (``backward`` works, gradients are 0)."""
    return embeddings.sum() * 0.0


class ContrastiveLoss(nn.Module):
    """``mean over pairs of y·d² + (1-y)·max(0, m² - d²)``.

    Args:
        margin: ``m``: negatives closer than ``m`` are pushed apart.
        mining: ``"all"``: every unordered pair ``i < j`` of the batch; ``"distance_weighted"``:
            per ordered positive pair ``(a, p)`` the pair itself and ``(a, n)`` with a negative drawn
            by distance-weighted sampling (the embeddings must be unit rows then).
        cutoff, nonzero_cutoff: distance-weighted sampling bounds (see ``mining.distance_weights``).
        generator: random generator of the sampling.
    """

    def __init__(self, margin: float = 1.0, mining: str = "all", *, cutoff: float = 0.5,
                 nonzero_cutoff: float = 1.4, generator: torch.Generator | None = None):
        super().__init__()
        if mining not in ("all", "distance_weighted"):
            raise ValueError(f"contrastive mining must be 'all' or 'distance_weighted', got {mining!r}")
        self.margin, self.mining = float(margin), mining
        self.cutoff, self.nonzero_cutoff, self.generator = cutoff, nonzero_cutoff, generator

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor,
                logits: torch.Tensor | None = None) -> torch.Tensor:
        """The loss of a batch (``logits`` is ignored)."""
        sq = (embeddings.unsqueeze(1) - embeddings.unsqueeze(0)).pow(2).sum(-1)  # d^2, (B, B)
        same = (labels.unsqueeze(0) == labels.unsqueeze(1)).to(sq.dtype)
        terms = same * sq + (1.0 - same) * F.relu(self.margin**2 - sq)
        if self.mining == "all":
            i, j = torch.triu_indices(len(labels), len(labels), offset=1, device=labels.device)
            return terms[i, j].mean() if len(i) else _zero(embeddings)
        a, p, n = distance_weighted(pairwise_distances(embeddings), labels, embeddings.shape[1],
                                    cutoff=self.cutoff, nonzero_cutoff=self.nonzero_cutoff,
                                    generator=self.generator)
        if len(a) == 0:
            return _zero(embeddings)
        return torch.cat([terms[a, p], terms[a, n]]).mean()


class TripletLoss(nn.Module):
    """``mean over mined triplets of max(0, d(a,p) - d(a,n) + m)``.

    Args:
        margin: ``m``.
        mining: ``"batch_hard"``, ``"semi_hard"`` or ``"distance_weighted"``.
        cutoff, nonzero_cutoff: distance-weighted sampling bounds.
        generator: random generator of distance-weighted sampling.
    """

    def __init__(self, margin: float = 0.3, mining: str = "batch_hard", *, cutoff: float = 0.5,
                 nonzero_cutoff: float = 1.4, generator: torch.Generator | None = None):
        super().__init__()
        if mining not in ("batch_hard", "semi_hard", "distance_weighted"):
            raise ValueError(f"triplet mining must be batch_hard, semi_hard or distance_weighted, "
                             f"got {mining!r}")
        self.margin, self.mining = float(margin), mining
        self.cutoff, self.nonzero_cutoff, self.generator = cutoff, nonzero_cutoff, generator

    def mine(self, dist: torch.Tensor, labels: torch.Tensor,
             dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(anchors, positives, negatives)`` index tensors selected by ``mining``."""
        if self.mining == "batch_hard":
            return batch_hard(dist, labels)
        if self.mining == "semi_hard":
            return semi_hard(dist, labels)
        return distance_weighted(dist, labels, dim, cutoff=self.cutoff, nonzero_cutoff=self.nonzero_cutoff,
                                 generator=self.generator)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor,
                logits: torch.Tensor | None = None) -> torch.Tensor:
        """The loss of a batch (``logits`` is ignored)."""
        dist = pairwise_distances(embeddings)
        a, p, n = self.mine(dist, labels, embeddings.shape[1])
        if len(a) == 0:
            return _zero(embeddings)
        return F.relu(dist[a, p] - dist[a, n] + self.margin).mean()


class MultiSimilarityLoss(nn.Module):
    """Multi-similarity loss with its pair mining (Wang et al., CVPR 2019).

    For anchor ``i`` with positives ``P_i`` and negatives ``N_i`` (cosine similarities ``S``), a
    negative ``k`` is kept when ``S_ik > min_{P_i} S - epsilon`` and a positive ``k`` when
    ``S_ik < max_{N_i} S + epsilon``. Anchors left without a kept positive or negative add nothing.

    Args:
        alpha: positive scale ``alpha``.
        beta: negative scale ``beta``.
        base: similarity offset ``lambda``.
        epsilon: mining margin ``epsilon``.
    """

    def __init__(self, alpha: float = 2.0, beta: float = 50.0, base: float = 0.5, epsilon: float = 0.1):
        super().__init__()
        self.alpha, self.beta = float(alpha), float(beta)
        self.base, self.epsilon = float(base), float(epsilon)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor,
                logits: torch.Tensor | None = None) -> torch.Tensor:
        """The loss of a batch (``logits`` is ignored)."""
        e = F.normalize(embeddings, dim=1)
        sim = e @ e.t()
        same = labels.unsqueeze(0) == labels.unsqueeze(1)
        pos = same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        neg = ~same
        s = sim.detach()
        inf = torch.full_like(s, torch.inf)
        min_pos = torch.where(pos, s, inf).amin(1, keepdim=True)
        max_neg = torch.where(neg, s, -inf).amax(1, keepdim=True)
        keep_neg = neg & (s > min_pos - self.epsilon)
        keep_pos = pos & (s < max_neg + self.epsilon)
        anchors = keep_pos.any(1) & keep_neg.any(1)
        if not anchors.any():
            return _zero(embeddings)
        pos_term = _log1p_sum_exp(-self.alpha * (sim - self.base), keep_pos) / self.alpha
        neg_term = _log1p_sum_exp(self.beta * (sim - self.base), keep_neg) / self.beta
        return (pos_term + neg_term)[anchors].sum() / len(labels)


def _log1p_sum_exp(z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row-wise ``log(1 + sum over mask of exp(z))``, computed stably (``logsumexp`` with a 0 column)."""
    z = torch.where(mask, z, torch.full_like(z, -torch.inf))
    return torch.logsumexp(torch.cat([torch.zeros_like(z[:, :1]), z], dim=1), dim=1)


def replicator_dynamics(x0: torch.Tensor, w: torch.Tensor, anchors: torch.Tensor, labels: torch.Tensor,
                        iterations: int, eps: float = 1e-12) -> torch.Tensor:
    """Refine label assignments with replicator dynamics, anchors held at their one-hot labels.

    Each step computes ``pi = W·X`` and ``x_ik <- x_ik·pi_ik / sum_m x_im·pi_im``; a row whose
    denominator is (numerically) zero keeps its previous value, so every row stays a probability vector.

    Args:
        x0: ``(B, C)`` initial assignment, rows summing to 1 (e.g. a softmax).
        w: ``(B, B)`` non-negative similarities with a zero diagonal.
        anchors: ``(B,)`` bool, samples whose label is given.
        labels: ``(B,)`` int labels (used for the anchors).
        iterations: number of steps (>= 0).
        eps: denominator floor.

    Returns:
        ``(B, C)`` refined assignment; differentiable with respect to ``x0`` and ``w``.
    """
    onehot = F.one_hot(labels, x0.shape[1]).to(x0.dtype)
    anchor_rows = anchors.unsqueeze(1)
    x = torch.where(anchor_rows, onehot, x0)
    for _ in range(iterations):
        pi = w @ x
        num = x * pi
        den = num.sum(1, keepdim=True)
        x = torch.where(den > eps, num / den.clamp_min(eps), x)
        x = torch.where(anchor_rows, onehot, x)
    return x


class GroupLoss(nn.Module):
    """Group Loss (Elezi et al., ECCV 2020): replicator-dynamics refinement + cross-entropy.

    Args:
        iterations: replicator-dynamics steps.
        anchors_per_class: labelled anchors drawn at random per identity of the batch (an identity
            with no more crops than that keeps one unlabelled sample).
        temperature: the initial assignment is ``softmax(logits / temperature)``.
        ce_weight: weight of the plain cross-entropy of the logits, added to the refined one.
        generator: random generator of the anchor draw.
    """

    def __init__(self, iterations: int = 3, anchors_per_class: int = 1, temperature: float = 1.0,
                 ce_weight: float = 1.0, generator: torch.Generator | None = None):
        super().__init__()
        self.iterations, self.anchors_per_class = int(iterations), int(anchors_per_class)
        self.temperature, self.ce_weight, self.generator = float(temperature), float(ce_weight), generator

    def similarity(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``W``: ``(B, B)`` ``max(0, cos)`` of the embeddings with a zero diagonal."""
        e = F.normalize(embeddings, dim=1)
        w = F.relu(e @ e.t())
        return w * (1.0 - torch.eye(len(e), dtype=w.dtype, device=w.device))

    def draw_anchors(self, labels: torch.Tensor) -> torch.Tensor:
        """``(B,)`` bool: ``anchors_per_class`` random samples of each identity (at most count - 1)."""
        anchors = torch.zeros(len(labels), dtype=torch.bool, device=labels.device)
        if self.anchors_per_class == 0:
            return anchors
        order = torch.randperm(len(labels), generator=self.generator,
                               device=self.generator.device if self.generator is not None else "cpu")
        order = order.to(labels.device)
        for c in torch.unique(labels):
            members = order[labels[order] == c]
            anchors[members[: min(self.anchors_per_class, len(members) - 1)]] = True
        return anchors

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor,
                logits: torch.Tensor | None = None) -> torch.Tensor:
        """The loss of a batch; ``logits`` (``(B, C)``, classifier output) are required."""
        if logits is None:
            raise ValueError("GroupLoss needs the classifier logits (a model built with num_classes > 0)")
        anchors = self.draw_anchors(labels)
        x0 = F.softmax(logits / self.temperature, dim=1)
        x = replicator_dynamics(x0, self.similarity(embeddings), anchors, labels, self.iterations)
        free = ~anchors
        refined = F.nll_loss(torch.log(x[free].clamp_min(1e-12)), labels[free]) if free.any() \
            else _zero(embeddings)
        return refined + self.ce_weight * F.cross_entropy(logits, labels)


def build_loss(config, generator: torch.Generator | None = None) -> nn.Module:
    """The loss that a :class:`~ros2_tracker.training.config.ReidTrainConfig` names, with its parameters."""
    if config.loss == "contrastive":
        return ContrastiveLoss(config.contrastive_margin, config.mining, cutoff=config.dws_cutoff,
                               nonzero_cutoff=config.dws_nonzero_cutoff, generator=generator)
    if config.loss == "triplet":
        return TripletLoss(config.triplet_margin, config.mining, cutoff=config.dws_cutoff,
                           nonzero_cutoff=config.dws_nonzero_cutoff, generator=generator)
    if config.loss == "multi_similarity":
        return MultiSimilarityLoss(config.ms_alpha, config.ms_beta, config.ms_base, config.ms_epsilon)
    if config.loss == "group":
        return GroupLoss(config.group_iterations, config.group_anchors_per_class, config.group_temperature,
                         config.group_ce_weight, generator=generator)
    raise ValueError(f"unknown loss {config.loss!r}")
