"""Rank-1 / mAP against hand computations, and the query/gallery protocol."""

import numpy as np
import pytest

from ros2_tracker.training.reid_data import ReidCrops
from ros2_tracker.training.reid_eval import evaluate_embeddings, query_gallery, retrieval_metrics


def test_rank1_and_map_by_hand():
    # gallery on a line; queries at 0 (id a) and 10 (id b)
    gallery = np.array([[1.0], [2.0], [3.0], [11.0], [12.0]])
    g_ids = np.array(["a", "b", "a", "b", "a"])
    query = np.array([[0.0], [10.0]])
    m = retrieval_metrics(query, np.array(["a", "b"]), gallery, g_ids)
    # query a: ranking a(1) b(2) a(3) b(11) a(12): positives at ranks 1, 3, 5 -> AP = (1 + 2/3 + 3/5) / 3
    # query b: ranking b(11) a(12) a(3) b(2) a(1): positives at ranks 1, 4 -> AP = (1 + 2/4) / 2
    assert m.rank1 == 1.0
    assert m.mAP == pytest.approx(((1 + 2 / 3 + 3 / 5) / 3 + (1 + 0.5) / 2) / 2)
    assert (m.num_queries, m.num_gallery) == (2, 5)


def test_ignored_pairs_and_queries_without_positives():
    gallery = np.array([[1.0], [2.0]])
    ignore = np.array([[True, False], [False, False]])
    m = retrieval_metrics(np.array([[0.0], [5.0]]), np.array(["a", "c"]), gallery, np.array(["a", "b"]),
                          ignore)
    # query a: its only positive is ignored -> not counted; query c has no positive -> not counted
    assert m.num_queries == 0 and np.isnan(m.rank1)
    m = retrieval_metrics(np.array([[0.0]]), np.array(["b"]), gallery, np.array(["a", "b"]),
                          np.array([[True, False]]))
    assert m.rank1 == 1.0 and m.mAP == 1.0  # the nearer wrong crop is ignored


def _eval_crops():
    ids = ["S:1"] * 6 + ["S:2"] * 4 + ["T:1"] * 3 + ["T:9"]
    seqs = [i.split(":")[0] for i in ids]
    frames = [1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 1, 5, 9, 1]
    return ReidCrops(np.zeros((14, 8, 4, 3), np.uint8), np.array(ids), np.array(seqs), np.array(frames),
                     {"S": 10.0, "T": 10.0})


def test_query_gallery_protocol():
    crops = _eval_crops()
    q, g, ignore = query_gallery(crops, queries_per_identity=2, min_gap_s=0.15)
    # S:1 (6 crops): first and last; S:2 (4 crops) and T:1 (3 crops): one query per 3 crops, the
    # first; T:9 (1 crop) is only a distractor
    assert q.tolist() == [0, 5, 6, 10]
    assert not set(q.tolist()) & set(g.tolist())
    assert sorted(q.tolist() + g.tolist()) == list(range(14))
    qi = {int(k): r for r, k in enumerate(q)}
    gi = {int(k): c for c, k in enumerate(g)}
    assert ignore[qi[0], gi[1]]  # same id, 1 frame = 0.1 s apart < 0.15 s
    assert not ignore[qi[0], gi[2]]  # same id, 0.2 s apart
    assert not ignore[qi[0], gi[7]]  # other id, same sequence
    assert ignore[qi[0], gi[11]]  # other sequence


def test_evaluate_embeddings_per_sequence_and_overall():
    crops = _eval_crops()
    emb = np.array([[0, 1.0] if i.endswith(":1") else [1.0, 0] for i in crops.identities])
    emb = emb + np.arange(14)[:, None] * 1e-3  # distinct
    out = evaluate_embeddings(emb, crops, queries_per_identity=1, min_gap_s=0.0)
    assert set(out) == {"all", "S", "T"}
    assert out["S"].rank1 == 1.0 and out["all"].num_queries == out["S"].num_queries + out["T"].num_queries
