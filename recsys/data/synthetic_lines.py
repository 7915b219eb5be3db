"""Orders and basket lines for one chunk of synthetic customers, all vectorised.

Part of ``recsys.data.synthetic``. Order days follow a day-of-week, seasonal and holiday
intensity inside each customer's active window. Each line of a basket is, with the customer's
repeat probability, one of their staples (distinct within the order; grocery baskets are mostly
repeats), otherwise a category drawn from the customer's affinity (tilted by the category's
season) and a product drawn from the category's power-law popularity tilted by the segment's
price sensitivity. Products only sell between their launch and end days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.data.synthetic_catalog import SEASON_PEAK, VOCAB, Catalog
from recsys.data.synthetic_people import SEGMENTS, People

DAY = 86_400
_WEEKDAY = np.array([0.85, 0.8, 0.85, 0.9, 1.1, 1.4, 1.1])  # Monday .. Sunday
_STORE_HOURS = np.array([0, 0, 0, 0, 0, 0, 0.2, 1, 2, 3, 4, 4.5, 4.5, 4, 3.5, 3.5, 4.5, 5.5,
                         5, 3.5, 2.2, 1.2, 0.4, 0])
_ONLINE_HOURS = np.array([0.4, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1, 1.5, 2, 2.2, 2.2, 2.5, 2.2, 2,
                          2, 2.2, 2.6, 3, 3.5, 3.8, 3.5, 2.5, 1.2])
PROMO_SHARE, COUPON_DISCOUNT = 0.08, 0.25


@dataclass
class GroupedCDF:
    """Inverse-CDF sampling of one item per query from the query's group, by weight.

    Items are sorted by group; ``keys[i] = group[i] + (cumulative weight within the group)``, so
    one ``searchsorted`` samples many groups at once.
    """

    keys: np.ndarray   # (n_items,) float64
    start: np.ndarray  # (n_groups,) first item of each group
    stop: np.ndarray   # (n_groups,) one past its last item

    @classmethod
    def build(cls, groups: np.ndarray, weights: np.ndarray, n_groups: int) -> GroupedCDF:
        counts = np.bincount(groups, minlength=n_groups)
        stop = np.cumsum(counts)
        start = stop - counts
        total = np.bincount(groups, weights, minlength=n_groups)
        cum = np.cumsum(weights / np.where(total > 0, total, 1.0)[groups])
        within = cum - np.concatenate([[0.0], cum])[start[groups]]
        keys = groups + np.minimum(within, 1.0)
        keys[stop[counts > 0] - 1] = np.flatnonzero(counts) + 1.0
        return cls(keys, start, stop)

    def sample(self, groups: np.ndarray, u: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(self.keys, groups + u, side="right")
        return np.minimum(idx, self.stop[groups] - 1)


@dataclass
class World:
    """Everything shared by all chunks: the catalog, samplers and calendars."""

    catalog: Catalog
    by_category: GroupedCDF    # groups = segment * n_cat + category, items = by_cat_items
    by_cat_items: np.ndarray   # (n_products,) product index sorted by category
    evergreen: np.ndarray      # (n_cat,) most popular always-on product per category (-1: none)
    cum_intensity: np.ndarray  # (days + 1,) cumulative daily order intensity, mean 1 per day
    season_accept: np.ndarray  # (n_cat, days) float32, category acceptance by day
    n_stores: int              # store index n_stores is the online channel

    @classmethod
    def build(cls, catalog: Catalog, start: pd.Timestamp, days: int, n_stores: int) -> World:
        n_cat, n_prod = len(VOCAB), len(catalog.category)
        order = np.argsort(catalog.category, kind="stable")
        cat_sorted = catalog.category[order]
        keys, starts, stops = [], [], []
        for s, seg in enumerate(SEGMENTS):
            w = catalog.popularity[order] * catalog.rel_price[order] ** -seg.price_beta
            cdf = GroupedCDF.build(cat_sorted.astype(np.int64), w, n_cat)
            keys.append(cdf.keys + s * n_cat)
            starts.append(cdf.start + s * n_prod)
            stops.append(cdf.stop + s * n_prod)
        by_cat = GroupedCDF(np.concatenate(keys), np.concatenate(starts), np.concatenate(stops))
        always = (catalog.launch_day == 0) & (catalog.end_day == days)
        score = np.where(always, catalog.popularity, -1.0)
        evergreen = np.full(n_cat, -1, dtype=np.int64)
        best = np.full(n_cat, -2.0)
        np.maximum.at(best, catalog.category, score)
        hit = score == best[catalog.category]
        evergreen[catalog.category[hit]] = np.flatnonzero(hit)
        dates = start + pd.to_timedelta(np.arange(days), unit="D")
        doy = dates.day_of_year.to_numpy().astype(float)
        md = dates.month.to_numpy() * 100 + dates.day.to_numpy()
        intensity = _WEEKDAY[dates.day_of_week.to_numpy()] * (
            1 + 0.08 * np.cos(2 * np.pi * (doy - 190) / 365.25))
        intensity *= np.where((md >= 1215) & (md <= 1224), 1.45, 1.0)
        intensity *= np.where((md >= 1120) & (md <= 1127), 1.25, 1.0)
        intensity /= intensity.mean()
        cum = np.concatenate([[0.0], np.cumsum(intensity)])
        amp = np.array([0.0 if v[4] is None else 0.5 for v in VOCAB])
        peak = np.array([SEASON_PEAK.get(v[4] or "", 0.0) for v in VOCAB])
        wave = np.cos(2 * np.pi * (doy[None, :] - peak[:, None]) / 365.25)
        accept = ((1 + amp[:, None] * wave) / (1 + amp[:, None])).astype(np.float32)
        return cls(catalog, by_cat, order, evergreen, cum, accept, n_stores)

    def available(self, product: np.ndarray, day: np.ndarray) -> np.ndarray:
        c = self.catalog
        return (c.launch_day[product] <= day) & (day < c.end_day[product])

    def explore(self, affinity: GroupedCDF, cust: np.ndarray, seg: np.ndarray, day: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
        """One product per query: category by affinity and season, product by popularity."""
        n_cat = self.season_accept.shape[0]
        cat = affinity.sample(cust, rng.random(len(cust))) - cust * n_cat
        for _ in range(3):  # rejection sampling of the seasonal tilt (3 rounds is plenty)
            redo = np.flatnonzero(rng.random(len(cat)) >= self.season_accept[cat, day])
            cat[redo] = affinity.sample(cust[redo], rng.random(len(redo))) - cust[redo] * n_cat
        group = seg.astype(np.int64) * n_cat + cat
        n_prod = len(self.by_cat_items)
        prod = self.by_cat_items[self.by_category.sample(group, rng.random(len(cat))) % n_prod]
        redo = np.flatnonzero(~self.available(prod, day))
        for _ in range(4):  # not launched yet or discontinued: draw again in the category
            if not len(redo):
                break
            new = self.by_category.sample(group[redo], rng.random(len(redo))) % n_prod
            prod[redo] = self.by_cat_items[new]
            redo = redo[~self.available(prod[redo], day[redo])]
        prod[redo] = self.evergreen[cat[redo]]
        return prod


@dataclass
class Orders:
    """One chunk's orders, sorted by (customer, time)."""

    cust: np.ndarray   # (n,) int64 customer index within the chunk
    day: np.ndarray    # (n,) int64
    t: np.ndarray      # (n,) int64 seconds since start
    store: np.ndarray  # (n,) int32, n_stores = online

    def key(self) -> np.ndarray:
        """Sorted ``cust * 2**40 + t``: find a customer's orders in a window by searchsorted."""
        return self.cust * (1 << 40) + self.t


