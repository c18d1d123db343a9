"""Similarity losses and miners against hand computations on tiny 2-D batches; gradients flow."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ros2_tracker.training.config import ReidTrainConfig  # noqa: E402
from ros2_tracker.training.losses import (  # noqa: E402
    ContrastiveLoss,
    GroupLoss,
    MultiSimilarityLoss,
    TripletLoss,
    build_loss,
    replicator_dynamics,
)
from ros2_tracker.training.mining import (  # noqa: E402
    batch_hard,
    distance_weighted,
    distance_weights,
    pairwise_distances,
    semi_hard,
)

# Four 2-D points: x0=(0,0) and x1=(0,1) are identity 0, x2=(1,0) and x3=(3,0) identity 1.
# Distances: d01=1, d02=1, d03=3, d12=sqrt2, d13=sqrt10, d23=2.
POINTS = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [3.0, 0.0]]
LABELS = [0, 0, 1, 1]
S2, S10 = math.sqrt(2.0), math.sqrt(10.0)


def _batch(points=POINTS, labels=LABELS, grad=False):
    return torch.tensor(points, dtype=torch.float64, requires_grad=grad), torch.tensor(labels)


def test_pairwise_distances_match_the_hand_values():
    e, _ = _batch()
    want = [[0, 1, 1, 3], [1, 0, S2, S10], [1, S2, 0, 2], [3, S10, 2, 0]]
    np.testing.assert_allclose(pairwise_distances(e).numpy(), want, atol=1e-6)


def test_contrastive_loss_is_the_issue_formula_averaged_over_pairs():
    # y*d^2 + (1-y)*max(0, m^2 - d^2), m = 2.5 (m^2 = 6.25), pairs i < j:
    # 01 pos 1; 02 neg 6.25-1 = 5.25; 03 neg 6.25-9 -> 0; 12 neg 6.25-2 = 4.25; 13 neg 6.25-10 -> 0;
    # 23 pos 4.  Mean = (1 + 5.25 + 0 + 4.25 + 0 + 4) / 6
    e, y = _batch()
    loss = ContrastiveLoss(margin=2.5)(e, y)
    assert loss.item() == pytest.approx((1 + 5.25 + 4.25 + 4) / 6)


def test_contrastive_three_samples_hand_value():
    # (0,0) id0, (1,0) id0, (0,2) id1, m = 2.5: 1 + (6.25-4) + (6.25-5) = 4.5 over 3 pairs
    e, y = _batch([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]], [0, 0, 1])
    assert ContrastiveLoss(margin=2.5)(e, y).item() == pytest.approx(1.5)


def test_triplet_batch_hard_hand_value():
    # anchor 0: p=1 (1), hardest n=2 (1): 1-1+0.5 = 0.5
    # anchor 1: p=0 (1), hardest n=2 (sqrt2): 1.5-sqrt2
    # anchor 2: p=3 (2), hardest n=0 (1): 2-1+0.5 = 1.5
    # anchor 3: p=2 (2), hardest n=0 (3): 2-3+0.5 < 0 -> 0
    e, y = _batch()
    loss = TripletLoss(margin=0.5, mining="batch_hard")(e, y)
    assert loss.item() == pytest.approx((0.5 + (1.5 - S2) + 1.5 + 0.0) / 4)


def test_triplet_semi_hard_hand_value():
    # (0,1): d_ap=1, nearest negative farther than 1: x3 at 3 -> 0
    # (1,0): d_ap=1, x2 at sqrt2 (in the band (1, 1.5)) -> 1.5 - sqrt2
    # (2,3): d_ap=2, no negative farther: the farthest, x1 at sqrt2 -> 2.5 - sqrt2
    # (3,2): d_ap=2, x0 at 3 -> 0
    e, y = _batch()
    loss = TripletLoss(margin=0.5, mining="semi_hard")(e, y)
    assert loss.item() == pytest.approx(((1.5 - S2) + (2.5 - S2)) / 4)


def test_batch_hard_picks_the_farthest_positive_and_nearest_negative():
    # anchor 0 = (0,0); positives at 1, 2, 4 (ids 1..3 are identity 0); negatives at 1.5, 3, 0.8
    pts = [[0, 0], [1, 0], [0, 2], [4, 0], [1.5, 0], [0, 3], [0, -0.8]]
    lab = [0, 0, 0, 0, 1, 1, 1]
    e, y = _batch(pts, lab)
    a, p, n = batch_hard(pairwise_distances(e), y)
    assert a.tolist() == list(range(7))
    assert p[0].item() == 3  # farthest positive (4)
    assert n[0].item() == 6  # nearest negative (0.8)
    d = pairwise_distances(e).numpy()
    for i, j, k in zip(a.tolist(), p.tolist(), n.tolist(), strict=True):
        same = np.array(lab) == lab[i]
        assert d[i, j] == pytest.approx(max(d[i, same & (np.arange(7) != i)]))
        assert d[i, k] == pytest.approx(min(d[i, ~same]))


def test_semi_hard_picks_the_negative_in_the_margin_band():
    # anchor (0,0), one positive at 1; negatives at 0.5 (hard), 1.2 (in band 1..1.3), 1.25 (in band),
    # 2 (easy). Semi-hard = the nearest negative farther than the positive: 1.2.
    pts = [[0, 0], [1, 0], [0, 0.5], [0, 1.2], [0, -1.25], [0, 2]]
    lab = [0, 0, 1, 1, 1, 1]
    e, y = _batch(pts, lab)
    a, p, n = semi_hard(pairwise_distances(e), y)
    first = (a == 0) & (p == 1)
    assert n[first].item() == 3
    d = pairwise_distances(e)
    d_ap, d_an = d[0, 1].item(), d[0, n[first]].item()
    assert d_ap < d_an < d_ap + 0.3
    # with a margin of 0.3 this triplet has a positive loss; the hard (0.5) one would have been skipped
    assert d_ap - d_an + 0.3 > 0


def test_distance_weights_in_two_dimensions_are_sqrt_one_minus_quarter_d_squared():
    # n = 2: 1/q(d) = (1 - d^2/4)^(1/2); scaled by the row's largest weight
    d = torch.tensor([[0.6, 1.0, 1.3, 1.6]], dtype=torch.float64)
    w = distance_weights(d, dim=2, cutoff=0.5, nonzero_cutoff=1.4)
    raw = np.sqrt(1 - np.array([0.6, 1.0, 1.3]) ** 2 / 4)
    np.testing.assert_allclose(w[0, :3].numpy(), raw / raw.max(), rtol=1e-9)
    assert w[0, 3].item() == 0.0  # beyond nonzero_cutoff


def test_distance_weighted_sampling_draws_negatives_with_the_weights():
    ang = [0.0, 0.3, 1.0, 1.6, 2.6]  # unit vectors in 2-D: identity 0 = the first two
    pts = [[math.cos(t), math.sin(t)] for t in ang]
    e, y = _batch(pts, [0, 0, 1, 1, 1])
    dist = pairwise_distances(e)
    g = torch.Generator().manual_seed(0)
    counts = np.zeros(5)
    for _ in range(2000):
        a, _, n = distance_weighted(dist, y, 2, cutoff=0.5, nonzero_cutoff=1.9, generator=g)
        assert (y[n] != y[a]).all()  # only negatives
        counts[n[a == 0].numpy()] += 1
    d0 = dist[0, 2:].numpy()
    want = np.where(d0 < 1.9, np.sqrt(1 - np.clip(d0, 0.5, None) ** 2 / 4), 0)
    np.testing.assert_allclose(counts[2:] / counts.sum(), want / want.sum(), atol=0.04)


def _ms_by_hand(e, y, alpha, beta, lam, eps):
    """Multi-similarity loss written out per anchor with Python sets and loops."""
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    s = e @ e.T
    total = 0.0
    for i in range(len(y)):
        P = [k for k in range(len(y)) if k != i and y[k] == y[i]]
        N = [k for k in range(len(y)) if y[k] != y[i]]
        if not P or not N:
            continue
        Nk = [k for k in N if s[i, k] > min(s[i, P]) - eps]
        Pk = [k for k in P if s[i, k] < max(s[i, N]) + eps]
        if not Nk or not Pk:
            continue
        total += math.log(1 + sum(math.exp(-alpha * (s[i, k] - lam)) for k in Pk)) / alpha
        total += math.log(1 + sum(math.exp(beta * (s[i, k] - lam)) for k in Nk)) / beta
    return total / len(y)


def test_multi_similarity_matches_the_formula_with_its_mining():
    pts = np.array([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]])
    lab = [0, 0, 1, 1]
    e, y = _batch(pts.tolist(), lab)
    loss = MultiSimilarityLoss(alpha=2.0, beta=10.0, base=0.5, epsilon=0.1)(e, y)
    assert loss.item() == pytest.approx(_ms_by_hand(pts, lab, 2.0, 10.0, 0.5, 0.1))
    # anchor 3 = (0,1): positive sim 0.8; negatives 0 and 0.6: only 0.6 > 0.8 - 0.1? no -> mined out,
    # so anchor 3 adds nothing; anchor 1: negative (0.6,0.8) sim 0.96 > min pos 0.8 - 0.1: kept.
    only_mined = _ms_by_hand(pts, lab, 2.0, 10.0, 0.5, 0.1)
    assert only_mined > 0


def test_replicator_dynamics_one_step_by_hand_keeps_anchors_and_rows_stochastic():
    x0 = torch.tensor([[0.7, 0.3], [0.4, 0.6], [0.5, 0.5]], dtype=torch.float64)
    w = torch.tensor([[0, 0.9, 0.1], [0.9, 0, 0.2], [0.1, 0.2, 0]], dtype=torch.float64)
    anchors = torch.tensor([True, False, False])
    labels = torch.tensor([0, 0, 1])
    x = replicator_dynamics(x0, w, anchors, labels, iterations=1)
    # anchor row 0 becomes [1, 0]; pi = W X with X = [[1,0],[.4,.6],[.5,.5]]
    # pi_1 = .9*[1,0] + .2*[.5,.5] = [1.0, 0.1];   x_1 = [.4*1.0, .6*0.1] / (.4 + .06)
    # pi_2 = .1*[1,0] + .2*[.4,.6] = [0.18, 0.12]; x_2 = [.5*.18, .5*.12] / (.09 + .06)
    want = [[1.0, 0.0], [0.4 / 0.46, 0.06 / 0.46], [0.09 / 0.15, 0.06 / 0.15]]
    np.testing.assert_allclose(x.numpy(), want, rtol=1e-9)
    many = replicator_dynamics(x0, w, anchors, labels, iterations=10)
    np.testing.assert_allclose(many.sum(1).numpy(), 1.0, rtol=1e-9)
    assert many[0].tolist() == [1.0, 0.0]  # anchor fixed


def test_replicator_dynamics_row_without_support_keeps_its_value():
    x0 = torch.tensor([[0.5, 0.5], [0.2, 0.8]], dtype=torch.float64)
    w = torch.zeros(2, 2, dtype=torch.float64)  # nothing similar: pi = 0
    x = replicator_dynamics(x0, w, torch.tensor([False, False]), torch.tensor([0, 1]), iterations=3)
    np.testing.assert_allclose(x.numpy(), x0.numpy())


def test_group_loss_hand_value_without_anchors():
    # 3 samples, 2 classes, 1 iteration, no anchors, temperature 1, ce_weight 0.5
    logits = torch.tensor([[2.0, 0.0], [0.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    e = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=torch.float64)
    y = torch.tensor([0, 0, 1])
    loss = GroupLoss(iterations=1, anchors_per_class=0, ce_weight=0.5)(e, y, logits)
    x0 = np.exp(logits.numpy()) / np.exp(logits.numpy()).sum(1, keepdims=True)
    w = np.array([[0, 0.6, 0.0], [0.6, 0, 0.8], [0.0, 0.8, 0]])  # relu(cos), zero diagonal
    pi = w @ x0
    x1 = x0 * pi / (x0 * pi).sum(1, keepdims=True)
    refined = -np.mean(np.log([x1[0, 0], x1[1, 0], x1[2, 1]]))
    ce = -np.mean(np.log([x0[0, 0], x0[1, 0], x0[2, 1]]))
    assert loss.item() == pytest.approx(refined + 0.5 * ce)


def test_group_loss_anchor_draw_leaves_a_free_sample_per_identity():
    y = torch.tensor([0, 0, 0, 1, 1, 2])
    anchors = GroupLoss(anchors_per_class=2, generator=torch.Generator().manual_seed(1)).draw_anchors(y)
    assert anchors[:3].sum() == 2 and anchors[3:5].sum() == 1 and not anchors[5]


def test_group_loss_requires_logits():
    e, y = _batch()
    with pytest.raises(ValueError, match="logits"):
        GroupLoss()(e, y)


@pytest.mark.parametrize("loss", [
    ContrastiveLoss(margin=2.5),
    ContrastiveLoss(margin=1.0, mining="distance_weighted", nonzero_cutoff=2.0,
                    generator=torch.Generator().manual_seed(0)),
    TripletLoss(margin=0.5, mining="batch_hard"),
    TripletLoss(margin=0.5, mining="semi_hard"),
    TripletLoss(margin=1.0, mining="distance_weighted", nonzero_cutoff=2.0,
                generator=torch.Generator().manual_seed(0)),
    MultiSimilarityLoss(beta=10.0),
], ids=["contrastive", "contrastive-dws", "batch-hard", "semi-hard", "triplet-dws", "multi-similarity"])
def test_gradients_reach_the_embeddings(loss):
    pts = [[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]]  # unit vectors (distance-weighted sampling)
    e, y = _batch(pts, LABELS, grad=True)
    out = loss(e, y)
    assert out.item() > 0
    out.backward()
    assert torch.isfinite(e.grad).all() and e.grad.abs().sum() > 0


def test_group_loss_gradients_flow_through_the_refinement():
    e = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.6, 0.8], [0.0, 1.0]], dtype=torch.float64,
                     requires_grad=True)
    logits = torch.zeros(4, 2, dtype=torch.float64, requires_grad=True)
    y = torch.tensor(LABELS)
    # ce_weight 0: every gradient comes through the replicator dynamics
    loss = GroupLoss(iterations=3, anchors_per_class=1, ce_weight=0.0,
                     generator=torch.Generator().manual_seed(0))(e, y, logits)
    loss.backward()
    assert e.grad.abs().sum() > 0 and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("loss,mining,cls", [
    ("contrastive", "all", ContrastiveLoss), ("triplet", "semi_hard", TripletLoss),
    ("multi_similarity", "all", MultiSimilarityLoss), ("group", "all", GroupLoss)])
def test_build_loss_follows_the_config(loss, mining, cls):
    built = build_loss(ReidTrainConfig(loss=loss, mining=mining))
    assert isinstance(built, cls)
    if cls is TripletLoss:
        assert built.mining == "semi_hard"
