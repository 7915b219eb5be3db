"""Coupon economics and relevance: what a redemption costs and earns, and how much of a
customer's spend a coupon touches.

``score = P(redeem) x (incremental margin - redemption cost) - issue cost``
``expected cost = P(redeem) x redemption cost + issue cost`` (what budgets are charged).

Costs per redemption under the ``discount_share`` cost model, with ``T`` the expected spend on
the coupon's target (``basket x target_share``; the whole basket for sitewide coupons) and
``basket = max(margin.basket_value, coupon.min_basket)``:

==================  ===========================================================
percent_off         ``value / 100 x T``
amount_off          ``min(value, T)``
free_shipping       ``value`` (the shipping cost the retailer absorbs)
points_multiplier   ``(value - 1) x points_per_currency x points_value x T``
buy_x_get_y         ``get / (buy + get) x T``
==================  ===========================================================

The incremental margin of a redemption is ``basket x gross_margin x incrementality +
future_margin``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import sparse

from recsys.coupons.catalog import Catalog, Coupon
from recsys.data.schema import CATEGORY_SEP

_NO_LIMIT = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Economics:
    """Per-coupon money, arrays of shape ``(n_coupons,)`` float64 (``max_issues`` int64)."""

    incremental_margin: NDArray[np.float64]
    redemption_cost: NDArray[np.float64]
    issue_cost: NDArray[np.float64]
    budget: NDArray[np.float64]
    max_issues: NDArray[np.int64]
    discount_depth: NDArray[np.float64]  # redemption cost / expected target spend

    def expected_value(self, p: NDArray[np.floating]) -> tuple[NDArray[np.float64],
                                                               NDArray[np.float64]]:
        """``(score, expected_cost)`` for redemption probabilities ``p`` of shape
        ``(n, n_coupons)``."""
        p = np.asarray(p, dtype=np.float64)
        score = p * (self.incremental_margin - self.redemption_cost) - self.issue_cost
        cost = p * self.redemption_cost + self.issue_cost
        return score, cost


def _redemption_cost(catalog: Catalog, c: Coupon) -> tuple[float, float]:
    """(cost of one redemption, expected target spend) of coupon ``c``."""
    m = catalog.margin_of(c)
    basket = max(m.basket_value, c.min_basket)
    spend = basket if c.target.sitewide else basket * m.target_share
    if c.cost.model == "fixed":
        return c.cost.per_redemption, spend
    value = c.value or 0.0  # only buy_x_get_y goes without a value
    if c.kind == "percent_off":
        cost = value / 100.0 * spend
    elif c.kind == "amount_off":
        cost = min(value, spend)
    elif c.kind == "free_shipping":
        cost = value
    elif c.kind == "points_multiplier":
        cost = (value - 1.0) * catalog.points_per_currency * catalog.points_value * spend
    else:  # buy_x_get_y; the catalog validator guarantees buy and get
        cost = (c.get or 0) / ((c.buy or 0) + (c.get or 0)) * spend
    return cost, spend


def economics(catalog: Catalog) -> Economics:
    """Per-coupon margins, costs, budgets and caps of ``catalog`` (module docstring)."""
    inc, red, issue, depth = [], [], [], []
    for c in catalog.coupons:
        m = catalog.margin_of(c)
        cost, spend = _redemption_cost(catalog, c)
        inc.append(max(m.basket_value, c.min_basket) * m.gross_margin * m.incrementality
                   + m.future_margin)
        red.append(cost)
        issue.append(c.cost.per_issue)
        depth.append(cost / spend)
    f64 = np.float64
    return Economics(
        incremental_margin=np.array(inc, f64), redemption_cost=np.array(red, f64),
        issue_cost=np.array(issue, f64),
        budget=np.array([c.budget for c in catalog.coupons], f64),
        max_issues=np.array([c.max_issues or _NO_LIMIT for c in catalog.coupons], np.int64),
        discount_depth=np.array(depth, f64))


def prefix_mask(categories: pd.Series | NDArray[np.object_], prefix: str) -> NDArray[np.bool_]:
    """Which category paths are ``prefix`` or lie below it (level boundaries respected)."""
    s = pd.Series(np.asarray(categories, dtype=object)).astype(str)
    return (s.eq(prefix) | s.str.startswith(prefix + CATEGORY_SEP)).to_numpy()


def coupon_products(catalog: Catalog, product_ids: NDArray[np.object_],
                    categories: NDArray[np.object_]) -> sparse.csr_matrix:
    """Which products each coupon applies to.

    Parameters
    ----------
    catalog : Catalog
    product_ids : ndarray of str, shape (n_products,)
        Column order (e.g. ``IdMap.ids`` of the products).
    categories : ndarray of str, shape (n_products,)
        Category path of each product.

    Returns
    -------
    csr_matrix of float32, shape (n_coupons, n_products)
        1 where the coupon applies. Sitewide coupons have an empty row (see
        :func:`target_share`). Target products not in ``product_ids`` are ignored.
    """
    pos = pd.Index(np.asarray(product_ids, dtype=object).astype(str))
    cache: dict[str, NDArray[np.bool_]] = {}
    rows, cols = [], []
    for j, c in enumerate(catalog.coupons):
        hit = np.zeros(len(pos), bool)
        for prefix in c.target.categories:
            if prefix not in cache:
                cache[prefix] = prefix_mask(categories, prefix)
            hit |= cache[prefix]
        idx = pos.get_indexer(list(c.target.products))
        hit[idx[idx >= 0]] = True
        found = np.flatnonzero(hit)
        rows.append(np.full(len(found), j))
        cols.append(found)
    r, k = (np.concatenate(rows), np.concatenate(cols)) if rows else ([], [])
    return sparse.csr_matrix((np.ones(len(r), np.float32), (r, k)),
                             shape=(len(catalog.coupons), len(pos)))


def target_share(spend: sparse.csr_matrix, products: sparse.csr_matrix,
                 sitewide: NDArray[np.bool_] | None = None) -> NDArray[np.float32]:
    """Share of each customer's spend that falls on each coupon's target.

    Parameters
    ----------
    spend : csr_matrix, shape (n_customers, n_products)
        Non-negative spend (or any purchase weight) per customer and product.
    products : csr_matrix, shape (n_coupons, n_products)
        From :func:`coupon_products`.
    sitewide : ndarray of bool, shape (n_coupons,), optional
        Coupons that apply to everything: share 1 for every customer with spend.

    Returns
    -------
    ndarray of float32, shape (n_customers, n_coupons), values in [0, 1]
        0 for customers without spend.
    """
    total = np.asarray(spend.sum(axis=1)).ravel()
    hit = np.asarray((spend @ products.T).todense(), dtype=np.float64)
    return share_of(hit, total, sitewide)


def share_of(hit: NDArray[np.float64], total: NDArray[np.float64],
             sitewide: NDArray[np.bool_] | None = None) -> NDArray[np.float32]:
    """:func:`target_share` from the spend on each target ``hit`` ``(n, n_coupons)`` and the
    customers' total spend ``total`` ``(n,)``."""
    share = np.divide(hit, total[:, None], out=np.zeros_like(hit), where=total[:, None] > 0)
    if sitewide is not None and sitewide.any():
        share[:, sitewide] = (total > 0)[:, None]
    return np.clip(share, 0.0, 1.0).astype(np.float32)


__all__ = ["Economics", "economics", "prefix_mask", "coupon_products", "target_share",
           "share_of"]
