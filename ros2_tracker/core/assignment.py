"""Optimal assignment with dummy nodes, so rows and columns may stay unmatched.

The cost matrix C (R rows x K columns) is augmented to a square (R+K) x (K+R) matrix::

    [ C        D_rows ]      D_rows: R x R, threshold/2 on the diagonal, forbidden elsewhere
    [ D_cols   0      ]      D_cols: K x K, threshold/2 on the diagonal, forbidden elsewhere

Leaving a row and a column unmatched costs threshold/2 each, so a pair (i, j) is matched only if
that is cheaper than leaving both unmatched: ``C[i, j] < threshold``. The Hungarian method
(``scipy.optimize.linear_sum_assignment``) then solves the whole thing optimally.

Large problems are split into the connected components of the gated bipartite graph
(pairs with cost below the threshold); pairs that are alone in their component match directly
and each larger component is solved on its own augmented matrix. The result is the same, and
the cost stays near-linear for the sparse matrices of crowded scenes.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["Assignment", "assign", "assign_sparse"]

_FORBIDDEN = 1e9
_SMALL = 24  # below R+K this size one augmented problem is cheaper than splitting


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


def assign(cost: np.ndarray, threshold: float) -> Assignment:
    """Minimum-cost matching of rows to columns where no pair costs ``threshold`` or more.

    Args:
        cost: (R, K) cost matrix; NaN and inf mean "never match".
        threshold: pairs with cost >= threshold are never matched.
    """
    c = np.asarray(cost, dtype=np.float64)
    n_rows, n_cols = c.shape
    gate = c < threshold  # NaN compares False
    if n_rows + n_cols <= _SMALL:
        if gate.sum(axis=0).max(initial=0) <= 1 and gate.sum(axis=1).max(initial=0) <= 1:
            # every candidate pair is uncontested: the optimum is simply all of them
            return _result(np.argwhere(gate), n_rows, n_cols)
        return _result(_solve_augmented(c, gate, threshold), n_rows, n_cols)
    r_idx, c_idx = np.nonzero(gate)
    return assign_sparse(n_rows, n_cols, r_idx, c_idx, c[r_idx, c_idx], threshold)


def assign_sparse(n_rows: int, n_cols: int, rows: np.ndarray, cols: np.ndarray, costs: np.ndarray,
                  threshold: float) -> Assignment:
    """:func:`assign` for a sparse cost matrix given as (row, col, cost) triplets; absent pairs never
    match. Used for crowded frames, where a dense R x K matrix would dominate the run time."""
    keep = np.asarray(costs) < threshold
    rows, cols, costs = np.asarray(rows)[keep], np.asarray(cols)[keep], np.asarray(costs)[keep]
    if not len(rows):
        return _result(np.empty((0, 2), dtype=np.intp), n_rows, n_cols)
    return _result(_solve_by_components(n_rows, n_cols, rows, cols, costs, threshold), n_rows, n_cols)


def _solve_augmented(c: np.ndarray, gate: np.ndarray, threshold: float) -> np.ndarray:
    n_rows, n_cols = c.shape
    size = n_rows + n_cols
    big = np.full((size, size), _FORBIDDEN)
    big[:n_rows, :n_cols][gate] = c[gate]
    half = 0.5 * threshold
    big[:n_rows, n_cols:].flat[:: n_rows + 1] = half  # each row's own dummy column
    big[n_rows:, :n_cols].flat[:: n_cols + 1] = half  # each column's own dummy row
    big[n_rows:, n_cols:] = 0.0
    rows, cols = linear_sum_assignment(big)
    keep = (rows < n_rows) & (cols < n_cols)
    rows, cols = rows[keep], cols[keep]
    keep = gate[rows, cols]
    return np.stack([rows[keep], cols[keep]], axis=1)


def _solve_by_components(n_rows: int, n_cols: int, r_idx: np.ndarray, c_idx: np.ndarray,
                         costs: np.ndarray, threshold: float) -> np.ndarray:
    graph = coo_matrix((np.ones(len(r_idx)), (r_idx, n_rows + c_idx)), shape=(n_rows + n_cols,) * 2)
    _, labels = connected_components(graph, directed=False)
    row_lab, _col_lab = labels[:n_rows], labels[n_rows:]
    comp_size = np.bincount(labels)
    edge_lab = row_lab[r_idx]
    pair_only = comp_size[edge_lab] == 2  # one row, one column, one edge
    out = [np.stack([r_idx[pair_only], c_idx[pair_only]], axis=1)]
    rest = np.flatnonzero(~pair_only)
    if len(rest):
        order = rest[np.argsort(edge_lab[rest], kind="stable")]
        labs, starts = np.unique(edge_lab[order], return_index=True)
        for k in range(len(labs)):
            e = order[starts[k]: starts[k + 1] if k + 1 < len(labs) else len(order)]
            rows, r_local = np.unique(r_idx[e], return_inverse=True)
            cols, c_local = np.unique(c_idx[e], return_inverse=True)
            sub = np.full((len(rows), len(cols)), np.inf)
            sub[r_local, c_local] = costs[e]
            m = _solve_augmented(sub, sub < threshold, threshold)
            out.append(np.stack([rows[m[:, 0]], cols[m[:, 1]]], axis=1))
    return np.concatenate(out).astype(np.intp)


def _result(matches: np.ndarray, n_rows: int, n_cols: int) -> Assignment:
    if not len(matches):
        return Assignment(matches.reshape(0, 2), np.arange(n_rows), np.arange(n_cols))
    if n_rows + n_cols <= _SMALL:  # Python sets beat boolean masks at this size
        used_r, used_c = set(matches[:, 0].tolist()), set(matches[:, 1].tolist())
        return Assignment(matches, np.array([i for i in range(n_rows) if i not in used_r], dtype=np.intp),
                          np.array([i for i in range(n_cols) if i not in used_c], dtype=np.intp))
    row_free = np.ones(n_rows, dtype=bool)
    col_free = np.ones(n_cols, dtype=bool)
    row_free[matches[:, 0]] = False
    col_free[matches[:, 1]] = False
    return Assignment(matches, np.flatnonzero(row_free), np.flatnonzero(col_free))
