"""The analysis read from a real event store and exposure log: exposures without events give
a report (issue 19), and only the experiment's rows are read from the store, with the same
answers as reading every event."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from recsys.events import Event, EventStore
from recsys.experiments.analysis import Setup, analyze, events_frame, from_store
from recsys.experiments.simulate import START, Scenario, coupon_of, store
from recsys.exposures import Exposure, ExposureLog

T0 = datetime(2026, 11, 2, 9, 0)
COUPON = "c1"


def _exposures(n: int = 8) -> pd.DataFrame:
    """``n`` customers, alternately champion and challenger, the coupon given to the first
    half of each variant and held out of the rest."""
    return pd.DataFrame({
        "customer_id": [f"u{k}" for k in range(n)],
        "variant": ["champion", "challenger"] * (n // 2), "model_version": ["1", "2"] * (n // 2),
        "mode": "recommendations", "product_ids": [["p1", "p2"]] * n,
        "coupon_ids": [[COUPON] if k < n // 2 else [] for k in range(n)],
        "held_out": [[] if k < n // 2 else [COUPON] for k in range(n)],
        "shown_at": [pd.Timestamp(T0) + pd.Timedelta(minutes=k) for k in range(n)]})


NO_OUTCOMES = {
    "no events": [],
    "views only": [Event("v1", "u0", "view", T0 + timedelta(hours=1), "p1")],
    "a redemption by a customer never exposed": [
        Event("r1", "stranger", "coupon_redeemed", T0 + timedelta(hours=2), None, COUPON,
              amount=5.0)],
    "a purchase by a customer never exposed": [
        Event("b1", "stranger", "purchase", T0 + timedelta(hours=1), "p1", amount=9.0)],
}


@pytest.mark.parametrize("interval", ["welch", "bootstrap"])
@pytest.mark.parametrize("case", list(NO_OUTCOMES))
def test_exposed_customers_without_events_count_with_zero_outcomes(case: str, interval: str
                                                                   ) -> None:
    # Before the fix: ValueError "'customer_id' is both an index level and a column label".
    result = analyze(_exposures(), events_frame(NO_OUTCOMES[case]),
                     Setup(interval=interval, holdout_shares={COUPON: 0.5}))
    assert result["customers"] == 8
    for v in result["variants"].values():  # type: ignore[union-attr]
        assert v["exposed_customers"] == 4 and v["customers_bought_shown"] == 0
        assert v["revenue_per_customer"] == v["visit_rate"] == 0.0
        assert v["attributed_revenue"] == v["coupon_cost_per_customer"] == 0.0
        assert v["customers_shown_coupon"] == 2 and v["coupon_redemption_rate"] == 0.0
    comparisons = result["comparisons"]
    assert len(comparisons) == 5  # type: ignore[arg-type]
    for row in comparisons:  # type: ignore[union-attr]
        # Both groups all zero: the difference and both interval ends are 0. Welch's p-value
        # is undefined there (0/0, JSON null), the bootstrap's is 1; never "significant".
        assert row["diff"] == row["low"] == row["high"] == 0.0
        assert row["p_value"] == (None if interval == "welch" else 1.0)
        assert row["relative"] is None and row["significant"] is False
    (coupon,) = result["coupons"]  # type: ignore[misc]
    assert (coupon["treated"], coupon["held_out"], coupon["redemptions"]) == (4, 4, 0)
    assert coupon["cost"] == coupon["net_incremental_revenue"] == 0.0
    assert coupon["roi"] is None and coupon["visit_rate"]["diff"] == 0.0


@pytest.fixture
def events_store(tmp_path: Path) -> Iterator[EventStore]:
    events = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
    yield events
    events.close()


def test_a_store_with_exposures_but_no_events_gives_the_report(events_store: EventStore
                                                                ) -> None:
    ExposureLog(events_store.engine).add([
        Exposure(f"r{k}", f"u{k}", "champion" if k % 2 else "challenger", "1", "recommendations",
                 ("p1",), (), (), T0 + timedelta(minutes=k)) for k in range(6)])
    result = from_store(events_store)
    assert result["customers"] == 6 and len(result["comparisons"]) == 5  # type: ignore[arg-type]
    assert {v["revenue_per_customer"] for v in result["variants"].values()} == {0.0}  # type: ignore[union-attr]


def _read_everything(events: EventStore, setup: Setup) -> dict[str, object]:
    """The analysis as ``from_store`` made it before: every stored event into pandas, then
    cut to the experiment's span."""
    exposures = ExposureLog(events.engine).frame()
    frame = events_frame(events.events())
    end = exposures["shown_at"].max() + setup.window
    start = exposures["shown_at"].min() - pd.Timedelta(days=setup.pre_days)
    frame = frame[(frame["timestamp"] >= start) & (frame["timestamp"] < end)]
    return analyze(exposures, frame, setup)


def _noise(seed: int) -> list[Event]:
    """Events the analysis must not read: customers never exposed, views, and purchases of
    exposed customers long before the pre-period or long after the window."""
    start = START
    exposed = f"s{seed}-c0"  # a simulated customer id (simulate.py names them so)
    return [Event(f"n{k}", f"stranger{k % 7}", "purchase", start + timedelta(hours=k), "p1",
                  amount=3.0 + k) for k in range(40)] + [
        Event(f"v{k}", exposed, "view", start + timedelta(hours=k), "p1") for k in range(20)] + [
        Event("old", exposed, "purchase", start - timedelta(days=400), "p1", amount=50.0),
        Event("late", exposed, "purchase", start + timedelta(days=400), "p1", amount=50.0)]


@pytest.mark.parametrize("interval", ["welch", "bootstrap"])
def test_only_the_experiments_rows_are_read_with_the_same_answers(
        events_store: EventStore, monkeypatch: pytest.MonkeyPatch, interval: str) -> None:
    seed, scenario = 3, Scenario(customers=1200)  # more customers than one query's chunk
    store(scenario, seed, events_store, ExposureLog(events_store.engine))
    noise = _noise(seed)
    events_store.add(noise)
    exposed = set(ExposureLog(events_store.engine).frame()["customer_id"])
    assert f"s{seed}-c0" in exposed and not {e.customer_id for e in noise[:40]} & exposed
    setup = Setup(interval=interval, holdout_shares={coupon_of(seed): 0.2})

    read: list[tuple[Any, ...]] = []
    original = EventStore.event_rows

    def spy(self: EventStore, *args: Any, **kw: Any) -> list[tuple[Any, ...]]:
        rows = original(self, *args, **kw)
        read.extend(rows)
        return rows

    monkeypatch.setattr(EventStore, "event_rows", spy)
    fresh = from_store(events_store, setup)
    before = _read_everything(events_store, setup)
    assert {k: v for k, v in fresh.items() if k != "generated_at"} == \
        {k: v for k, v in before.items() if k != "generated_at"}
    assert fresh["customers"] == 1200
    # what was read: outcomes of exposed customers only, none of the noise
    assert read and {r[1] for r in read} <= exposed
    assert {r[2] for r in read} == {"purchase", "coupon_redeemed"}
    assert not {r[0] for r in read} & {e.event_id for e in noise}
    assert len(read) < events_store.count()
