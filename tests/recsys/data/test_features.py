"""recsys.data.features.item_features: aligned, leak-free item side information."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.dataset import IdMap
from recsys.data.features import item_features
from recsys.data.sources import conform

DAY0 = pd.Timestamp("2024-01-01")


def _tx(rows: list[tuple[str, str, str, int]]) -> pd.DataFrame:
    """(order, customer, product, day) rows -> canonical transactions."""
    frame = pd.DataFrame(rows, columns=["order_id", "customer_id", "product_id", "day"])
    return conform(frame.assign(quantity=1.0, amount=1.0,
                                timestamp=DAY0 + pd.to_timedelta(frame["day"], unit="D")),
                   "transactions")


PRODUCTS = conform(pd.DataFrame({
    "product_id": ["p1", "p2"], "title": ["Green Tea", "Mug"],
    "description": ["", "Ceramic   mug"], "brand": ["Acme", ""],
    "category": ["Drinks > Tea", ""], "price": [2.5, np.nan]}), "products")
TX = _tx([
    ("o1", "c1", "p1", 0), ("o2", "c1", "p1", 10), ("o2", "c1", "p1", 10),  # one basket, twice
    ("o3", "c1", "p1", 30), ("o4", "c2", "p1", 5), ("o5", "c2", "p1", 9),
    ("o6", "c1", "p2", 20), ("o7", "c2", "p3", 40), ("o8", "c2", "pX", 1),
])
MAP = IdMap(["p2", "p1", "p3", "p4"])


def test_aligned_with_product_map() -> None:
    f = item_features(PRODUCTS, TX, MAP)
    assert len(f) == len(MAP) == 4
    assert f.text == ["Mug Ceramic mug", "Green Tea Acme Drinks Tea", "", ""]
    assert f.category.tolist() == ["", "Drinks > Tea", "", ""]
    assert f.price.dtype == np.float32
    np.testing.assert_array_equal(f.price, np.array([np.nan, 2.5, np.nan, np.nan], np.float32))


def test_first_sold_days_relative_to_last_sale() -> None:
    f = item_features(PRODUCTS, TX, MAP)
    np.testing.assert_array_equal(f.first_sold_days,
                                  np.array([20, 40, 0, np.nan], dtype=np.float32))


def test_as_of_ignores_later_lines() -> None:
    f = item_features(PRODUCTS, TX, MAP, as_of=DAY0 + pd.Timedelta(days=35))
    np.testing.assert_array_equal(f.first_sold_days,
                                  np.array([15, 35, np.nan, np.nan], dtype=np.float32))


def test_repurchase_days_median_of_per_customer_gaps() -> None:
    f = item_features(PRODUCTS, TX, MAP)
    # p1: c1 at days 0, 10 (two lines, one order), 30 -> gaps 10, 20; c2 at 5, 9 -> gap 4.
    assert f.repurchase_days.dtype == np.float32
    np.testing.assert_array_equal(f.repurchase_days,
                                  np.array([np.nan, 10, np.nan, np.nan], dtype=np.float32))


def test_empty_history_gives_nan_features() -> None:
    f = item_features(PRODUCTS, TX.iloc[:0], MAP, as_of=DAY0)
    assert np.isnan(f.first_sold_days).all() and np.isnan(f.repurchase_days).all()
    assert f.text[1] == "Green Tea Acme Drinks Tea"


@pytest.mark.data
def test_repurchase_days_match_a_direct_computation(shared_data: Path, tmp_path: Path) -> None:
    from recsys.data.clean import clean
    from recsys.data.load import load_dataset

    path = tmp_path / "retail.csv"
    pd.read_csv(shared_data / "online_retail/online_retail.csv.gz", nrows=30_000,
                dtype=str).to_csv(path, index=False)
    data, _ = clean(load_dataset(path))
    tx = data.transactions
    pmap = IdMap(np.sort(tx["product_id"].unique()))
    f = item_features(data.products, tx, pmap)
    checked = 0
    for pid in tx["product_id"].value_counts().index[:5]:
        gaps: list[float] = []
        for _c, g in tx[tx["product_id"] == pid].groupby("customer_id"):
            t = g.groupby("order_id")["timestamp"].min().sort_values().to_numpy()
            gaps += list(np.diff(t).astype("timedelta64[s]").astype(float) / 86400)
        got = f.repurchase_days[pmap.to_index(pid)[0]]
        if gaps:
            assert got == pytest.approx(np.median(gaps), rel=1e-5)
            checked += 1
        else:
            assert np.isnan(got)
    assert checked >= 3  # best sellers of a month are bought again by someone
