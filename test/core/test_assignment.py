"""Assignment with dummy nodes: the issue's worked example, optimality, and the sparse path."""

import itertools

import numpy as np
import pytest

from ros2_tracker.core import assignment
from ros2_tracker.core.assignment import assign, assign_ids, assign_sparse


@pytest.fixture(params=["default", 4, 24])
def dense_limit(request, monkeypatch):
    """Every route of the solver on the same problems: the default size up to which one dense augmented
    problem is solved (most frames), and small limits that send the same problems through the split into
    isolated pairs and a contested rest, solved dense or as a sparse graph."""
    if request.param != "default":
        monkeypatch.setattr(assignment, "_SMALL", request.param)
    return assignment._SMALL


def test_worked_example_from_the_issue():
    # rows = detections, columns = predictions
    cost = np.array([[0.9, 0.8, 0.8], [0.5, 0.4, 0.7], [0.2, 0.1, 0.4], [0.1, 0.2, 0.5]])
    a = assign(cost, 0.3)
    assert sorted(map(tuple, a.matches.tolist())) == [(2, 1), (3, 0)]
    assert a.unmatched_rows.tolist() == [0, 1]
    assert a.unmatched_cols.tolist() == [2]


def _best_gain(c, t):
    """Brute force: the largest total (t - cost) over all matchings using pairs below t."""
    n, m = c.shape
    best = 0.0
    for k in range(min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for cols in itertools.permutations(range(m), k):
                if all(c[r, q] < t for r, q in zip(rows, cols, strict=False)):
                    best = max(best, sum(t - c[r, q] for r, q in zip(rows, cols, strict=False)))
    return best


@pytest.mark.parametrize("seed", range(40))
def test_optimal_against_brute_force(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(0, 5, size=2)
    c = rng.random((n, m))
    t = float(rng.uniform(0.1, 0.9))
    a = assign(c, t)
    gain = sum(t - c[r, q] for r, q in a.matches)
    assert gain == pytest.approx(_best_gain(c, t))
    assert all(c[r, q] < t for r, q in a.matches)
    # every row and column is either matched once or listed unmatched
    assert sorted(a.matches[:, 0].tolist() + a.unmatched_rows.tolist()) == list(range(n))
    assert sorted(a.matches[:, 1].tolist() + a.unmatched_cols.tolist()) == list(range(m))


def test_large_sparse_path_equals_small_path():
    rng = np.random.default_rng(7)
    blocks = [rng.random((3, 4)) for _ in range(20)]  # 20 independent clusters -> 60 x 80 matrix
    big = np.full((60, 80), np.inf)
    total = 0.0
    for k, b in enumerate(blocks):
        big[3 * k:3 * k + 3, 4 * k:4 * k + 4] = b
        total += _best_gain(b, 0.5)
    a = assign(big, 0.5)  # > small size: connected components
    assert sum(0.5 - big[r, q] for r, q in a.matches) == pytest.approx(total)
    r, q = np.nonzero(np.isfinite(big))
    s = assign_sparse(60, 80, r, q, big[r, q], 0.5)
    assert sorted(map(tuple, s.matches.tolist())) == sorted(map(tuple, a.matches.tolist()))


def test_nan_inf_and_empty():
    assert assign(np.empty((0, 3)), 0.5).unmatched_cols.tolist() == [0, 1, 2]
    assert assign(np.empty((2, 0)), 0.5).unmatched_rows.tolist() == [0, 1]
    a = assign(np.array([[np.nan, 0.1], [np.inf, np.inf]]), 0.5)
    assert a.matches.tolist() == [[0, 1]]


def test_a_forbidden_pair_is_never_matched_at_a_large_threshold():
    # row 0 contests both columns; row 1 may take neither. At threshold 1e10 leaving row 1 and a column
    # unmatched costs 1e10, so a forbidden entry must cost more than that, or the solver takes (1, 1)
    c = np.array([[1.0, 1.0], [np.inf, np.inf]])
    a = assign(c, 1e10)
    assert len(a.matches) == 1 and a.matches[0, 0] == 0
    assert a.unmatched_rows.tolist() == [1]


def _augmented_gain(c, t):
    """Reference optimum: the textbook (R+K) x (K+R) augmented matrix solved by scipy in one piece."""
    from scipy.optimize import linear_sum_assignment

    n, m = c.shape
    ok = c < t
    big = np.full((n + m, m + n), 1e9)
    big[:n, :m][ok] = c[ok]
    big[:n, m:].flat[:: n + 1] = t / 2
    big[n:, :m].flat[:: m + 1] = t / 2
    big[n:, m:] = 0.0
    rows, cols = linear_sum_assignment(big)
    return sum(t - c[r, q] for r, q in zip(rows, cols, strict=True) if r < n and q < m and ok[r, q])


@pytest.mark.parametrize("seed", range(30))
def test_crowded_frames_take_isolated_pairs_and_solve_only_the_contested_rest(seed, dense_limit):
    # mixing isolated pairs (taken directly once split) with contested groups small enough for the dense
    # solver or large enough for the sparse one
    rng = np.random.default_rng(seed)
    n, m = rng.integers(13, 60, size=2)
    c = rng.random((n, m))
    c[rng.random((n, m)) < float(rng.uniform(0.85, 0.99))] = np.inf
    t = float(rng.uniform(0.3, 0.9))
    a = assign(c, t)
    assert sum(t - c[r, q] for r, q in a.matches) == pytest.approx(_augmented_gain(c, t))
    assert all(c[r, q] < t for r, q in a.matches)
    assert len(set(a.matches[:, 0].tolist())) == len(a.matches) == len(set(a.matches[:, 1].tolist()))
    assert sorted(a.matches[:, 0].tolist() + a.unmatched_rows.tolist()) == list(range(n))
    assert sorted(a.matches[:, 1].tolist() + a.unmatched_cols.tolist()) == list(range(m))


@pytest.mark.parametrize("shape", [(4, 3), (30, 20)])
def test_assign_ids_names_rows_and_columns_by_the_ids_they_stand_for(shape, dense_limit):
    rng = np.random.default_rng(sum(shape))
    c = rng.random(shape)
    c[rng.random(shape) < 0.7] = np.inf
    row_ids = np.sort(rng.choice(100, shape[0], replace=False))
    col_ids = np.sort(rng.choice(100, shape[1], replace=False))
    a = assign(c, 0.6)
    pairs, left = assign_ids(c, 0.6, row_ids, col_ids)
    assert pairs.shape == (len(a.matches), 2) and pairs.dtype == np.intp
    assert sorted(map(tuple, pairs.tolist())) == sorted(
        (int(row_ids[r]), int(col_ids[q])) for r, q in a.matches.tolist())
    assert left.tolist() == col_ids[a.unmatched_cols].tolist()


def _penalised_reference(c, t, pen):
    """The row-penalty semantics in one piece: allowed pairs c < t, their cost + the row's penalty,
    dummies at (t + max penalty) / 2; solved by scipy on the full augmented matrix."""
    from scipy.optimize import linear_sum_assignment

    n, m = c.shape
    ok = c < t
    tp = t + pen.max()
    big = np.full((n + m, m + n), 1e9)
    big[:n, :m][ok] = (c + pen[:, None])[ok]
    big[:n, m:].flat[:: n + 1] = tp / 2
    big[n:, :m].flat[:: m + 1] = tp / 2
    big[n:, m:] = 0.0
    rows, cols = linear_sum_assignment(big)
    pairs = zip(rows.tolist(), cols.tolist(), strict=True)
    return sorted((r, q) for r, q in pairs if r < n and q < m and ok[r, q])


def test_row_penalty_gives_a_contested_column_to_the_unpenalised_row_and_leaves_lone_pairs_alone():
    # rows 0 and 1 compete for column 0; row 1 fits it better, but pays 0.3; row 2's pair is uncontested
    c = np.array([[0.4, np.inf], [0.2, np.inf], [np.inf, 0.75]])
    assert sorted(map(tuple, assign(c, 0.8).matches.tolist())) == [(1, 0), (2, 1)]
    pen = np.array([0.0, 0.3, 0.3])
    a = assign(c, 0.8, pen)
    assert sorted(map(tuple, a.matches.tolist())) == [(0, 0), (2, 1)]  # 0.75 + 0.3 > 0.8, still matched
    assert a.unmatched_rows.tolist() == [1]
    pairs, left = assign_ids(c, 0.8, np.array([10, 11, 12]), np.array([5, 6]), pen)
    assert sorted(map(tuple, pairs.tolist())) == [(10, 5), (12, 6)] and left.tolist() == []
    # a lower cost by more than the penalty still wins
    c[1, 0] = 0.05
    assert sorted(map(tuple, assign(c, 0.8, pen).matches.tolist())) == [(1, 0), (2, 1)]


@pytest.mark.parametrize("seed", range(30))
def test_row_penalty_dense_and_sparse_paths_agree_with_the_reference(seed, dense_limit):
    rng = np.random.default_rng(100 + seed)
    n, m = (rng.integers(1, 6, size=2) if seed % 2 else rng.integers(13, 40, size=2))
    c = rng.random((n, m))
    c[rng.random((n, m)) < (0.5 if seed % 2 else 0.9)] = np.inf
    t = float(rng.uniform(0.3, 0.9))
    pen = np.where(rng.random(n) < 0.4, 0.3, 0.0)
    ref = _penalised_reference(c, t, pen)
    ref_cost = sum(c[r, q] + pen[r] - t - pen.max() for r, q in ref)
    for a in (assign(c, t, pen), assign_sparse(n, m, *np.nonzero(np.isfinite(c)), c[np.isfinite(c)], t, pen)):
        got = sorted(map(tuple, a.matches.tolist()))
        assert all(c[r, q] < t for r, q in got)
        assert sum(c[r, q] + pen[r] - t - pen.max() for r, q in got) == pytest.approx(ref_cost)
