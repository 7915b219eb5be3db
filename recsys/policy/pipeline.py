"""The one recommendation pipeline used by the API, batch picks and the MLflow pyfunc.

candidates (business filters) -> model scores with exclusions -> fallbacks -> reasons.
Customers unknown to the model, erased, or opted out of personalization get the
non-personalized answer (popular in the requested slice), never an error.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse

from recsys.bundle import Bundle
from recsys.coupons.assign import BudgetState
from recsys.data.csr import as_csr, row_cells, row_items
from recsys.errors import DataError, UnknownIdError
from recsys.events import Change, Consent, Erasure, fold_in_weight
from recsys.models.base import Ranked, top_n
from recsys.policy.answers import AnswerCache
from recsys.policy.config import Mode, PolicyConfig, parse_policy
from recsys.policy.coupon_choice import CouponChooser, CouponPick
from recsys.policy.filters import ItemFilters
from recsys.policy.reason_text import ReasonWriter

# Reason codes explained by an item of the customer's history (the anchor).
ANCHORED = ("because_you_bought", "similar_content", "new_in_category", "bought_together")
SIMILAR_ANSWERS = 4096  # (product, n, category) answers of ``Engine.similar`` kept
ERASED_NOW = 2**62  # the journal position of an erasure made directly on an engine


@dataclass(frozen=True)
class Pick:
    """One recommended product with its score and a reason a shopper can read."""

    product_id: str
    score: float
    reason: str
    reason_code: str


@dataclass(frozen=True)
class Result:
    """Picks for one customer; ``fallback`` says why they are not personalized, if so;
    ``cached``: reused from an earlier identical question (``Engine(answer_cache=...)``)."""

    picks: list[Pick]
    personalized: bool
    fallback: str | None = None
    cached: bool = False


class BatchAnswers(NamedTuple):
    """Picks of a batch as arrays, one row per customer (``recommend_many`` turns each row
    into a ``Result``; batch picks write the arrays directly)."""

    ids: np.ndarray  # (batch, n) int32 item indices, -1 where fewer than n qualify
    scores: np.ndarray  # (batch, n) float32
    codes: np.ndarray  # (batch, n) object: reason codes ("" where ids == -1)
    reasons: np.ndarray  # (batch, n) object: sentences ("" where ids == -1)
    fallback: np.ndarray  # (batch,) object: None, "cold_start" or "not_personalized"


class Engine:
    """Answers every recommendation question from one bundle plus live events.

    Thread-safe: reads may run in parallel with ``add_purchases``, ``erase`` and
    ``set_consent``. ``answer_cache``: how many customers' recent answers ``recommend_many``
    keeps (0: none; the server keeps some, see ``recsys.policy.answers``).
    """

    def __init__(self, bundle: Bundle, policy: PolicyConfig | None = None, *,
                 answer_cache: int = 0) -> None:
        self.bundle = bundle
        self.model = bundle.model
        self.policy = policy or parse_policy(bundle.policy_yaml)
        self.products = bundle.product_map
        self.customers = bundle.customer_map
        self.filters = ItemFilters(bundle.products)
        self.reasons = ReasonWriter(bundle.products)
        self.n_items = len(bundle.products)
        self.product_ids = self.products.ids  # converted once: arrow-backed ids are slow
        self._popular_order = np.argsort(-bundle.popularity["all"], kind="stable")
        self._new_arrivals = self._arrivals(bundle, self.policy.new_product_days)
        frame = bundle.customers
        self._stage = frame["stage"].astype(str).to_numpy() if "stage" in frame else None
        self._row_modes = self._stage_modes()
        self._opted_out = (~frame["consent_personalization"].astype(bool)).to_numpy() \
            if "consent_personalization" in frame else np.zeros(len(frame), bool)
        self._extra: dict[str, dict[int, float]] = {}
        # Products seen through live events, so reasons stay true: "because you bought"
        # only for purchases, never for a product only viewed or put in a cart.
        self._looked: dict[str, set[int]] = {}
        self._bought: dict[str, set[int]] = {}
        self._consent: dict[str, bool] = {}
        # Erased customers by subject (the event store's keyed hash of the id, which is all
        # its journal keeps; ``apply_changes`` takes the store's ``subject``) -> the erasure's
        # journal seq. A new consent lifts it; if the bundle was trained before that erasure
        # (``journal_seq`` in its manifest), the customer's bundle row stays unused (_stale).
        self.subject: Callable[[str], str] = _same
        self._erased: dict[str, int] = {}
        self._stale: set[str] = set()
        self._trained_seq = int(bundle.manifest.get("journal_seq") or 0)
        self._redeemed: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self.answers: AnswerCache[Result] = AnswerCache(answer_cache)
        self._similar_answers = lru_cache(maxsize=SIMILAR_ANSWERS)(self._similar)
        self.coupon_chooser = CouponChooser.from_bundle(bundle)

    @property
    def version(self) -> str:
        return self.bundle.version

    @staticmethod
    def _arrivals(bundle: Bundle, days: int) -> np.ndarray:
        """Products first sold within ``days`` of the bundle's last sale, or never sold yet
        but in the catalog (the ``new_arrivals`` mode's products)."""
        products = bundle.products
        if "first_sold" not in products:  # a bundle from before first_sold: unsold ones only
            never = np.asarray(bundle.history.sum(axis=0)).ravel() == 0
            return never & products["available"].to_numpy(bool)
        first = pd.to_datetime(products["first_sold"])
        end = first.max()
        recent = (first >= end - pd.Timedelta(days=days)).to_numpy(bool)
        never = first.isna().to_numpy(bool) & products["available"].to_numpy(bool)
        return recent | never

    # -- live state -------------------------------------------------------------------------
    def add_interactions(self, customer_id: str, product_ids: Iterable[str],
                         weights: Iterable[float], looked: Iterable[bool] | None = None
                         ) -> int:
        """Fold fresh events into the customer's history; unknown products are skipped.
        ``looked`` says which were only viewed or carted (default: all purchases).
        Returns how many were folded in."""
        idx = self.products.to_index(list(product_ids), missing="mark")
        looked = [False] * len(idx) if looked is None else list(looked)
        folded = 0
        with self._lock:
            row = self._extra.setdefault(customer_id, {})
            for i, w, view in zip(idx, weights, looked, strict=True):
                if i >= 0:
                    row[int(i)] = row.get(int(i), 0.0) + float(w)
                    (self._looked if view else self._bought).setdefault(
                        customer_id, set()).add(int(i))
                    folded += 1
        self.answers.forget(customer_id)
        return folded

    def apply_changes(self, changes: Iterable[Change], erased: set[str],
                      subject: Callable[[str], str] | None = None) -> int:
        """Bring the engine up to date with journal records, in order: events fold into
        histories (each customer's run of events in one call), redeemed coupons are not
        offered again, consent and erasure apply. An erased customer's events are not folded
        in (the store refuses them until a new consent anyway): ``erased`` gains the subject
        of each new erasure; ``subject`` is the event store's keyed hash of an id
        (``EventStore.subject``). Returns how many events changed a history."""
        if subject is not None:
            self.subject = subject
        folded = 0
        run: dict[str, tuple[list[str], list[float], list[bool]]] = defaultdict(
            lambda: ([], [], []))
        for change in [*changes, None]:  # None: the end, fold the last run
            if not isinstance(change, Erasure | Consent) and change is not None:
                if change.event_type == "coupon_redeemed" and change.coupon_id:
                    self.add_redemption(change.customer_id, change.coupon_id)
                weight = fold_in_weight(change, purchase_weight=self.policy.fold_in_weight,
                                        view_weight=self.policy.view_weight)
                if weight > 0 and change.product_id and not self.is_erased(change.customer_id):
                    products, weights, looked = run[change.customer_id]
                    products.append(change.product_id)
                    weights.append(weight)
                    looked.append(change.event_type != "purchase")
                continue
            folded += sum(self.add_interactions(c, p, w, v) for c, (p, w, v) in run.items())
            run.clear()
            if isinstance(change, Erasure):
                self.forget(change.subject, change.seq)
                erased.add(change.subject)
            elif isinstance(change, Consent):
                self.set_consent(change.customer_id, change.personalization)
        return folded

    def add_redemption(self, customer_id: str, coupon_id: str) -> None:
        """Record a redeemed coupon: it is not offered to the customer again."""
        with self._lock:
            self._redeemed.setdefault(customer_id, set()).add(coupon_id)

    def erase(self, customer_id: str) -> None:
        """Forget the customer: no personalization from the bundle or from events."""
        self.forget(self.subject(customer_id))

    def forget(self, subject: str, seq: int = ERASED_NOW) -> None:
        """``erase`` for the customer whose id has this ``subject`` (hash); ``seq``: the
        erasure's journal position (default: after any training)."""
        def match(key: object) -> bool:
            return isinstance(key, str) and self.subject(key) == subject

        with self._lock:
            for state in (self._extra, self._looked, self._bought, self._redeemed,
                          self._consent):
                for key in [k for k in state if match(k)]:
                    del state[key]  # type: ignore[attr-defined]
            self._erased[subject] = seq
        self.answers.forget_where(match)

    def set_consent(self, customer_id: str, personalization: bool) -> None:
        """Record the customer's consent to personalized recommendations; a consent after an
        erasure lifts it (their history starts again from what they do next)."""
        with self._lock:
            self._consent[customer_id] = personalization
            erased = self._erased.pop(self.subject(customer_id), None) \
                if personalization and self._erased else None
            if erased is not None and erased > self._trained_seq:
                self._stale.add(customer_id)  # the bundle learned them before the erasure
        self.answers.forget(customer_id)

    def is_erased(self, customer_id: str) -> bool:
        """Whether the customer asked to be forgotten (and has not come back since)."""
        return bool(self._erased) and self.subject(customer_id) in self._erased

    def is_personalizable(self, customer_id: str) -> bool:
        """Consent given (or not withdrawn) and not erased."""
        return bool(self.personalizable([customer_id])[0])

    def personalizable(self, customer_ids: Sequence[str], users: np.ndarray | None = None
                       ) -> np.ndarray:
        """``is_personalizable`` for many customers (``users``: their bundle rows, if known)."""
        if users is None:
            users = self.customers.to_index(list(customer_ids), missing="mark")
        allowed = (users < 0) | ~self._opted_out[np.clip(users, 0, None)]
        with self._lock:
            if self._consent or self._erased:
                for r, c in enumerate(customer_ids):
                    consent = self._consent.get(c)
                    if self._erased and self.subject(c) in self._erased:
                        allowed[r] = False
                    elif consent is not None:
                        allowed[r] = consent
        return allowed

    def stage(self, customer_id: str) -> str | None:
        """The customer's lifecycle stage from the bundle (None when unknown)."""
        u = self.customers.to_index([customer_id], missing="mark")[0]
        return None if u < 0 or self._stage is None else str(self._stage[u])

    def _stage_modes(self) -> np.ndarray:
        """The policy's mode for each bundle row's stage, plus a last entry for unknown
        customers (row -1)."""
        stages = self._stage if self._stage is not None else np.full(len(self.customers), "")
        names, inverse = np.unique(np.append(stages, "").astype(str), return_inverse=True)
        return np.array([self.policy.mode_for(str(s)) for s in names], object)[inverse]

    def _histories(self, customer_ids: Sequence[str], known: np.ndarray | None = None
                   ) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
        """History rows, training user index (-1 = fold in) and personalizable flag
        (``known``: the customers' bundle rows, -1 if unknown, when already looked up)."""
        users = self.customers.to_index(list(customer_ids), missing="mark") if known is None \
            else known
        allowed = self.personalizable(customer_ids, users)
        users = np.where(allowed, users, -1).astype(np.int32)
        if self._stale:
            users[[r for r, c in enumerate(customer_ids) if c in self._stale]] = -1
        rows = select_rows(self.bundle.history, users)
        with self._lock:
            extra = [(r, dict(e)) for r, c in enumerate(customer_ids)
                     if allowed[r] and (e := self._extra.get(c))] if self._extra else []
        if extra:
            r_idx = np.concatenate([np.full(len(e), r) for r, e in extra])
            c_idx = np.concatenate([np.fromiter(e.keys(), np.int64) for _, e in extra])
            vals = np.concatenate([np.fromiter(e.values(), np.float32) for _, e in extra])
            rows = rows + sparse.csr_matrix((vals, (r_idx, c_idx)), shape=rows.shape)
            if not self.model.ranks_live_rows:  # (else it merges them itself)
                users[[r for r, _ in extra]] = -1  # stored vector is stale: fold in afresh
        return as_csr(rows), users, allowed

    # -- questions --------------------------------------------------------------------------
    def check_question(self, n: int, min_price: float | None = None,
                       max_price: float | None = None) -> None:
        """The policy's limits on a question, the same for the API and batch picks: ``n`` up
        to ``policy.max_n`` and a price range that is not empty (``DataError`` otherwise)."""
        if n > self.policy.max_n:
            raise DataError(f"n must be at most {self.policy.max_n} for this model")
        if min_price is not None and max_price is not None and min_price > max_price:
            raise DataError(f"min_price ({min_price}) is above max_price ({max_price})")

    def recommend_many(self, customer_ids: Sequence[str], n: int = 10, *,
                       category: str | None = None, min_price: float | None = None,
                       max_price: float | None = None, exclude_purchased: bool | None = None,
                       mode: Mode | None = None) -> list[Result]:
        """Top ``n`` products for each customer, in the order given."""
        question = (n, category, min_price, max_price, exclude_purchased, mode)
        stamp = self.answers.stamp()  # before reading any state
        keys = [self._answer_key(c) for c in customer_ids]
        results: list[Result | None] = [self.answers.get(k, question) for k in keys]
        missing = [r for r, result in enumerate(results) if result is None]
        if len(missing) < len(results):
            results = [replace(r, cached=True) if r is not None else None for r in results]
        if not missing:
            return results  # type: ignore[return-value]
        ranking = self.rank_many([customer_ids[r] for r in missing], n, category=category,
                                 min_price=min_price, max_price=max_price,
                                 exclude_purchased=exclude_purchased, mode=mode)
        product_ids = self.product_ids
        for r, ids, scores, texts, codes, fallback in zip(  # lists: faster than numpy scalars
                missing, ranking.ids.tolist(), ranking.scores.tolist(),
                ranking.reasons.tolist(), ranking.codes.tolist(), ranking.fallback.tolist(),
                strict=True):
            picks = [Pick(product_ids[i], s, t, c)
                     for i, s, t, c in zip(ids, scores, texts, codes, strict=True) if i >= 0]
            results[r] = result = Result(picks, personalized=fallback is None,
                                         fallback=fallback)
            if keys[r] is not None or fallback == "cold_start":  # not one raced by a change
                self.answers.put(keys[r], question, result, stamp)
        return results  # type: ignore[return-value]

    def _answer_key(self, customer_id: str) -> str | None:
        """The answer cache's key: None for every customer the bundle does not know and who
        has no live state, as they all get the same cold-start answer."""
        if customer_id in self.customers or customer_id in self._extra or \
                customer_id in self._consent or \
                (self._erased and self.subject(customer_id) in self._erased):
            return customer_id
        return None

    def rank_many(self, customer_ids: Sequence[str], n: int = 10, *,
                  category: str | None = None, min_price: float | None = None,
                  max_price: float | None = None, exclude_purchased: bool | None = None,
                  mode: Mode | None = None) -> BatchAnswers:
        """``recommend_many`` as arrays: the same answers without a Python object per pick."""
        self.check_question(n, min_price, max_price)
        known = self.customers.to_index(list(customer_ids), missing="mark")
        history, users, allowed = self._histories(customer_ids, known)
        mask = self.filters.mask(category=category, min_price=min_price, max_price=max_price)
        modes = np.full(len(customer_ids), mode, object) if mode else \
            self._row_modes[known]  # -1: the last entry, for unknown customers
        has_history = np.diff(history.indptr) > 0
        asked = set(modes[has_history].tolist())
        ids = np.full((len(customer_ids), n), -1, np.int32)
        scores = np.full((len(customer_ids), n), -np.inf, np.float32)
        codes = np.full((len(customer_ids), n), "popular", dtype=object)
        anchors = np.full((len(customer_ids), n), -1, np.int32)
        excluding = np.zeros(len(customer_ids), bool)
        for m in ("discover", "mixed", "buy_again", "new_arrivals"):
            if m not in asked:
                continue
            rows = np.flatnonzero((modes == m) & has_history)
            exclude_it = exclude_purchased if exclude_purchased is not None else m == "discover"
            excluding[rows] = exclude_it and m != "buy_again"
            every = len(rows) == len(customer_ids)  # a request's one row: no scipy indexing
            allowed_here = mask & self._new_arrivals if m == "new_arrivals" else mask
            ranked, kind, anchor = self._personal(history if every else history[rows],
                                                  users[rows], n, allowed_here, m, exclude_it)
            ids[rows], scores[rows], codes[rows], anchors[rows] = ranked.ids, ranked.scores, \
                kind, anchor
        if (ids < 0).any():
            excluded = select_rows(history, np.where(excluding, np.arange(len(excluding)), -1))
            arrivals = modes == "new_arrivals"
            self._fill_popular(ids, scores, codes, excluded, mask, ~arrivals)
            self._fill_popular(ids, scores, codes, excluded, mask & self._new_arrivals, arrivals)
        fallback = np.full(len(customer_ids), None, object)
        fallback[~has_history & allowed] = "cold_start"
        fallback[~has_history & ~allowed] = "not_personalized"
        codes[ids < 0] = ""
        self._truthful(customer_ids, ids, codes, anchors)
        return BatchAnswers(ids, scores, codes, self._texts(ids, codes, anchors), fallback)

    def recommend(self, customer_id: str, n: int = 10, **filters: object) -> Result:
        """``recommend_many`` for one customer."""
        return self.recommend_many([customer_id], n, **filters)[0]  # type: ignore[arg-type]

    def similar(self, product_id: str, n: int = 10, *, category: str | None = None
                ) -> list[Pick]:
        """Products most similar to ``product_id``; ``UnknownIdError`` if it is unknown.
        They depend on the bundle only, so recent answers are reused."""
        self.check_question(n)
        return list(self._similar_answers(product_id, n, category))

    def _similar(self, product_id: str, n: int, category: str | None) -> tuple[Pick, ...]:
        item = self.products.to_index([product_id])  # raises UnknownIdError
        mask = self.filters.mask(category=category)
        wide = min(self.n_items, n if category is None else max(10 * n, 200))
        ranked = self.model.similar_items(item, wide)
        keep = [(i, s) for i, s in zip(ranked.ids[0], ranked.scores[0], strict=True)
                if i >= 0 and mask[i]][:n]
        reason = self.reasons.similar(int(item[0]))
        return tuple(Pick(self.product_ids[i], float(s), reason, "similar") for i, s in keep)

    def popular(self, n: int = 10, *, category: str | None = None, window: str = "all"
                ) -> list[Pick]:
        """Best sellers over ``window`` (one of the bundle's popularity windows)."""
        self.check_question(n)
        if window not in self.bundle.popularity:
            raise UnknownIdError(f"window {window!r} is unknown; use one of "
                                 f"{sorted(self.bundle.popularity)}")
        scores = np.where(self.filters.mask(category=category),
                          self.bundle.popularity[window], -np.inf)[None, :]
        ranked = top_n(scores, n)
        code = "trending" if window != "all" else "popular"
        return self._picks(ranked.ids[0], ranked.scores[0], np.full(n, code, object),
                           np.full(n, -1, np.int32))

    def cart(self, product_ids: Sequence[str], n: int = 10, *, customer_id: str | None = None
             ) -> Result:
        """Add-ons that go with a basket (cross-sell); works for anonymous shoppers."""
        self.check_question(n)
        basket = self.products.to_index(list(product_ids), missing="skip")
        allowed = customer_id is not None and self.is_personalizable(customer_id)
        if allowed:
            history, _, _ = self._histories([customer_id])  # type: ignore[list-item]
        else:
            history = sparse.csr_matrix((1, self.n_items), dtype=np.float32)
        basket_row = sparse.csr_matrix(
            (np.full(len(basket), 3.0 * self.policy.fold_in_weight, np.float32),
             (np.zeros(len(basket), int), basket)), shape=(1, self.n_items))
        exclude = basket_row.copy()
        mask = self.filters.mask()
        if basket_row.nnz == 0:
            return Result(self.popular(n), personalized=False, fallback="empty_basket")
        ranked, _, _ = self._personal(history + basket_row, np.array([-1], np.int32), n,
                                      mask, "discover", exclude_purchased=False,
                                      exclude=exclude)
        ids, scores = ranked.ids.copy(), ranked.scores.copy()
        codes = np.full(ids.shape, "goes_with_basket", dtype=object)
        self._fill_popular(ids, scores, codes, exclude, mask)
        # Personalized only when the customer's own data took part (not for an opted-out,
        # erased or anonymous shopper: the basket alone is not personal data kept).
        personal = bool(history.nnz)
        return Result(self._picks(ids[0], scores[0], codes[0], np.full(n, -1, np.int32)),
                      personalized=personal,
                      fallback=None if personal or not customer_id or allowed
                      else "not_personalized")

    def coupons(self, customer_id: str, n: int = 3) -> list[CouponPick]:
        """The best coupons for one customer now, quoted against the full budgets."""
        return self.coupons_many([customer_id], n)[0]

    def coupons_many(self, customer_ids: Sequence[str], n: int = 1, *,
                     budget: BudgetState | None = None, held_out: bool = False
                     ) -> list[list[CouponPick]]:
        """Coupons for many customers; pass one ``budget`` (``coupon_budget()``) to share and
        spend it across calls, as a batch campaign does. Empty lists without a catalog.
        ``held_out`` keeps (marked) the picks withheld by a coupon's holdout group."""
        if self.coupon_chooser is None:
            return [[] for _ in customer_ids]
        history, _, allowed = self._histories(customer_ids)
        with self._lock:
            redeemed = [set(self._redeemed.get(c, ())) for c in customer_ids]
            if self._stale:  # the bundle's profile of them predates their erasure
                allowed = allowed & np.array([c not in self._stale for c in customer_ids])
        return self.coupon_chooser.choose(customer_ids, history, allowed, n,
                                          redeemed=redeemed, state=budget,
                                          held_out=held_out)

    def coupon_budget(self) -> BudgetState | None:
        """A fresh campaign budget from the catalog (None without a catalog)."""
        return None if self.coupon_chooser is None else self.coupon_chooser.budget()

    # -- internals --------------------------------------------------------------------------
    def _personal(self, history: sparse.csr_matrix, users: np.ndarray, n: int,
                  mask: np.ndarray, mode: str, exclude_purchased: bool,
                  exclude: sparse.csr_matrix | None = None,
                  ) -> tuple[Ranked, np.ndarray, np.ndarray]:
        """The model's picks for rows of one ``mode``, their reason codes and anchors."""
        candidates = None if mask.all() else mask
        if exclude is None and exclude_purchased:
            exclude = history
        ranked, kind, anchor = self.model.recommend_with_reasons(
            history, n, users=users, exclude=exclude, candidates=candidates,
            own_only=mode == "buy_again")
        return ranked, self.reasons.codes(kind), anchor

    def _truthful(self, customer_ids: Sequence[str], ids: np.ndarray, codes: np.ndarray,
                  anchors: np.ndarray) -> None:
        """Make reasons true, in place: a pick is never explained by itself, and a product
        the customer only viewed or carted is never "bought" (the bundle's history holds
        purchases; ``_looked``/``_bought`` tell the kinds of live events)."""
        itself = np.isin(codes, ANCHORED) & (anchors == ids) & (ids >= 0)
        if itself.any():  # the pick is in the history: say so instead
            codes[itself] = "bought_before"
            anchors[itself] = -1
        if not self._looked:
            return
        with self._lock:
            looked = {r: (self._looked[c], self._bought.get(c, set()))
                      for r, c in enumerate(customer_ids) if c in self._looked}
        for r, (viewed, bought) in looked.items():
            u = self.customers.to_index([customer_ids[r]], missing="mark")[0]
            bought = bought | set(row_items(self.bundle.history, u).tolist())
            only = viewed - bought
            for k in range(ids.shape[1] if only else 0):
                code, item = codes[r, k], int(ids[r, k])
                if code in ANCHORED and int(anchors[r, k]) in only:
                    codes[r, k] = "because_you_looked"
                elif code in ("buy_again", "bought_before") and item in only:
                    codes[r, k] = "looked_at"
                elif code == "personalized" and not bought:
                    codes[r, k] = "from_what_you_looked_at"

    def _fill_popular(self, ids: np.ndarray, scores: np.ndarray, codes: np.ndarray,
                      exclude: sparse.csr_matrix | None, mask: np.ndarray,
                      rows: np.ndarray | None = None) -> None:
        """Pad rows (``rows``: a mask of those to pad, default all) that have fewer than
        ``n`` picks with popular items they lack. Their scores follow popularity below the
        row's own picks (a cold-start list from 1 down), so they never tie at the top."""
        short = np.flatnonzero((ids < 0).any(axis=1) & (True if rows is None else rows))
        if not len(short):
            return
        order = self._popular_order[mask[self._popular_order]]
        popularity = self.bundle.popularity["all"]
        share = popularity / (float(popularity.max(initial=0)) + 1.0)  # in [0, 1)
        for r in short:
            taken = set(ids[r][ids[r] >= 0].tolist())
            if exclude is not None and exclude.shape[0] > r:
                taken.update(row_items(exclude, r).tolist())
            slots = np.flatnonzero(ids[r] < 0)
            fill = [i for i in order[: len(taken) + len(slots)] if i not in taken][: len(slots)]
            slots = slots[: len(fill)]
            ranked = scores[r][np.isfinite(scores[r]) & (ids[r] >= 0)]
            floor = float(ranked.min()) if len(ranked) else 1.0
            ids[r, slots] = fill
            scores[r, slots] = floor - 1.0 + share[fill]
            codes[r, slots] = "popular"

    def _picks(self, ids: np.ndarray, scores: np.ndarray, codes: np.ndarray,
               anchors: np.ndarray) -> list[Pick]:
        product_ids = self.product_ids
        return [Pick(product_ids[i], float(s), self.reasons.text(str(c), int(i), int(a)), str(c))
                for i, s, c, a in zip(ids, scores, codes, anchors, strict=True) if i >= 0]

    def _texts(self, ids: np.ndarray, codes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
        """Reason sentences for a block of picks, each distinct (code, item, anchor) written
        once ("" where ids == -1)."""
        out = np.full(ids.shape, "", object)
        filled = ids >= 0
        keys = zip(codes[filled].tolist(), ids[filled].tolist(), anchors[filled].tolist(),
                   strict=True)
        written: dict[tuple[str, int, int], str] = {}
        out[filled] = [written[key] if key in written else
                       written.setdefault(key, self.reasons.text(*key)) for key in keys]
        return out


def _same(customer_id: str) -> str:
    """The subject of an id for an engine that meets no event store: the id itself."""
    return customer_id


def select_rows(matrix: sparse.csr_matrix, rows: np.ndarray) -> sparse.csr_matrix:
    """``matrix[rows]`` as float32 CSR, with an empty row wherever ``rows`` is -1 (a gather
    of the stored cells: no scipy indexing machinery for a request's one row)."""
    cells, lengths = row_cells(matrix.indptr, rows)
    return sparse.csr_matrix((matrix.data[cells].astype(np.float32, copy=False),
                              matrix.indices[cells], np.concatenate([[0], np.cumsum(lengths)])),
                             shape=(len(rows), matrix.shape[1]))


__all__ = ["Pick", "Result", "BatchAnswers", "Engine", "CouponPick"]
