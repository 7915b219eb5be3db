"""Hypothesis strategies shared by the test suite (one file, attrs style)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from scipy import sparse


@dataclass
class RankingCase:
    """Ranked lists and the relevant items of each row.

    ``ids`` is ``(batch, n)`` int32 with unique items per row, padded with -1 at the end;
    ``relevant`` is a binary CSR ``(batch, n_items)``; ``lists``/``sets`` are the same data as
    plain Python for brute-force checks.
    """

    ids: np.ndarray
    relevant: sparse.csr_matrix
    n_items: int
    k: int
    lists: list[list[int]]
    sets: list[set[int]]


@st.composite
def ranking_cases(draw: st.DrawFn, max_items: int = 25, max_batch: int = 8) -> RankingCase:
    """A batch of padded top-n lists, per-row relevant sets and a cut-off ``k``."""
    n_items = draw(st.integers(1, max_items))
    batch = draw(st.integers(1, max_batch))
    n = draw(st.integers(1, n_items + 2))
    items = st.integers(0, n_items - 1)
    lists = [draw(st.lists(items, max_size=n, unique=True)) for _ in range(batch)]
    sets = [draw(st.sets(items, max_size=n_items)) for _ in range(batch)]
    k = draw(st.integers(1, n + 3))
    ids = np.full((batch, n), -1, np.int32)
    for row, lst in enumerate(lists):
        ids[row, : len(lst)] = lst
    rows = [r for r, s in enumerate(sets) for _ in s]
    cols = [i for s in sets for i in sorted(s)]
    relevant = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                                 shape=(batch, n_items))
    return RankingCase(ids, relevant, n_items, k, lists, sets)


@st.composite
def popularity(draw: st.DrawFn, n_items: int) -> np.ndarray:
    """Training buyer counts per item, shape ``(n_items,)``, ties and zeros likely."""
    return np.array(draw(st.lists(st.integers(0, 6), min_size=n_items, max_size=n_items)),
                    dtype=np.int64)


@st.composite
def item_vectors(draw: st.DrawFn, n_items: int, max_dim: int = 4) -> np.ndarray:
    """Small-integer item feature vectors ``(n_items, d)``; all-zero rows occur."""
    d = draw(st.integers(1, max_dim))
    values = draw(st.lists(st.integers(-2, 3), min_size=n_items * d, max_size=n_items * d))
    return np.array(values, dtype=np.float64).reshape(n_items, d)


__all__ = ["RankingCase", "ranking_cases", "popularity", "item_vectors"]
