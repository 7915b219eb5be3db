"""A seeded synthetic retailer with planted structure, for tests, demos and scale benchmarks.

``generate`` fills every canonical table. What a model can learn from it, and where it lives:

- catalog (``synthetic_catalog``): department > category > type tree; titles/descriptions from
  category words plus brand words; lognormal prices per category and brand tier; power-law
  popularity within category; launches through the year (some in the last 28 days) and a few
  discontinued products;
- customers (``synthetic_people``): segments (family, bargain, gourmet, health, convenience,
  occasional; in ``customers.attributes``) with their own category affinities, price
  sensitivity and heavy-tailed visit rates; joins during the period, churn, opt-outs;
- baskets (``synthetic_lines``): several lines per order, most of them the customer's staples;
  weekday, seasonal and holiday intensity; category seasons; stores and an online channel;
- coupons (``synthetic_coupons``): campaigns with validity windows, coupon product lists,
  offers, and redemptions whose probability rises with the customer's category affinity.

Customers are generated in fixed chunks with one random stream per chunk, so the output depends
only on the arguments, and memory beyond the result is bounded by the chunk size. Ids are built
once per vocabulary and gathered with pyarrow, so tens of millions of string ids stay cheap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys.data.schema import RetailData
from recsys.data.synthetic_catalog import build_catalog
from recsys.data.synthetic_coupons import Campaigns, build_campaigns, draw_coupons
from recsys.data.synthetic_lines import World, draw_orders, draw_products, price_lines
from recsys.data.synthetic_people import (
    PETS,
    SEGMENTS,
    People,
    build_people,
    draw_affinity,
    segment_weights,
)

log = logging.getLogger(__name__)

CHUNK = 20_000                  # customers per chunk; part of the definition of the output
LINES_PER_CUSTOMER_YEAR = 30    # default n_lines = this x customers x days / 365


def _ids(prefix: str, n: int) -> pa.Array:
    """``prefix`` + zero-padded ``0 .. n-1`` as a pyarrow large_string array (sorts as numbers)."""
    width = len(str(max(n - 1, 0)))
    digits = pc.utf8_lpad(pc.cast(pa.array(np.arange(n)), pa.large_string()), width, padding="0")
    sep = pa.scalar("", pa.large_string())
    return pc.binary_join_element_wise(pa.scalar(prefix, pa.large_string()), digits, sep)


def _take(vocab: pa.Array, idx: np.ndarray) -> pd.arrays.ArrowStringArray:
    return pd.array(vocab.take(pa.array(idx)), dtype="str")


def _times(start: pd.Timestamp, seconds: np.ndarray) -> np.ndarray:
    return (start.value + seconds.astype(np.int64) * 1_000_000_000).view("datetime64[ns]")


def _check(n_customers: int, n_products: int, n_lines: int | None, days: int, start: str) -> None:
    for name, value, low, high in (("n_customers", n_customers, 1, 2**31 - 1),
                                   ("n_products", n_products, 10, 2**31 - 1),
                                   ("days", days, 7, 20_000)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) \
                or not low <= value <= high:
            raise ValueError(f"{name} must be an integer in [{low}, {high}], not {value!r}")
    try:
        pd.Timestamp(start)
    except (ValueError, TypeError):
        raise ValueError(f"start must be a date such as '2024-01-01', not {start!r}") from None
    if n_lines is not None and (not isinstance(n_lines, int | np.integer) or n_lines < 1):
        raise ValueError(f"n_lines must be a positive integer or None, not {n_lines!r}")


@dataclass
class _Setup:
    world: World
    people: People
    campaigns: Campaigns
    centres: np.ndarray     # (segments, pets, categories) affinity centres
    population: np.ndarray  # (categories,) population mean affinity
    seed: int


def _chunk(setup: _Setup, lo: int, scale: float) -> tuple[tuple[np.ndarray, ...], ...]:
    """Orders, lines, offers and redemptions of customers ``lo .. lo + CHUNK - 1``.

    Its own random stream (``[seed, 4, chunk number]``) makes it independent of other chunks.
    """
    world, people = setup.world, setup.people
    rows = slice(lo, min(lo + CHUNK, len(people.segment)))
    rng = np.random.default_rng([setup.seed, 4, lo // CHUNK])
    aff = draw_affinity(setup.centres, people.segment[rows], people.pet[rows], rng)
    orders = draw_orders(world, people, rows, scale, rng)
    line_order, prod, owner, staple = draw_products(world, people, rows, aff, orders, rng)
    cc = draw_coupons(setup.campaigns, people, rows, aff, setup.population, orders, owner,
                      staple, rng)
    coupon = np.r_[np.zeros(len(prod), bool), np.ones(len(cc.red_order), bool)]
    o, p, q, a = price_lines(world, people, rows, orders, np.r_[line_order, cc.red_order],
                             np.r_[prod, cc.red_product], coupon, rng)
    return (((orders.cust + lo).astype(np.int32), orders.t.astype(np.int32), orders.store),
            (o.astype(np.int32), p.astype(np.int32), q.astype(np.float32), a),
            (cc.offer_campaign.astype(np.int32), (cc.offer_cust + lo).astype(np.int32)),
            ((cc.red_cust + lo).astype(np.int32), cc.red_coupon.astype(np.int32),
             orders.t[cc.red_order].astype(np.int32)))


def generate(n_customers: int = 2000, n_products: int = 500, *, n_lines: int | None = None,
             days: int = 365, start: str = "2024-01-01", seed: int = 0,
             show_progress: bool = False) -> RetailData:
    """Generate a synthetic retailer's history in the canonical schema.

    Parameters
    ----------
    n_customers : int
        Registered customers (some never buy, some join late, some churn).
    n_products : int
        Catalog size, at least 10.
    n_lines : int, optional
        Target number of transaction lines; default ``LINES_PER_CUSTOMER_YEAR * n_customers *
        days / 365``. The result lands within a few percent (visit rates are calibrated on a
        pilot run of the first chunk).
    days : int
        Length of the period; every transaction timestamp is in ``[start, start + days)``.
    start : str
        First day, e.g. ``"2024-01-01"``.
    seed : int
        The same arguments and seed give identical frames.
    show_progress : bool
        A tqdm bar over customer chunks.

    Returns
    -------
    RetailData
        ``name="synthetic"``; all seven tables filled. Ids are strings: customers ``c…``,
        products ``p…``, orders ``o…`` (numbered in time order), stores ``s…`` or ``"online"``,
        campaigns ``m…``, coupons ``k…``. ``customers.attributes`` holds the planted segment.
    """
    _check(n_customers, n_products, n_lines, days, start)
    t0 = pd.Timestamp(start)
    n_stores = int(np.clip(n_customers // 5000, 2, 300))
    catalog = build_catalog(n_products, days, np.random.default_rng([seed, 1]))
    people = build_people(n_customers, days, t0, n_stores, np.random.default_rng([seed, 2]))
    camp = build_campaigns(catalog, days, np.random.default_rng([seed, 3]))
    world = World.build(catalog, t0, days, n_stores)
    centres = segment_weights(np.unique(catalog.category))
    mix = np.outer([s.share for s in SEGMENTS], [p[1] for p in PETS])
    setup = _Setup(world, people, camp, centres, np.einsum("sp,spk->k", mix, centres), seed)
    target = n_lines if n_lines is not None else round(
        LINES_PER_CUSTOMER_YEAR * n_customers * days / 365)
    ci = world.cum_intensity
    unit = people.rate / 365 * (ci[people.churn_day] - ci[people.join_day]) * people.basket
    scale = target / unit.sum()
    # Pilot on the first chunk: merging repeated lines of an order and coupon lines move the
    # count off the expectation by a scale-dependent few percent; correct the rate for it.
    pilot = len(_chunk(setup, 0, scale)[1][0])
    scale *= (scale * unit[:CHUNK].sum() / pilot) if pilot else 1.0
    orders, lines, offers, reds = [], [], [], []
    n_orders = 0
    chunks = range(0, n_customers, CHUNK)
    if show_progress:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="customers", unit="chunk", total=len(chunks))
    for lo in chunks:
        o, ln, of, rd = _chunk(setup, lo, scale)
        ln = (ln[0] + n_orders, *ln[1:])
        n_orders += len(o[0])
        orders.append(list(o))
        lines.append(list(ln))
        offers.append(of)
        reds.append(rd)
    data = RetailData(
        name="synthetic",
        transactions=_transactions(orders, lines, t0, n_customers, n_products, n_stores),
        products=pd.concat([pd.DataFrame({"product_id": _ids("p", n_products)}).astype("str"),
                            catalog.frame], axis=1),
        customers=pd.concat([pd.DataFrame({"customer_id": _ids("c", n_customers)}).astype("str"),
                             people.frame], axis=1),
        **_coupon_tables(camp, offers, reds, t0, n_customers, n_products),
    )
    log.info("synthetic: %d customers, %d products, %d orders, %d lines, %d offers, "
             "%d redemptions", n_customers, n_products, n_orders, len(data.transactions),
             len(data.offers), len(data.redemptions))
    return data


def _pop(chunks: list[list[np.ndarray]], k: int) -> np.ndarray:
    """Concatenate column ``k`` of every chunk, releasing the chunk's copy as it goes."""
    parts = []
    for chunk in chunks:
        parts.append(chunk[k])
        chunk[k] = None
    return np.concatenate(parts)


