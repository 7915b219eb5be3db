"""profile_customers: stable schema, fallbacks and bad input (one purchase, zero spend,
future dates, empty frames, bad columns)."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest

from recsys.customers.config import ChurnConfig, CustomersConfig
from recsys.customers.history import FutureRowsWarning
from recsys.customers.profile import PROFILE_COLUMNS, group_summary, profile_customers
from recsys.data.synthetic import generate
from recsys.errors import DataError

CONFIG = CustomersConfig(churn=ChurnConfig(n_threads=1, params={"max_iter": 60,
                                                                 "max_depth": 3}))


@pytest.fixture(scope="module")
def retailer():
    return generate(1200, 150, seed=1)


@pytest.fixture(scope="module")
def profile(retailer) -> pd.DataFrame:
    return profile_customers(retailer.transactions, config=CONFIG, products=retailer.products,
                             redemptions=retailer.redemptions, customers=retailer.customers)


def test_schema_is_stable_and_survives_parquet(profile: pd.DataFrame, tmp_path) -> None:
    assert list(profile.columns) == list(PROFILE_COLUMNS)
    assert {c: str(t) for c, t in profile.dtypes.items()} == PROFILE_COLUMNS
    assert profile["customer_id"].is_unique and profile["customer_id"].is_monotonic_increasing
    profile.to_parquet(tmp_path / "p.parquet")
    back = pd.read_parquet(tmp_path / "p.parquet")
    pd.testing.assert_frame_equal(back, profile)
    assert not {"name", "email", "address"} & set(profile.columns)


def test_every_customer_gets_a_stage_tier_and_models(profile, retailer) -> None:
    assert len(profile) == len(retailer.customers)  # buyers + prospects
    buyers = profile["frequency"] > 0
    assert set(profile["stage"]) <= {"prospect", "new", "active", "loyal", "at_risk", "churned"}
    assert (profile.loc[~buyers, "stage"] == "prospect").all()
    assert profile.loc[buyers, ["p_alive", "expected_purchases", "clv", "churn_risk"]] \
        .notna().all().all()
    assert profile.attrs["churn_source"] == "classifier"
    assert profile.loc[buyers, "p_alive"].between(0, 1).all()
    assert (profile.loc[buyers, "clv"] >= 0).all()
    assert set(profile["tier"]) <= {"basic", "silver", "gold"}
    # churned customers are riskier and worth less than loyal ones
    by = profile[buyers].groupby("stage")[["churn_risk", "clv"]].mean()
    assert by.at["churned", "churn_risk"] > by.at["loyal", "churn_risk"]
    assert by.at["churned", "clv"] < by.at["loyal", "clv"]


def test_group_summary_shares_add_up(profile: pd.DataFrame) -> None:
    for by in ("segment", "stage", "tier"):
        table = group_summary(profile, by)
        assert table["customers"].sum() == len(profile)
        assert table["revenue_share"].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no column 'colour'"):
        group_summary(profile, "colour")


def small_history(tx_builder, extra=()):
    """Twelve regular customers over a year, plus the rows under test."""
    rows = [(f"r{i}", day, 20 + i) for i in range(12)
            for day in pd.date_range("2024-01-01", "2024-12-20", freq=f"{10 + i}D")]
    return tx_builder(rows + list(extra))


def test_one_purchase_and_zero_spend_customers(tx_builder) -> None:
    tx = small_history(tx_builder, [("once_old", "2024-02-01", 30),
                                    ("once_new", "2024-12-15", 30),
                                    ("free", "2024-06-01", 0), ("free", "2024-12-10", 0)])
    p = profile_customers(tx, as_of="2024-12-31", config=CONFIG).set_index("customer_id")
    assert p.at["once_old", "stage"] == "churned" and p.at["once_new", "stage"] == "new"
    assert p.at["once_old", "frequency"] == 1 and p.at["once_old", "p_alive"] == 1.0
    assert p.at["free", "monetary"] == 0.0 and p.at["free", "m_score"] == 1
    assert p.at["free", "clv"] >= 0 and np.isfinite(p.at["free", "clv"])
    assert p.at["free", "tier"] == "basic"
    assert p.attrs["churn_source"] == "bgnbd"  # one year is too short for 2 windows of 90+90


def test_future_rows_are_excluded_with_a_warning(tx_builder) -> None:
    tx = small_history(tx_builder, [("x", "2024-06-01", 10), ("x", "2025-03-01", 999)])
    with pytest.warns(FutureRowsWarning, match="1 of .* after as_of=2024-12-31"):
        p = profile_customers(tx, as_of="2024-12-31", config=CONFIG)
    row = p.set_index("customer_id").loc["x"]
    assert row["frequency"] == 1 and row["monetary"] == 10.0 and row["recency_days"] == 213
    only_future = tx_builder([("y", "2025-01-02", 5)])
    with pytest.warns(FutureRowsWarning):
        empty = profile_customers(only_future, as_of="2024-12-31", config=CONFIG)
    assert len(empty) == 0 and list(empty.columns) == list(PROFILE_COLUMNS)


def test_empty_frames_give_an_empty_typed_profile(tx_builder) -> None:
    empty = tx_builder([])
    for as_of in (None, "2024-01-01"):
        p = profile_customers(empty, as_of=as_of, config=CONFIG)
        assert len(p) == 0 and {c: str(t) for c, t in p.dtypes.items()} == PROFILE_COLUMNS
    prospects = profile_customers(empty, config=CONFIG,
                                  customers=pd.DataFrame({"customer_id": ["u1", "u2"]}))
    assert prospects["stage"].tolist() == ["prospect", "prospect"]
    assert prospects["tier"].tolist() == ["basic", "basic"]


def test_tiny_population_is_scored_without_models(tx_builder, caplog) -> None:
    tx = tx_builder([("a", "2024-01-01", 5), ("a", "2024-01-09", 5), ("b", "2024-01-05", 50)])
    with caplog.at_level(logging.WARNING, logger="recsys.customers.profile"):
        p = profile_customers(tx, config=CONFIG)
    assert "not fitted" in caplog.text
    assert p["p_alive"].isna().all() and p["clv"].isna().all() and p["churn_risk"].isna().all()
    assert p.attrs["churn_source"] == "none"
    assert p["r_score"].tolist() == [4, 2] and p["m_score"].tolist() == [2, 4]


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.drop(columns="order_id"), r"lack column\(s\) \['order_id'\]"),
    (lambda t: t.assign(timestamp=t["timestamp"].astype(str)), "must be datetime64"),
    (lambda t: t.assign(amount="1.0"), "amount must be numeric"),
    (lambda t: t.assign(amount=np.where(t.index == 0, np.nan, t["amount"])), "no amount"),
    (lambda t: t.assign(customer_id=t["customer_id"].where(t.index > 0)), "no customer_id"),
])
def test_bad_columns_raise_data_error(tx_builder, change, message) -> None:
    tx = tx_builder([("a", "2024-01-01", 5), ("b", "2024-01-02", 6)])
    with pytest.raises(DataError, match=message):
        profile_customers(change(tx), config=CONFIG)
    with pytest.raises(DataError, match="not a date"):
        profile_customers(tx, as_of="yesterday-ish", config=CONFIG)


def test_as_of_changes_the_answer_not_the_schema(tx_builder) -> None:
    tx = small_history(tx_builder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureRowsWarning)
        mid = profile_customers(tx, as_of="2024-06-30", config=CONFIG)
    end = profile_customers(tx, config=CONFIG)
    assert list(mid.columns) == list(end.columns)
    assert (mid["frequency"].to_numpy() < end["frequency"].to_numpy()).all()
    assert end.attrs["as_of"] == str(tx["timestamp"].max())  # default: the latest row
