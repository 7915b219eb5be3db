"""Lifecycle stages relative to each customer's own rhythm, and tiers from trailing spend."""

from __future__ import annotations

import numpy as np

from recsys.customers.config import LifecycleConfig, TierConfig, TierLevel
from recsys.customers.lifecycle import assign_stages, assign_tiers, own_gap

CFG = LifecycleConfig(new_days=30, min_gap_days=7, at_risk_gap_multiple=2,
                      churn_gap_multiple=4, churn_horizon_days=180, loyal_min_orders=4,
                      loyal_min_score=4, at_risk_churn_risk=0.8)


def stages(rows: list[tuple], churn_risk: list[float] | None = None) -> list[str]:
    """rows: (recency, tenure, n_days, n_orders, mean_gap, f, m)."""
    cols = list(zip(*rows, strict=True))
    return list(assign_stages(
        recency_days=np.array(cols[0], float), tenure_days=np.array(cols[1], float),
        n_days=np.array(cols[2]), n_orders=np.array(cols[3]), mean_gap=np.array(cols[4], float),
        f_score=np.array(cols[5], np.int8), m_score=np.array(cols[6], np.int8),
        churn_risk=None if churn_risk is None else np.array(churn_risk), config=CFG))


def test_each_stage_follows_the_customers_own_gap() -> None:
    nan = np.nan
    rows = [
        (nan, nan, 0, 0, nan, 0, 0),     # never bought -> prospect
        (10, 20, 2, 2, 10, 2, 2),        # first purchase 20 days ago -> new
        (100, 100, 1, 1, nan, 1, 1),     # one purchase; gap = repeaters' median 40 -> at_risk
        (15, 15 + 300, 30, 30, 10, 5, 5),  # weekly-ish, recent, high F and M -> loyal
        (15, 400, 10, 10, 40, 3, 3),     # buys every 40 days, 15 days ago -> active
        (90, 400, 10, 10, 40, 3, 3),     # 90 > 2 x 40 -> at_risk
        (170, 400, 10, 10, 40, 5, 5),    # 170 > 4 x 40 -> churned despite high scores
        (170, 900, 5, 5, 100, 3, 3),     # 170 < 2 x 100: still within a slow rhythm -> active
        (200, 900, 5, 5, 100, 3, 3),     # 200 > 2x100 -> at_risk (horizon 180 caps 4x100)
        (181, 900, 3, 3, 300, 3, 3),     # slow buyer, but beyond the 180-day horizon -> churned
    ]
    assert stages(rows) == ["prospect", "new", "at_risk", "loyal", "active", "at_risk",
                            "churned", "active", "churned", "churned"]


def test_single_purchase_customer_stays_new_until_lapsed() -> None:
    rows = [(35, 35, 1, 1, np.nan, 1, 1), (2, 200, 3, 3, 10, 3, 3), (5, 100, 2, 2, 20, 3, 3)]
    # median repeat gap = 15 -> one-timer lapses after 30 days; 35 > 30 -> at_risk
    assert stages(rows)[0] == "at_risk"
    rows[0] = (25, 35, 1, 1, np.nan, 1, 1)
    assert stages(rows)[0] == "new"


def test_high_churn_risk_marks_at_risk_and_nan_risk_does_not() -> None:
    rows = [(5, 400, 10, 10, 30, 3, 3)] * 3
    assert stages(rows, churn_risk=[0.9, np.nan, 0.1]) == ["at_risk", "active", "active"]


def test_gap_floor_and_fallback() -> None:
    gap = own_gap(np.array([1, 3, 5]), np.array([np.nan, 2.0, 30.0]), CFG)
    # the one-day customer takes the repeat customers' median (16); 2 is floored at 7
    np.testing.assert_allclose(gap, [16.0, 7.0, 30.0])
    np.testing.assert_allclose(own_gap(np.array([1]), np.array([np.nan]), CFG),
                               [CFG.default_gap_days])


def test_tiers_from_trailing_spend() -> None:
    config = TierConfig(levels=(TierLevel(name="basic", min_spend=0),
                                TierLevel(name="silver", min_spend=100),
                                TierLevel(name="gold", min_spend=500)))
    spend = np.array([0, 99.99, 100, 499, 500, 1e6, np.nan, -5])
    assert list(assign_tiers(spend, config)) == ["basic", "basic", "silver", "silver", "gold",
                                                 "gold", "basic", "basic"]
