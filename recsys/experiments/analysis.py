"""From exposures and events to an experiment's results: attribution, per-variant metrics,
comparisons with intervals, the sample-ratio check and each coupon's uplift over its holdout.

Inputs are two frames:

- exposures (``recsys.exposures.ExposureLog.frame``): ``customer_id, variant, model_version,
  mode, product_ids, coupon_ids, held_out, shown_at`` (the id columns hold lists);
- events (``events_frame``): ``event_id, customer_id, event_type, product_id, coupon_id,
  amount, timestamp``; ``amount`` is a purchase line's revenue, or for ``coupon_redeemed``
  the discount the retailer paid (the coupon's cost).

The unit is the customer: each is counted in the variant of their first exposure, from which
the window (default 7 days) starts; the pre-period (default 28 days before it) gives the
covariate for CUPED. A purchase of a product, or a redemption of a coupon, shown to that
customer at most ``window`` earlier is attributed to that exposure (a line counts once).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from recsys.experiments.stats import ALPHA, compare, srm

EXPOSURE_COLUMNS = ("customer_id", "variant", "model_version", "mode", "product_ids",
                    "coupon_ids", "held_out", "shown_at")
EVENT_COLUMNS = ("event_id", "customer_id", "event_type", "product_id", "coupon_id", "amount",
                 "timestamp")
OUTCOME_KINDS = ("purchase", "coupon_redeemed")  # the only event types the analysis reads
# metric name -> (per-customer column, better when higher)
METRICS = {"revenue_per_customer": ("spend", True), "visit_rate": ("visited", True),
           "bought_shown_rate": ("bought_shown", True),
           "coupon_cost_per_customer": ("coupon_cost", False)}
GUARDRAILS = ("coupon_cost_per_customer",)


@dataclass(frozen=True)
class Setup:
    """How to read an experiment: windows, intended split, interval method."""

    window_days: float = 7.0
    pre_days: float = 28.0
    shares: Mapping[str, float] = field(
        default_factory=lambda: {"champion": 0.5, "challenger": 0.5})
    control: str = "champion"
    treatment: str = "challenger"
    interval: str = "welch"
    alpha: float = ALPHA
    holdout_shares: Mapping[str, float] = field(default_factory=dict)  # coupon id -> share

    @property
    def window(self) -> pd.Timedelta:
        return pd.Timedelta(days=self.window_days)


def _units(first: pd.DataFrame, events: pd.DataFrame, setup: Setup) -> pd.DataFrame:
    """Per customer (``first``: customer_id, start): spend, visit and pre-period spend."""
    units = first.set_index("customer_id")
    buys = events[events["event_type"] == "purchase"]
    # merge, not join: joining an empty frame on a column gives it the other side's index,
    # named customer_id, and the groupby below would then find that name twice
    buys = buys.merge(first, on="customer_id", how="inner")
    lag = buys["timestamp"] - buys["start"]
    inside = (lag >= pd.Timedelta(0)) & (lag < setup.window)
    before = (lag < pd.Timedelta(0)) & (lag >= -pd.Timedelta(days=setup.pre_days))
    out = pd.DataFrame(index=units.index)
    out["spend"] = buys[inside].groupby("customer_id")["amount"].sum()
    out["pre_spend"] = buys[before].groupby("customer_id")["amount"].sum()
    out = out.fillna(0.0)
    out["visited"] = (out["spend"] > 0).astype(np.float64)
    return out


def _attributed(shown: pd.DataFrame, events: pd.DataFrame, key: str, kind: str,
                setup: Setup) -> pd.DataFrame:
    """Events of ``kind`` matching an exposure of the same customer and ``key`` (product or
    coupon id) within the window after it; each event once."""
    hits = events[events["event_type"] == kind].merge(shown, on=["customer_id", key])
    lag = hits["timestamp"] - hits["shown_at"]
    hits = hits[(lag >= pd.Timedelta(0)) & (lag < setup.window)]
    return hits.drop_duplicates("event_id")


def _exploded(exposures: pd.DataFrame, column: str, key: str) -> pd.DataFrame:
    shown = exposures[["customer_id", column, "shown_at"]].explode(column).dropna()
    return shown.rename(columns={column: key})


def analyze(exposures: pd.DataFrame, events: pd.DataFrame, setup: Setup | None = None,
            guardrails: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, object]:
    """The experiment's results as a JSON-ready dict (see docs/experiments.md).

    ``guardrails``: operational figures per variant read elsewhere (``error_rate``,
    ``latency_p99_ms`` from the server's metrics), copied into the result for the decision.
    """
    setup = setup or Setup()
    exposures = exposures.sort_values("shown_at", kind="stable")
    first = exposures.groupby("customer_id", sort=False).agg(
        variant=("variant", "first"), start=("shown_at", "first")).reset_index()
    switched = int((exposures.groupby("customer_id")["variant"].nunique() > 1).sum())
    units = _units(first[["customer_id", "start"]], events, setup)
    units["variant"] = first.set_index("customer_id")["variant"]

    products = _attributed(_exploded(exposures, "product_ids", "product_id"), events,
                           "product_id", "purchase", setup)
    coupons = _attributed(_exploded(exposures, "coupon_ids", "coupon_id"), events,
                          "coupon_id", "coupon_redeemed", setup)
    units["bought_shown"] = units.index.isin(products["customer_id"]).astype(np.float64)
    units["attributed_revenue"] = products.groupby("customer_id")["amount"].sum()
    units["coupon_cost"] = coupons.groupby("customer_id")["amount"].sum()
    units["redeemed"] = units.index.isin(coupons["customer_id"]).astype(np.float64)
    units["saw_coupon"] = units.index.isin(exposures.loc[
        exposures["coupon_ids"].map(len) > 0, "customer_id"])
    units = units.fillna({"attributed_revenue": 0.0, "coupon_cost": 0.0})

    versions = exposures.groupby("variant")["model_version"].unique()
    variants = {}
    for name, g in units.groupby("variant"):
        shown_coupon = g[g["saw_coupon"]]
        variants[str(name)] = {
            "model_versions": sorted(str(v) for v in versions[name]),
            "exposed_customers": len(g),
            "customers_bought_shown": int(g["bought_shown"].sum()),
            "revenue_per_customer": float(g["spend"].mean()),
            "attributed_revenue": float(g["attributed_revenue"].sum()),
            "customers_shown_coupon": len(shown_coupon),
            "coupon_redemption_rate": float(shown_coupon["redeemed"].mean())
            if len(shown_coupon) else None,
            "coupon_cost_per_customer": float(g["coupon_cost"].mean()),
            "visit_rate": float(g["visited"].mean())}
    result: dict[str, object] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "window_days": setup.window_days, "pre_days": setup.pre_days,
        "interval": setup.interval, "alpha": setup.alpha,
        "control": setup.control, "treatment": setup.treatment,
        "customers": len(units), "customers_in_two_variants": switched,
        "srm": srm(units["variant"].value_counts().to_dict(), dict(setup.shares)).to_dict(),
        "variants": variants, "comparisons": _comparisons(units, setup),
        "coupons": [_coupon(exposures, events, cid, setup)
                    for cid in sorted(set(exposures["coupon_ids"].explode().dropna())
                                      | set(exposures["held_out"].explode().dropna()))],
        "guardrails": {k: dict(v) for k, v in (guardrails or {}).items()}}
    return _finite(result)  # type: ignore[return-value]


def _finite(obj: object) -> object:
    """NaN and infinity (a group with no variance, a zero mean) become None: valid JSON."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float | np.floating):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer | np.bool_):
        return obj.item()
    return obj


def _comparisons(units: pd.DataFrame, setup: Setup) -> list[dict[str, object]]:
    t = units[units["variant"] == setup.treatment]
    c = units[units["variant"] == setup.control]
    if len(t) < 2 or len(c) < 2:
        return []
    out = []
    for metric, (column, higher) in METRICS.items():
        kw = {"method": setup.interval, "alpha": setup.alpha}
        row = compare(metric, t[column], c[column], **kw).to_dict()
        if metric == "revenue_per_customer":
            adjusted = compare(metric, t[column], c[column], **kw,
                               covariate=(t["pre_spend"], c["pre_spend"])).to_dict()
            out.append(adjusted | {"higher_is_better": higher})
        out.append(row | {"higher_is_better": higher})
    return out


def _coupon(exposures: pd.DataFrame, events: pd.DataFrame, coupon_id: str, setup: Setup
            ) -> dict[str, object]:
    """Uplift of one coupon: customers given it against customers held out of it."""
    given = exposures["coupon_ids"].map(lambda ids: coupon_id in ids)
    held = exposures["held_out"].map(lambda ids: coupon_id in ids)
    rows = exposures[given | held].assign(treated=given[given | held])
    first = rows.groupby("customer_id", sort=False).agg(
        treated=("treated", "first"), start=("shown_at", "first")).reset_index()
    units = _units(first[["customer_id", "start"]], events, setup)
    units["treated"] = first.set_index("customer_id")["treated"]
    redeemed = _attributed(_exploded(rows[rows["treated"]], "coupon_ids", "coupon_id"), events,
                           "coupon_id", "coupon_redeemed", setup)
    redeemed = redeemed[redeemed["coupon_id"] == coupon_id]
    t, c = units[units["treated"]], units[~units["treated"]]
    out: dict[str, object] = {"coupon_id": coupon_id, "treated": len(t), "held_out": len(c),
                              "redemptions": len(redeemed),
                              "cost": float(redeemed["amount"].sum())}
    share = setup.holdout_shares.get(coupon_id)
    if share:
        out["srm"] = srm({"treated": len(t), "held_out": len(c)},
                         {"treated": 1 - share, "held_out": share}).to_dict()
    if len(t) < 2 or len(c) < 2:
        out["note"] = "fewer than 2 customers in a group: no uplift"
        return out
    kw = {"method": setup.interval, "alpha": setup.alpha}
    spend = compare("spend_uplift", t["spend"], c["spend"], **kw,
                    covariate=(t["pre_spend"], c["pre_spend"]))
    cost = float(out["cost"])  # type: ignore[arg-type]
    net = spend.diff * len(t) - cost
    out |= {"visit_rate": compare("visit_rate_uplift", t["visited"], c["visited"],
                                  **kw).to_dict(),
            "spend": spend.to_dict(),
            "spend_unadjusted": compare("spend_uplift", t["spend"], c["spend"],
                                        **kw).to_dict(),
            "incremental_revenue": spend.diff * len(t),
            "net_incremental_revenue": net,
            "net_low": spend.low * len(t) - cost, "net_high": spend.high * len(t) - cost,
            "roi": net / cost if cost else None}
    return out


def events_frame(events: Sequence[Any]) -> pd.DataFrame:
    """``recsys.events.Event`` objects -> the events frame ``analyze`` reads."""
    return rows_frame([(e.event_id, e.customer_id, e.event_type, e.product_id, e.coupon_id,
                        e.amount, e.timestamp) for e in events])


def rows_frame(rows: Sequence[tuple[object, ...]]) -> pd.DataFrame:
    """Tuples in ``EVENT_COLUMNS`` order (``EventStore.event_rows``) -> the events frame."""
    frame = pd.DataFrame(rows, columns=list(EVENT_COLUMNS))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame["amount"] = frame["amount"].astype(np.float64)
    return frame


def from_store(store: Any, setup: Setup | None = None, *, since: datetime | None = None,
               until: datetime | None = None,
               guardrails: Mapping[str, Mapping[str, float]] | None = None
               ) -> dict[str, object]:
    """``analyze`` the exposures shown in ``[since, until)`` (naive UTC) and the events of an
    ``EventStore`` (its database holds the exposure log too)."""
    from recsys.exposures import ExposureLog

    setup = setup or Setup()
    exposures = ExposureLog(store.engine).frame(since, until)
    if exposures.empty:
        raise ValueError("no exposures logged" + (f" since {since}" if since else "") +
                         (f" until {until}" if until else "") +
                         ": serve answers with RECSYS_LOG_EXPOSURES on first")
    end = exposures["shown_at"].max() + setup.window
    start = exposures["shown_at"].min() - pd.Timedelta(days=setup.pre_days)
    # Read only the exposed customers' outcomes in the experiment's span (memory follows
    # the experiment, not the store). The database keeps microseconds: its bounds are
    # widened to whole ones, the exact (nanosecond) cut is made here.
    events = rows_frame(store.event_rows(
        exposures["customer_id"].unique().tolist(), OUTCOME_KINDS,
        start.floor("us").to_pydatetime(), end.ceil("us").to_pydatetime()))
    events = events[(events["timestamp"] >= start) & (events["timestamp"] < end)]
    return analyze(exposures, events, setup, guardrails)


__all__ = ["Setup", "analyze", "from_store", "events_frame", "rows_frame", "METRICS",
           "GUARDRAILS", "EXPOSURE_COLUMNS", "EVENT_COLUMNS", "OUTCOME_KINDS"]