def draw_orders(world: World, people: People, rows: slice, scale: float,
                rng: np.random.Generator) -> Orders:
    """Orders of the customers ``rows``: Poisson counts, days by intensity, hours, stores."""
    ci = world.cum_intensity
    join, churn = people.join_day[rows], people.churn_day[rows]
    lo, width = ci[join], ci[churn] - ci[join]
    n = rng.poisson(people.rate[rows] * scale / 365.0 * width)
    cust = np.repeat(np.arange(len(join), dtype=np.int64), n)
    u = lo[cust] + rng.random(len(cust)) * width[cust]
    day = np.clip(np.searchsorted(ci, u, side="right") - 1, join[cust], churn[cust] - 1)
    online = rng.random(len(cust)) < people.online[rows][cust]
    hour = np.where(online, rng.choice(24, len(cust), p=_ONLINE_HOURS / _ONLINE_HOURS.sum()),
                    rng.choice(24, len(cust), p=_STORE_HOURS / _STORE_HOURS.sum()))
    t = day * DAY + hour * 3600 + rng.integers(0, 3600, len(cust))
    away = rng.random(len(cust)) < 0.1
    store = np.where(online, world.n_stores, np.where(
        away, rng.integers(0, world.n_stores, len(cust)), people.home_store[rows][cust]))
    order = np.argsort(cust * (1 << 40) + t, kind="stable")
    return Orders(cust[order], day[order].astype(np.int64), t[order], store[order].astype(np.int32))


