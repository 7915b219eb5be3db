"""A simulated experiment with a known true effect, to check the statistics end to end.

Customers are split champion/challenger by the same hashing as the API (salt per run) and
each is shown a coupon unless hashed into its holdout. Each customer has a weekly visit rate
``lambda ~ Gamma(k, theta)`` and a basket-size multiplier ``m ~ LogNormal`` (mean 1); visits
are Poisson, baskets LogNormal with mean ``basket_mean``. The pre-period (before the first
exposure) and the window share ``lambda`` and ``m``, so pre-period spend predicts the outcome
as it does in a real shop (what CUPED uses). Effects:

- the challenger multiplies every basket in the window by ``1 + spend_lift``;
- the coupon brings a customer who would not have come in the window with probability ``c``,
  chosen so the visit rate rises by exactly ``visit_uplift`` on average.

:func:`truth` gives the population differences these imply; :func:`customers` the per-customer
outcomes (fast, for many runs); :func:`frames` the same run as exposure and event rows, the
input of :func:`recsys.experiments.analysis.analyze` (the real pipeline), and :func:`store`
writes them into a real event store and exposure log.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pandas as pd

from recsys.experiments.assignment import bucket, in_holdout

START = datetime(2026, 11, 2)


@dataclass(frozen=True)
class Scenario:
    """What is simulated; effects default to the issue's example (+5 % spend, +2 points)."""

    customers: int = 4000
    challenger_share: float = 0.5
    split: float | None = None  # the share actually sent to the challenger (None: as set)
    spend_lift: float = 0.05
    visit_uplift: float = 0.02
    holdout_share: float = 0.2
    coupon_value: float = 5.0  # discount paid per redemption
    redeem_share: float = 0.5  # treated visitors in the window who redeem it
    window_days: float = 7.0
    pre_days: float = 28.0
    rate_shape: float = 1.5  # k of the weekly visit rate
    rate_mean: float = 2.0  # visits per week
    basket_mean: float = 40.0
    basket_sigma: float = 0.5
    customer_sigma: float = 0.6  # spread of the customer's basket multiplier
    products: int = 200
    shown: int = 10
    shown_share: float = 0.3  # visits that buy one of the products shown

    def aa(self) -> Scenario:
        """The same scenario with no challenger effect (an A/A test)."""
        return replace(self, spend_lift=0.0)

    @property
    def _window_rate(self) -> tuple[float, float]:
        """(k, theta) of the visit rate over the window."""
        theta = self.rate_mean / self.rate_shape * self.window_days / 7
        return self.rate_shape, theta

    @property
    def come_anyway(self) -> float:
        """Chance that the coupon brings a customer who would not have visited."""
        k, theta = self._window_rate
        c = self.visit_uplift * (1 + theta) ** k  # / P(no visit in the window)
        if not 0 <= c <= 1:
            raise ValueError(f"visit_uplift {self.visit_uplift} is not reachable")
        return c


def truth(s: Scenario) -> dict[str, float]:
    """The population differences the scenario implies."""
    visits = s.rate_mean * s.window_days / 7
    coupon_spend = s.visit_uplift * s.basket_mean
    return {"revenue_per_customer": s.spend_lift * (visits * s.basket_mean
                                                    + (1 - s.holdout_share) * coupon_spend),
            "coupon_visit_rate": s.visit_uplift,
            "coupon_spend": coupon_spend * (1 + s.spend_lift * s.challenger_share)}


@dataclass(frozen=True)
class _Run:
    ids: np.ndarray
    challenger: np.ndarray
    treated: np.ndarray  # given the coupon (the others are held out)
    start: np.ndarray  # seconds after START
    owner: np.ndarray  # per visit: customer row
    at: np.ndarray  # per visit: seconds after START
    amount: np.ndarray
    window: np.ndarray  # per visit: inside the window
    pre: np.ndarray
    coupon_visit: np.ndarray  # the extra visit the coupon brought


def _run(s: Scenario, seed: int) -> _Run:
    rng = np.random.default_rng(seed)
    n, day = s.customers, 86400.0
    ids = np.array([f"s{seed}-c{i}" for i in range(n)], dtype=object)
    split = s.challenger_share if s.split is None else s.split
    salt = f"sim-{seed}"
    challenger = np.array([bucket(c, salt) < split for c in ids])
    coupon = f"sim-coupon-{seed}"
    treated = ~np.array([in_holdout(c, coupon, s.holdout_share) for c in ids])
    rate = rng.gamma(s.rate_shape, s.rate_mean / s.rate_shape, n) / 7  # per day
    mult = rng.lognormal(-s.customer_sigma**2 / 2, s.customer_sigma, n)
    start = rng.uniform(0, 14, n) * day + s.pre_days * day
    periods = {"pre": (-s.pre_days, 0.0), "window": (0.0, s.window_days),
               "post": (s.window_days, s.window_days + 7)}
    counts = {k: rng.poisson(rate * (hi - lo)) for k, (lo, hi) in periods.items()}
    extra = treated & (counts["window"] == 0) & (rng.random(n) < s.come_anyway)
    owner, at, kind = [], [], []
    for k, (lo, hi) in periods.items():
        rows = np.repeat(np.arange(n), counts[k])
        owner.append(rows)
        at.append(start[rows] + rng.uniform(lo, hi, len(rows)) * day)
        kind.append(np.full(len(rows), k))
    rows = np.flatnonzero(extra)
    owner.append(rows)
    at.append(start[rows] + rng.uniform(0, s.window_days, len(rows)) * day)
    kind.append(np.full(len(rows), "extra"))
    owner_a, kind_a = np.concatenate(owner), np.concatenate(kind)
    window = (kind_a == "window") | (kind_a == "extra")
    sigma = s.basket_sigma
    amount = mult[owner_a] * rng.lognormal(np.log(s.basket_mean) - sigma**2 / 2, sigma,
                                           len(owner_a))
    amount = np.where(window & challenger[owner_a], amount * (1 + s.spend_lift), amount)
    return _Run(ids, challenger, treated, start, owner_a, np.concatenate(at),
                np.round(amount, 2), window, kind_a == "pre", kind_a == "extra")


