"""The statistics on a simulated experiment with a known true effect (200 seeded runs; the
1,000-run version is benchmarks/experiments.py)."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.experiments.analysis import Setup, analyze
from recsys.experiments.simulate import Scenario, coupon_of, customers, frames, truth
from recsys.experiments.stats import compare

RUNS = 200
SCENARIO = Scenario(customers=2000)


def _split(d, column: str = "variant", treated: object = "challenger"):  # noqa: ANN001, ANN202
    return d[d[column] == treated], d[d[column] != treated]


def test_truth_is_what_a_very_large_run_shows() -> None:
    big = Scenario(customers=400_000)
    d = customers(big, seed=7)
    t, c = _split(d)
    spend = compare("spend", t["spend"], c["spend"], covariate=(t["pre_spend"], c["pre_spend"]))
    assert spend.low < truth(big)["revenue_per_customer"] < spend.high
    assert spend.high - spend.low < 0.5 * truth(big)["revenue_per_customer"]
    t, c = _split(d, "treated", True)
    visit = compare("visit", t["visited"], c["visited"])
    assert visit.low < 0.02 < visit.high and visit.high - visit.low < 0.01


def test_200_seeded_runs_cover_the_truth_and_aa_calls_few_differences() -> None:
    true = truth(SCENARIO)
    covered = covered_visit = aa_calls = 0
    narrowing = []
    for seed in range(RUNS):
        d = customers(SCENARIO, seed)
        t, c = _split(d)
        raw = compare("spend", t["spend"], c["spend"])
        adj = compare("spend", t["spend"], c["spend"],
                      covariate=(t["pre_spend"], c["pre_spend"]))
        covered += adj.low <= true["revenue_per_customer"] <= adj.high
        narrowing.append(1 - (adj.high - adj.low) / (raw.high - raw.low))
        t, c = _split(d, "treated", True)
        v = compare("visit", t["visited"], c["visited"])
        covered_visit += v.low <= true["coupon_visit_rate"] <= v.high
        t, c = _split(customers(SCENARIO.aa(), RUNS + seed))
        aa_calls += compare("spend", t["spend"], c["spend"]).significant
    assert 0.90 <= covered / RUNS <= 0.99
    assert 0.90 <= covered_visit / RUNS <= 0.99
    assert 0.01 <= aa_calls / RUNS <= 0.10
    assert np.mean(narrowing) >= 0.20


def test_the_pipeline_on_exposure_and_event_rows_gives_the_same_numbers() -> None:
    exposures, events = frames(SCENARIO, seed=5)
    coupon = coupon_of(5)
    result = analyze(exposures, events, Setup(holdout_shares={coupon: 0.2}))
    d = customers(SCENARIO, seed=5)
    t, c = _split(d)
    raw = next(r for r in result["comparisons"]
               if r["metric"] == "revenue_per_customer" and r["method"] == "welch")
    assert raw["diff"] == pytest.approx(t["spend"].mean() - c["spend"].mean())
    assert raw["n_treatment"] == len(t) and raw["n_control"] == len(c)
    assert result["variants"]["champion"]["exposed_customers"] == len(c)
    assert not result["srm"]["mismatch"]
    (uplift,) = result["coupons"]
    t, c = _split(d, "treated", True)
    assert (uplift["treated"], uplift["held_out"]) == (len(t), len(c))
    assert uplift["visit_rate"]["diff"] == pytest.approx(t["visited"].mean()
                                                         - c["visited"].mean())
    assert uplift["cost"] == pytest.approx(SCENARIO.coupon_value * uplift["redemptions"])
    assert uplift["net_incremental_revenue"] == pytest.approx(
        uplift["spend"]["diff"] * len(t) - uplift["cost"])
    assert not uplift["srm"]["mismatch"]


def test_purchases_outside_the_window_or_before_the_exposure_are_not_attributed() -> None:
    exposures, events = frames(Scenario(customers=300), seed=9)
    base = analyze(exposures, events)["variants"]
    later = events.copy()
    later["timestamp"] += np.timedelta64(60, "D")  # everything after every window
    moved = analyze(exposures, later)["variants"]
    for variant in base:
        assert base[variant]["attributed_revenue"] > 0
        assert moved[variant]["attributed_revenue"] == 0
        assert moved[variant]["revenue_per_customer"] == 0
        assert moved[variant]["coupon_redemption_rate"] == 0


def test_a_forced_45_55_split_is_flagged() -> None:
    forced = Scenario(customers=8000, split=0.55)
    exposures, events = frames(forced, seed=11)
    result = analyze(exposures, events)
    assert result["srm"]["mismatch"], result["srm"]
    fair = analyze(*frames(Scenario(customers=8000), seed=11))
    assert not fair["srm"]["mismatch"]
