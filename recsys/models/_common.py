"""Checks and helpers shared by the models (additions to ``RecommenderBase``, not changes).

``Model`` adds what the base class leaves to subclasses: validation of the training matrix and
of ``ItemFeatures`` in ``fit``, a range check of ``users`` against the stored users, and the
rule for rows a model knows nothing about (empty history and no stored user): such rows come
back fully padded (-1 / -inf) so the caller, e.g. the hybrid, can fall back to popularity.
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
from scipy import sparse

from recsys._typing import BoolArray, IntArray
from recsys.data.baskets import Baskets
from recsys.data.csr import as_csr, row_block
from recsys.data.features import ItemFeatures
from recsys.models.base import SCORE_CHUNK, Ranked, RecommenderBase
from recsys.models.factor_ranker import FactorRanker

_FEATURE_ARRAYS = ("category", "price", "first_sold_days", "repurchase_days", "available")


class Model(RecommenderBase):
    """``RecommenderBase`` plus input checks; every model of this package derives from it.

    Subclasses with per-user state set ``stores_users = True`` (the hybrid: as its CF part
    does) and keep ``n_users_``; those that answer rows with nothing to go on (popularity,
    the hybrid's fallback) set ``cold_start = True``.
    """

    stores_users: bool = False
    cold_start: ClassVar[bool] = False
    n_users_: int

    def refit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
              baskets: Baskets | None = None) -> Self:
        """Fit again on a longer history of the same shop (the served bundle after the
        evaluated fit). A model that learns from earlier periods of its history (the ranker)
        keeps that learning, so what is served is what was scored; the rest fit afresh."""
        return self.fit(interactions, items=items, baskets=baskets)  # type: ignore[attr-defined,no-any-return]

    def _check_inputs(self, history: sparse.csr_matrix, n: int, users: IntArray | None,
                      exclude: sparse.csr_matrix | None,
                      candidates: BoolArray | IntArray | None,
                      ) -> tuple[sparse.csr_matrix, IntArray | None, sparse.csr_matrix | None,
                                 BoolArray | None]:
        history, users, exclude, allowed = super()._check_inputs(history, n, users, exclude,
                                                                 candidates)
        if users is not None and users.size:
            limit = getattr(self, "n_users_", None)
            if users.min() < -1 or (limit is not None and users.max() >= limit):
                raise ValueError(f"users must be training rows in [0, {limit}) or -1 for a "
                                 "customer unknown to training.")
        return history, users, exclude, allowed

    def _known_rows(self, history: sparse.csr_matrix, users: IntArray | None) -> np.ndarray:
        """Rows with something to go on: a non-empty history or (if stored) a known user."""
        known = np.diff(history.indptr) > 0
        if self.stores_users and users is not None:
            known |= users >= 0
        return known


class FactorModel(Model):
    """A model whose scores are ``user vector . item vector`` (ALS, BPR): it owns the user
    vectors (stored for training rows, folded in from a history otherwise), and ranks them
    with ``FactorRanker`` without scoring the whole catalog.

    Subclasses set ``user_factors_`` and ``item_factors_`` (same width), implement
    ``_fold_in`` and call ``_restore`` once the item factors are set.
    """

    stores_users: bool = True
    user_factors_: np.ndarray
    item_factors_: np.ndarray

    def __init__(self, *, factors: int, regularization: float, iterations: int,
                 random_state: int, num_threads: int) -> None:
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state
        self.num_threads = num_threads

    def _training_matrix(self, interactions: sparse.spmatrix, items: ItemFeatures | None
                         ) -> sparse.csr_matrix:
        """``interactions`` checked as a training matrix, and the factor settings with it."""
        matrix = check_interactions(interactions)
        check_items(items, matrix.shape[1])
        if self.factors < 1 or self.iterations < 1:
            raise ValueError("factors and iterations must be >= 1.")
        return matrix

    def fold_in(self, history: sparse.csr_matrix) -> np.ndarray:
        """User vectors for the rows of ``history`` (what a training row's stored vector
        would be for that history).

        Parameters
        ----------
        history : csr_matrix, shape (batch, n_items)

        Returns
        -------
        ndarray of float32, shape (batch, width of ``item_factors_``)
        """
        self._check_fitted()
        return self._fold_in(as_csr(history))

    def _fold_in(self, history: sparse.csr_matrix) -> np.ndarray:
        raise NotImplementedError

    def user_vectors(self, history: sparse.csr_matrix, users: IntArray | None
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Stored vectors where ``users >= 0``, fold-in elsewhere, and which rows have
        anything to go on (the others score -inf everywhere)."""
        vectors = np.zeros((history.shape[0], self.item_factors_.shape[1]), np.float32)
        stored = np.zeros(history.shape[0], bool) if users is None else users >= 0
        if stored.any():
            vectors[stored] = self.user_factors_[users[stored]]  # type: ignore[index]
        if not stored.all():
            vectors[~stored] = self.fold_in(history[~stored] if stored.any() else history)
        return vectors, self._known_rows(history, users)

    def recommend(self, history: sparse.csr_matrix, n: int = 10, *,
                  users: IntArray | None = None, exclude: sparse.csr_matrix | None = None,
                  candidates: BoolArray | IntArray | None = None) -> Ranked:
        """``RecommenderBase.recommend`` from the items that can make each row's top ``n``
        (``FactorRanker``): the same items, scores equal up to float32 rounding, and a
        customer's answer is the same alone as in any batch."""
        history, users, exclude, allowed = self._check_inputs(history, n, users, exclude,
                                                              candidates)
        ids = np.full((history.shape[0], n), -1, np.int32)
        scores = np.full((history.shape[0], n), -np.inf, np.float32)
        for start in range(0, history.shape[0], SCORE_CHUNK):  # bounds the scored blocks
            stop = min(start + SCORE_CHUNK, history.shape[0])
            vectors, known = self.user_vectors(row_block(history, start, stop),
                                               None if users is None else users[start:stop])
            ids[start:stop], scores[start:stop] = self._ranker.top(
                vectors, known, n, allowed=allowed,
                exclude=None if exclude is None else row_block(exclude, start, stop))
        return Ranked(ids, scores)

    def _restore(self) -> None:
        self._ranker = FactorRanker(self.item_factors_)

    def _score_users(self, history: sparse.csr_matrix, users: IntArray | None) -> np.ndarray:
        vectors, known = self.user_vectors(history, users)
        scores = vectors @ self.item_factors_.T
        scores[~known] = -np.inf
        return scores


def check_interactions(interactions: sparse.spmatrix) -> sparse.csr_matrix:
    """Validate a training matrix and return it as canonical float32 CSR.

    Parameters
    ----------
    interactions : sparse matrix, shape (n_users, n_items)
        Non-negative, finite weights; explicit zeros are dropped.
    """
    if not sparse.issparse(interactions):
        raise TypeError("interactions must be a scipy.sparse CSR matrix (customers x items), "
                        f"not {type(interactions).__name__}.")
    matrix = sparse.csr_matrix(interactions, dtype=np.float32, copy=True)
    matrix.sum_duplicates()
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"interactions has shape {matrix.shape}; it needs at least one customer "
                         "and one item.")
    if not np.isfinite(matrix.data).all():
        raise ValueError("interactions contains NaN or infinite weights.")
    if (matrix.data < 0).any():
        raise ValueError("interactions contains negative weights; pass purchase weights >= 0.")
    matrix.eliminate_zeros()
    matrix.sort_indices()
    return matrix