def _transactions(orders: list, lines: list, t0: pd.Timestamp, n_customers: int,
                  n_products: int, n_stores: int) -> pd.DataFrame:
    """Concatenate chunks and renumber orders in time order (lines stay grouped by order).

    Columns are built one at a time and their sources freed, to keep the peak near the size of
    the result.
    """
    t = _pop(orders, 1)
    n_orders = len(t)
    perm = np.argsort(t, kind="stable")
    size = np.bincount(_pop(lines, 0), minlength=n_orders)
    size_new = size[perm]
    shift = np.cumsum(size_new) - size_new - (np.cumsum(size) - size)[perm]
    del size
    line_perm = np.arange(size_new.sum(), dtype=np.int64)
    line_perm -= np.repeat(shift, size_new)
    del shift
    columns = {"product_id": _take(_ids("p", n_products), _pop(lines, 1)[line_perm])}
    columns["quantity"] = _pop(lines, 2)[line_perm].astype(np.float64)
    columns["amount"] = _pop(lines, 3)[line_perm]
    del line_perm
    new_order = np.repeat(np.arange(n_orders, dtype=np.int32), size_new)
    old_order = perm.astype(np.int32)[new_order]
    del perm, size_new
    columns["order_id"] = _take(_ids("o", n_orders), new_order)
    del new_order
    columns["timestamp"] = _times(t0, t[old_order])
    del t
    columns["customer_id"] = _take(_ids("c", n_customers), _pop(orders, 0)[old_order])
    stores = pa.concat_arrays([_ids("s", n_stores), pa.array(["online"], pa.large_string())])
    columns["store_id"] = _take(stores, _pop(orders, 2)[old_order])
    order = ("order_id", "customer_id", "product_id", "quantity", "amount", "timestamp",
             "store_id")
    return pd.DataFrame({c: columns.pop(c) for c in order}, copy=False)


