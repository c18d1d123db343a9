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

__all__ = ["Assignment", "assign"]

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
    if not gate.any():
        return _result(np.empty((0, 2), dtype=np.intp), n_rows, n_cols)
    if n_rows + n_cols <= _SMALL:
        return _result(_solve_augmented(c, gate, threshold), n_rows, n_cols)
    return _result(_solve_by_components(c, gate, threshold), n_rows, n_cols)


def _solve_augmented(c: np.ndarray, gate: np.ndarray, threshold: float) -> np.ndarray:
    n_rows, n_cols = c.shape
    size = n_rows + n_cols
    big = np.full((size, size), _FORBIDDEN)
    big[:n_rows, :n_cols] = np.where(gate, c, _FORBIDDEN)
    half = 0.5 * threshold
    big[np.arange(n_rows), n_cols + np.arange(n_rows)] = half
    big[n_rows + np.arange(n_cols), np.arange(n_cols)] = half
    big[n_rows:, n_cols:] = 0.0
    rows, cols = linear_sum_assignment(big)
    keep = (rows < n_rows) & (cols < n_cols)
    rows, cols = rows[keep], cols[keep]
    keep = gate[rows, cols]
    return np.stack([rows[keep], cols[keep]], axis=1)


def _solve_by_components(c: np.ndarray, gate: np.ndarray, threshold: float) -> np.ndarray:
    n_rows, n_cols = c.shape
    r_idx, c_idx = np.nonzero(gate)
    graph = coo_matrix((np.ones(len(r_idx)), (r_idx, n_rows + c_idx)), shape=(n_rows + n_cols,) * 2)
    _, labels = connected_components(graph, directed=False)
    row_lab, col_lab = labels[:n_rows], labels[n_rows:]
    comp_size = np.bincount(labels)
    edge_lab = row_lab[r_idx]
    pair_only = comp_size[edge_lab] == 2  # one row, one column, one edge
    out = [np.stack([r_idx[pair_only], c_idx[pair_only]], axis=1)]
    for lab in np.unique(edge_lab[~pair_only]):
        rows = np.flatnonzero(row_lab == lab)
        cols = np.flatnonzero(col_lab == lab)
        sub = _solve_augmented(c[np.ix_(rows, cols)], gate[np.ix_(rows, cols)], threshold)
        out.append(np.stack([rows[sub[:, 0]], cols[sub[:, 1]]], axis=1))
    return np.concatenate(out).astype(np.intp)


def _result(matches: np.ndarray, n_rows: int, n_cols: int) -> Assignment:
    row_free = np.ones(n_rows, dtype=bool)
    col_free = np.ones(n_cols, dtype=bool)
    row_free[matches[:, 0]] = False
    col_free[matches[:, 1]] = False
    return Assignment(matches, np.flatnonzero(row_free), np.flatnonzero(col_free))
