"""Non-personalised baselines: overall popularity, time-decayed trending, per category."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal, Self

import numpy as np
from scipy import sparse

from recsys.data.baskets import Baskets
from recsys.data.features import ItemFeatures
from recsys.errors import UnknownIdError
from recsys.models._common import (
    Model,
    check_interactions,
    check_items,
    encode_categories,
    feature,
    same_category_first,
)
from recsys.models.base import Ranked, top_n


class Popularity(Model):
    """Rank every product by how many customers bought it; the same list for everyone.

    Parameters
    ----------
    by : {"customers", "weight"}
        ``"customers"`` counts distinct buyers (robust to bulk buyers); ``"weight"`` sums the
        interaction weights (so a recency-decayed matrix gives a recency-decayed popularity).
    category_depth : int, optional
        Levels of the category path used by ``popular_in`` and ``similar_items``
        (None: the full path).

    Attributes
    ----------
    item_scores_ : ndarray of float32, shape (n_items,)
    item_category_ : ndarray of int32, shape (n_items,)
        Category code of each item (-1: unknown), into ``categories_``.
    categories_ : ndarray of str, shape (n_categories,)
    """

    name: ClassVar[str] = "popularity"
    cold_start: ClassVar[bool] = True
    _state_keys: ClassVar[tuple[str, ...]] = ("n_items_", "item_scores_", "item_category_",
                                              "categories_")

    def __init__(self, *, by: Literal["customers", "weight"] = "customers",
                 category_depth: int | None = None) -> None:
        self.by = by
        self.category_depth = category_depth

    def fit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
            baskets: Baskets | None = None) -> Self:
        """Count buyers (or sum weights) per item; ``items`` adds categories."""
        matrix = check_interactions(interactions)
        n_items = matrix.shape[1]
        items = check_items(items, n_items)
        self.item_scores_ = self._item_scores(matrix, items)
        self.item_category_, self.categories_ = encode_categories(items, n_items,
                                                                  self.category_depth)
        self.n_items_ = n_items
        return self

    def _item_scores(self, matrix: sparse.csr_matrix, items: ItemFeatures | None) -> np.ndarray:
        if self.by == "customers":
            counts = np.bincount(matrix.indices, minlength=matrix.shape[1])
        elif self.by == "weight":
            counts = np.asarray(matrix.sum(axis=0)).ravel()
        else:
            raise ValueError(f"by must be 'customers' or 'weight', not {self.by!r}.")
        return counts.astype(np.float32)

    def _score_users(self, history: sparse.csr_matrix, users: np.ndarray | None) -> np.ndarray:
        return np.broadcast_to(self.item_scores_, (history.shape[0], self.n_items_))

    def _item_similarity(self, items: np.ndarray) -> np.ndarray:
        """Best sellers of the item's category first, then the other best sellers."""
        return same_category_first(self.item_scores_, self.item_category_, items)

    def popular_in(self, categories: Sequence[str], n: int = 10, *,
                   candidates: np.ndarray | None = None) -> Ranked:
        """The ``n`` most popular items of each category ("popular in <category>").

        Parameters
        ----------
        categories : sequence of str, length batch
            Category paths, cut to ``category_depth`` levels like the fitted ones.
        candidates : ndarray of bool, shape (n_items,), or of int, optional
            The allowed items (see ``RecommenderBase.recommend``).

        Returns
        -------
        Ranked
            ``(batch, n)`` item indices and popularity scores, padded with -1 / -inf.

        Raises
        ------
        UnknownIdError
            A category is not in the fitted catalog.
        """
        self._check_fitted()
        index = {name: code for code, name in enumerate(self.categories_.tolist())}
        unknown = [c for c in categories if c not in index]
        if unknown:
            raise UnknownIdError(f"unknown categor(ies) {unknown[:3]}; known ones look like "
                                 f"{self.categories_[:3].tolist()}")
        codes = np.array([index[c] for c in categories], dtype=np.int32)
        scores = np.where(self.item_category_[None, :] == codes[:, None], self.item_scores_,
                          -np.inf).astype(np.float32)
        if candidates is not None:
            scores[:, ~self.allowed_mask(candidates)] = -np.inf
        return top_n(scores, n)


class Trending(Popularity):
    """Products selling fast now: recency-decayed sales per day on the shelf.

    ``score_i = sales_i / (exposure_i + prior_days)`` where ``sales_i`` sums item ``i``'s
    weights and ``exposure_i`` is how long the item has been on sale, discounted with the same
    half-life (``first_sold_days`` from ``ItemFeatures``; items older than a few half-lives all
    get the full ``half_life_days / ln 2``). A product launched last week that already sells
    as much per day as a staple therefore ranks with it. Fit it on a matrix built with
    ``build_interactions(..., half_life_days=h)`` and the same ``h`` for a time-decayed trend;
    on undecayed weights it is popularity with a boost for products new on the shelf. Without
    ``items`` (no launch dates) it equals ``Popularity(by="weight")``.

    Parameters
    ----------
    half_life_days : float
        Half-life of the recency decay of exposure.
    prior_days : float
        Added to every exposure so a product sold twice on its first day does not top the list.
    category_depth : int, optional
        As in ``Popularity``.
    """

    name: ClassVar[str] = "trending"

    def __init__(self, *, half_life_days: float = 14.0, prior_days: float = 7.0,
                 category_depth: int | None = None) -> None:
        self.half_life_days = half_life_days
        self.prior_days = prior_days
        self.category_depth = category_depth

    def _item_scores(self, matrix: sparse.csr_matrix, items: ItemFeatures | None) -> np.ndarray:
        if self.half_life_days <= 0 or self.prior_days < 0:
            raise ValueError("half_life_days must be > 0 and prior_days >= 0.")
        sales = np.asarray(matrix.sum(axis=0), dtype=np.float64).ravel()
        age = feature(items, "first_sold_days", matrix.shape[1]).astype(np.float64)
        full = self.half_life_days / np.log(2.0)
        exposure = full * (1.0 - np.power(0.5, np.clip(age, 0, None) / self.half_life_days))
        exposure = np.where(np.isfinite(exposure), exposure, full)
        return (sales / (exposure + self.prior_days)).astype(np.float32)


__all__ = ["Popularity", "Trending"]