def check_items(items: ItemFeatures | None, n_items: int, *, required: bool = False,
                who: str = "model") -> ItemFeatures | None:
    """Check that ``items`` describes the ``n_items`` columns of the training matrix."""
    if items is None:
        if required:
            raise ValueError(f"{who} needs items=ItemFeatures(...) aligned with the matrix "
                             "columns.")
        return None
    if not isinstance(items, ItemFeatures):
        raise TypeError(f"items must be an ItemFeatures, not {type(items).__name__}.")
    if len(items) != n_items:
        raise ValueError(f"items describes {len(items)} products but interactions has "
                         f"{n_items} columns.")
    for name in _FEATURE_ARRAYS:
        size = len(getattr(items, name))
        if size not in (0, n_items):
            raise ValueError(f"items.{name} has {size} entries; expected {n_items} (or none).")
    return items


def feature(items: ItemFeatures | None, name: str, n_items: int, fill: float = np.nan
            ) -> np.ndarray:
    """A float32 feature column of ``items``, or ``fill`` everywhere when absent."""
    values = getattr(items, name) if items is not None else ()
    if len(values) == 0:
        return np.full(n_items, fill, np.float32)
    return np.asarray(values, dtype=np.float32)


def encode_categories(items: ItemFeatures | None, n_items: int, depth: int | None = None
                      ) -> tuple[IntArray, np.ndarray]:
    """Integer category codes of the catalog.

    Parameters
    ----------
    items : ItemFeatures or None
    n_items : int
    depth : int, optional
        Keep the first ``depth`` levels of the ``" > "``-joined path (None: the whole path).

    Returns
    -------
    codes : ndarray of int32, shape (n_items,)
        Index into ``names``; -1 where the category is unknown.
    names : ndarray of str, shape (n_categories,)
        Sorted category names (a unicode array, so it persists without pickle).
    """
    raw = getattr(items, "category", ()) if items is not None else ()
    if len(raw) == 0:
        return np.full(n_items, -1, np.int32), np.array([], dtype="<U1")
    paths = np.asarray([str(c) if c is not None else "" for c in raw], dtype=str)
    if depth is not None:
        paths = np.asarray([" > ".join(p.split(" > ")[:depth]) for p in paths], dtype=str)
    names, codes = np.unique(paths, return_inverse=True)
    codes = codes.astype(np.int32)
    if len(names) and names[0] == "":  # np.unique sorts "" first
        codes -= 1
        names = names[1:]
    return codes, np.asarray(names, dtype=str)


def row_max_scale(scores: np.ndarray) -> np.ndarray:
    """Scale each row into [0, 1] by its largest finite score; negatives and -inf become 0."""
    out = np.where(np.isfinite(scores), scores, 0.0).astype(np.float32)
    np.maximum(out, 0.0, out=out)
    top = out.max(axis=1, keepdims=True)
    top[top == 0] = 1.0
    return out / top


def same_category_first(values: np.ndarray, category: np.ndarray, items: np.ndarray
                        ) -> np.ndarray:
    """``(len(items), n_items)`` scores ranking items of each query's category first.

    Within each group the order is that of ``values`` (non-negative); unknown categories
    (code -1) match nothing.
    """
    cats = category[items]
    same = (cats[:, None] >= 0) & (category[None, :] == cats[:, None])
    bonus = float(np.max(values, initial=0.0)) + 1.0
    return (values[None, :] + bonus * same).astype(np.float32)


def first_permitted(order: np.ndarray, permitted: np.ndarray, k: int) -> np.ndarray:
    """The first ``k`` entries of ``order`` that are ``permitted`` (fewer if there are not):
    a short head of ``order`` is read first, the rest only if most of it is not permitted."""
    width = 4 * k
    while True:
        head = order[:width]
        found = head[permitted[head]]
        if len(found) >= k or width >= len(order):
            return found[:k]
        width *= 4


__all__ = ["FactorModel", "Model", "check_interactions", "check_items", "feature",
           "encode_categories", "first_permitted", "row_max_scale", "same_category_first"]