def customers(s: Scenario, seed: int) -> pd.DataFrame:
    """Per-customer outcomes of one run: variant, treated, spend, visited, pre_spend."""
    r = _run(s, seed)
    n = len(r.ids)
    spend = np.bincount(r.owner[r.window], r.amount[r.window], minlength=n)
    return pd.DataFrame({
        "customer_id": r.ids,
        "variant": np.where(r.challenger, "challenger", "champion"), "treated": r.treated,
        "spend": spend, "visited": (np.bincount(r.owner[r.window], minlength=n) > 0) * 1.0,
        "pre_spend": np.bincount(r.owner[r.pre], r.amount[r.pre], minlength=n)})


def frames(s: Scenario, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(exposures, events)`` of one run, in the frames ``analyze`` reads."""
    r = _run(s, seed)
    rng = np.random.default_rng([seed, 1])
    n = len(r.ids)
    coupon = f"sim-coupon-{seed}"
    shown = np.array([rng.choice(s.products, s.shown, replace=False) for _ in range(n)])
    repeats = 1 + rng.poisson(1.0, n)
    rows = np.repeat(np.arange(n), repeats)
    first = np.r_[True, rows[1:] != rows[:-1]]
    shown_at = r.start[rows] + np.where(first, 0.0, rng.uniform(0, s.window_days * 86400,
                                                                 len(rows)))
    product_lists = [[f"p{p}" for p in shown[i]] for i in range(n)]
    exposures = pd.DataFrame({
        "request_id": [f"r{seed}-{k}" for k in range(len(rows))],
        "customer_id": r.ids[rows],
        "variant": np.where(r.challenger[rows], "challenger", "champion"),
        "model_version": np.where(r.challenger[rows], "2", "1"), "mode": "recommendations",
        "product_ids": [product_lists[i] for i in rows],
        "coupon_ids": [[coupon] if r.treated[i] else [] for i in rows],
        "held_out": [[] if r.treated[i] else [coupon] for i in rows],
        "shown_at": (pd.to_datetime(START) + pd.to_timedelta(shown_at, unit="s")
                     ).round("us")})  # the resolution the database keeps
    # A visit buys one product: one of those shown for a share of visits, else another.
    pick_shown = rng.random(len(r.owner)) < s.shown_share
    product = np.where(pick_shown, shown[r.owner, rng.integers(0, s.shown, len(r.owner))],
                       rng.integers(s.products, 2 * s.products, len(r.owner)))
    purchases = pd.DataFrame({
        "event_id": [f"e{seed}-{k}" for k in range(len(r.owner))],
        "customer_id": r.ids[r.owner], "event_type": "purchase",
        "product_id": [f"p{p}" for p in product], "coupon_id": None, "amount": r.amount,
        "at": r.at})
    # Treated customers redeem at their first visit in the window (always on the visit the
    # coupon brought, else with probability redeem_share).
    in_window = np.flatnonzero(r.window & r.treated[r.owner])
    order = in_window[np.lexsort((r.at[in_window], r.owner[in_window]))]
    firsts = order[np.r_[True, r.owner[order][1:] != r.owner[order][:-1]]] \
        if len(order) else order
    redeem = firsts[r.coupon_visit[firsts] | (rng.random(len(firsts)) < s.redeem_share)]
    redemptions = pd.DataFrame({
        "event_id": [f"x{seed}-{k}" for k in range(len(redeem))],
        "customer_id": r.ids[r.owner[redeem]], "event_type": "coupon_redeemed",
        "product_id": None, "coupon_id": coupon, "amount": s.coupon_value,
        "at": r.at[redeem] + 1.0})
    events = pd.concat([purchases, redemptions], ignore_index=True)
    events["timestamp"] = (pd.to_datetime(START) + pd.to_timedelta(events.pop("at"), unit="s")
                           ).dt.round("us")
    return exposures, events


def coupon_of(seed: int) -> str:
    """The simulated coupon's id in run ``seed``."""
    return f"sim-coupon-{seed}"


def store(s: Scenario, seed: int, events_store: object, exposure_log: object) -> int:
    """Write run ``seed`` into a real ``EventStore`` and ``ExposureLog``; returns the number
    of exposures written."""
    from recsys.events import Event
    from recsys.exposures import Exposure

    exposures, events = frames(s, seed)
    stored = [Event(e.event_id, e.customer_id, e.event_type, e.timestamp.to_pydatetime(),
                    e.product_id, e.coupon_id, 1.0, float(e.amount))
              for e in events.itertuples(index=False)]
    for k in range(0, len(stored), 5000):
        events_store.add(stored[k:k + 5000])  # type: ignore[attr-defined]
    rows = [Exposure(e.request_id, e.customer_id, e.variant, e.model_version, e.mode,
                     tuple(e.product_ids), tuple(e.coupon_ids), tuple(e.held_out),
                     e.shown_at.to_pydatetime())
            for e in exposures.itertuples(index=False)]
    exposure_log.add(rows)  # type: ignore[attr-defined]
    return len(rows)


__all__ = ["Scenario", "truth", "customers", "frames", "store", "coupon_of", "START"]
