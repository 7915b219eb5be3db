"""Row helpers on CSR matrices against scipy's own answers."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from recsys.data.csr import cell_rows, row_items


def test_row_items_and_cell_rows_match_scipy() -> None:
    dense = sparse.random(7, 20, density=0.3, rng=np.random.default_rng(0)).toarray()
    dense[3] = 0  # an empty row
    matrix = sparse.csr_matrix(dense)
    for row in range(7):
        np.testing.assert_array_equal(row_items(matrix, row), matrix[row].indices)
    assert len(row_items(matrix, -1)) == 0
    np.testing.assert_array_equal(cell_rows(matrix.indptr), matrix.tocoo().row)
