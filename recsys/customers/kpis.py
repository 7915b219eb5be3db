"""The loyalty KPI report, per calendar period (DOMAIN.md defines each KPI; so does this).

For a period ``[start, end)`` (``end`` is cut at ``as_of`` for the last, incomplete period):

- ``customers``: customers with 1+ orders in the period; ``new_customers``: of them, those
  whose first order ever falls in it.
- ``repeat_purchase_rate`` = customers with 2+ orders in the period / customers with 1+.
- ``aov`` (average order value) = revenue / orders; ``purchase_frequency`` = orders / customers.
- ``active_at_start``: customers with an order in the ``H`` days before ``start``
  (``H = lifecycle.churn_horizon_days``). ``lost``: of those, customers without an order in the
  period whose last order is more than ``H`` days before ``end`` (they crossed the horizon in the
  period). ``churn_rate`` = lost / active_at_start.
- ``coupon_redemption_rate`` = redeemed / issued offers, an offer being a (campaign, customer)
  pair of ``offers`` dated by its campaign's start, redeemed when ``redemptions`` has that pair.
- Retention by monthly cohort: of the customers whose first order is in month ``c``, the share
  ordering in month ``c + k`` (``m0`` is 1 by definition; months not complete at ``as_of``
  are NaN).
- Revenue share by segment and tier: each period's revenue split by the customers' segment and
  tier in a profile (``profile_customers``; one profile, as of its own date).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.customers.config import CustomersConfig, check_period
from recsys.customers.history import NS_PER_DAY, History, build_history, check_transactions
from recsys.errors import DataError


@dataclass(frozen=True)
class KPIReport:
    """KPI frames: ``periods`` (one row per period), ``cohorts`` (cohort x month offset),
    ``revenue_share`` (period x segment/tier, long), ``coupons`` (one row per campaign)."""

    periods: pd.DataFrame
    cohorts: pd.DataFrame
    revenue_share: pd.DataFrame
    coupons: pd.DataFrame


def _last_before(h: History, mask: np.ndarray) -> np.ndarray:
    """Per customer, the time of their last order within ``mask`` (-1 where none)."""
    out = np.full(h.n_customers, -1, dtype=np.int64)
    idx = np.flatnonzero(mask)
    if len(idx):
        c = h.customer[idx]
        last = idx[np.r_[c[1:] != c[:-1], True]]  # orders are sorted by (customer, time)
        out[h.customer[last]] = h.ts[last]
    return out


def _first_order(h: History) -> np.ndarray:
    """Index of each customer's first order, (n_customers,) (every customer has one)."""
    return np.flatnonzero(np.r_[True, h.customer[1:] != h.customer[:-1]])


def _periods(h: History, freq: str, horizon_days: int) -> pd.DataFrame:
    stamps = pd.to_datetime(h.ts).to_period(freq)
    first_ts = h.ts[_first_order(h)]
    horizon = horizon_days * NS_PER_DAY
    rows = []
    for p in pd.period_range(stamps.min(), stamps.max(), freq=freq):
        start, end = p.start_time.value, min(p.end_time.value + 1, h.as_of_ns + 1)
        inside = (h.ts >= start) & (h.ts < end)
        n_orders = np.bincount(h.customer[inside], minlength=h.n_customers)
        buyers = n_orders > 0
        last = _last_before(h, (h.ts >= start - horizon) & (h.ts < start))
        active = last >= 0
        lost = active & ~buyers & (last < end - horizon)
        revenue = float(h.amount[inside].sum())
        n_buyers, n_ord, n_active = int(buyers.sum()), int(inside.sum()), int(active.sum())
        rows.append({
            "period": str(p), "start": p.start_time, "complete": end > p.end_time.value,
            "customers": n_buyers,
            "new_customers": int((buyers & (first_ts >= start) & (first_ts < end)).sum()),
            "orders": n_ord, "revenue": revenue,
            "repeat_purchase_rate": (n_orders >= 2).sum() / n_buyers if n_buyers else np.nan,
            "aov": revenue / n_ord if n_ord else np.nan,
            "purchase_frequency": n_ord / n_buyers if n_buyers else np.nan,
            "active_at_start": n_active, "lost": int(lost.sum()),
            "churn_rate": lost.sum() / n_active if n_active else np.nan,
        })
    return pd.DataFrame(rows)


def cohort_retention(h: History, max_months: int) -> pd.DataFrame:
    """Share of each first-purchase month's customers ordering ``k`` months later.

    Returns
    -------
    DataFrame indexed by ``cohort`` ("YYYY-MM"): ``customers`` then ``m0..m<max_months>``.
    """
    month = pd.to_datetime(h.ts).to_period("M").asi8  # months since 1970-01
    first = month[_first_order(h)]
    offset = month - first[h.customer]
    keep = offset <= max_months
    pairs = np.unique(h.customer[keep] * (max_months + 1) + offset[keep])
    cust, k = pairs // (max_months + 1), pairs % (max_months + 1)
    cohorts, code = np.unique(first[cust], return_inverse=True)
    counts = np.zeros((len(cohorts), max_months + 1))
    np.add.at(counts, (code, k), 1)
    size = counts[:, 0]
    share = counts / size[:, None]
    as_of_month = pd.Period(h.as_of, "M")
    # Only whole months count: a month that as_of cuts short would show a false drop.
    complete = h.as_of_ns >= as_of_month.end_time.value
    last_month = as_of_month.ordinal - (0 if complete else 1)
    share[cohorts[:, None] + np.arange(max_months + 1)[None, :] > last_month] = np.nan
    index = pd.PeriodIndex.from_ordinals(cohorts, freq="M").astype(str).rename("cohort")
    frame = pd.DataFrame(share, index=index, columns=[f"m{i}" for i in range(max_months + 1)])
    frame.insert(0, "customers", size.astype(np.int64))
    return frame


