"""Loyalty KPIs on a hand-computed example (definitions in recsys/customers/kpis.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.customers.config import CustomersConfig, LifecycleConfig, parse_customers_config
from recsys.customers.kpis import kpi_report
from recsys.customers.plots import clv_distribution, cohort_heatmap, segment_sizes
from recsys.errors import ConfigError

CONFIG = CustomersConfig(lifecycle=LifecycleConfig(churn_horizon_days=30))
ROWS = [("a", "2024-01-05", 10), ("a", "2024-01-20", 20), ("a", "2024-03-10", 30),
        ("b", "2024-01-10", 40),
        ("c", "2024-02-03", 5), ("c", "2024-02-04", 15),
        ("d", "2024-03-01", 100),
        ("e", "2024-02-20", 8), ("e", "2024-03-25", 12)]


@pytest.fixture
def report(tx_builder):
    offers = pd.DataFrame({"campaign_id": ["K1", "K1", "K1", "K2"],
                           "customer_id": ["a", "b", "c", "e"]})
    redemptions = pd.DataFrame({"campaign_id": ["K1", "K1", "K1", "K2"],
                                "customer_id": ["a", "a", "d", "e"],  # d was not offered K1
                                "coupon_id": ["k", "k", "k", "j"],
                                "timestamp": pd.to_datetime(["2024-01-05"] * 3 + ["2024-03-25"])})
    campaigns = pd.DataFrame({"campaign_id": ["K1", "K2"],
                              "start": pd.to_datetime(["2024-01-01", "2024-03-01"]),
                              "end": pd.to_datetime(["2024-01-31", "2024-03-31"])})
    profile = pd.DataFrame({"customer_id": list("abcd"), "segment": ["s1", "s2", "s1", "s2"],
                            "tier": ["gold", "basic", "basic", "basic"]})
    return kpi_report(tx_builder(ROWS), config=CONFIG, as_of="2024-04-01", profile=profile,
                      offers=offers, redemptions=redemptions, campaigns=campaigns)


def test_period_kpis_match_hand_computation(report) -> None:
    p = report.periods.set_index("period")
    assert list(p.index) == ["2024-01", "2024-02", "2024-03"] and p["complete"].all()
    assert p["customers"].tolist() == [2, 2, 3]
    assert p["new_customers"].tolist() == [2, 2, 1]
    assert p["orders"].tolist() == [3, 3, 3]
    np.testing.assert_allclose(p["revenue"], [70, 28, 142])
    np.testing.assert_allclose(p["repeat_purchase_rate"], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(p["aov"], [70 / 3, 28 / 3, 142 / 3])
    np.testing.assert_allclose(p["purchase_frequency"], [1.5, 1.5, 1.0])
    # Feb 1: a and b bought in the 30 days before; neither buys in Feb -> both lost.
    # Mar 1: c and e active; e buys in March, c (last 4 Feb) crosses 30 days -> lost.
    assert p["active_at_start"].tolist() == [0, 2, 2] and p["lost"].tolist() == [0, 2, 1]
    np.testing.assert_allclose(p["churn_rate"], [np.nan, 1.0, 0.5])


def test_coupon_redemption_rate_and_redeemer_revenue(report) -> None:
    p = report.periods.set_index("period")
    np.testing.assert_allclose(p["coupon_redemption_rate"], [1 / 3, np.nan, 1.0])
    c = report.coupons.set_index("campaign_id")
    assert c["issued"].tolist() == [3, 1] and c["redeemed"].tolist() == [1, 1]
    np.testing.assert_allclose(c.loc["K1", ["revenue_redeemers", "revenue_others"]], [30, 20])
    assert c.at["K2", "revenue_redeemers"] == 12 and np.isnan(c.at["K2", "revenue_others"])


def test_cohort_retention(report) -> None:
    c = report.cohorts
    assert list(c.index) == ["2024-01", "2024-02", "2024-03"]
    assert c["customers"].tolist() == [2, 2, 1]
    expected = [[1, 0, 0.5], [1, 0.5, np.nan], [1, np.nan, np.nan]]  # April is not complete
    np.testing.assert_allclose(c[["m0", "m1", "m2"]].to_numpy(), expected)


def test_revenue_share_by_segment_and_tier(report) -> None:
    r = report.revenue_share
    jan = r[(r["period"] == "2024-01") & (r["dimension"] == "segment")].set_index("group")
    np.testing.assert_allclose(jan.loc[["s1", "s2"], "share"], [30 / 70, 40 / 70])
    mar = r[(r["period"] == "2024-03") & (r["dimension"] == "tier")].set_index("group")
    np.testing.assert_allclose(mar.loc[["basic", "gold", "unprofiled"], "revenue"],
                               [100, 30, 12])
    assert r.groupby(["period", "dimension"])["share"].sum().round(12).eq(1).all()


def test_empty_transactions_give_empty_frames(tx_builder) -> None:
    report = kpi_report(tx_builder([]), config=CONFIG)
    assert all(len(f) == 0 for f in (report.periods, report.cohorts, report.revenue_share,
                                     report.coupons))


def test_weekly_periods_and_bad_alias(tx_builder) -> None:
    weekly = kpi_report(tx_builder(ROWS), config=CONFIG, period="W").periods
    assert weekly["orders"].sum() == len(ROWS) and len(weekly) == 13  # Mon 1 Jan .. 25 Mar
    with pytest.raises(ConfigError, match="'fortnight' is not a pandas period alias"):
        kpi_report(tx_builder(ROWS), config=CONFIG, period="fortnight")
    with pytest.raises(ConfigError, match="kpis.period: .*'Z' is not a pandas period alias"):
        parse_customers_config("kpis: {period: Z}")


def test_plots_render(report, tmp_path) -> None:
    summary = pd.DataFrame({"customers": [3, 1], "revenue_share": [0.8, 0.2]},
                           index=["s1", "s2"])
    figures = {"cohort": cohort_heatmap(report.cohorts), "sizes": segment_sizes(summary),
               "clv": clv_distribution(np.array([0.0, 5.0, 120.0, np.nan]))}
    for name, fig in figures.items():
        fig.savefig(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
    assert len(figures["cohort"].axes[0].texts) == 6  # one label per known cell
