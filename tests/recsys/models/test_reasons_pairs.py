"""``pair_similarity`` on a sparse weight matrix (ItemKNN, the hybrid's twins) reads the stored
cells itself; it must give scipy's ``M[item, pick]`` for every pair, from CSR or CSC."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsys.models._reasons import because_you_bought, pair_similarity


def reference(matrix: sparse.csr_matrix, items: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """Each valid pair looked up through scipy's indexing, -inf where a side is padding."""
    out = np.full((items.shape[0], picks.shape[1], items.shape[1]), -np.inf, np.float32)
    for b in range(items.shape[0]):
        for n, pick in enumerate(picks[b]):
            for slot, item in enumerate(items[b]):
                if pick >= 0 and item >= 0:
                    out[b, n, slot] = matrix[item, pick]
    return out


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_pairs_equal_scipy_lookups(seed: int, fmt: str) -> None:
    rng = np.random.default_rng(seed)
    size = 60
    matrix = sparse.random(size, size, density=0.08, format="csr", random_state=seed,
                           dtype=np.float32)
    batch = int(rng.integers(1, 4))
    items = np.stack([rng.permutation(size)[:12] for _ in range(batch)]).astype(np.int64)
    picks = rng.integers(0, size, (batch, 5))
    items[rng.random(items.shape) < 0.2] = -1
    picks[rng.random(picks.shape) < 0.3] = -1
    got = pair_similarity(matrix.asformat(fmt), items, picks)
    want = reference(matrix, items, picks)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    assert (want[np.isfinite(want)] != 0).any()  # some pairs are stored cells


def test_a_lone_row_gets_its_batch_answer() -> None:
    """One row packs its picks without the batch's sort: the same supporting items."""
    rng = np.random.default_rng(7)
    size = 80
    matrix = sparse.random(size, size, density=0.1, format="csr", random_state=7,
                           dtype=np.float32)
    history = sparse.random(6, size, density=0.2, format="csr", random_state=8,
                            dtype=np.float32)
    picks = rng.integers(0, size, (6, 10))
    picks[rng.random(picks.shape) < 0.4] = -1
    picks[2] = -1  # a row without picks
    batch = because_you_bought(matrix, history, picks)
    for r in range(6):
        alone = because_you_bought(matrix.tocsc(), history[r], picks[r:r + 1])
        np.testing.assert_array_equal(alone[0], batch[r])
    assert (batch >= 0).any() and (batch[2] == -1).all()
