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

from recsys.models.base import Ranked

FIRST_BLOCK = 512  # items in a batch's first block; each further block doubles, up to MAX_BLOCK
FIRST_BLOCK_FEW = 2048  # the same for up to FEW_ROWS rows (a request): Python's cost per block
FEW_ROWS = 4  # outweighs the products, and one block holds the median customer's answer
MAX_BLOCK = 16384
ORDERS_KEPT = 4  # visit orders cached, one per allowed-items mask
_SLACK = 1e-4  # relative margin on the bound for float32 rounding of the dot products
_LOWEST = float(np.finfo(np.float32).min)  # the lowest score above -inf
_SAMPLE = 4  # ``top_row`` floors a first block by the n-th best of every 4th score


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
        if vectors.shape[0] == 1:  # a request: the one-row path, same answer
            ids, scores = [], []
            if known[0]:
                barred = None if exclude is None else exclude.indices[exclude.data != 0]
                ids, scores, _ = self.top_row(vectors, n, excluded=barred, allowed=allowed)
            pad = n - len(ids)
            return Ranked(np.array([ids + [-1] * pad], np.int32),
                          np.array([scores + [-np.inf] * pad], np.float32))
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

    def top_row(self, vector: np.ndarray, n: int, *, excluded: np.ndarray | None,
                allowed: np.ndarray | None) -> tuple[list[int], list[float], float]:
        """``top`` of one known row (``vector``, shape ``(1, dims)``; ``excluded``: item
        indices; ``allowed`` None: every item) as lists, best first, without the items that
        score -inf; plus the best score of any allowed item, excluded or not. The blocks and
        their scores are those of ``top``, each block cut to its cells that can make the top
        ``n`` before Python merges them (a request's row: far fewer numpy calls)."""
        order, items, norms, position = self._visit_order(allowed)
        barred = None
        if excluded is not None and len(excluded):
            barred = position[excluded]
            barred = np.sort(barred[barred >= 0])
        as_double = vector.astype(np.float64)  # np.linalg.norm(vector, axis=1), as ``top``
        user_norm = float(np.sqrt(np.add.reduce(as_double * as_double, axis=1))[0])
        best: list[tuple[float, int]] = []  # (-score, item), sorted: equal scores, lower item
        peak = -np.inf
        start, block = 0, FIRST_BLOCK_FEW
        while start < len(order):
            stop = min(start + block, len(order))
            scores = (_gemm(vector, items[start:stop]) if self.batch_exact else
                      vector @ items[start:stop].T)[0]
            peak = max(peak, float(scores.max()))
            if barred is not None:
                lo, hi = np.searchsorted(barred, (start, stop))
                scores[barred[lo:hi] - start] = -np.inf
            floor = -best[-1][0] if len(best) == n else _LOWEST  # -inf never makes the top
            found, ids = _block_best(scores, order[start:stop], n, floor, len(best) < n)
            best = sorted(best + list(zip((-found).tolist(), ids.tolist(), strict=True)))[:n]
            if stop == len(order) or (
                    len(best) == n and -best[-1][0] > user_norm * norms[stop] * (1 + _SLACK)):
                break
            start, block = stop, min(2 * block, MAX_BLOCK)
        return [i for _, i in best], [-s for s, _ in best], peak

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


def _block_best(scores: np.ndarray, items: np.ndarray, n: int, floor: float, filling: bool
                ) -> tuple[np.ndarray, np.ndarray]:
    """A block's ``n`` best scores at or above ``floor`` and their items (equal scores: the
    lower items); while the answer is ``filling``, the n-th best of every ``_SAMPLE``-th
    score raises the floor (it is at most the block's n-th best)."""
    sample = scores[::_SAMPLE]
    if filling and len(sample) > n:
        floor = max(floor, float(np.partition(sample, len(sample) - n)[len(sample) - n]))
    cols = np.flatnonzero(scores >= floor)
    found = scores[cols]
    if len(cols) > n:  # the block's n best, and any tied with the n-th
        keep = found >= np.partition(found, len(found) - n)[len(found) - n]
        cols, found = cols[keep], found[keep]
    ids = items[cols]
    if len(cols) > n:  # ties at the n-th place: the lower items
        keep = np.lexsort((ids, -found))[:n]
        found, ids = found[keep], ids[keep]
    return found, ids


def _excluded_positions(exclude: sparse.csr_matrix | None, position: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Excluded cells as (row, place in the visit order); items outside it drop out."""
    if exclude is None or exclude.nnz == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
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
