"""Purchase histories as sorted numpy arrays: the one input every customer model reads.

``build_history`` validates a canonical transactions frame, drops rows after ``as_of`` (with a
``FutureRowsWarning``), collapses receipt lines into orders (an order's time is its first line,
its value the sum of its lines) and sorts orders by ``(customer, time)``. ``summarize`` turns
the orders up to a cut into per-customer arrays, so rolling windows cost one mask each.

Time is counted in whole calendar days (``day = floor(timestamp)``); several orders on one day
are one *purchase day* (Fader, Hardie & Lee 2005 count repeat purchases this way).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from recsys.errors import DataError

log = logging.getLogger(__name__)

NS_PER_DAY = 86_400 * 10**9
REQUIRED = ("customer_id", "order_id", "amount", "timestamp")


class FutureRowsWarning(UserWarning):
    """Rows dated after ``as_of`` were left out (they cannot be known at that date)."""


@dataclass(frozen=True)
class History:
    """Orders sorted by customer then time; optional line categories and coupon redemptions.

    Attributes
    ----------
    customer_ids : (n_customers,) object array of str, sorted ascending
    customer : (n_orders,) int64 index into ``customer_ids``
    ts : (n_orders,) int64 nanoseconds since the epoch (naive local time)
    amount : (n_orders,) float64 order value
    as_of : the reference moment; no order is later
    category_customer, category_first_ts : (n_pairs,) int64 per (customer, category) bought:
        the customer and the first time they bought the category; None without products
    coupon_customer, coupon_ts : (n_redemptions,) arrays, or None without redemptions
    """

    customer_ids: NDArray[np.object_]
    customer: NDArray[np.int64]
    ts: NDArray[np.int64]
    amount: NDArray[np.float64]
    as_of: pd.Timestamp
    category_customer: NDArray[np.int64] | None = None
    category_first_ts: NDArray[np.int64] | None = None
    coupon_customer: NDArray[np.int64] | None = None
    coupon_ts: NDArray[np.int64] | None = None

    @property
    def n_customers(self) -> int:
        """Number of customers with at least one order."""
        return len(self.customer_ids)

    @property
    def as_of_ns(self) -> int:
        """``as_of`` in nanoseconds since the epoch."""
        return int(self.as_of.value)


def check_transactions(transactions: pd.DataFrame) -> None:
    """Raise ``DataError`` naming what is wrong when columns, dtypes or values are bad."""
    missing = [c for c in REQUIRED if c not in transactions.columns]
    if missing:
        raise DataError(f"transactions lack column(s) {missing}; canonical transactions have "
                        f"{list(REQUIRED)} (see recsys.data.schema)")
    if not pd.api.types.is_datetime64_any_dtype(transactions["timestamp"]):
        raise DataError("transactions.timestamp must be datetime64, got "
                        f"{transactions['timestamp'].dtype}; load data with recsys.data.load")
    if not pd.api.types.is_numeric_dtype(transactions["amount"]):
        raise DataError(f"transactions.amount must be numeric, got {transactions['amount'].dtype}")
    for col, what in (("timestamp", "no timestamp"), ("amount", "no amount"),
                      ("customer_id", "no customer_id"), ("order_id", "no order_id")):
        n_bad = int(transactions[col].isna().sum())
        if n_bad:
            raise DataError(f"{n_bad} transaction row(s) have {what}; drop or repair them first "
                            "(recsys.data.clean drops guest lines and bad rows)")


def resolve_as_of(transactions: pd.DataFrame, as_of: object | None) -> pd.Timestamp:
    """``as_of`` as a naive Timestamp; ``None`` means the latest transaction time."""
    if as_of is None:
        if len(transactions) == 0:
            raise DataError("as_of is required when transactions are empty")
        return pd.Timestamp(transactions["timestamp"].max()).as_unit("ns")
    try:
        stamp = pd.Timestamp(as_of)
    except (ValueError, TypeError) as exc:
        raise DataError(f"as_of {as_of!r} is not a date") from exc
    if stamp is pd.NaT or pd.isna(stamp):
        raise DataError("as_of must be a date, got NaT")
    return stamp.tz_localize(None).as_unit("ns") if stamp.tzinfo else stamp.as_unit("ns")


def _ns(values: pd.Series) -> NDArray[np.int64]:
    return values.to_numpy(dtype="datetime64[ns]").astype(np.int64)


def build_history(transactions: pd.DataFrame, *, as_of: object | None = None,
                  products: pd.DataFrame | None = None,
                  redemptions: pd.DataFrame | None = None) -> History:
    """Validate transactions and collapse them into sorted per-customer orders.

    Parameters
    ----------
    transactions : DataFrame
        Canonical transactions: ``customer_id``, ``order_id`` (str), ``amount`` (float64),
        ``timestamp`` (datetime64); ``product_id`` is needed only with ``products``.
    as_of : date-like, optional
        Reference moment; default the latest timestamp. Rows after it are excluded with a
        ``FutureRowsWarning`` (their count is in the message).
    products : DataFrame, optional
        ``product_id, category``: enables category-breadth features.
    redemptions : DataFrame, optional
        ``customer_id, timestamp``: enables coupon-usage features.

    Raises
    ------
    DataError
        Missing columns, wrong dtypes, missing values.
    """
    check_transactions(transactions)
    stamp = resolve_as_of(transactions, as_of)
    ts_all = _ns(transactions["timestamp"])
    keep = ts_all <= stamp.value
    n_future = int((~keep).sum())
    if n_future:
        msg = (f"{n_future} of {len(keep)} transaction rows are dated after as_of={stamp} and "
               "were left out")
        warnings.warn(msg, FutureRowsWarning, stacklevel=2)
    tx = transactions.loc[keep] if n_future else transactions
    ts_line = ts_all[keep] if n_future else ts_all
    cust_codes, customer_ids = pd.factorize(tx["customer_id"].astype(str), sort=True)
    line_order, n_orders = _order_index(cust_codes.astype(np.int64),
                                        pd.factorize(tx["order_id"].astype(str))[0])
    amount = np.bincount(line_order, weights=tx["amount"].to_numpy(dtype=np.float64),
                         minlength=n_orders)
    ts = np.full(n_orders, np.iinfo(np.int64).max)
    np.minimum.at(ts, line_order, ts_line)
    cust = np.zeros(n_orders, np.int64)
    cust[line_order] = cust_codes  # every line of an order has the same customer
    idx = np.lexsort((ts, cust))
    hist = History(
        customer_ids=np.asarray(customer_ids, dtype=object),
        customer=cust[idx], ts=ts[idx], amount=amount[idx],
        as_of=stamp,
        **_lines(tx, cust_codes, ts_line, products),
        **_coupons(redemptions, customer_ids, stamp),
    )
    log.debug("history: %d lines -> %d orders of %d customers", len(tx), len(hist.ts),
              hist.n_customers)
    return hist


def _first_occurrences(codes: NDArray[np.int64]) -> NDArray[np.int64]:
    """Positions where each code of ``pd.factorize`` (numbered by first appearance) starts."""
    if len(codes) == 0:
        return np.zeros(0, np.int64)
    seen = np.maximum.accumulate(codes)
    return np.flatnonzero(np.r_[True, seen[1:] > seen[:-1]])


def _order_index(cust: NDArray[np.int64], order: NDArray[np.int64]
                 ) -> tuple[NDArray[np.int64], int]:
    """Order number of every line: one per (customer, order_id) pair, by first appearance.

    An order id normally belongs to one customer; then the order codes are the answer. An id
    shared by several customers is split per customer.
    """
    n = int(order.max(initial=-1)) + 1
    owner = cust[_first_occurrences(order)]
    if (owner[order] == cust).all():
        return order.astype(np.int64), n
    codes, uniques = pd.factorize(cust * n + order)
    return codes.astype(np.int64), len(uniques)


def _lines(tx: pd.DataFrame, cust: NDArray[np.int64], ts: NDArray[np.int64],
           products: pd.DataFrame | None) -> dict[str, NDArray[np.int64] | None]:
    if products is None:
        return {}
    for col in ("product_id", "category"):
        frame = tx if col == "product_id" else products
        if col not in frame.columns:
            raise DataError(f"category breadth needs {col!r} in the "
                            f"{'transactions' if frame is tx else 'products'} frame")
    prod_codes, prod_ids = pd.factorize(tx["product_id"].astype(str))
    cat = products.drop_duplicates("product_id")
    cat = pd.Series(cat["category"].astype(str).to_numpy(),
                    index=cat["product_id"].astype(str).to_numpy()).replace("", np.nan)
    cat_of_product = pd.factorize(cat.reindex(prod_ids))[0]  # -1 = unknown category
    codes = np.where(prod_codes >= 0, cat_of_product[prod_codes], -1)
    ok = codes >= 0
    n_codes = int(codes.max(initial=0)) + 1
    pair, uniques = pd.factorize(cust[ok].astype(np.int64, copy=False) * n_codes + codes[ok])
    first_ts = np.full(len(uniques), np.iinfo(np.int64).max)
    np.minimum.at(first_ts, pair, ts[ok])
    pair_customer = np.zeros(len(uniques), np.int64)
    pair_customer[pair] = cust[ok]
    return {"category_customer": pair_customer, "category_first_ts": first_ts}


def _coupons(redemptions: pd.DataFrame | None, customer_ids: pd.Index,
             as_of: pd.Timestamp) -> dict[str, NDArray[np.int64] | None]:
    if redemptions is None:
        return {}
    missing = [c for c in ("customer_id", "timestamp") if c not in redemptions.columns]
    if missing:
        raise DataError(f"redemptions lack column(s) {missing}")
    red = redemptions.dropna(subset=["customer_id", "timestamp"])
    code = customer_ids.get_indexer(red["customer_id"].astype(str))
    ts = _ns(red["timestamp"])
    ok = (code >= 0) & (ts <= as_of.value)
    return {"coupon_customer": code[ok].astype(np.int64), "coupon_ts": ts[ok]}


__all__ = ["NS_PER_DAY", "FutureRowsWarning", "History", "build_history", "check_transactions",
           "resolve_as_of"]
