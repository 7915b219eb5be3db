"""Buy again: rank a customer's own past products by how likely they are to be bought again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
from scipy import sparse

from recsys._typing import BoolArray, IntArray
from recsys.data.baskets import Baskets
from recsys.data.csr import as_csr
from recsys.data.features import ItemFeatures
from recsys.models._common import (
    Model,
    check_interactions,
    check_items,
    encode_categories,
    feature,
    same_category_first,
)
from recsys.models.base import Ranked

TIE = 1e-4  # relative nudge by popularity: own products scoring within it tie


class BuyAgain(Model):
    """Repurchase likelihood of the products a customer already bought.

    ``score_ui = h_ui ** frequency_power * q_i`` for items in the customer's history and
    popularity below them for the rest (``popularity_fill``). ``h_ui`` is the history
    weight: how often (``count``/``log`` weighting) and, when the matrix was built with
    ``half_life_days``, how recently the customer bought it. ``q_i = 1 - exp(-horizon_days /
    r_i)`` is the chance that a product whose customers repurchase it every ``r_i`` days
    (``ItemFeatures.repurchase_days``, a Poisson approximation) is due again within the
    horizon: milk beats detergent.

    Parameters
    ----------
    horizon_days : float
        The window the repurchase chance is computed for. On both benchmark datasets
        (docs/benchmarks/quality.md) the validation period prefers ~100 days over the
        4-week test window: ``q_i`` then mainly demotes products hardly anyone rebuys and the
        customer's own frequency does the ranking.
    frequency_power : float
        Exponent of the history weight; 0 ranks by the product's repurchase rate only
        (1.5: validated like ``horizon_days``).
    unknown_interval_days : float
        Repurchase interval assumed for products nobody bought twice in training (and for
        every product when ``items`` is not given).
    popularity_fill : bool
        True (the baseline called P-TopFreq / GP-TopFreq in the next-basket literature): the
        products a customer never bought follow their own ones, by number of buyers in
        training, all scored strictly below every own product (so a short history still
        fills the list, and a customer with none gets the best sellers); own products with
        equal scores (within a relative ``TIE``) rank by number of buyers too, which matters
        on data where many products were bought once (Online Retail, ``horizon_days=1e5``:
        returning customers' NDCG@10 0.303 -> 0.333). False: they score ``-inf`` (own
        products only).

    Attributes
    ----------
    item_rate_ : ndarray of float32, shape (n_items,)
        ``q_i`` above.
    item_category_ : ndarray of int32, shape (n_items,)
        Category codes (-1: unknown), used by ``similar_items``.
    item_popularity_ : ndarray of float32, shape (n_items,)
        Training buyers per product (kept only with ``popularity_fill``).
    """

    name: ClassVar[str] = "buyagain"
    cold_start: ClassVar[bool] = True  # with the default popularity_fill
    _state_keys: ClassVar[tuple[str, ...]] = ("n_items_", "item_rate_", "item_category_")

    def __init__(self, *, horizon_days: float = 100.0, frequency_power: float = 1.5,
                 unknown_interval_days: float = 180.0, popularity_fill: bool = True) -> None:
        self.horizon_days = horizon_days
        self.frequency_power = frequency_power
        self.unknown_interval_days = unknown_interval_days
        self.popularity_fill = popularity_fill

    def fit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
            baskets: Baskets | None = None) -> Self:
        """Derive each item's repurchase rate from ``items.repurchase_days``."""
        if self.horizon_days <= 0 or self.unknown_interval_days <= 0:
            raise ValueError("horizon_days and unknown_interval_days must be > 0.")
        matrix = check_interactions(interactions)
        n_items = matrix.shape[1]
        items = check_items(items, n_items)
        interval = feature(items, "repurchase_days", n_items).astype(np.float64)
        interval = np.where(np.isfinite(interval) & (interval > 0), interval,
                            self.unknown_interval_days)
        self.item_rate_ = (-np.expm1(-self.horizon_days / interval)).astype(np.float32)
        self.item_category_, _ = encode_categories(items, n_items)
        if self.popularity_fill:
            self.item_popularity_ = np.bincount(matrix.indices, minlength=n_items).astype(
                np.float32)
        self.n_items_ = n_items
        return self

    def state(self) -> dict[str, np.ndarray]:
        """Learned arrays; the popularity only when the list is filled with it."""
        out = super().state()
        if self.popularity_fill:
            out["item_popularity_"] = np.asarray(self.item_popularity_)
        return out

    @classmethod
    def from_state(cls, params: Mapping[str, Any], state: Mapping[str, np.ndarray]) -> Self:
        model = super().from_state(params, state)
        if model.popularity_fill:
            if "item_popularity_" not in state:
                raise ValueError("BuyAgain state lacks arrays ['item_popularity_'].")
            model.item_popularity_ = state["item_popularity_"]
        return model

    def repurchase_scores(self, history: sparse.csr_matrix) -> sparse.csr_matrix:
        """``h_ui ** frequency_power * q_i`` on the bought cells of ``history`` (sparse)."""
        history = as_csr(history)
        return sparse.csr_matrix(self.repurchase_cells(history), shape=history.shape)

    def repurchase_cells(self, history: sparse.csr_matrix
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``repurchase_scores`` as its ``(data, indices, indptr)``, without building the
        matrix (a request's row: scipy's checks cost more than the scores)."""
        self._check_fitted()
        history = as_csr(history)
        if not (history.data > 0).all():
            history = history.multiply(history > 0).tocsr()
        data = np.power(history.data, self.frequency_power, dtype=np.float32) \
            * self.item_rate_[history.indices]
        return data, history.indices, history.indptr

    def recommend_own(self, history: sparse.csr_matrix, n: int = 10, *,
                      candidates: BoolArray | IntArray | None = None) -> Ranked:
        """``recommend``: own products first (then best sellers with ``popularity_fill``)."""
        return self.recommend(history, n, candidates=candidates)

    def _score_users(self, history: sparse.csr_matrix, users: np.ndarray | None) -> np.ndarray:
        scores = np.full(history.shape, -np.inf, np.float32)
        coo = self.repurchase_scores(history).tocoo()
        if self.popularity_fill:
            share = self.item_popularity_ / (self.item_popularity_.max() + 1.0)  # in [0, 1)
            scores[:] = share - 1.0  # in [-1, 0): below every own product's score (> 0)
            coo.data *= 1.0 + TIE * share[coo.col]  # equal own scores: the best seller first
        scores[coo.row, coo.col] = coo.data
        return scores

    def _item_similarity(self, items: np.ndarray) -> np.ndarray:
        """Products customers restock soonest, those of the item's category first."""
        return same_category_first(self.item_rate_, self.item_category_, items)


__all__ = ["BuyAgain"]