def _revenue_share(h: History, freq: str, profile: pd.DataFrame | None) -> pd.DataFrame:
    cols = ["period", "dimension", "group", "revenue", "share"]
    if profile is None or len(h.ts) == 0:
        return pd.DataFrame(columns=cols)
    pos = pd.Index(profile["customer_id"].astype(str)).get_indexer(h.customer_ids)
    period = pd.to_datetime(h.ts).to_period(freq).astype(str)
    parts = []
    for dim in ("segment", "tier"):
        labels = np.where(pos >= 0, profile[dim].astype(str).to_numpy()[pos], "unprofiled")
        frame = pd.DataFrame({"period": period, "group": labels[h.customer], "revenue": h.amount})
        g = frame.groupby(["period", "group"], as_index=False)["revenue"].sum()
        g["share"] = g["revenue"] / g.groupby("period")["revenue"].transform("sum")
        parts.append(g.assign(dimension=dim))
    return pd.concat(parts, ignore_index=True)[cols]


def coupon_kpis(h: History, offers: pd.DataFrame, redemptions: pd.DataFrame,
                campaigns: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per campaign: offers issued, redeemed, rate and (with campaign dates) mean revenue in
    the campaign window of redeemers vs offered customers who did not redeem."""
    for name, frame in (("offers", offers), ("redemptions", redemptions)):
        if not {"campaign_id", "customer_id"} <= set(frame.columns):
            raise DataError(f"{name} need columns campaign_id and customer_id")
    issued = offers[["campaign_id", "customer_id"]].astype(str).drop_duplicates()
    used = redemptions[["campaign_id", "customer_id"]].astype(str).drop_duplicates()
    pairs = issued.merge(used.assign(redeemed=True), how="left", on=["campaign_id",
                                                                        "customer_id"])
    pairs["redeemed"] = pairs["redeemed"].fillna(False).astype(bool)
    out = pairs.groupby("campaign_id").agg(issued=("customer_id", "size"),
                                           redeemed=("redeemed", "sum"))
    out["redemption_rate"] = out["redeemed"] / out["issued"]
    if campaigns is None or not len(campaigns):
        return out.reset_index()
    camp = campaigns.assign(campaign_id=campaigns["campaign_id"].astype(str)).set_index(
        "campaign_id")
    out = out.join(camp[["start", "end"]], how="left")
    code = pd.Index(h.customer_ids).get_indexer(pairs["customer_id"])
    for cid, grp in pairs.groupby("campaign_id"):
        if cid not in camp.index:
            continue
        lo, hi = camp.at[cid, "start"].value, camp.at[cid, "end"].value + NS_PER_DAY
        window = (h.ts >= lo) & (h.ts < hi)
        spend = np.bincount(h.customer[window], weights=h.amount[window],
                            minlength=h.n_customers)
        c = code[grp.index]
        rev = np.where(c >= 0, spend[np.maximum(c, 0)], 0.0)
        red = grp["redeemed"].to_numpy()
        out.loc[cid, "revenue_redeemers"] = rev[red].mean() if red.any() else np.nan
        out.loc[cid, "revenue_others"] = rev[~red].mean() if (~red).any() else np.nan
    return out.reset_index()


def kpi_report(transactions: pd.DataFrame, *, config: CustomersConfig | None = None,
               period: str | None = None, as_of: object | None = None,
               profile: pd.DataFrame | None = None, offers: pd.DataFrame | None = None,
               redemptions: pd.DataFrame | None = None,
               campaigns: pd.DataFrame | None = None) -> KPIReport:
    """Loyalty KPIs per period (definitions in the module docstring).

    Parameters
    ----------
    transactions : DataFrame of canonical transactions (empty -> empty frames)
    period : pandas period alias (default ``kpis.period``: "M")
    profile : output of ``profile_customers`` for the revenue share by segment and tier
    offers, redemptions, campaigns : canonical frames for the coupon redemption rate

    Returns
    -------
    KPIReport

    Raises
    ------
    ConfigError
        ``period`` is not a pandas period alias.
    """
    config = config or CustomersConfig()
    freq = check_period(period or config.kpis.period)
    if len(transactions) == 0:
        check_transactions(transactions)
        empty = pd.DataFrame()
        return KPIReport(empty, empty, empty, empty)
    h = build_history(transactions, as_of=as_of)
    periods = _periods(h, freq, config.lifecycle.churn_horizon_days)
    coupons = pd.DataFrame()
    if offers is not None and redemptions is not None and len(offers):
        coupons = coupon_kpis(h, offers, redemptions, campaigns)
        if "start" in coupons:
            when = pd.to_datetime(coupons["start"]).dt.to_period(freq).astype(str)
            per = coupons.groupby(when)[["issued", "redeemed"]].sum()
            periods = periods.merge(per.rename_axis("period").reset_index(), how="left",
                                    on="period").fillna({"issued": 0, "redeemed": 0})
            periods = periods.astype({"issued": "int64", "redeemed": "int64"})
            periods["coupon_redemption_rate"] = periods["redeemed"] / periods["issued"]
    return KPIReport(periods=periods, cohorts=cohort_retention(h, config.kpis.cohort_months),
                     revenue_share=_revenue_share(h, freq, profile), coupons=coupons)


__all__ = ["KPIReport", "cohort_retention", "coupon_kpis", "kpi_report"]
