"""The Recommender protocol and the base class every model derives from.

Models speak indices: rows of ``history`` are customers (``user``), columns are products
(``item``). Results are always batches: ``Ranked.ids`` is ``(batch, n)`` int32 padded with -1
and ``Ranked.scores`` is ``(batch, n)`` float32 padded with ``-inf``.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple, Protocol, Self

import numpy as np
from scipy import sparse

from recsys._typing import BoolArray, FloatArray, IntArray
from recsys.data.baskets import Baskets
from recsys.data.csr import as_csr, forbid, row_block
from recsys.data.features import ItemFeatures
from recsys.errors import NotFittedError
from recsys.models._reasons import Reason

SCORE_CHUNK = 1024  # users scored per dense block: bounds memory at chunk x n_items floats


class Ranked(NamedTuple):
    """Top-n results of a batch: ids ``(batch, n)`` padded with -1, scores padded with -inf."""

    ids: IntArray
    scores: FloatArray


class Recommender(Protocol):
    """What every model offers (see DESIGN.md B3)."""

    name: ClassVar[str]
    ranks_live_rows: ClassVar[bool]

    def fit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
            baskets: Baskets | None = None) -> Self: ...

    def refit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
              baskets: Baskets | None = None) -> Self: ...

    def recommend(self, history: sparse.csr_matrix, n: int = 10, *,
                  users: IntArray | None = None, exclude: sparse.csr_matrix | None = None,
                  candidates: BoolArray | IntArray | None = None) -> Ranked: ...

    def recommend_with_reasons(self, history: sparse.csr_matrix, n: int = 10, *,
                               users: IntArray | None = None,
                               exclude: sparse.csr_matrix | None = None,
                               candidates: BoolArray | IntArray | None = None,
                               own_only: bool = False
                               ) -> tuple[Ranked, np.ndarray, np.ndarray]: ...

    def similar_items(self, items: IntArray, n: int = 10) -> Ranked: ...

    def state(self) -> dict[str, np.ndarray]: ...

    @classmethod
    def from_state(cls, params: Mapping[str, Any], state: Mapping[str, np.ndarray]) -> Self: ...


def top_n(scores: np.ndarray, n: int) -> Ranked:
    """Top ``n`` columns of each row of a dense score block, best first, equal scores in
    column order (so any subset of columns holding the answer ranks the same).

    ``-inf`` scores are treated as "not recommendable" and come back as id -1 / score -inf;
    so do ``+inf`` (ranked first) and ``nan`` (ranked last). Rows of a big block are ranked
    from the few cells at or above a cheap bound (`_bounded_candidates`: the ranker's fit
    and the baselines' evaluation rank thousands of customers over a whole catalog); small
    blocks and rows with many cells at the bound (heavy ties) from an exact partition.
    """
    scores = np.asarray(scores, dtype=np.float32)
    batch, n_items = scores.shape
    k = min(n, n_items)
    if k == 0:
        return Ranked(np.full((batch, n), -1, np.int32), np.full((batch, n), -np.inf, np.float32))
    found = _bounded_candidates(scores, k)
    if found is None:
        ids, top = _rank_candidates(*_partition_candidates(scores, k), k)
    else:
        quick, part, part_scores = found
        ids, top = np.empty((batch, k), np.int32), np.empty((batch, k), np.float32)
        ids[quick], top[quick] = _rank_candidates(part, part_scores, k)
        if not quick.all():
            slow = ~quick
            ids[slow], top[slow] = _rank_candidates(*_partition_candidates(scores[slow], k), k)
    if k < n:
        ids = np.pad(ids, ((0, 0), (0, n - k)), constant_values=-1)
        top = np.pad(top, ((0, 0), (0, n - k)), constant_values=-np.inf)
    return Ranked(ids, top)


def _rank_candidates(part: np.ndarray, part_scores: np.ndarray, k: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The first ``k`` of each row's candidate columns ``part`` (scored ``part_scores``) by
    (score descending, column), non-finite scores as id -1 / score -inf."""
    order = np.lexsort((part, -part_scores), axis=1)[:, :k]
    ids = np.take_along_axis(part, order, axis=1).astype(np.int32)
    top = np.take_along_axis(part_scores, order, axis=1)
    ids[~np.isfinite(top)] = -1
    top[ids < 0] = -np.inf
    return ids, top


def _partition_candidates(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's top ``k`` columns (any order) and their scores, by ``argpartition``; ties
    across the k-th place are settled by column."""
    batch, n_items = scores.shape
    if k == n_items:
        part = np.tile(np.arange(n_items), (batch, 1))
        return part, scores
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(scores, part, axis=1).min(axis=1)
    tied = np.flatnonzero(np.isfinite(kth) & ((scores >= kth[:, None]).sum(axis=1) > k))
    for r in tied:  # ties across the k-th place: the first columns win
        level = np.flatnonzero(scores[r] >= kth[r])
        part[r] = level[np.lexsort((level, -scores[r, level]))[:k]]
    return part, np.take_along_axis(scores, part, axis=1)


_LOWEST = np.finfo(np.float32).min  # candidates are the cells >= max(bound, _LOWEST): > -inf
_QUICK_CELLS = 8192  # smaller blocks rank faster by the exact partition (fewer numpy calls)


def _bounded_candidates(scores: np.ndarray, k: int
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Candidate columns holding each row's top ``k``, from a cheap lower bound on its k-th
    best score: split the columns into ``groups`` strided groups (column ``c`` in group
    ``c % groups``); the k-th largest of the group maxima (nan ignored) is reached by k
    distinct cells, so every top-k cell scores at least that. ``(quick, part, part_scores)``:
    the rows with at most ``4 k`` such cells, their cells in column order padded with
    score -inf; None when the catalog is too small for groups to pay.
    """
    batch, n_items = scores.shape
    groups = max(128, 8 * k)
    per_group = n_items // groups
    if per_group < 2 or scores.size < _QUICK_CELLS:
        return None
    step = scores.strides[1]
    strided = np.lib.stride_tricks.as_strided(  # (batch, per_group, groups) view, no copy
        scores, (batch, per_group, groups), (scores.strides[0], groups * step, step),
        writeable=False)
    maxima = np.fmax.reduce(strided, axis=1, initial=-np.inf)
    rest = scores[:, per_group * groups:]
    np.fmax(maxima[:, :rest.shape[1]], rest, out=maxima[:, :rest.shape[1]])
    bound = np.maximum(np.partition(maxima, groups - k, axis=1)[:, groups - k], _LOWEST)
    above = scores >= bound[:, None]
    counts = np.count_nonzero(above, axis=1)
    quick = counts <= 4 * k
    if not quick.any():
        return None
    counts = counts[quick]
    rows, cols = np.divmod(np.flatnonzero(above[quick]), n_items)  # rows among the quick ones
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    part = np.zeros((len(counts), max(k, int(counts.max()))), np.intp)
    part_scores = np.full(part.shape, -np.inf, np.float32)
    part[rows, slot] = cols
    part_scores[rows, slot] = scores[np.flatnonzero(quick)[rows], cols]
    return quick, part, part_scores


def _for_all(ranked: Ranked, reason: Reason) -> tuple[Ranked, np.ndarray, np.ndarray]:
    """``ranked`` with one ``reason`` for every pick and no item."""
    kinds = np.where(ranked.ids >= 0, np.int8(reason), np.int8(Reason.NONE))
    return ranked, kinds, np.full(ranked.ids.shape, -1, np.int32)


class RecommenderBase:
    """Shared validation, filtering, top-n and state I/O.

    Subclasses set ``name``, store hyper-parameters verbatim in a keyword-only ``__init__``,
    implement ``fit`` and ``_score_users`` (dense ``(batch, n_items)`` scores for the given rows
    of ``history``), ``_item_vectors`` or override ``similar_items``, and list their learned
    arrays in ``_state_keys``.
    """

    name: ClassVar[str] = "base"
    # True: the model merges a stored customer's live events into their stored state itself,
    # so callers keep the customer's training row (otherwise they fold the row in afresh).
    ranks_live_rows: ClassVar[bool] = False
    _state_keys: ClassVar[tuple[str, ...]] = ()

    n_items_: int

    # -- parameters (sklearn style) ---------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters as passed to ``__init__``."""
        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self"}

    def resolved_params(self) -> dict[str, Any]:
        """``get_params`` with nothing left to defaults kept elsewhere: what a saved model
        stores, so that changing a default in the code does not change it."""
        return self.get_params()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- the protocol -----------------------------------------------------------------------
    def fit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
            baskets: Baskets | None = None) -> Self:
        """Learn from ``interactions`` (customers x products); ``items`` is side information
        aligned with the columns, ``baskets`` the same customers' orders in time order (same id
        maps), for time-aware models; models that need neither ignore them."""
        raise NotImplementedError

    def recommend(self, history: sparse.csr_matrix, n: int = 10, *,
                  users: IntArray | None = None, exclude: sparse.csr_matrix | None = None,
                  candidates: BoolArray | IntArray | None = None) -> Ranked:
        """Top ``n`` items for each row of ``history``.

        Parameters
        ----------
        history : csr_matrix, shape (batch, n_items)
            What each customer bought (weights as in training). Used to fold in customers
            that training never saw, or whose history changed since.
        n : int
            Results per row; rows are padded with -1 / -inf when fewer items qualify.
        users : ndarray of int, shape (batch,), optional
            Training row of each customer, when known: models with stored user state use it
            instead of folding in. ``-1`` marks a customer unknown to training.
        exclude : csr_matrix, shape (batch, n_items), optional
            Non-zero cells are never returned (already bought, hidden, out of stock).
        candidates : ndarray of bool, shape (n_items,), or of int, optional
            The items the batch may get, as a mask over the catalog (what the serving
            filters give) or as item indices; nothing else is returned.
        """
        history, users, exclude, allowed = self._check_inputs(history, n, users, exclude,
                                                              candidates)
        out_ids = np.full((history.shape[0], n), -1, np.int32)
        out_scores = np.full((history.shape[0], n), -np.inf, np.float32)
        for start in range(0, history.shape[0], SCORE_CHUNK):
            stop = min(start + SCORE_CHUNK, history.shape[0])
            block_users = None if users is None else users[start:stop]
            scores = np.array(self._score_users(row_block(history, start, stop), block_users),
                              dtype=np.float32, copy=True)
            if allowed is not None:
                scores[:, ~allowed] = -np.inf
            if exclude is not None:
                forbid(scores, row_block(exclude, start, stop))
            ranked = top_n(scores, n)
            out_ids[start:stop], out_scores[start:stop] = ranked
        return Ranked(out_ids, out_scores)

    def recommend_with_reasons(self, history: sparse.csr_matrix, n: int = 10, *,
                               users: IntArray | None = None,
                               exclude: sparse.csr_matrix | None = None,
                               candidates: BoolArray | IntArray | None = None,
                               own_only: bool = False
                               ) -> tuple[Ranked, np.ndarray, np.ndarray]:
        """``recommend`` plus why each item was picked: a ``Reason`` per pick (int8,
        ``Reason.NONE`` on padding) and the item it goes with (int32, -1 for none).
        ``own_only``: each row's own products only (``recommend_own``, ``BUY_AGAIN``)."""
        if own_only:
            return _for_all(self.recommend_own(history, n, candidates=candidates),
                            Reason.BUY_AGAIN)
        return self._explained(history, n, users, exclude, candidates)

    def _explained(self, history: sparse.csr_matrix, n: int, users: IntArray | None,
                   exclude: sparse.csr_matrix | None, candidates: BoolArray | IntArray | None
                   ) -> tuple[Ranked, np.ndarray, np.ndarray]:
        """``recommend_with_reasons`` without ``own_only``; this default says
        ``PERSONALIZED`` with no item."""
        return _for_all(self.recommend(history, n, users=users, exclude=exclude,
                                       candidates=candidates), Reason.PERSONALIZED)

    def recommend_own(self, history: sparse.csr_matrix, n: int = 10, *,
                      candidates: BoolArray | IntArray | None = None) -> Ranked:
        """Top ``n`` of each row's own products (its positive cells), by history weight;
        models with a buy-again score rank by it."""
        history, _, _, allowed = self._check_inputs(history, n, None, None, candidates)
        ids = np.full((history.shape[0], n), -1, np.int32)
        scores = np.full((history.shape[0], n), -np.inf, np.float32)
        for start in range(0, history.shape[0], SCORE_CHUNK):  # bounds the dense blocks
            dense = row_block(history, start, start + SCORE_CHUNK).toarray()
            own = dense > 0
            if allowed is not None:
                own &= allowed[None, :]
            ids[start:start + SCORE_CHUNK], scores[start:start + SCORE_CHUNK] = top_n(
                np.where(own, dense, -np.inf), n)
        return Ranked(ids, scores)

    def similar_items(self, items: IntArray, n: int = 10) -> Ranked:
        """The ``n`` items most similar to each of ``items`` (the item itself excluded)."""
        self._check_fitted()
        items = np.asarray(items, dtype=np.int64)
        if items.ndim != 1:
            raise ValueError("items must be a 1-D array of item indices.")
        if ((items < 0) | (items >= self.n_items_)).any():
            raise ValueError(f"item indices must lie in [0, {self.n_items_}).")
        scores = np.array(self._item_similarity(items), dtype=np.float32, copy=True)
        scores[np.arange(len(items)), items] = -np.inf
        return top_n(scores, n)

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays (plain numpy, no objects) that ``from_state`` restores."""
        self._check_fitted()
        return {k: np.asarray(getattr(self, k)) for k in self._state_keys}

    @classmethod
    def from_state(cls, params: Mapping[str, Any], state: Mapping[str, np.ndarray]) -> Self:
        """Rebuild a fitted model from ``get_params()`` and ``state()``."""
        model = cls(**params)
        missing = [k for k in cls._state_keys if k not in state]
        if missing:
            raise ValueError(f"{cls.__name__} state lacks arrays {missing}.")
        for k in cls._state_keys:
            value = state[k]
            setattr(model, k, value.item() if value.ndim == 0 else value)
        model._restore()
        return model

    # -- hooks for subclasses ---------------------------------------------------------------
    def _score_users(self, history: sparse.csr_matrix, users: IntArray | None) -> np.ndarray:
        raise NotImplementedError

    def _item_similarity(self, items: np.ndarray) -> np.ndarray:
        """Dense ``(len(items), n_items)`` similarity; default: cosine of item vectors."""
        unit = self.unit_item_vectors()
        return unit[items] @ unit.T

    def unit_item_vectors(self) -> np.ndarray:
        """Item vectors scaled to unit length (zero rows stay zero), float32; computed once
        per set of vectors, not on every similarity query."""
        vectors = self._item_vectors()
        cached = self.__dict__.get("_unit_vectors")
        if cached is None or cached[0] is not vectors:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            norms[norms == 0] = 1.0
            cached = (vectors, (vectors / norms).astype(np.float32))
            self._unit_vectors = cached
        return cached[1]

    def _item_vectors(self) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} has no item vectors.")

    def _restore(self) -> None:
        """Recompute derived, non-persisted state after ``from_state`` (e.g. caches)."""

    # -- validation -------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first.")

    def _check_inputs(self, history: sparse.csr_matrix, n: int, users: IntArray | None,
                      exclude: sparse.csr_matrix | None,
                      candidates: BoolArray | IntArray | None,
                      ) -> tuple[sparse.csr_matrix, IntArray | None, sparse.csr_matrix | None,
                                 BoolArray | None]:
        """The inputs of ``recommend`` checked, ``candidates`` as a mask over the catalog."""
        self._check_fitted()
        if not sparse.issparse(history):
            raise TypeError("history must be a scipy.sparse CSR matrix (customers x items).")
        history = as_csr(history)
        if history.shape[1] != self.n_items_:
            raise ValueError(f"history has {history.shape[1]} columns but the model was fitted "
                             f"on {self.n_items_} items.")
        if not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"n must be a positive integer, not {n!r}.")
        if users is not None:
            users = np.asarray(users, dtype=np.int32)
            if users.shape != (history.shape[0],):
                raise ValueError("users must have one entry per row of history.")
        if exclude is not None:
            exclude = as_csr(exclude, exclude.dtype)
            if exclude.shape != history.shape:
                raise ValueError("exclude must have the same shape as history.")
        allowed = None if candidates is None else self.allowed_mask(candidates)
        return history, users, exclude, allowed

    def allowed_mask(self, candidates: BoolArray | IntArray) -> BoolArray:
        """``candidates`` (a boolean mask over the catalog or item indices) as the mask,
        the one form the models rank with."""
        candidates = np.asarray(candidates)
        if candidates.dtype == bool:
            if candidates.shape != (self.n_items_,):
                raise ValueError(f"a boolean candidates mask must have {self.n_items_} "
                                 "entries, one per item.")
            return candidates
        indices = candidates.astype(np.int64)
        if ((indices < 0) | (indices >= self.n_items_)).any():
            raise ValueError(f"candidates must be item indices in [0, {self.n_items_}).")
        mask = np.zeros(self.n_items_, bool)
        mask[indices] = True
        return mask


__all__ = ["Ranked", "Recommender", "RecommenderBase", "top_n", "SCORE_CHUNK"]
