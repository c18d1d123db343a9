"""Optimal assignment with dummy nodes, so rows and columns may stay unmatched.

The cost matrix C (R rows x K columns) is augmented to a square (R+K) x (K+R) matrix::

    [ C        D_rows ]      D_rows: R x R, threshold/2 on the diagonal, forbidden elsewhere
    [ D_cols   0      ]      D_cols: K x K, threshold/2 on the diagonal, forbidden elsewhere

Leaving a row and a column unmatched costs threshold/2 each, so a pair (i, j) is matched only if
that is cheaper than leaving both unmatched: ``C[i, j] < threshold``. The Hungarian method
(``scipy.optimize.linear_sum_assignment``) then solves the whole thing optimally.

Large problems (more than ``_SMALL`` = 96 rows + columns) keep only the candidate pairs (cost below the
threshold) and solve the same augmented problem, when its contested part is large too, as a sparse
bipartite matching (``scipy.sparse.csgraph.min_weight_full_bipartite_matching``): the same optimum, at a
cost that grows with the number of candidate pairs rather than with R x K, which is what crowded frames
need. Candidate pairs whose row and column have no other candidate are in every optimum and are taken
directly; only the contested rest goes to a solver (in a scene of separated objects, none does).

An optional per-row penalty ranks rows that compete for a column (the tracker uses it to give tracks
seen in the last frame priority over coasting ones). Which pairs are allowed does not change (cost below
the threshold); where rows compete, each pair costs its row's penalty more, and the dummy nodes sit at
(threshold + largest penalty)/2, so a pair nobody contests still matches. A penalty changes nothing
where nothing is contested, so the common uncontested frame never pays for it.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

__all__ = ["Assignment", "assign", "assign_ids", "assign_sparse", "ids_of", "index_pairs"]

_FORBIDDEN = 1e9
# Up to this many rows + columns, one dense augmented problem beats splitting: splitting off the uncontested
# pairs costs ~30 us of index work before any solving, and scipy's sparse matching ~80 us whatever the size.
# Dense LSA with one contested pair among separated objects: 9 / 15 / 29 / 47 us at 48 / 64 / 96 / 128 nodes,
# against 34 / 32 / 34 / 37 us split; a contested rest of 2 x 2 groups: 20 / 61 / 97 us dense at 64 / 96 / 128
# nodes, ~85 us sparse (2-core AMD EPYC)
_SMALL = 96


class Assignment(NamedTuple):
    """Result of :func:`assign`.

    Attributes:
        matches: (M, 2) int array of (row, column) pairs.
        unmatched_rows: (R - M,) row indices, ascending.
        unmatched_cols: (K - M,) column indices, ascending.
    """

    matches: np.ndarray
    unmatched_rows: np.ndarray
    unmatched_cols: np.ndarray


def assign(cost: np.ndarray, threshold: float, row_penalty: np.ndarray | None = None) -> Assignment:
    """Minimum-cost matching of rows to columns where no pair costs ``threshold`` or more.

    Args:
        cost: (R, K) cost matrix; NaN and inf mean "never match".
        threshold: pairs with cost >= threshold are never matched.
        row_penalty: optional (R,) non-negative extra cost of each row's pairs where rows compete for
            a column (see the module docstring); which pairs are allowed does not change.
    """
    c = np.asarray(cost, dtype=np.float64)
    n_rows, n_cols = c.shape
    if n_rows + n_cols <= _SMALL:
        return _result_small(*_solve_small(c, threshold, row_penalty), n_rows, n_cols)
    gate = c < threshold  # NaN compares False
    r_idx, c_idx = gate.nonzero()
    return assign_sparse(n_rows, n_cols, r_idx, c_idx, c[r_idx, c_idx], threshold, row_penalty)


def assign_ids(cost: np.ndarray, threshold: float, row_ids: np.ndarray, col_ids: np.ndarray,
               row_penalty: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`assign` on a sub-matrix whose rows and columns stand for ``row_ids`` and ``col_ids`` (say,
    some of a frame's tracks and detections).

    Returns:
        The matched (row id, column id) pairs (M, 2) and the column ids left unmatched, in column order.
    """
    c = np.asarray(cost, dtype=np.float64)
    n_rows, n_cols = c.shape
    if n_rows + n_cols > _SMALL:
        return ids_of(assign(c, threshold, row_penalty), row_ids, col_ids)
    rows, cols = _solve_small(c, threshold, row_penalty)  # small: mapping lists beats indexing arrays
    rid, cid, used = row_ids.tolist(), col_ids.tolist(), set(cols)
    return (index_pairs([rid[i] for i in rows], [cid[j] for j in cols]),
            np.array([cid[j] for j in range(n_cols) if j not in used], dtype=np.intp))


