"""Row-wise helpers on CSR matrices (customers x products), shared by models, the policy and
coupon scoring."""

from __future__ import annotations

import numpy as np
from scipy import sparse


def as_csr(matrix: sparse.spmatrix, dtype: type = np.float32) -> sparse.csr_matrix:
    """``matrix`` as a CSR matrix of ``dtype``: the object itself when it already is one."""
    if isinstance(matrix, sparse.csr_matrix) and matrix.dtype == dtype:
        return matrix
    return sparse.csr_matrix(matrix, dtype=dtype)


def row_cells(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the stored cells of ``rows`` of a CSR matrix (its ``indptr``) sit in its
    ``data``/``indices``, row after row in order, and how many each row has; a row of -1
    has none."""
    starts = indptr[rows]
    lengths = np.maximum(indptr[rows + 1] - starts, 0)  # row -1: indptr[0] - indptr[-1] <= 0
    ends = np.cumsum(lengths)
    total = int(ends[-1]) if len(ends) else 0
    return np.arange(total) - np.repeat(ends - lengths - starts, lengths), lengths


def row_items(matrix: sparse.csr_matrix, row: int) -> np.ndarray:
    """The columns stored in one row of CSR ``matrix`` (none for row -1)."""
    return matrix.indices[row_cells(matrix.indptr, np.array([row]))[0]]


def cell_rows(indptr: np.ndarray) -> np.ndarray:
    """The row of each stored cell of a CSR matrix (its ``indptr``), in storage order."""
    return np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))


def row_block(matrix: sparse.csr_matrix, start: int, stop: int) -> sparse.csr_matrix:
    """Rows ``start:stop`` of ``matrix``; the matrix itself when that is all of it (one-row
    calls are common in serving, and slicing costs more than scoring one customer)."""
    if start == 0 and stop >= matrix.shape[0]:
        return matrix
    return matrix[start:stop]


def forbid(scores: np.ndarray, cells: sparse.csr_matrix) -> None:
    """Set ``scores`` to -inf on the stored cells of ``cells`` (same shape), in place."""
    scores[cell_rows(cells.indptr), cells.indices] = -np.inf


__all__ = ["as_csr", "row_cells", "row_items", "cell_rows", "row_block", "forbid"]