def draw_products(world: World, people: People, rows: slice, affinity: np.ndarray,
                  orders: Orders, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Basket lines of ``orders`` and the customers' staples.

    Returns ``(line order index, line product index, staple owner, staple product)``, all int64;
    staple owners are chunk-local customer indices, sorted.
    """
    n_cust, n_cat = affinity.shape
    aff = GroupedCDF.build(np.repeat(np.arange(n_cust), n_cat), affinity.ravel(), n_cust)
    seg_c = people.segment[rows].astype(np.int64)
    # Staples: a handful of products per customer, chosen as they joined, weighted unevenly.
    n_staples = 1 + rng.poisson(np.array([s.staples for s in SEGMENTS])[seg_c])
    owner = np.repeat(np.arange(n_cust), n_staples)
    staple = world.explore(aff, owner, seg_c[owner], people.join_day[rows][owner].astype(np.int64),
                           rng)
    weight = rng.standard_exponential(len(owner)) ** 1.5 + 1e-9
    # Each order takes k distinct staples (weighted sampling without replacement: the k smallest
    # Exp(1) / weight keys, Efraimidis & Spirakis 2006) and fills the rest of its size by explore.
    n_orders = len(orders.cust)
    size = 1 + rng.poisson(people.basket[rows][orders.cust] - 1.0)
    per = n_staples[orders.cust]
    k = np.minimum(rng.binomial(size, people.repeat[rows][orders.cust]), per)
    pair_order = np.repeat(np.arange(n_orders), per)
    group_first = np.repeat(np.cumsum(per) - per, per)
    pair_staple = np.repeat(np.cumsum(n_staples)[orders.cust] - per, per) + (
        np.arange(len(pair_order)) - group_first)
    key = rng.standard_exponential(len(pair_order)) / weight[pair_staple]
    rank = np.empty(len(pair_order), dtype=np.int64)
    # pair_order is sorted and key / (1 + key) is in [0, 1): one float argsort sorts both.
    rank[np.argsort(pair_order + key / (1.0 + key))] = np.arange(len(pair_order)) - group_first
    chosen = np.flatnonzero(rank < k[pair_order])
    st_order, st_prod = pair_order[chosen], staple[pair_staple[chosen]]
    ok = world.available(st_prod, orders.day[st_order])
    st_order, st_prod = st_order[ok], st_prod[ok]
    ex_order = np.repeat(np.arange(n_orders), size - np.bincount(st_order, minlength=n_orders))
    ex_prod = world.explore(aff, orders.cust[ex_order], seg_c[orders.cust[ex_order]],
                            orders.day[ex_order], rng)
    line_order, prod = np.r_[st_order, ex_order], np.r_[st_prod, ex_prod]
    return line_order, prod, owner, staple


def price_lines(world: World, people: People, rows: slice, orders: Orders,
                line_order: np.ndarray, prod: np.ndarray, coupon: np.ndarray,
                rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Merge repeated (order, product) lines and price them.

    Returns ``(order index, product index, quantity, amount)``: int64, int64, float64, float64,
    sorted by order then product. Coupon lines get ``COUPON_DISCOUNT``, a few others a promo.
    """
    n_prod = len(world.by_cat_items)
    seg = people.segment[rows][orders.cust[line_order]]
    qty = 1.0 + rng.poisson(np.where(seg == 0, 0.45, 0.2))
    promo = np.where(rng.random(len(prod)) < PROMO_SHARE, rng.uniform(0.1, 0.3, len(prod)), 0.0)
    discount = np.where(coupon, COUPON_DISCOUNT, promo)
    amount = qty * world.catalog.price[prod] * (1.0 - discount)
    key, inverse = np.unique(line_order * n_prod + prod, return_inverse=True)
    qty = np.bincount(inverse, qty, minlength=len(key))
    amount = np.round(np.bincount(inverse, amount, minlength=len(key)), 2)
    return key // n_prod, key % n_prod, qty, amount


__all__ = ["GroupedCDF", "World", "Orders", "draw_orders", "draw_products", "price_lines", "DAY"]
