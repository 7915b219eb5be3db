"""Campaigns, coupons, offers and redemptions of the synthetic retailer.

Part of ``recsys.data.synthetic``. Campaigns run for two to six weeks; each has coupons that
apply to the products of one product type or of one brand within a category. Campaigns are
offered to a random share of the customers active in their window who consent to marketing.
A customer redeems an offered coupon with a probability that grows with their affinity to the
coupon's category (relative to the population's), is several times higher when the coupon
covers one of their staple products, and scales with their segment's coupon proneness, at a
low base rate, and only on an order they place inside the window: the redemption adds a
discounted line of a coupon product (the staple, if covered) to that order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsys.data.synthetic_catalog import Catalog
from recsys.data.synthetic_lines import DAY, Orders
from recsys.data.synthetic_people import SEGMENTS, People

BASE_REDEMPTION = 0.015  # P(redeem) of an average-affinity customer, before the order gate
AFFINITY_EXPONENT = 1.0  # P(redeem) ~ (affinity / population affinity) ** exponent
STAPLE_BOOST = 4.0       # P(redeem) x (1 + boost) when the coupon covers one of their staples
MAX_REDEMPTION = 0.6
MAX_COUPON_PRODUCTS = 40


@dataclass
class Campaigns:
    """Campaign and coupon arrays; coupons of campaign j are ``ptr[j]:ptr[j + 1]``."""

    start_day: np.ndarray     # (n_campaigns,) int64
    end_day: np.ndarray       # (n_campaigns,) int64, exclusive
    kind: np.ndarray          # (n_campaigns,) object str
    reach: np.ndarray         # (n_campaigns,) float64 share of eligible customers offered
    ptr: np.ndarray           # (n_campaigns + 1,) int64
    coupon_category: np.ndarray  # (n_coupons,) int64
    product_ptr: np.ndarray   # (n_coupons + 1,) int64 into products
    products: np.ndarray      # (n_coupon_rows,) int64 product index


def build_campaigns(catalog: Catalog, days: int, rng: np.random.Generator) -> Campaigns:
    """About one campaign starting every two weeks, each with a few to ~25 coupons."""
    n_camp = max(2, days // 14)
    length = np.minimum(rng.integers(14, 43, n_camp), days)
    start = np.sort(rng.integers(0, days - length + 1))
    end = start + length
    mass = rng.random(n_camp) < 0.3
    kind = np.where(mass, "mass", "targeted").astype(object)
    reach = np.where(mass, rng.uniform(0.3, 0.5, n_camp), rng.uniform(0.05, 0.15, n_camp))
    n_types = len(np.unique(catalog.category * 100 + catalog.product_type))
    per_camp = int(np.clip(n_types // 15, 3, 25))
    ptr, cats, prod_ptr, prods = [0], [], [0], []
    weight = catalog.popularity / catalog.popularity.sum()
    for j in range(n_camp):
        live = (catalog.launch_day <= start[j]) & (catalog.end_day >= end[j])
        for _ in range(per_camp):
            anchor = rng.choice(len(weight), p=weight)
            same = catalog.category == catalog.category[anchor]
            if rng.random() < 0.5:
                same &= catalog.product_type == catalog.product_type[anchor]
            else:
                same &= catalog.brand == catalog.brand[anchor]
            members = np.flatnonzero(same & live)
            if not len(members):
                continue
            members = members[np.argsort(-catalog.popularity[members],
                                         kind="stable")[:MAX_COUPON_PRODUCTS]]
            cats.append(int(catalog.category[anchor]))
            prods.append(np.sort(members))
            prod_ptr.append(prod_ptr[-1] + len(members))
        ptr.append(len(cats))
    return Campaigns(start, end, kind, reach, np.array(ptr), np.array(cats, dtype=np.int64),
                     np.array(prod_ptr), np.concatenate(prods).astype(np.int64))


@dataclass
class ChunkCoupons:
    """One chunk's offers, redemptions and the coupon lines they add (chunk-local indices)."""

    offer_cust: np.ndarray      # (n_offers,) int64
    offer_campaign: np.ndarray  # (n_offers,) int64
    red_cust: np.ndarray        # (n_red,) int64
    red_coupon: np.ndarray      # (n_red,) int64
    red_order: np.ndarray       # (n_red,) int64 order index within the chunk
    red_product: np.ndarray     # (n_red,) int64