def _coupon_tables(camp: Campaigns, offers: list, reds: list, t0: pd.Timestamp, n_customers: int,
                   n_products: int) -> dict[str, pd.DataFrame]:
    n_camp, n_coupons = len(camp.ptr) - 1, len(camp.coupon_category)
    camp_ids, coupon_ids = _ids("m", n_camp), _ids("k", n_coupons)
    cust_ids = _ids("c", n_customers)
    coupon_campaign = np.repeat(np.arange(n_camp), np.diff(camp.ptr))
    row_coupon = np.repeat(np.arange(n_coupons), np.diff(camp.product_ptr))
    oj, oc = (np.concatenate(c) for c in zip(*offers, strict=True))
    by = np.lexsort((oc, oj))
    rc, rq, rt = (np.concatenate(c) for c in zip(*reds, strict=True))
    rby = np.lexsort((rc, rt))
    day = pd.Timedelta(days=1)
    return {
        "campaigns": pd.DataFrame({
            "campaign_id": _take(camp_ids, np.arange(n_camp)),
            "kind": pd.array(camp.kind, dtype="str"),
            "start": (t0 + camp.start_day * day).astype("datetime64[ns]"),
            "end": (t0 + camp.end_day * day).astype("datetime64[ns]"),
        }),
        "coupons": pd.DataFrame({
            "coupon_id": _take(coupon_ids, row_coupon),
            "campaign_id": _take(camp_ids, coupon_campaign[row_coupon]),
            "product_id": _take(_ids("p", n_products), camp.products),
        }),
        "offers": pd.DataFrame({"campaign_id": _take(camp_ids, oj[by]),
                                "customer_id": _take(cust_ids, oc[by])}),
        "redemptions": pd.DataFrame({
            "customer_id": _take(cust_ids, rc[rby]),
            "coupon_id": _take(coupon_ids, rq[rby]),
            "campaign_id": _take(camp_ids, coupon_campaign[rq[rby]]),
            "timestamp": _times(t0, rt[rby]),
        }),
    }


__all__ = ["generate", "CHUNK", "LINES_PER_CUSTOMER_YEAR"]
