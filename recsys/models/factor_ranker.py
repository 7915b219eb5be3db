"""Exact top-n for factor models (score = user vector . item vector) without scoring every item.

Items are visited in decreasing vector norm, a block at a time. By Cauchy-Schwarz no item not
yet visited can score above ``|u| x`` (the norm of the next item), so a customer is done once
their n-th best score beats that bound, and the rest of the catalog is never multiplied. Norms
of factor models follow popularity, so most customers finish within the first few thousand
items (2% of The Complete Journey's 92k products for the median customer); the answer is
the one full scoring gives.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from recsys.data.csr import cell_rows
from recsys.models.base import Ranked

FIRST_BLOCK = 512  # items in a batch's first block; each further block doubles, up to MAX_BLOCK
FIRST_BLOCK_FEW = 2048  # the same for up to FEW_ROWS rows (a request): Python's cost per block
FEW_ROWS = 4  # outweighs the products, and one block holds the median customer's answer
MAX_BLOCK = 16384
ORDERS_KEPT = 4  # visit orders cached, one per allowed-items mask
_SLACK = 1e-4  # relative margin on the bound for float32 rounding of the dot products


class FactorRanker:
    """Top-n of the scores ``user vectors @ items.T`` (see the module doc): what
    ``FactorModel.recommend`` ranks with.

    Parameters
    ----------
    items : ndarray, shape (n_items, dims)
        The item vectors.
    batch_exact : bool
        Score a lone row as a batch would, to the last bit (through gemm, ~14x slower than
        gemv for one row); False when the scores only choose candidates.
    """

    def __init__(self, items: np.ndarray, *, batch_exact: bool = True) -> None:
        self.batch_exact = batch_exact
        self.items = np.ascontiguousarray(items, dtype=np.float32)
        self.norms = np.linalg.norm(self.items.astype(np.float64), axis=1)
        self.order = np.argsort(-self.norms, kind="stable")
        self._orders: dict[bytes, tuple[np.ndarray, ...]] = {}
        self._all: tuple[np.ndarray, ...] | None = None  # ``_visit_order`` of every item

    def top(self, vectors: np.ndarray, known: np.ndarray, n: int, *,
            exclude: sparse.csr_matrix | None, allowed: np.ndarray | None) -> Ranked:
        """Top ``n`` allowed, non-excluded items per row of ``vectors``, best first (equal
        scores in index order); rows where ``known`` is False get none. Each row's answer
        depends on that row alone, not on the batch.

        Parameters
        ----------
        vectors : ndarray, shape (batch, dims)
        known : ndarray of bool, shape (batch,)
        n : int
        exclude : csr_matrix, shape (batch, n_items), optional
            Non-zero cells are never returned.
        allowed : ndarray of bool, shape (n_items,), optional
            None: every item.
        """
        order, items, norms, position = self._visit_order(allowed)
        batch = vectors.shape[0]
        best_s = np.full((batch, n), -np.inf, np.float32)
        best_i = np.full((batch, n), -1, np.int64)
        active = np.flatnonzero(known)
        user_norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
        ex_row, ex_pos = _excluded_positions(exclude, position)
        slot = np.full(batch, -1, np.int64)  # row -> position in ``active``
        start, block = 0, FIRST_BLOCK_FEW if batch <= FEW_ROWS else FIRST_BLOCK
        while active.size and start < len(order):
            stop = min(start + block, len(order))
            users = vectors[active]
            scores = _gemm(users, items[start:stop]) if self.batch_exact else \
                users @ items[start:stop].T
            if len(ex_pos):
                slot[active] = np.arange(active.size)
                hit = (ex_pos >= start) & (ex_pos < stop)
                hit[hit] = slot[ex_row[hit]] >= 0
                scores[slot[ex_row[hit]], ex_pos[hit] - start] = -np.inf
                slot[active] = -1
            cand_s = np.concatenate([best_s[active], scores], axis=1)
            cand_i = np.concatenate([best_i[active], np.broadcast_to(
                order[start:stop], scores.shape)], axis=1)
            best_s[active], best_i[active] = _best(cand_s, cand_i, n)
            if stop == len(order):
                break
            bound = user_norms[active] * norms[stop] * (1 + _SLACK)
            active = active[~(best_s[active].min(axis=1) > bound)]  # n-th best vs bound
            start, block = stop, min(2 * block, MAX_BLOCK)
        best_i[~np.isfinite(best_s)] = -1
        rank = np.lexsort((np.where(best_i < 0, np.iinfo(np.int64).max, best_i), -best_s),
                          axis=1)
        ids = np.take_along_axis(best_i, rank, axis=1).astype(np.int32)
        return Ranked(ids, np.take_along_axis(best_s, rank, axis=1))

    def _visit_order(self, allowed: np.ndarray | None) -> tuple[np.ndarray, ...]:
        """Allowed items (None: all) by decreasing norm, their vectors and norms, and each
        item's place in that order (-1 if not allowed). The last few masks are kept: batch
        chunks and repeated filters share them."""
        if allowed is None:
            if self._all is None:
                self._all = self._visit_order(np.ones(len(self.order), bool))
            return self._all
        key = np.packbits(allowed).tobytes()
        entry = self._orders.get(key)
        if entry is None:
            order = self.order[allowed[self.order]]
            position = np.full(len(allowed), -1, np.int64)
            position[order] = np.arange(len(order))
            entry = (order, self.items[order], self.norms[order], position)
            if len(self._orders) >= ORDERS_KEPT:
                self._orders.pop(next(iter(self._orders)), None)
            self._orders[key] = entry  # dict updates are atomic: threads see old or new
        return entry


def _excluded_positions(exclude: sparse.csr_matrix | None, position: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Excluded cells as (row, place in the visit order); items outside it drop out."""
    if exclude is None or exclude.nnz == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    rows = cell_rows(exclude.indptr)
    where = position[exclude.indices]
    inside = (where >= 0) & (exclude.data != 0)
    return rows[inside].astype(np.int64), where[inside]


def _best(scores: np.ndarray, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n`` best columns of each row, in no particular order, equal scores going to the
    lower item (so the answer does not depend on how the catalog was split into blocks).
    Where no row ties at its n-th score, the cells at or above it are exactly those."""
    width = scores.shape[1]
    kth = np.partition(scores, width - n, axis=1)[:, width - n, None]
    above = scores >= kth
    tied = np.flatnonzero(above.sum(axis=1) > n)
    if not len(tied):
        rows, cols = np.nonzero(above)
        return scores[rows, cols].reshape(-1, n), items[rows, cols].reshape(-1, n)
    keep = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    keep[tied] = np.lexsort((items[tied], -scores[tied]), axis=1)[:, :n]
    return np.take_along_axis(scores, keep, axis=1), np.take_along_axis(items, keep, axis=1)


def _gemm(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``users @ items.T`` through BLAS gemm even for one row: numpy sends a single row to
    gemv, whose float32 rounding differs, and one customer must get the same scores alone
    (the API) as in a batch (campaign picks)."""
    if users.shape[0] == 1:
        return (np.vstack([users, users]) @ items.T)[:1]
    return users @ items.T


__all__ = ["FactorRanker"]
