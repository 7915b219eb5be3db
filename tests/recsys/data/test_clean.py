"""recsys.data.clean: each rule removes exactly its lines and says so in the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.data.clean import clean, non_product_mask, summarize
from recsys.data.load import load_dataset
from recsys.data.schema import RetailData
from recsys.data.sources import conform

STEPS = ["missing_ids", "cancellations", "non_positive_quantity", "non_positive_amount",
         "non_product_codes", "unknown_products", "duplicate_lines"]


def _tx(rows: list[tuple[str, str | None, str, float, float, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["order_id", "customer_id", "product_id", "quantity",
                                        "amount", "timestamp"])
    return conform(frame.assign(timestamp=pd.to_datetime(frame["timestamp"])), "transactions")


ROWS = [
    ("1", "c1", "85123A", 6, 15.3, "2011-01-01 10:00"),   # kept
    ("1", "c1", "71053", 2, 6.0, "2011-01-01 10:00"),     # undone by cancellation C9
    ("1", "c1", "71053", 2, 6.0, "2011-01-01 10:00"),     # exact duplicate of the line above
    ("2", None, "85123A", 1, 2.5, "2011-01-02 10:00"),    # guest
    ("C9", "c1", "71053", -2, -6.0, "2011-01-03 10:00"),  # cancellation
    ("3", "c2", "22423", 0, 0.0, "2011-01-04 10:00"),     # zero quantity
    ("4", "c2", "22423", 1, 0.0, "2011-01-04 11:00"),     # zero price
    ("5", "c2", "POST", 1, 18.0, "2011-01-05 10:00"),     # postage
    ("5", "c2", "gift_0001_20", 1, 20.0, "2011-01-05 10:00"),  # voucher
    ("6", "c3", "99999", 1, 1.0, "2011-01-06 10:00"),     # not in the product table
    ("7", "c3", "22423", 3, 9.0, "2011-01-07 10:00"),     # kept
    ("7", "c3", "22423", 3, 9.0, "2011-01-07 10:00"),     # duplicate
]


def _data(rows: list = ROWS, products: list[str] | None = None) -> RetailData:
    tx = _tx(rows)
    ids = products if products is not None else ["85123A", "71053", "22423", "POST",
                                                 "gift_0001_20"]
    prods = conform(pd.DataFrame({"product_id": ids}), "products")
    return RetailData("toy", tx, products=prods)


def test_each_rule_removes_its_lines_and_reports_them() -> None:
    cleaned, report = clean(_data())
    frame = report.to_frame()
    tx_steps = frame[frame["table"] == "transactions"]
    assert tx_steps["step"].tolist() == STEPS
    # C9 undoes one of the two identical 71053 lines; the other is then no longer a duplicate.
    assert dict(zip(tx_steps["step"], tx_steps["removed"], strict=True)) == {
        "missing_ids": 1, "cancellations": 2, "non_positive_quantity": 1,
        "non_positive_amount": 1, "non_product_codes": 2, "unknown_products": 1,
        "duplicate_lines": 1}
    assert (tx_steps["rows_before"].iloc[1:].to_numpy()
            == tx_steps["rows_after"].iloc[:-1].to_numpy()).all()
    assert tx_steps["rows_before"].iloc[0] == len(ROWS)
    assert tx_steps["rows_after"].iloc[-1] == len(cleaned.transactions)
    kept = cleaned.transactions[["order_id", "product_id"]].apply(tuple, axis=1).tolist()
    assert kept == [("1", "85123A"), ("1", "71053"), ("7", "22423")]
    prod_step = frame[frame["table"] == "products"].iloc[0]
    assert (prod_step["rows_before"], prod_step["removed"]) == (5, 2)
    assert set(cleaned.products["product_id"]) == {"85123A", "71053", "22423"}


def test_report_text_names_every_step() -> None:
    _cleaned, report = clean(_data())
    text = report.render()
    assert text.splitlines()[0] == "cleaning toy:"
    for step in STEPS:
        assert step in text
    assert str(report) == text


def test_cancellation_matches_only_an_earlier_purchase_of_same_quantity() -> None:
    rows = [("1", "c", "10", 2, 2.0, "2011-01-01"), ("2", "c", "10", 5, 5.0, "2011-01-02"),
            ("C3", "c", "10", -5, -5.0, "2011-01-03"), ("C4", "c", "10", -7, -7.0, "2011-01-03"),
            ("C5", "c", "20", -1, -1.0, "2011-01-01"), ("6", "c", "20", 1, 1.0, "2011-01-02"),
            ("7", "d", "10", 2, 2.0, "2011-01-03")]
    cleaned, report = clean(_data(rows, products=[]))
    assert report.steps[1].removed == 4  # C3, C4, C5 and order 2 (undone by C3)
    assert cleaned.transactions["order_id"].tolist() == ["1", "6", "7"]


def test_negative_quantity_line_is_a_return() -> None:
    rows = [("1", "c", "10", 3, 3.0, "2011-01-01"), ("2", "c", "10", -3, -3.0, "2011-01-05")]
    cleaned, report = clean(_data(rows, products=[]))
    assert report.steps[1].removed == 2 and cleaned.transactions.empty


def test_unknown_amount_is_kept_and_empty_product_table_checks_nothing() -> None:
    rows = [("1", "c", "10", 1, np.nan, "2011-01-01"), ("2", "c", "11", 1, 2.0, "2011-01-01")]
    cleaned, report = clean(_data(rows, products=[]))
    assert len(cleaned.transactions) == 2
    assert "unknown_products" not in [s.name for s in report.steps]


def test_non_product_rule() -> None:
    codes = pd.Series(["85123A", "POST", "m", "BANK CHARGES", "C2", "gift_0001_10", "DCGS0003",
                       "22423", "AMAZONFEE"])
    assert non_product_mask(codes).tolist() == [False, True, True, True, True, True, False,
                                                False, True]
    words = pd.Series(["apple", "banana", "pear", "POST"])  # a catalog of word ids
    assert non_product_mask(words).tolist() == [False, False, False, True]


def test_summarize_counts() -> None:
    s = summarize(_tx(ROWS[:3] + ROWS[10:]))
    assert (s["lines"], s["orders"], s["customers"], s["products"]) == (5, 2, 2, 3)
    assert s["density"] == pytest.approx(3 / 6)
    assert s["first"] == pd.Timestamp("2011-01-01 10:00")


@pytest.mark.data
@pytest.mark.slow
def test_online_retail_cleaned_view(shared_data: Path) -> None:
    raw = load_dataset(shared_data / "online_retail" / "online_retail.csv.gz")
    cleaned, report = clean(raw)
    tx = cleaned.transactions
    assert report.steps[0].removed == int(raw.transactions["customer_id"].isna().sum())
    assert not tx["order_id"].str.startswith("C").any()
    assert (tx["quantity"] > 0).all() and (tx["amount"] > 0).all()
    assert not tx.duplicated().any() and not non_product_mask(tx["product_id"]).any()
    s = summarize(tx)
    # issue 2 expects "about 4.3k customers x 3.7k products" after cleaning
    assert 4_200 <= s["customers"] <= 4_400 and 3_500 <= s["products"] <= 3_800
    assert sum(st.removed for st in report.steps if st.table == "transactions") == \
        len(raw.transactions) - len(tx)
