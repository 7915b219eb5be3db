"""Helpers for the customer tests: canonical transactions from short tuples."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd
import pytest


def make_tx(rows: Iterable[tuple]) -> pd.DataFrame:
    """``(customer, date, amount[, order_id])`` tuples -> canonical transactions.

    Without an order id each row is its own order.
    """
    rows = list(rows)
    return pd.DataFrame({
        "order_id": [r[3] if len(r) > 3 else f"o{i}" for i, r in enumerate(rows)],
        "customer_id": [str(r[0]) for r in rows],
        "product_id": ["p1"] * len(rows),
        "quantity": [1.0] * len(rows),
        "amount": [float(r[2]) for r in rows],
        "timestamp": pd.to_datetime([r[1] for r in rows]).astype("datetime64[ns]"),
    }).astype({"order_id": "str", "customer_id": "str", "product_id": "str"})


@pytest.fixture
def tx_builder():
    """The ``make_tx`` helper as a fixture."""
    return make_tx
