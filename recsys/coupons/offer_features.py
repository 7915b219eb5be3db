"""Offer features for the redemption model, computed only from data before a decision date.

An *offer* is (customer, coupon) at a date ``as_of`` (a campaign's start, or today when
assigning). Every feature uses transactions and redemptions strictly before ``as_of``:

================================  ============================================================
target_share                      share of the customer's spend on the coupon's products
recent_target_share               the same over the last ``recent_days``
target_products_bought            log1p(distinct coupon products the customer bought)
main_category_share               share of spend in the coupon's most common category (the
                                  "most-bought-category" heuristic on its own)
categories_share                  share of spend in any category of the coupon's products
cf_affinity                       a collaborative-filtering affinity, when a ``cf`` is given
past_redemptions                  log1p(the customer's coupon redemptions so far)
has_history, recency_days,        RFM before ``as_of``: frequency and monetary per 30 days,
recency_ratio, frequency,         recency relative to the customer's own mean gap
monetary, avg_basket
coupon_breadth                    log1p(products the coupon applies to)
coupon_popularity                 share of customers who bought any of its products
coupon_past_redemptions           log1p(redemptions of this coupon id so far, by anyone)
discount_depth                    redemption cost / target spend (NaN where unknown)
duration_days                     length of the validity window
================================  ============================================================

``cf`` is a callable ``cf(customer_ids, coupon_products, product_ids, as_of) -> (n, n_coupons)``
(external ids at the boundary; ``coupon_products`` is ``(n_coupons, n_products)`` 0/1 over
``product_ids``) so a model trained before ``as_of`` can be plugged in, e.g. the mean ALS
score of the customer over the coupon's products.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import sparse

from recsys.coupons.scoring import target_share
from recsys.data.dataset import IdMap
from recsys.data.schema import CATEGORY_SEP

FEATURES: tuple[str, ...] = (
    "target_share", "recent_target_share", "target_products_bought", "main_category_share",
    "categories_share", "cf_affinity", "past_redemptions", "has_history", "recency_days",
    "recency_ratio", "frequency", "monetary", "avg_basket", "coupon_breadth",
    "coupon_popularity", "coupon_past_redemptions", "discount_depth", "duration_days")

CF = Callable[[NDArray[np.object_], sparse.csr_matrix, NDArray[np.object_], pd.Timestamp],
             NDArray[np.floating]]
_NS_PER_DAY = 86_400e9


def _days(ts: pd.Series | pd.Timestamp) -> NDArray[np.float64] | float:
    if isinstance(ts, pd.Timestamp):
        return ts.value / _NS_PER_DAY
    return ts.astype("datetime64[ns]").to_numpy().astype(np.int64) / _NS_PER_DAY


def _category_codes(categories: pd.Series, depth: int
                    ) -> tuple[NDArray[np.int32], NDArray[np.object_]]:
    """Category paths cut to ``depth`` levels as codes (-1 unknown) and their names."""
    cats = categories.fillna("").astype(str)
    cut = cats.str.split(CATEGORY_SEP).str[:depth].str.join(CATEGORY_SEP)
    codes, names = pd.factorize(cut.where(cut != ""))
    return codes.astype(np.int32), np.asarray(names, dtype=object)


@dataclass(frozen=True)
class PurchaseLog:
    """Transactions as index arrays sorted by time, ready to be cut at any date.

    ``cust``/``prod``/``order`` are int arrays, ``amount`` float64 (negative lines clipped
    to 0), ``day`` float64 days since the epoch, ascending. ``category_idx`` (n_products,)
    holds each product's category truncated to ``category_depth`` levels (-1 unknown).
    """

    customers: IdMap
    products: IdMap
    category_idx: NDArray[np.int32]
    category_names: NDArray[np.object_]
    cust: NDArray[np.int32]
    prod: NDArray[np.int32]
    order: NDArray[np.int64]
    amount: NDArray[np.float64]
    day: NDArray[np.float64]

    @classmethod
    def from_frames(cls, transactions: pd.DataFrame, products: pd.DataFrame, *,
                    customers: IdMap | None = None, category_depth: int = 2) -> PurchaseLog:
        """Index canonical ``transactions``; ``products`` gives categories (may be empty)."""
        tx = transactions.sort_values("timestamp", kind="stable")
        cmap = customers or IdMap(np.sort(tx["customer_id"].astype(str).unique()))
        pmap = IdMap(np.unique(np.concatenate([
            tx["product_id"].astype(str).to_numpy(dtype=object),
            products["product_id"].astype(str).to_numpy(dtype=object)])))
        cats = products.set_index(products["product_id"].astype(str))["category"]
        cats = cats[~cats.index.duplicated()].reindex(pmap.ids)
        codes, names = _category_codes(cats, category_depth)
        cust = cmap.to_index(tx["customer_id"].to_numpy(), missing="mark")
        keep = cust >= 0
        return cls(customers=cmap, products=pmap, category_idx=codes, category_names=names,
                   cust=cust[keep],
                   prod=pmap.to_index(tx["product_id"].to_numpy()[keep]),
                   order=pd.factorize(tx["order_id"].astype(str))[0][keep].astype(np.int64),
                   amount=tx["amount"].to_numpy(np.float64)[keep].clip(min=0),
                   day=np.asarray(_days(tx["timestamp"]))[keep])

    @classmethod
    def catalog_only(cls, product_ids: NDArray[np.object_], categories: NDArray[np.object_], *,
                     category_depth: int = 2) -> PurchaseLog:
        """A log without lines over ``product_ids`` in that order (their categories only):
        what :func:`coupon_side` needs when serving."""
        codes, names = _category_codes(pd.Series(categories, dtype=object), category_depth)
        empty = np.zeros(0, np.int32)
        return cls(customers=IdMap(np.zeros(0, dtype=object)),
                   products=IdMap(np.asarray(product_ids, dtype=object)), category_idx=codes,
                   category_names=names, cust=empty, prod=empty, order=np.zeros(0, np.int64),
                   amount=np.zeros(0), day=np.zeros(0))

    @property
    def start_day(self) -> float:
        return float(self.day[0]) if len(self.day) else 0.0

    def category_onehot(self) -> sparse.csr_matrix:
        """Product x category 0/1 matrix, shape ``(n_products, n_categories)``."""
        known = np.flatnonzero(self.category_idx >= 0)
        return sparse.csr_matrix((np.ones(len(known)), (known, self.category_idx[known])),
                                 shape=(len(self.products), len(self.category_names)))

    def spend(self, lo: int, hi: int) -> sparse.csr_matrix:
        """Customer x product spend of lines ``lo:hi`` (float64)."""
        s = slice(lo, hi)
        return sparse.csr_matrix((self.amount[s], (self.cust[s], self.prod[s])),
                                 shape=(len(self.customers), len(self.products)))


@dataclass(frozen=True)
class CustomerHistory:
    """Everything about customers known at ``as_of`` (matrices have one row per customer)."""

    as_of: pd.Timestamp
    customer_ids: NDArray[np.object_]  # (n_customers,) row order
    product_ids: NDArray[np.object_]  # (n_products,) column order
    spend: sparse.csr_matrix  # (n_customers, n_products)
    recent: sparse.csr_matrix  # same, last ``recent_days``
    category_spend: sparse.csr_matrix  # (n_customers, n_categories)
    stats: dict[str, NDArray[np.float64]]  # per-customer features, shape (n_customers,)


def customer_history(log: PurchaseLog, as_of: pd.Timestamp, *,
                     redemptions: pd.DataFrame | None = None,
                     recent_days: int = 28) -> CustomerHistory:
    """Spend matrices and RFM of every customer of ``log`` from lines before ``as_of``."""
    t = float(_days(as_of))
    hi = int(np.searchsorted(log.day, t, side="left"))
    lo_recent = int(np.searchsorted(log.day, t - recent_days, side="left"))
    spend = log.spend(0, hi)
    n = len(log.customers)
    window = max(t - log.start_day, 1.0)
    orders_seen, first = np.unique(log.order[:hi], return_index=True)
    orders = np.bincount(log.cust[:hi][first], minlength=n).astype(np.float64)
    last = np.full(n, -np.inf)
    np.maximum.at(last, log.cust[:hi], log.day[:hi])
    total = np.asarray(spend.sum(axis=1)).ravel()
    has = orders > 0
    recency = np.where(has, t - last, window)
    past = np.zeros(n)
    if redemptions is not None and len(redemptions):
        before = redemptions[redemptions["timestamp"] < as_of]
        idx = log.customers.to_index(before["customer_id"].to_numpy(), missing="skip")
        past = np.bincount(idx, minlength=n).astype(np.float64)
    stats = {
        "has_history": has.astype(np.float64), "recency_days": recency,
        "recency_ratio": recency / (window / np.maximum(orders, 1.0)),
        "frequency": orders / window * 30.0, "monetary": total / window * 30.0,
        "avg_basket": np.divide(total, orders, out=np.full(n, np.nan), where=has),
        "past_redemptions": np.log1p(past),
    }
    return CustomerHistory(as_of=as_of, customer_ids=log.customers.ids,
                           product_ids=log.products.ids, spend=spend,
                           recent=log.spend(lo_recent, hi),
                           category_spend=(spend @ log.category_onehot()).tocsr(),
                           stats=stats)


@dataclass(frozen=True)
class CouponSide:
    """Coupons as seen at ``as_of``; arrays have shape ``(n_coupons,)``."""

    products: sparse.csr_matrix  # (n_coupons, n_products) 0/1
    categories: sparse.csr_matrix  # (n_coupons, n_categories) 0/1
    main_category: NDArray[np.int64]  # most common category of its products, -1 if none
    sitewide: NDArray[np.bool_]
    stats: dict[str, NDArray[np.float64]]


def coupon_side(log: PurchaseLog, history: CustomerHistory, products: sparse.csr_matrix, *,
                sitewide: NDArray[np.bool_] | None = None,
                past_redemptions: NDArray[np.floating] | None = None,
                discount_depth: NDArray[np.floating] | None = None,
                duration_days: NDArray[np.floating] | None = None) -> CouponSide:
    """Coupon features: ``products`` (n_coupons, n_products) 0/1 plus optional per-coupon
    arrays (NaN where unknown)."""
    m = products.shape[0]
    site = np.zeros(m, bool) if sitewide is None else np.asarray(sitewide, bool)
    counts = np.asarray((products @ log.category_onehot()).todense())
    main = np.where(counts.max(axis=1, initial=0) > 0, counts.argmax(axis=1), -1)
    bought = (history.spend > 0).astype(np.float64)
    buyers = np.asarray(((bought @ products.T) > 0).sum(axis=0)).ravel()
    active = max(int((history.stats["has_history"] > 0).sum()), 1)
    nan = np.full(m, np.nan)

    def arr(x: NDArray[np.floating] | None, default: NDArray[np.float64]) -> NDArray[np.float64]:
        return default if x is None else np.asarray(x, dtype=np.float64)

    stats = {
        "coupon_breadth": np.log1p(np.asarray(products.sum(axis=1)).ravel()),
        "coupon_popularity": np.where(site, 1.0, buyers / active),
        "coupon_past_redemptions": np.log1p(arr(past_redemptions, np.zeros(m))),
        "discount_depth": arr(discount_depth, nan), "duration_days": arr(duration_days, nan),
    }
    return CouponSide(products=products.tocsr(), categories=sparse.csr_matrix(counts > 0),
                      main_category=main, sitewide=site, stats=stats)


def offer_features(history: CustomerHistory, coupons: CouponSide, rows: NDArray[np.integer], *,
                   cf: CF | NDArray[np.floating] | None = None) -> pd.DataFrame:
    """Features of every (customer in ``rows``, coupon) pair.

    Parameters
    ----------
    history : CustomerHistory
    coupons : CouponSide, n_coupons
    rows : ndarray of int, shape (n,)
        Customer indices (rows of ``history``).
    cf : callable or ndarray of shape (n, n_coupons), optional
        Collaborative-filtering affinity (module docstring); NaN when absent.

    Returns
    -------
    DataFrame of float32, n x n_coupons rows (customer-major: row ``i * n_coupons + j`` is
    customer ``rows[i]`` and coupon ``j``), columns ``FEATURES``.
    """
    return pd.DataFrame(offer_feature_columns(history, coupons, rows, cf=cf))


def offer_feature_columns(history: CustomerHistory, coupons: CouponSide,
                          rows: NDArray[np.integer] | None, *,
                          cf: CF | NDArray[np.floating] | None = None,
                          names: Sequence[str] = FEATURES) -> dict[str, NDArray[np.float32]]:
    """The columns ``names`` of :func:`offer_features` (``rows`` None: every row of
    ``history``, as serving passes its own rows), each computed only when asked for
    (serving scores one customer at a time and needs a few)."""
    every = rows is None
    rows = np.arange(history.spend.shape[0]) if every else np.asarray(rows, dtype=np.int64)
    n, m = len(rows), coupons.products.shape[0]
    spend = history.spend if every else history.spend[rows]
    cat = history.category_spend if every else history.category_spend[rows]
    recent = history.recent if every else history.recent[rows]
    total = np.asarray(spend.sum(axis=1)).ravel()

    def cf_affinity() -> NDArray[np.float64]:
        if cf is None:
            return np.full((n, m), np.nan)
        block = np.asarray(cf(history.customer_ids[rows], coupons.products,
                              history.product_ids, history.as_of) if callable(cf) else cf)
        if block.shape != (n, m):
            raise ValueError(f"cf must give shape (customers, coupons) = {(n, m)}, "
                             f"not {block.shape}.")
        return block

    blocks: dict[str, Callable[[], NDArray[np.floating]]] = {
        "target_share": lambda: target_share(spend, coupons.products, coupons.sitewide),
        "recent_target_share": lambda: target_share(recent, coupons.products,
                                                    coupons.sitewide),
        "target_products_bought": lambda: np.log1p(np.asarray(
            ((spend > 0).astype(np.float64) @ coupons.products.T).todense())),
        "main_category_share": lambda: main_category_share(
            coupons, total, lambda idx: np.asarray(cat[:, idx].todense())),
        "categories_share": lambda: target_share(cat, coupons.categories, coupons.sitewide),
        "cf_affinity": cf_affinity,
    }
    return {name: feature_column(blocks[name]() if name in blocks else
                                 history.stats[name][rows][:, None] if name in history.stats
                                 else coupons.stats[name][None, :], n, m) for name in names}


def main_category_share(coupons: CouponSide, total: NDArray[np.float64],
                        category_spend: Callable[[NDArray[np.int64]], NDArray[np.float64]]
                        ) -> NDArray[np.float64]:
    """``main_category_share`` ``(n, n_coupons)`` of customers with spend ``total`` ``(n,)``;
    ``category_spend(idx)`` gives their dense spend ``(n, len(idx))`` in categories ``idx``."""
    main = np.zeros((len(total), len(coupons.main_category)))
    has_main = coupons.main_category >= 0
    if has_main.any():
        main_spend = category_spend(coupons.main_category[has_main])
        main[:, has_main] = np.divide(main_spend, total[:, None],
                                      out=np.zeros_like(main_spend),
                                      where=total[:, None] > 0)
    main[:, coupons.sitewide] = (total > 0)[:, None]
    return main


def feature_column(value: NDArray[np.floating], n: int, m: int) -> NDArray[np.float32]:
    """A feature block broadcast to ``(n, m)`` as the float32 column of ``n * m`` offers."""
    out = np.empty((n, m), np.float32)
    out[...] = value  # the cast of ``astype(np.float32)``, without a broadcast view
    return out.ravel()


__all__ = ["FEATURES", "CF", "PurchaseLog", "CustomerHistory", "customer_history", "CouponSide",
           "coupon_side", "offer_features", "offer_feature_columns", "main_category_share",
           "feature_column"]