def _staple_match(camp: Campaigns, cust: np.ndarray, coupon: np.ndarray, owner: np.ndarray,
                  staple: np.ndarray) -> np.ndarray:
    """For each (customer, coupon) pair, a staple of the customer the coupon covers, or -1."""
    n_staples = np.bincount(owner, minlength=int(cust.max(initial=0)) + 1)
    per = n_staples[cust]
    pair = np.repeat(np.arange(len(cust)), per)
    first = np.cumsum(n_staples) - n_staples
    offset = np.arange(len(pair)) - np.repeat(np.cumsum(per) - per, per)
    prod = staple[np.repeat(first[cust], per) + offset]
    n_prod = int(camp.products.max(initial=0)) + 1
    row_coupon = np.repeat(np.arange(len(camp.coupon_category)), np.diff(camp.product_ptr))
    keys = row_coupon * n_prod + camp.products  # sorted: coupons in order, products sorted
    query = coupon[pair] * n_prod + prod
    at = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    hit = keys[at] == query
    match = np.full(len(cust), -1, dtype=np.int64)
    match[pair[hit][::-1]] = prod[hit][::-1]  # the first matching staple wins
    return match


def draw_coupons(camp: Campaigns, people: People, rows: slice, affinity: np.ndarray,
                 population_affinity: np.ndarray, orders: Orders, owner: np.ndarray,
                 staple: np.ndarray, rng: np.random.Generator) -> ChunkCoupons:
    """Offers to the chunk's customers and the redemptions they make; see the module doc."""
    join, churn = people.join_day[rows], people.churn_day[rows]
    eligible = (people.consent_marketing[rows][:, None] & (join[:, None] < camp.end_day)
                & (churn[:, None] > camp.start_day))
    offered = eligible & (rng.random(eligible.shape) < camp.reach)
    oc, oj = np.nonzero(offered)
    n_coupons = np.diff(camp.ptr)[oj]
    cust = np.repeat(oc, n_coupons)
    first = np.cumsum(n_coupons) - n_coupons
    coupon = camp.ptr[oj].repeat(n_coupons) + np.arange(len(cust)) - first.repeat(n_coupons)
    cat = camp.coupon_category[coupon]
    lift = affinity[cust, cat] / population_affinity[cat]
    proneness = np.array([s.coupon for s in SEGMENTS])[people.segment[rows][cust]]
    p = BASE_REDEMPTION * lift ** AFFINITY_EXPONENT * proneness
    # Thinning: draw with the staple boost for everyone, then keep a candidate whose coupon
    # covers none of their staples with probability 1 / (1 + boost). Only candidates need
    # the (costlier) staple lookup.
    p_high = np.minimum(p * (1 + STAPLE_BOOST), MAX_REDEMPTION)
    hit = np.flatnonzero(rng.random(len(p)) < p_high)
    cust, coupon = cust[hit], coupon[hit]
    match = _staple_match(camp, cust, coupon, owner, staple)
    p_true = np.minimum(p[hit] * np.where(match >= 0, 1 + STAPLE_BOOST, 1.0), MAX_REDEMPTION)
    keep = rng.random(len(hit)) * p_high[hit] < p_true
    cust, coupon, match = cust[keep], coupon[keep], match[keep]
    campaign = np.repeat(np.arange(len(camp.ptr) - 1), np.diff(camp.ptr))[coupon]
    key = orders.key()
    lo = np.searchsorted(key, cust * (1 << 40) + camp.start_day[campaign] * DAY)
    hi = np.searchsorted(key, cust * (1 << 40) + camp.end_day[campaign] * DAY)
    shops = hi > lo
    cust, coupon, match, lo, hi = cust[shops], coupon[shops], match[shops], lo[shops], hi[shops]
    order = lo + (rng.random(len(lo)) * (hi - lo)).astype(np.int64)
    n_prod = np.diff(camp.product_ptr)[coupon]
    pick = camp.product_ptr[coupon] + (rng.random(len(coupon)) * n_prod).astype(np.int64)
    product = np.where(match >= 0, match, camp.products[pick])
    return ChunkCoupons(oc.astype(np.int64), oj.astype(np.int64), cust.astype(np.int64),
                        coupon, order, product)


__all__ = ["Campaigns", "ChunkCoupons", "build_campaigns", "draw_coupons", "BASE_REDEMPTION"]
