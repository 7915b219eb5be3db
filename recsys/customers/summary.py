"""Per-customer recency/frequency/value arrays of a ``History`` as of a cut date.

All arrays have one entry per customer of the history (``history.customer_ids``); customers
without an order up to the cut have ``n_orders == 0`` and NaN in the day-based fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from recsys.customers.history import NS_PER_DAY, History

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Summary:
    """Purchase statistics per customer up to ``cut_ns`` (inclusive).

    Attributes
    ----------
    cut_day : the cut's calendar day (days since the epoch)
    n_orders, n_days : (n_customers,) int64 orders and distinct purchase days
    first_day, last_day : (n_customers,) float64 calendar day of first/last purchase (NaN: none)
    total : (n_customers,) float64 spend over all orders
    repeat_mean : (n_customers,) float64 mean spend per purchase day after the first (NaN: none)
    gap_std, last_gap : (n_customers,) float64 std of, and latest, gap in days (NaN: < 2 days)
    """

    cut_ns: int
    cut_day: int
    n_orders: IntArray
    n_days: IntArray
    first_day: FloatArray
    last_day: FloatArray
    total: FloatArray
    repeat_mean: FloatArray
    gap_std: FloatArray
    last_gap: FloatArray

    @property
    def recency_days(self) -> FloatArray:
        """Days from the last purchase day to the cut day (NaN: no purchase)."""
        return self.cut_day - self.last_day

    @property
    def tenure_days(self) -> FloatArray:
        """Days from the first purchase day to the cut day (NaN: no purchase)."""
        return self.cut_day - self.first_day

    @property
    def mean_gap(self) -> FloatArray:
        """Mean days between consecutive purchase days (NaN with fewer than 2 days)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.n_days > 1, (self.last_day - self.first_day)
                            / np.maximum(self.n_days - 1, 1), np.nan)


def summarize(history: History, cut_ns: int | None = None) -> Summary:
    """Statistics of every customer's orders up to ``cut_ns`` (default ``history.as_of``).

    Parameters
    ----------
    history : History
    cut_ns : int, optional
        Cut moment in nanoseconds since the epoch; orders at or before it count.
    """
    cut = history.as_of_ns if cut_ns is None else int(cut_ns)
    n = history.n_customers
    mask = history.ts <= cut
    c, a = history.customer[mask], history.amount[mask]
    day = history.ts[mask] // NS_PER_DAY
    n_orders = np.bincount(c, minlength=n).astype(np.int64)
    new_day = np.r_[True, (c[1:] != c[:-1]) | (day[1:] != day[:-1])] if len(c) else \
        np.zeros(0, bool)
    starts = np.flatnonzero(new_day)
    dc, dd = c[starts], day[starts].astype(np.float64)
    da = np.add.reduceat(a, starts) if len(starts) else np.zeros(0)
    n_days = np.bincount(dc, minlength=n).astype(np.int64)
    first_c = np.flatnonzero(np.r_[True, dc[1:] != dc[:-1]]) if len(dc) else starts
    last_c = np.r_[first_c[1:], len(dc)] - 1
    who = dc[first_c]
    first_day, last_day = np.full(n, np.nan), np.full(n, np.nan)
    first_day[who], last_day[who] = dd[first_c], dd[last_c]
    total = np.bincount(dc, weights=da, minlength=n)
    first_spend = np.zeros(n)
    first_spend[who] = da[first_c]
    with np.errstate(invalid="ignore", divide="ignore"):
        repeat_mean = np.where(n_days > 1, (total - first_spend) / (n_days - 1), np.nan)
        same = dc[1:] == dc[:-1]
        gaps, gc = (dd[1:] - dd[:-1])[same], dc[1:][same]
        g1 = np.bincount(gc, weights=gaps, minlength=n) / (n_days - 1)
        g2 = np.bincount(gc, weights=gaps**2, minlength=n) / (n_days - 1)
        gap_std = np.where(n_days > 1, np.sqrt(np.maximum(g2 - g1**2, 0.0)), np.nan)
    last_gap = np.full(n, np.nan)
    multi = n_days[who] > 1
    last_gap[who[multi]] = dd[last_c[multi]] - dd[last_c[multi] - 1]
    return Summary(cut_ns=cut, cut_day=int(cut // NS_PER_DAY), n_orders=n_orders, n_days=n_days,
                   first_day=first_day, last_day=last_day, total=total, repeat_mean=repeat_mean,
                   gap_std=gap_std, last_gap=last_gap)


def window_totals(history: History, start_ns: int, end_ns: int) -> tuple[FloatArray, IntArray]:
    """Spend and order count per customer over ``start_ns < ts <= end_ns``.

    Returns
    -------
    spend : (n_customers,) float64
    orders : (n_customers,) int64
    """
    mask = (history.ts > start_ns) & (history.ts <= end_ns)
    c = history.customer[mask]
    n = history.n_customers
    return (np.bincount(c, weights=history.amount[mask], minlength=n),
            np.bincount(c, minlength=n).astype(np.int64))


__all__ = ["Summary", "summarize", "window_totals"]
