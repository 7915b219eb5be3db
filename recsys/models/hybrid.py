"""The hybrid: CF + content + buy-again + (category) popularity, with a reason for every pick."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal, Self

import numpy as np
from scipy import sparse

from recsys._typing import BoolArray, IntArray
from recsys.data.baskets import Baskets
from recsys.data.csr import forbid, row_block, row_cells
from recsys.data.features import ItemFeatures
from recsys.models._common import (
    FactorModel,
    Model,
    check_interactions,
    check_items,
    encode_categories,
    first_permitted,
    row_max_scale,
)
from recsys.models._reasons import Reason, because_you_bought
from recsys.models.als import ALS
from recsys.models.base import SCORE_CHUNK, Ranked, RecommenderBase, top_n
from recsys.models.bpr import BPR
from recsys.models.buy_again import BuyAgain
from recsys.models.content import ContentTFIDF
from recsys.models.ease import EASE
from recsys.models.factor_ranker import FactorRanker
from recsys.models.itemknn import ItemKNN
from recsys.models.popularity import Popularity, Trending

CF_MODELS: dict[str, type[Model]] = {"als": ALS, "bpr": BPR, "itemknn": ItemKNN, "ease": EASE}
# Blend components, in the order they are computed, and the reason each one gives.
COMPONENTS: dict[str, Reason] = {
    "cf": Reason.BECAUSE_YOU_BOUGHT, "content": Reason.BECAUSE_YOU_BOUGHT,
    "buyagain": Reason.BUY_AGAIN, "category": Reason.POPULAR_IN_CATEGORY,
    "new": Reason.NEW_IN_CATEGORY_YOU_BUY, "popularity": Reason.POPULAR,
    "trending": Reason.TRENDING}
_PART = {name: index for index, name in enumerate(COMPONENTS)}  # component -> its index
_KINDS = np.array(list(COMPONENTS.values()), np.int8)  # component index -> its Reason
_NO_REASON = int(Reason.NONE)  # a plain int: numpy converts an IntEnum slowly
_BLOCK_CELLS = 1 << 22  # customers x items per blend block: bounds the memory of the parts
_OWN_STATE = ("n_items_", "item_category_", "n_categories_", "item_seen_", "has_content_",
              "twin_data_", "twin_indices_", "twin_indptr_")
TWINS = 5  # sold products a product without sales borrows its demand from
TWIN_MIN_SIMILARITY = 0.5  # smallest content cosine at which two products count as alike
CANDIDATE_ROWS = 16  # batches up to this size rank each row from candidates (online calls)
CANDIDATE_MIN_ITEMS = 5_000  # below it one row's dense blend costs as little as candidates
CANDIDATE_ALL_ITEMS = 50_000  # from here every batch ranks from candidates (cheaper)
FIRST_CANDIDATES = 32  # CF and best-seller candidates per row on the first try (x4 per retry)
SIMILAR_STRIDE = 16  # a one-item similar_items ranks above the n-th of every 16th score
_Part = tuple[np.ndarray, np.float32]  # (values, top): a one-item part is values / top


class Hybrid(Model):
    """Blend of component scores, with fallbacks and explanations.

    ``score = sum_c weight_c * part_c``. Two parts keep their own scale, the buy-again
    scorer's ``h ** p * q`` (history weight to a power times repurchase probability; with the
    default log weighting and ``BuyAgain`` defaults from about 0.1 to 15), so that a
    customer's strong habits outrank discoveries and weak ones do not:

    - ``buyagain``: the customer's own past products (``mode="mixed"`` only);
    - ``new``: products without sales in training borrow the buy-again score of their
      ``TWINS`` most text-similar sold products of the same category (content cosine >=
      ``TWIN_MIN_SIMILARITY``, times that cosine): a new size or flavour of what the
      customer keeps buying.

    The others lie in [0, 1]: ``cf`` (the CF model's score over the customer's best one; 0
    for products without sales in training), ``content`` (cosine to the history's text
    profile plus the content model's popularity nudge, clipped to [0, 1]), ``category``
    (popularity times the customer's share of purchases in the product's category, over the
    customer's best), ``popularity`` and ``trending`` (the same for everyone).
    The default weights were tuned on the validation periods of The Complete Journey and
    UCI Online Retail (benchmarks/hybrid_weights.py, docs/benchmarks/quality.md), except
    ``new_weight``, set above its NDCG optimum (0.1) so that new products reach the lists.

    With an ALS or BPR part, small batches (online calls) on catalogs of 5,000+ products,
    and every batch from 50,000 products, are ranked from candidates: the
    history, the new products that twin it, and the best CF and best-selling products; any
    other product's score is bounded, so the answer equals the full blend's (up to float
    rounding), and the candidates grow until that bound is beaten.

    Cold customers (empty history, no stored user) get popularity and trending only. Cold
    products (no sales) get no CF score but reach customers through ``new`` and ``content``,
    and ``similar_items`` falls back to content for them.

    Parameters
    ----------
    cf : {"als", "bpr", "itemknn", "ease"}
        The collaborative part; ``cf_params`` are its keyword arguments.
    content_params, buyagain_params, trending_params : dict, optional
        Keyword arguments of ``ContentTFIDF``, ``BuyAgain`` and ``Trending``.
    mode : {"mixed", "discover"}
        ``"mixed"`` blends in buy-again (grocery: most of a basket is repeats); ``"discover"``
        never returns products in the customer's history.
    cf_weight, content_weight, buyagain_weight, category_weight, new_weight,
    popularity_weight, trending_weight : float
        Non-negative blend weights; a zero weight skips the part.
    category_depth : int, optional
        Category path levels for ``category`` (None: the whole path).
    """

    name: ClassVar[str] = "hybrid"
    cold_start: ClassVar[bool] = True

    def __init__(self, *, cf: Literal["als", "bpr", "itemknn", "ease"] = "als",
                 cf_params: Mapping[str, Any] | None = None,
                 content_params: Mapping[str, Any] | None = None,
                 buyagain_params: Mapping[str, Any] | None = None,
                 trending_params: Mapping[str, Any] | None = None,
                 mode: Literal["mixed", "discover"] = "mixed",
                 cf_weight: float = 1.2, content_weight: float = 0.01,
                 buyagain_weight: float = 1.0, category_weight: float = 0.0,
                 new_weight: float = 0.5, popularity_weight: float = 0.0,
                 trending_weight: float = 0.1, category_depth: int | None = None) -> None:
        self.cf = cf
        self.cf_params = cf_params
        self.content_params = content_params
        self.buyagain_params = buyagain_params
        self.trending_params = trending_params
        self.mode = mode
        self.cf_weight = cf_weight
        self.content_weight = content_weight
        self.buyagain_weight = buyagain_weight
        self.category_weight = category_weight
        self.new_weight = new_weight
        self.popularity_weight = popularity_weight
        self.trending_weight = trending_weight
        self.category_depth = category_depth

    # -- parts ------------------------------------------------------------------------------
    def _part_specs(self) -> dict[str, tuple[type[Model], dict[str, Any]]]:
        if self.cf not in CF_MODELS:
            raise ValueError(f"cf must be one of {sorted(CF_MODELS)}, not {self.cf!r}.")
        return {"cf": (CF_MODELS[self.cf], dict(self.cf_params or {})),
                "content": (ContentTFIDF, dict(self.content_params or {})),
                "popularity": (Popularity, {"category_depth": self.category_depth}),
                "trending": (Trending, dict(self.trending_params or {})),
                "buyagain": (BuyAgain, {"popularity_fill": False,  # own products only
                                          **(self.buyagain_params or {})})}

    def _weights(self) -> dict[str, float]:
        weights = {c: float(getattr(self, f"{c}_weight")) for c in COMPONENTS}
        if any(w < 0 or not math.isfinite(w) for w in weights.values()):
            raise ValueError(f"blend weights must be finite and >= 0, not {weights}.")
        if self.mode not in ("mixed", "discover"):
            raise ValueError(f"mode must be 'mixed' or 'discover', not {self.mode!r}.")
        if self.mode == "discover":
            weights["buyagain"] = 0.0
        if not self.has_content_:
            weights["content"] = 0.0
        return weights

    def fit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
            baskets: Baskets | None = None) -> Self:
        """Fit every part on the same matrix; ``items`` enables content, categories, twins."""
        matrix = check_interactions(interactions)
        n_items = matrix.shape[1]
        items = check_items(items, n_items)
        self.has_content_ = items is not None and any(str(t).strip() for t in items.text)
        self._weights()  # validate before the expensive fits
        for part, (cls, params) in self._part_specs().items():
            fitted = cls(**params).fit(matrix, items=items) if (
                part != "content" or self.has_content_) else None
            setattr(self, f"{part}_", fitted)
        self.item_category_, names = encode_categories(items, n_items, self.category_depth)
        self.n_categories_ = len(names)
        self.item_seen_ = np.bincount(matrix.indices, minlength=n_items) > 0
        twins = sparse.csr_matrix((n_items, n_items), dtype=np.float32)
        if self.has_content_:
            has_text = np.linalg.norm(self.content_.item_vectors_, axis=1) > 0
            twins = self.content_.neighbours(np.flatnonzero(~self.item_seen_ & has_text),
                                             np.flatnonzero(self.item_seen_ & has_text),
                                             TWINS, TWIN_MIN_SIMILARITY, self.item_category_)
        self.twin_data_, self.twin_indices_, self.twin_indptr_ = (
            twins.data.astype(np.float32), twins.indices.astype(np.int32),
            twins.indptr.astype(np.int32))
        self.n_items_ = n_items
        self._restore()
        return self

    def _restore(self) -> None:
        self.stores_users = self.cf_.stores_users
        if self.stores_users:
            self.n_users_ = self.cf_.n_users_
        self._pop = _unit_max(self.popularity_.item_scores_)
        self._trend = _unit_max(self.trending_.item_scores_)
        known = self.item_category_ >= 0
        self._categories = sparse.csr_matrix(
            (np.ones(known.sum(), np.float32), (np.nonzero(known)[0], self.item_category_[known])),
            shape=(int(self.n_items_), max(int(self.n_categories_), 1)))
        n = int(self.n_items_)
        self._twins = sparse.csr_matrix((self.twin_data_, self.twin_indices_, self.twin_indptr_),
                                        shape=(n, n))
        self._twins_by_new = self._twins.tocsc()  # a "new" pick's twins: one column each
        self._category_top = np.zeros(self._categories.shape[1], np.float32)  # best _pop
        np.maximum.at(self._category_top, self.item_category_[known], self._pop[known])
        self._ranker = FactorRanker(self.cf_.item_factors_, batch_exact=False) \
            if isinstance(self.cf_, FactorModel) else None
        self._everything = np.ones(n, bool)
        self._fixed_orders: dict[tuple[float, float], tuple[np.ndarray, np.ndarray]] = {}

    # -- scoring ----------------------------------------------------------------------------
    def _parts(self, history: sparse.csr_matrix, users: IntArray | None,
               weights: Mapping[str, float]) -> Iterator[tuple[str, np.ndarray]]:
        """Yield ``(component, (batch, n_items) part)`` for the non-zero weights."""
        batch = history.shape[0]
        if weights["cf"]:
            yield "cf", row_max_scale(self.cf_._score_users(history, users)) * self.item_seen_
        if weights["content"]:
            yield "content", np.clip(self.content_.score_items(self.content_.profiles(history)),
                                     0.0, 1.0)
        if weights["buyagain"] or weights["new"]:
            again = self.buyagain_.repurchase_scores(history)
            if weights["buyagain"]:
                yield "buyagain", again.toarray()
            if weights["new"] and self._twins.nnz:  # no twins: no product without sales
                yield "new", (again @ self._twins).toarray()
        if weights["category"]:
            yield "category", row_max_scale(
                self._category_affinity(self._category_spend(history)) * self._pop)
        for name, values in (("popularity", self._pop), ("trending", self._trend)):
            if weights[name]:
                yield name, np.broadcast_to(values, (batch, values.size))

    def _category_spend(self, history: sparse.csr_matrix) -> np.ndarray:
        """Each row's share of purchases per category, ``(batch, n_categories)``."""
        spend = (history @ self._categories).toarray()
        return spend / np.maximum(spend.sum(axis=1, keepdims=True), 1e-12)

    def _category_affinity(self, spend: np.ndarray, items: IntArray | None = None
                           ) -> np.ndarray:
        """Each row's share (``_category_spend``) of each item's category (0 if unknown)."""
        codes = self.item_category_ if items is None else self.item_category_[items]
        return np.where(codes >= 0, spend[:, np.maximum(codes, 0)], 0.0)

    def _blend(self, history: sparse.csr_matrix, users: IntArray | None, *, track: bool = False
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """Total scores and, if ``track``, the index in COMPONENTS of each cell's top part."""
        weights = self._weights()
        total, which = _accumulate(self._parts(history, users, weights), weights,
                                   history.shape, track)
        cold = ~self._known_rows(history, users)
        if cold.any():  # nothing personal to go on: popularity and trending only
            w_pop = weights["popularity"] or (0.0 if weights["trending"] else 1.0)
            total[cold] = w_pop * self._pop + weights["trending"] * self._trend
            if track:
                trend = weights["trending"] * self._trend > w_pop * self._pop
                which[cold] = np.where(trend, list(COMPONENTS).index("trending"),
                                       list(COMPONENTS).index("popularity"))
        if self.mode == "discover":
            forbid(total, history)
        return total, which

    def _block_rows(self) -> int:
        return max(1, min(SCORE_CHUNK, _BLOCK_CELLS // int(self.n_items_)))

    def _explained(self, history: sparse.csr_matrix, n: int, users: IntArray | None,
                   exclude: sparse.csr_matrix | None, candidates: BoolArray | IntArray | None
                   ) -> tuple[Ranked, np.ndarray, np.ndarray]:
        """``recommend_with_reasons`` without ``own_only``. The item of a pick is, for
        ``BECAUSE_YOU_BOUGHT``, the history item that supports it most (by the CF or content
        similarity that scored it, times its history weight); for
        ``NEW_IN_CATEGORY_YOU_BUY`` the bought product the new one resembles most (by
        buy-again score times content cosine); for ``BUY_AGAIN`` the pick itself."""
        return self._rank(history, n, users, exclude, candidates, explain=True)

    def recommend_own(self, history: sparse.csr_matrix, n: int = 10, *,
                      candidates: BoolArray | IntArray | None = None) -> Ranked:
        """The row's own products by the buy-again part."""
        return self.buyagain_.recommend(history, n, candidates=candidates)

    def recommend(self, history: sparse.csr_matrix, n: int = 10, *,
                  users: IntArray | None = None, exclude: sparse.csr_matrix | None = None,
                  candidates: BoolArray | IntArray | None = None) -> Ranked:
        """Top ``n`` items per row (see ``RecommenderBase.recommend``)."""
        return self._rank(history, n, users, exclude, candidates, explain=False)[0]

    def _rank(self, history: sparse.csr_matrix, n: int, users: IntArray | None,
              exclude: sparse.csr_matrix | None, candidates: BoolArray | IntArray | None, *,
              explain: bool) -> tuple[Ranked, np.ndarray, np.ndarray]:
        """``recommend_with_reasons``; the reasons stay -1 unless ``explain``."""
        history, users, exclude, allowed = self._check_inputs(history, n, users, exclude,
                                                              candidates)
        batch = history.shape[0]
        ids = np.full((batch, n), -1, np.int32)
        scores = np.full((batch, n), -np.inf, np.float32)
        kinds = np.full((batch, n), _NO_REASON, np.int8)
        items = np.full((batch, n), -1, np.int32)
        step = self._block_rows()
        for start in range(0, batch, step):
            rows = slice(start, min(start + step, batch))
            block = row_block(history, rows.start, rows.stop)
            block_users = None if users is None else users[rows]
            block_exclude = None if exclude is None else row_block(exclude, rows.start, rows.stop)
            ranked, part = self._rank_block(block, block_users, block_exclude, allowed, n,
                                            track=explain)
            ids[rows], scores[rows] = ranked
            if explain:
                kinds[rows] = np.where(ranked.ids >= 0, _KINDS[part], _NO_REASON)
                items[rows] = self._reason_items(block, ranked.ids, part)
        return Ranked(ids, scores), kinds, items

    def _rank_block(self, history: sparse.csr_matrix, users: IntArray | None,
                    exclude: sparse.csr_matrix | None, allowed: np.ndarray | None, n: int, *,
                    track: bool) -> tuple[Ranked, np.ndarray | None]:
        """Top ``n`` of a block of rows and, if ``track``, the index in COMPONENTS of each
        pick's top part: from candidates row by row for small blocks of a large catalog and
        for any block of a very large one, else from the dense blend."""
        weights = self._weights()
        few = history.shape[0] <= CANDIDATE_ROWS and self.n_items_ >= CANDIDATE_MIN_ITEMS
        if (few or self.n_items_ >= CANDIDATE_ALL_ITEMS) and self._ranker is not None \
                and weights["cf"]:
            found = self._rank_rows(history, users, exclude, allowed, n, weights, track)
            if found is not None:
                return found
        total, which = self._blend(history, users, track=track)
        if allowed is not None:
            total[:, ~allowed] = -np.inf
        if exclude is not None:
            forbid(total, exclude)
        ranked = top_n(total, n)
        return ranked, None if which is None else \
            np.take_along_axis(which, np.maximum(ranked.ids, 0), axis=1)

    def _rank_rows(self, history: sparse.csr_matrix, users: IntArray | None,
                   exclude: sparse.csr_matrix | None, allowed: np.ndarray | None, n: int,
                   weights: Mapping[str, float], track: bool
                   ) -> tuple[Ranked, np.ndarray | None] | None:
        """``_rank_candidates`` row by row, stacked; None when a row needs the dense blend."""
        one = history.shape[0] == 1  # a request's row: no scipy row indexing
        found = [self._rank_candidates(
            history if one else history[r], -1 if users is None else int(users[r]),
            exclude if one or exclude is None else exclude[r], allowed, n, weights, track)
            for r in range(history.shape[0])]
        if one or any(f is None for f in found):
            return found[0] if one else None
        return Ranked(np.vstack([f[0].ids for f in found]),  # type: ignore[index]
                      np.vstack([f[0].scores for f in found])), \
            np.vstack([f[1] for f in found]) if track else None  # type: ignore[index]

    def _rank_candidates(self, history: sparse.csr_matrix, user: int,
                         exclude: sparse.csr_matrix | None, allowed: np.ndarray | None, n: int,
                         weights: Mapping[str, float], track: bool = True
                         ) -> tuple[Ranked, np.ndarray | None] | None:
        """One row's exact top ``n`` from candidates, or None when the dense blend must do.

        A product outside the candidates has no buy-again or new part and scores at most
        ``w_cf * cf_K / cf_max + w_content + w_category + fixed_K``, with ``cf_K`` and
        ``fixed_K`` the K-th best CF and popularity-plus-trending scores among permitted
        products; the answer is final once the n-th best candidate beats that bound.
        """
        ranker = self._ranker
        assert ranker is not None
        vector, known = self.cf_.user_vectors(history, np.array([user], np.int32))
        if not known[0]:
            return None
        barred, permitted = self._permitted(history, exclude, allowed)
        own, always = self._own_parts(history, weights)
        profile, spend = self._row_tastes(history, weights)
        fixed, fixed_order = self._fixed(weights)
        cf_max = None  # the row's best CF score over the whole catalog
        if permitted is not self._everything:
            cf_max = _cf_scale(float(
                ranker.top(vector, known, 1, exclude=None, allowed=None).scores[0, 0]))
        k = FIRST_CANDIDATES
        while True:
            cf = ranker.top(vector, known, k, exclude=barred, allowed=allowed)
            cf_ids, cf_scores = cf.ids[0][cf.ids[0] >= 0], cf.scores[0].tolist()
            if cf_max is None:  # every item permitted: the row's best is its first
                cf_max = _cf_scale(cf_scores[0])
            best_fixed = first_permitted(fixed_order, permitted, k)
            candidates = self._candidate_set(always, cf_ids, best_fixed, permitted)
            parts = [(name, weights[name] * part) for name, part in self._candidate_parts(
                vector, candidates, cf_max, own, profile, spend, weights)]
            ranked = top_n(sum(c for _, c in parts), n)  # _accumulate's sums, in its order
            complete = len(cf_ids) < k or len(best_fixed) < k  # all permitted are in
            bound = _outside_bound(weights, cf_scores if len(cf_ids) == k else [], cf_max,
                                   0.0 if complete else float(fixed[best_fixed[-1]]))
            if complete or ranked.scores[0, -1] > bound * (1 + 1e-5) + 1e-6:
                return _columns(ranked, candidates), \
                    _top_parts(parts, ranked.ids) if track else None
            if k * 4 > self.n_items_:
                return None
            k *= 4

    def _row_tastes(self, history: sparse.csr_matrix, weights: Mapping[str, float]
                    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """One row's text profile and category spend, each None when its part weighs 0."""
        return (self.content_.profiles(history) if weights["content"] else None,
                self._category_spend(history) if weights["category"] else None)

    def _candidate_set(self, always: list[np.ndarray], cf_ids: np.ndarray,
                       best_fixed: np.ndarray, permitted: np.ndarray) -> np.ndarray:
        """One try's candidates, ascending: the row's own items, the CF and the
        popularity-plus-trending leaders, less what the row may not get."""
        candidates = _distinct(np.concatenate([*always, cf_ids.astype(np.int64),
                                               best_fixed]))
        if permitted is not self._everything:
            candidates = candidates[permitted[candidates]]
        return candidates

    def _permitted(self, history: sparse.csr_matrix, exclude: sparse.csr_matrix | None,
                   allowed: np.ndarray | None
                   ) -> tuple[sparse.csr_matrix | None, np.ndarray]:
        """One row's barred cells (excluded, and bought in discover mode) and the mask of
        items it may get (``self._everything`` when all; every stored barred cell counts)."""
        barred = exclude
        if self.mode == "discover":
            barred = history if barred is None else barred + history
        permitted = self._everything if allowed is None else allowed
        if barred is not None and barred.nnz:
            permitted = permitted.copy()
            permitted[barred.indices] = False
        return barred, permitted

    def _own_parts(self, history: sparse.csr_matrix, weights: Mapping[str, float]
                   ) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[np.ndarray]]:
        """One row's buy-again and new parts as ``(items, values)``, and the items that are
        candidates on every try (bought ones, and their twins that score)."""
        own: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        again, bought, _ = self.buyagain_.repurchase_cells(history)
        always = [bought]
        if weights["buyagain"]:
            own["buyagain"] = bought, again
        if weights["new"] and self._twins.nnz:  # no twins: no product without sales
            own["new"] = self._twin_row(again, bought)
            always.append(own["new"][0])
        return own, always

    def _twin_row(self, again: np.ndarray, bought: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One row's ``new`` part, ``again @ twins`` for a row with values ``again`` on items
        ``bought``: the items it reaches (ascending) and their non-zero sums, by the same
        scipy product as a batch's rows (so the same floats)."""
        row = sparse.csr_matrix((again, bought, [0, len(bought)]),
                                shape=(1, int(self.n_items_))) @ self._twins
        row.sort_indices()
        return row.indices, row.data

    def _candidate_parts(self, vectors: np.ndarray, items: np.ndarray, cf_max: float,
                         own: Mapping[str, tuple[np.ndarray, np.ndarray]],
                         profile: np.ndarray | None, spend: np.ndarray | None,
                         weights: Mapping[str, float]) -> Iterator[tuple[str, np.ndarray]]:
        """``_parts`` of one row on the columns ``items`` (ascending; same values, same
        order), from the row's user vector, buy-again/new parts as ``(items, values)``, text
        profile and category spend."""
        if weights["cf"]:
            cf = vectors @ self.cf_.item_factors_[items].T
            yield "cf", np.maximum(cf, 0.0) / np.float32(cf_max) * self.item_seen_[items]
        if profile is not None:
            yield "content", np.clip(self.content_.score_items(profile, items), 0.0, 1.0)
        for name in ("buyagain", "new"):
            if name in own:
                yield name, _lookup(*own[name], items)[None, :]
        if spend is not None:
            top = float((spend * self._category_top).max(initial=0.0)) or 1.0
            yield "category", self._category_affinity(spend, items) * self._pop[items] / top
        for name, values in (("popularity", self._pop), ("trending", self._trend)):
            if weights[name]:
                yield name, values[items][None, :]

    def _fixed(self, weights: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Popularity plus trending as weighted, and the items by it, best first."""
        key = (weights["popularity"], weights["trending"])
        entry = self._fixed_orders.get(key)
        if entry is None:
            fixed = key[0] * self._pop + key[1] * self._trend
            entry = (fixed, np.argsort(-fixed, kind="stable"))
            self._fixed_orders[key] = entry
        return entry

    def _reason_items(self, history: sparse.csr_matrix, picks: np.ndarray, part: np.ndarray
                      ) -> np.ndarray:
        out = np.full(picks.shape, -1, np.int32)
        part = np.where(picks >= 0, part, -1)  # padding has no part
        again = part == _PART["buyagain"]
        out[again] = picks[again]
        for name, model in (("cf", self.cf_), ("content", self.content_),
                            ("new", self._twins_by_new)):
            mask = part == _PART[name]
            if mask.any():
                rows = np.flatnonzero(mask.any(axis=1))
                rows_history = history if len(rows) == history.shape[0] else history[rows]
                weights = rows_history if name != "new" else \
                    self.buyagain_.repurchase_cells(rows_history)
                found = because_you_bought(model, weights,
                                           np.where(mask[rows], picks[rows], -1))
                out[rows] = np.where(mask[rows], found, out[rows])
        return out

    def similar_items(self, items: IntArray, n: int = 10) -> Ranked:
        """``RecommenderBase.similar_items``. One item (an API call) with an ALS or BPR part
        reads only the vectors that matter (``_similarity_index``) and ranks few products:
        the dense answer up to the rounding of the dot products (The Complete Journey, 92k
        products: 3-4 ms -> 1.3 ms for a sold product, mostly reading its 17 MB of CF
        vectors, and 0.5 ms for an unsold one)."""
        query = np.asarray(items, dtype=np.int64)
        if not hasattr(self, "n_items_") or query.shape != (1,) \
                or not 0 <= query[0] < self.n_items_ or not isinstance(self.cf_, FactorModel):
            return super().similar_items(items, n)  # batches share one product; checks input
        item = int(query[0])
        rows, vectors, seen, texts, _, codes = self._similarity_index()
        cf = _clip_max(vectors @ self.cf_.unit_item_vectors()[item]) \
            if self.item_seen_[item] else None  # the CF part on ``rows`` (0 elsewhere)
        content = _clip_max(texts @ texts[codes[item]]) \
            if self.has_content_ else None  # the content part of each distinct text
        if cf is not None and content is not None:
            found = self._top_blend(item, n, cf, content)
            if found is not None:
                return found
        if cf is None and content is not None:
            return self._top_content(item, n, content[0] / content[1])
        scores = self._similarity_row(item, cf, content)
        scores[item] = -np.inf
        return top_n(scores[None], n)

    def _top_blend(self, item: int, n: int, cf: _Part, content: _Part) -> Ranked | None:
        """Top ``n`` of a sold product's blend ``w_cf * cf + w_content * content`` from the
        products whose bounds ``w_cf * cf`` and ``w_cf * cf + w_content`` (content lies in
        [0, 1]) allow it: those whose upper bound reaches the ``n``-th best lower bound of
        a sample (``_floor``); float32 rounding is monotone, so the computed blend keeps
        within the computed bounds. The bound is checked on the products whose CF dot
        product reaches it up to a margin far above float32 rounding, so that the
        catalog-wide part is one comparison. None when products off ``rows`` (at most
        ``w_content``) could make the top ``n``."""
        rows, _, seen, *_, codes = self._similarity_index()
        w_cf, w_content = self._similarity_weights()
        dots, top = cf
        at = int(np.searchsorted(rows, item))

        def lower(cells: np.ndarray) -> np.ndarray:  # w_cf * cf on cells, the item at -inf
            values = w_cf * (dots[cells] / top * seen[cells])
            values[cells == at] = -np.inf
            return values

        floor = _floor(lower(np.arange(0, len(rows), SIMILAR_STRIDE)), n)
        if floor is None or floor <= np.float32(w_content):
            return None
        reach = (floor - w_content) * (1 - 1e-6) - 1e-6 * (floor + w_content)
        near = np.flatnonzero(dots >= max(reach, 0.0) / w_cf * float(top) * (1 - 1e-6))
        keep = near[lower(near) + w_content >= floor]
        picks = rows[keep]
        scores = self._similarity_blend(dots[keep] / top * seen[keep],
                                        content[0][codes[picks]] / content[1])
        return _columns(top_n(scores[None], n), picks)

    def _top_content(self, item: int, n: int, content: np.ndarray) -> Ranked:
        """Top ``n`` of an unsold product's content part (``content``: one per distinct
        text) from the products of the ``n + 1`` best texts and those tied with them, of
        which at least ``n`` are not the item itself."""
        *_, (starts, by_text), codes = self._similarity_index()
        k = min(n + 1, len(content))
        texts = np.flatnonzero(content >= np.partition(content, -k)[-k])
        picks = np.sort(by_text[row_cells(starts, texts)[0]])
        scores = content[codes[picks]]
        scores[picks == item] = -np.inf
        return _columns(top_n(scores[None], n), picks)

    def _similarity_row(self, item: int, cf: _Part | None, content: _Part | None
                        ) -> np.ndarray:
        """``_item_similarity([item])[0]`` from the parts ``similar_items`` computed."""
        rows, _, seen, *_, codes = self._similarity_index()
        if content is None and cf is None:  # a product without sales and no text
            return row_max_scale(self.popularity_._item_similarity(np.array([item])))[0]
        if content is not None:
            content = (content[0] / content[1])[codes]
        if cf is None:
            return content
        full = np.zeros(self.n_items_, np.float32)
        full[rows] = cf[0] / cf[1] * seen
        return full if content is None else self._similarity_blend(full, content)

    def _similarity_index(self) -> tuple[np.ndarray, ...]:
        """``(rows, vectors, seen, texts, (starts, by_text), codes)``: the products that
        are sold or have a non-zero CF vector (all others score 0), their unit CF vectors
        and sales flags; the distinct unit text vectors (products with the same text score
        alike), the products of each text (``by_text[starts[t]:starts[t + 1]]``,
        ascending) and each product's index among them (empty without content). Built on
        first use (~0.1 s for 92k products) and again when a part's vectors change."""
        unit = self.cf_.unit_item_vectors()
        text = self.content_.unit_item_vectors() if self.has_content_ else np.zeros((0, 1))
        cached = self.__dict__.get("_similarity_cache")
        if cached is None or cached[0] is not unit or cached[1] is not text:
            rows = np.flatnonzero(self.item_seen_ | unit.any(axis=1))
            as_bytes = np.ascontiguousarray(text).view(np.dtype((np.void, text.shape[1]
                                                                  * text.itemsize)))
            first, codes = np.unique(as_bytes.ravel(), return_index=True,
                                     return_inverse=True)[1:]
            starts = np.append(0, np.cumsum(np.bincount(codes, minlength=len(first))))
            cached = (unit, text, rows, unit[rows], self.item_seen_[rows], text[first],
                      (starts, np.argsort(codes, kind="stable")), codes.astype(np.int32))
            self._similarity_cache = cached
        return cached[2:]

    def _item_similarity(self, items: np.ndarray) -> np.ndarray:
        """CF and content similarity blended; content (or category popularity) when cold."""
        cf = row_max_scale(self.cf_._item_similarity(items)) * self.item_seen_
        if self.has_content_:
            content = row_max_scale(self.content_._item_similarity(items))
            blend = self._similarity_blend(cf, content)
        else:
            content = row_max_scale(self.popularity_._item_similarity(items))
            blend = cf
        return np.where(self.item_seen_[items][:, None], blend, content)

    def _similarity_weights(self) -> tuple[float, float]:
        """The weights of a sold product's CF and content similarity."""
        return self.cf_weight, max(self.content_weight, 1e-3)

    def _similarity_blend(self, cf: np.ndarray, content: np.ndarray) -> np.ndarray:
        """A sold product's similarity: its CF and content parts, weighted."""
        w_cf, w_content = self._similarity_weights()
        return w_cf * cf + w_content * content

    # -- state ------------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        """Own arrays plus every part's state under ``"<part>.<key>"``."""
        self._check_fitted()
        out = {k: np.asarray(getattr(self, k)) for k in _OWN_STATE}
        for part in self._part_specs():
            model: RecommenderBase | None = getattr(self, f"{part}_")
            if model is not None:
                out.update({f"{part}.{k}": v for k, v in model.state().items()})
        return out

    def resolved_params(self) -> dict[str, Any]:
        """``get_params`` with each fitted part's full parameters in place of None."""
        params = self.get_params()
        for part in ("cf", "content", "buyagain", "trending"):
            model: RecommenderBase | None = getattr(self, f"{part}_", None)
            if model is not None:
                params[f"{part}_params"] = model.resolved_params()
        return params

    @classmethod
    def from_state(cls, params: Mapping[str, Any], state: Mapping[str, np.ndarray]) -> Self:
        """Rebuild from ``get_params()`` and ``state()``."""
        model = cls(**params)
        missing = [k for k in _OWN_STATE if k not in state]
        if missing:
            raise ValueError(f"Hybrid state lacks arrays {missing}.")
        for k in _OWN_STATE:
            setattr(model, k, state[k].item() if state[k].ndim == 0 else state[k])
        for part, (part_cls, part_params) in model._part_specs().items():
            prefix = f"{part}."
            sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            fitted = None if part == "content" and not model.has_content_ else \
                part_cls.from_state(part_params, sub)
            setattr(model, f"{part}_", fitted)
        model._restore()
        return model


def _accumulate(parts: Iterable[tuple[str, np.ndarray]], weights: Mapping[str, float],
                shape: tuple[int, int], track: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Weighted sum of ``parts`` and, if ``track``, the index in COMPONENTS of each cell's
    largest contribution (popularity where none is positive)."""
    names = list(COMPONENTS)
    total = np.zeros(shape, np.float32)
    best = np.zeros(shape, np.float32) if track else None
    which = np.full(shape, names.index("popularity"), np.int8) if track else None
    for name, part in parts:
        contribution = weights[name] * part
        total += contribution
        if track:
            better = contribution > best
            best[better] = contribution[better]
            which[better] = names.index(name)
    return total, which


def _top_parts(contributions: Sequence[tuple[str, np.ndarray]], picks: np.ndarray
               ) -> np.ndarray:
    """``_accumulate``'s ``which`` for one row's weighted parts at the columns ``picks``,
    shape ``(1, n)`` (-1: padding, read as column 0): the same comparisons on those cells."""
    stacked = np.vstack([part for _, part in contributions])
    if not stacked.shape[1]:  # nothing permitted: every pick is padding
        return np.full(picks.shape, _PART["popularity"], np.int8)
    cells = stacked[:, np.maximum(picks[0], 0)]
    which = []
    for values in cells.T.tolist():
        best, top = 0.0, _PART["popularity"]
        for (name, _), value in zip(contributions, values, strict=True):
            if value > best:
                best, top = value, _PART[name]
        which.append(top)
    return np.array([which], np.int8)


def _run_starts(values: np.ndarray) -> np.ndarray:
    """Where each run of equal entries of the sorted ``values`` starts."""
    starts = np.empty(len(values), bool)
    starts[:1] = True
    np.not_equal(values[1:], values[:-1], out=starts[1:])
    return starts


def _distinct(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` by a sort (np.unique hashes: ~3x slower on a few hundred)."""
    values = np.sort(values)
    return values[_run_starts(values)]


def _lookup(keys: np.ndarray, values: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``values`` at ``items`` (ascending), 0 where ``keys`` lack them: ``dense[items]`` for
    ``dense = zeros(n_items); dense[keys] = values`` without the catalog-wide array."""
    out = np.zeros(len(items), np.float32)
    if len(items):
        place = np.minimum(np.searchsorted(items, keys), len(items) - 1)
        found = items[place] == keys
        out[place[found]] = values[found]
    return out


def _cf_scale(peak: float) -> float:
    """What CF scores are divided by: the row's best score over the catalog (1 if none is
    positive)."""
    return max(peak, 0.0) or 1.0


def _outside_bound(weights: Mapping[str, float], cf_scores: Sequence[float], cf_max: float,
                   fixed_kth: float) -> float:
    """The most a product outside the candidates can score: the K-th best CF score
    (``cf_scores``' last; none when every permitted product is in), full content and category
    parts, and the K-th best popularity-plus-trending score ``fixed_kth``."""
    cf_kth = max(cf_scores[-1], 0.0) if len(cf_scores) else 0.0
    return weights["cf"] * cf_kth / cf_max + weights["content"] + weights["category"] + fixed_kth


def _floor(sample: np.ndarray, n: int) -> float | None:
    """The ``n``-th best of a ``sample`` of scores, which at least ``n`` scores reach (so
    does the whole top ``n``); None when the sample has ``n`` or fewer."""
    return float(np.partition(sample, -n)[-n]) if 0 < n < len(sample) else None


def _clip_max(values: np.ndarray) -> _Part:
    """One row of scores clipped at 0 (in place) and its largest, so that ``values / top``
    is ``row_max_scale(values[None])[0]``, computed only where needed."""
    np.maximum(values, 0.0, out=values)
    top = values.max(initial=0.0)
    if not np.isfinite(top):  # nan or inf: row_max_scale zeroes them
        return row_max_scale(values[None])[0], np.float32(1.0)
    return values, top if top > 0 else np.float32(1.0)


def _columns(ranked: Ranked, columns: np.ndarray) -> Ranked:
    """``ranked`` (over ``columns``, ascending) as catalog indices."""
    return Ranked(np.append(columns, -1)[ranked.ids].astype(np.int32), ranked.scores)


def _unit_max(values: np.ndarray) -> np.ndarray:
    top = float(np.max(values, initial=0.0))
    return (values / top if top > 0 else np.zeros_like(values)).astype(np.float32)


__all__ = ["Hybrid", "CF_MODELS", "COMPONENTS", "Reason"]