def ids_of(result: Assignment, row_ids: np.ndarray, col_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An :class:`Assignment` over a sub-matrix in the ids its rows and columns stand for, as
    :func:`assign_ids` returns it (e.g. for :func:`assign_sparse` results)."""
    m = result.matches
    return index_pairs(row_ids.take(m[:, 0]), col_ids.take(m[:, 1])), col_ids.take(result.unmatched_cols)


def _solve_small(c: np.ndarray, threshold: float,
                 row_penalty: np.ndarray | None = None) -> tuple[list[int], list[int]]:
    """Matched (rows, columns) of a small dense problem, as lists."""
    gate = c < threshold  # NaN compares False
    r_idx, c_idx = gate.nonzero()
    rows, cols = r_idx.tolist(), c_idx.tolist()
    if len(set(rows)) == len(rows) and len(set(cols)) == len(cols):
        return rows, cols  # every candidate pair is uncontested: the optimum is simply all of them
    if row_penalty is not None:
        c, threshold = c + row_penalty[:, None], threshold + float(row_penalty.max())
    return _solve_augmented(c, gate, threshold)


def index_pairs(rows: np.ndarray | list[int], cols: np.ndarray | list[int]) -> np.ndarray:
    """(K, 2) int array of (row, col) pairs (a transposed (2, K) array: each column is contiguous)."""
    return np.array((rows, cols), dtype=np.intp).T


def assign_sparse(n_rows: int, n_cols: int, rows: np.ndarray, cols: np.ndarray, costs: np.ndarray,
                  threshold: float, row_penalty: np.ndarray | None = None) -> Assignment:
    """:func:`assign` for a sparse cost matrix given as (row, col, cost) triplets; absent pairs never
    match. Used for crowded frames, where a dense R x K matrix would dominate the run time.

    A candidate pair whose row and column have no other candidate is a component of its own: it is in
    every optimum and is taken as it is. Only the rest (the contested pairs, usually a few small groups)
    goes to a solver: the dense augmented problem when it is small, the sparse matching otherwise.
    """
    costs = np.asarray(costs)
    keep = costs < threshold
    rows, cols, costs = np.asarray(rows).compress(keep), np.asarray(cols).compress(keep), costs.compress(keep)
    if not len(rows):
        return _result(np.empty((0, 2), dtype=np.intp), n_rows, n_cols)
    alone = (np.bincount(rows, minlength=n_rows).take(rows) == 1) & (
        np.bincount(cols, minlength=n_cols).take(cols) == 1)
    if np.count_nonzero(alone) == len(alone):
        return _result(index_pairs(rows, cols), n_rows, n_cols)
    rest = ~alone
    sub_rows, r_inv = np.unique(rows[rest], return_inverse=True)
    sub_cols, c_inv = np.unique(cols[rest], return_inverse=True)
    costs = costs[rest]
    if row_penalty is not None:  # contested pairs only: see the module docstring
        costs = costs + row_penalty.take(rows[rest])
        threshold = threshold + float(row_penalty.max())
    if len(sub_rows) + len(sub_cols) <= _SMALL:
        sub = np.full((len(sub_rows), len(sub_cols)), np.inf)
        sub[r_inv, c_inv] = costs
        r, c = _solve_augmented(sub, sub < threshold, threshold)
        solved = index_pairs(np.asarray(r, dtype=np.intp), np.asarray(c, dtype=np.intp))
    else:
        solved = _solve_sparse(len(sub_rows), len(sub_cols), r_inv, c_inv, costs, threshold)
    matches = np.concatenate([index_pairs(rows[alone], cols[alone]),
                              index_pairs(sub_rows.take(solved[:, 0]), sub_cols.take(solved[:, 1]))])
    return _result(matches, n_rows, n_cols)


@functools.lru_cache(maxsize=64)  # at most 64 x 74 KB (96 x 96 floats); a sequence's frames use ~100 keys
def _dummy_blocks(n_rows: int, n_cols: int, threshold: float) -> np.ndarray:
    """The augmented matrix without its cost block (forbidden there): dummy diagonals at threshold/2 and
    the zero dummy-dummy block. Cached (the same few shapes and thresholds repeat) and read-only. A
    forbidden entry costs more than leaving every row and column unmatched ((R + K) threshold / 2), so no
    optimum ever takes one."""
    size = n_rows + n_cols
    big = np.full((size, size), _FORBIDDEN + size * max(threshold, 0.0))
    half = 0.5 * threshold
    big[:n_rows, n_cols:].flat[:: n_rows + 1] = half  # each row's own dummy column
    big[n_rows:, :n_cols].flat[:: n_cols + 1] = half  # each column's own dummy row
    big[n_rows:, n_cols:] = 0.0
    big.flags.writeable = False
    return big


def _solve_augmented(c: np.ndarray, gate: np.ndarray, threshold: float) -> tuple[list[int], list[int]]:
    """The dense augmented problem (small sizes); the matched (rows, columns) as lists."""
    n_rows, n_cols = c.shape
    big = _dummy_blocks(n_rows, n_cols, threshold).copy()  # forbidden in the cost block
    np.copyto(big[:n_rows, :n_cols], c, where=gate)
    _, cols = linear_sum_assignment(big)  # rows come back as 0..size-1: the first n_rows are the real ones
    # a real row's column is a real one only where allowed (see _dummy_blocks)
    cols = cols[:n_rows].tolist()
    rows = [i for i, j in enumerate(cols) if j < n_cols]
    return rows, [cols[i] for i in rows]


def _solve_sparse(n_rows: int, n_cols: int, r_idx: np.ndarray, c_idx: np.ndarray, costs: np.ndarray,
                  threshold: float) -> np.ndarray:
    """The same augmented problem as :func:`_solve_augmented`, as a sparse graph.

    Nodes: real rows, one dummy row per column; real columns, one dummy column per row. Edges: the
    candidate pairs; row i - its dummy column and column j - its dummy row at threshold/2; and, per
    candidate pair (i, j), dummy row j - dummy column i at 0 (the dummies of a matched pair pair up).
    A perfect matching always exists (everything to its dummy), every perfect matching has R + K
    edges (so the +1 making weights positive shifts all equally), and its optimum is the dense one's.
    """
    e = len(r_idx)
    half = 0.5 * threshold
    rows = np.concatenate([r_idx, np.arange(n_rows), n_rows + np.arange(n_cols), n_rows + c_idx])
    cols = np.concatenate([c_idx, n_cols + np.arange(n_rows), np.arange(n_cols), n_cols + r_idx])
    weights = np.concatenate([costs, np.full(n_rows + n_cols, half), np.zeros(e)]) + 1.0
    size = n_rows + n_cols
    graph = csr_matrix((weights, (rows, cols)), shape=(size, size))
    row_ind, col_ind = min_weight_full_bipartite_matching(graph)
    real = (row_ind < n_rows) & (col_ind < n_cols)
    return index_pairs(row_ind[real], col_ind[real])


def _result(matches: np.ndarray, n_rows: int, n_cols: int) -> Assignment:
    if not len(matches):
        return Assignment(matches.reshape(0, 2), np.arange(n_rows), np.arange(n_cols))
    row_free = np.ones(n_rows, dtype=bool)
    col_free = np.ones(n_cols, dtype=bool)
    row_free[matches[:, 0]] = False
    col_free[matches[:, 1]] = False
    return Assignment(matches, np.flatnonzero(row_free), np.flatnonzero(col_free))


def _result_small(rows: list[int], cols: list[int], n_rows: int, n_cols: int) -> Assignment:
    """:func:`_result` for small problems from the matched rows and columns as lists: Python sets beat
    boolean masks at this size."""
    matches = index_pairs(rows, cols)
    used_r, used_c = set(rows), set(cols)
    return Assignment(matches, np.array([i for i in range(n_rows) if i not in used_r], dtype=np.intp),
                      np.array([i for i in range(n_cols) if i not in used_c], dtype=np.intp))
