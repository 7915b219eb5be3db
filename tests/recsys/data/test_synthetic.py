"""The synthetic retailer: determinism, schema, and the planted structure a model can learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recsys.data.schema import CATEGORY_SEP, TABLES
from recsys.data.sources import conform
from recsys.data.synthetic import generate
from recsys.data.synthetic_catalog import VOCAB

START, DAYS = pd.Timestamp("2023-03-01"), 365
FRAMES = ("transactions", "products", "customers", "campaigns", "coupons", "offers",
          "redemptions")


@pytest.fixture(scope="module")
def data():
    return generate(3000, 400, days=DAYS, start=str(START.date()), seed=11)


@pytest.fixture(scope="module")
def tx(data):
    """Transactions with the customer's segment and the product's department and category."""
    seg = data.customers.set_index("customer_id")["attributes"].str.extract(r"segment=(\w+)")[0]
    path = data.products.set_index("product_id")["category"].str.split(CATEGORY_SEP)
    return data.transactions.assign(
        segment=data.transactions["customer_id"].map(seg),
        department=data.transactions["product_id"].map(path.str[0]),
        category=data.transactions["product_id"].map(path.str[1]),
    )


def test_generate_is_deterministic_by_seed():
    a, b = generate(400, 60, seed=5), generate(400, 60, seed=5)
    for table in FRAMES:
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table))
    c = generate(400, 60, seed=6)
    assert not a.transactions.equals(c.transactions)
    assert not a.products["title"].equals(c.products["title"])


def test_chunks_join_into_one_time_ordered_log(monkeypatch):
    from recsys.data import synthetic

    monkeypatch.setattr(synthetic, "CHUNK", 150)  # 400 customers -> 3 chunks
    a, b = generate(400, 60, seed=5), generate(400, 60, seed=5)
    pd.testing.assert_frame_equal(a.transactions, b.transactions)
    tx = a.transactions
    assert tx["order_id"].is_monotonic_increasing
    assert tx["timestamp"].is_monotonic_increasing
    per_order = tx.groupby("order_id")[["customer_id", "timestamp", "store_id"]].nunique()
    assert (per_order == 1).all().all()
    assert tx["customer_id"].isin(a.customers["customer_id"]).all()
    assert a.offers["customer_id"].str[1:].astype(int).max() >= 300  # offers from the last chunk


def test_tables_conform_to_schema(data):
    for table in FRAMES:
        frame = getattr(data, table)
        cols = TABLES[table]
        assert list(frame.columns) == list(cols), table
        assert len(frame) > 0, table
        for name, col in cols.items():
            assert str(frame[name].dtype) == col.dtype, (table, name, frame[name].dtype)
            if col.required:
                assert not frame[name].isna().any(), (table, name)
        # The loader's own conformance step leaves the frames unchanged.
        pd.testing.assert_frame_equal(conform(frame, table), frame)
    tx = data.transactions
    assert all(isinstance(v, str) for v in tx[["order_id", "customer_id", "product_id",
                                               "store_id"]].iloc[0])
    assert tx["timestamp"].min() >= START
    assert tx["timestamp"].max() < START + pd.Timedelta(days=DAYS)
    assert (tx["quantity"] >= 1).all() and (tx["amount"] > 0).all()
    assert data.products["product_id"].is_unique and data.customers["customer_id"].is_unique
    assert not tx.duplicated(["order_id", "product_id"]).any()


def test_ids_refer_to_known_rows(data):
    tx, offers, red = data.transactions, data.offers, data.redemptions
    assert tx["customer_id"].isin(data.customers["customer_id"]).all()
    assert tx["product_id"].isin(data.products["product_id"]).all()
    assert data.coupons["product_id"].isin(data.products["product_id"]).all()
    assert offers["campaign_id"].isin(data.campaigns["campaign_id"]).all()
    assert not offers.duplicated().any()
    # Every redemption was offered, falls in its campaign window and on a purchase of a coupon
    # product by that customer at that moment.
    offered = set(zip(offers["customer_id"], offers["campaign_id"], strict=True))
    assert all(pair in offered for pair in zip(red["customer_id"], red["campaign_id"],
                                               strict=True))
    window = red.merge(data.campaigns, on="campaign_id")
    assert ((window["timestamp"] >= window["start"]) & (window["timestamp"] < window["end"])).all()
    bought = red.merge(data.coupons, on=["coupon_id", "campaign_id"]).merge(
        tx, on=["customer_id", "product_id", "timestamp"])
    assert bought[["customer_id", "coupon_id"]].drop_duplicates().shape[0] == len(
        red[["customer_id", "coupon_id"]].drop_duplicates())
    # Only customers who consent to marketing receive offers.
    consent = data.customers.set_index("customer_id")["consent_marketing"]
    assert consent[offers["customer_id"]].all()


def test_line_count_follows_target():
    for n_lines in (5_000, 40_000):
        got = len(generate(1000, 200, n_lines=n_lines, seed=2).transactions)
        assert abs(got - n_lines) / n_lines < 0.05, (n_lines, got)
    default = len(generate(1000, 200, seed=2, days=180).transactions)
    assert abs(default - 30 * 1000 * 180 / 365) / default < 0.1


def test_most_lines_repeat_an_earlier_purchase(tx):
    ordered = tx.sort_values(["timestamp", "order_id"], kind="stable")
    repeat = ordered.duplicated(["customer_id", "product_id"]).mean()
    assert repeat > 0.5
    # Heavy-tailed frequency: the top 10% of buyers place well over a third of the orders.
    orders = tx.groupby("customer_id")["order_id"].nunique().sort_values(ascending=False)
    assert orders.iloc[: len(orders) // 10].sum() / orders.sum() > 0.3
    assert tx.groupby("order_id").size().mean() > 3  # baskets of several lines


def test_product_popularity_is_concentrated(data, tx):
    counts = tx.groupby("product_id").size().reindex(data.products["product_id"], fill_value=0)
    x = np.sort(counts.to_numpy())
    n = len(x)
    gini = (2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum())
    assert gini > 0.6


def test_segment_affinities_show_in_category_shares(tx):
    share = pd.crosstab(tx["segment"], tx["department"], normalize="index")
    others = share.drop(index="family")
    assert share.loc["family", "BABY"] > 2 * others["BABY"].max()
    assert share.loc["health", "PRODUCE"] > 1.5 * share.drop(index="health")["PRODUCE"].max()
    assert share.loc["gourmet", "SEAFOOD"] > 2 * share.drop(index="gourmet")["SEAFOOD"].max()
    lines = tx.groupby("segment").size() / tx.groupby("segment")["customer_id"].nunique()
    assert lines["family"] > 3 * lines["occasional"]
    # Bargain hunters buy cheaper products than gourmets within the same category.
    log_price = np.log(tx["amount"] / tx["quantity"])
    relative = (log_price - log_price.groupby(tx["category"]).transform("mean")).groupby(
        tx["segment"]).mean()
    assert relative["bargain"] < relative["gourmet"] - 0.2


def test_products_launch_through_the_year(data, tx):
    first = tx.groupby("product_id")["timestamp"].min()
    end = START + pd.Timedelta(days=DAYS)
    cold = first >= end - pd.Timedelta(days=28)
    assert cold.sum() >= 3  # cold products for evaluation
    assert (first >= START + pd.Timedelta(days=60)).mean() > 0.08
    assert (~data.products["available"]).any()
    last = tx.groupby("product_id")["timestamp"].max()
    gone = data.products.loc[~data.products["available"], "product_id"]
    assert (last.reindex(gone).dropna() < end - pd.Timedelta(days=1)).all()


def test_customers_join_and_churn(data, tx):
    first = tx.groupby("customer_id")["timestamp"].min()
    last = tx.groupby("customer_id")["timestamp"].max()
    assert (first > START + pd.Timedelta(days=90)).mean() > 0.1
    assert (last < START + pd.Timedelta(days=DAYS - 90)).mean() > 0.05
    signup = data.customers.set_index("customer_id")["signup_date"]
    assert (signup[first.index] <= first.dt.normalize()).all()
    assert 0.9 < data.customers["consent_personalization"].mean() < 0.995


def test_weekly_and_seasonal_rhythm(tx):
    orders = tx.drop_duplicates("order_id")
    by_day = orders["timestamp"].dt.day_of_week.value_counts(normalize=True)
    assert by_day[5] > 1.3 * by_day[1]  # Saturday vs Tuesday
    month = tx["timestamp"].dt.month
    summer, winter = month.isin([6, 7, 8]), month.isin([12, 1, 2])
    ice = tx["category"] == "ICE CREAM"
    assert ice[summer].mean() > 1.2 * ice[winter].mean()
    assert tx["store_id"].eq("online").mean() > 0.05 and tx["store_id"].nunique() >= 3


def test_text_and_prices_carry_the_category(data):
    words = {v[1]: set(v[5]) for v in VOCAB}
    path = data.products["category"].str.split(CATEGORY_SEP)
    desc = data.products["description"].str.split()
    assert all(words[c] & set(d) for c, d in zip(path.str[1], desc, strict=True))
    assert all(b in t for b, t in zip(data.products["brand"], data.products["title"],
                                      strict=True))
    assert (path.str.len() == 3).all()
    median = {v[1]: v[3] for v in VOCAB}
    got = data.products.groupby(path.str[1])["price"].median()
    expected = got.index.map(median)
    assert np.corrcoef(np.log(got), np.log(expected))[0, 1] > 0.8


def test_redemptions_rise_with_affinity(data, tx):
    """Per offered (customer, coupon): history before the campaign predicts redemption."""
    coupons = data.coupons.merge(data.campaigns[["campaign_id", "start"]], on="campaign_id")
    coupon_cat = coupons["product_id"].map(
        data.products.set_index("product_id")["category"].str.split(CATEGORY_SEP).str[1])
    pairs = data.offers.merge(coupons[["campaign_id", "coupon_id", "start"]].drop_duplicates(),
                              on="campaign_id")
    pairs["category"] = pairs["coupon_id"].map(coupon_cat.groupby(coupons["coupon_id"]).first())
    redeemed = pd.MultiIndex.from_frame(data.redemptions[["customer_id", "coupon_id"]])
    key = pd.MultiIndex.from_frame(pairs[["customer_id", "coupon_id"]])
    pairs["redeemed"] = key.isin(redeemed)
    # Category share of each customer's purchases before the campaign started.
    pairs["share"] = 0.0
    for start, idx in pairs.groupby("start").groups.items():
        before = tx[tx["timestamp"] < start]
        share = pd.crosstab(before["customer_id"], before["category"], normalize="index").stack()
        at = pd.MultiIndex.from_frame(pairs.loc[idx, ["customer_id", "category"]])
        pairs.loc[idx, "share"] = share.reindex(at).fillna(0.0).to_numpy()
    # Did they buy one of the coupon's products before the campaign started?
    bought = coupons.merge(tx[["customer_id", "product_id", "timestamp"]], on="product_id")
    bought = bought[bought["timestamp"] < bought["start"]]
    pairs["bought"] = key.isin(pd.MultiIndex.from_frame(bought[["customer_id", "coupon_id"]]))

    rate = pairs["redeemed"].mean()
    assert 0.005 < rate < 0.03
    none = pairs.loc[pairs["share"] == 0, "redeemed"].mean()
    positive = pairs["share"] > 0
    high = pairs.loc[positive & (pairs["share"] >= pairs.loc[positive, "share"].median()),
                     "redeemed"].mean()
    assert high > 3 * none
    assert pairs.loc[pairs["bought"], "redeemed"].mean() > 2 * pairs.loc[~pairs["bought"],
                                                                         "redeemed"].mean()


@pytest.mark.parametrize("kwargs", [{"n_customers": 0}, {"n_products": 5}, {"days": 3},
                                    {"n_lines": -1}, {"start": "not a date"}])
def test_bad_arguments_are_named(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs)).removeprefix("n_")):
        generate(**kwargs)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_cli_writes_readable_tables(tmp_path, fmt):
    from recsys.data.load import load_dataset
    from training.cli import app

    out = tmp_path / "synth"
    result = CliRunner().invoke(app, ["data", "generate", "--customers", "300", "--products",
                                      "50", "--seed", "4", "--out", str(out), "--format", fmt])
    assert result.exit_code == 0, result.output
    expected = generate(300, 50, seed=4)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{t}.{fmt}" for t in FRAMES)
    back = load_dataset(out)
    for table in FRAMES:
        assert len(getattr(back, table)) == len(getattr(expected, table)), table
    pd.testing.assert_series_equal(back.transactions["product_id"],
                                   expected.transactions["product_id"])


def test_cli_rejects_bad_input_with_exit_code_2(tmp_path):
    from training.cli import app

    result = CliRunner().invoke(app, ["data", "generate", "--customers", "0", "--out",
                                      str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "n_customers" in result.output
