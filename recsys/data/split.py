"""Temporal splits: train strictly before a cut, test from the cut on; no future leaks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class TemporalSplit:
    """Transactions split at ``cut`` plus the test period's cold ids.

    ``cold_customers`` bought in the test period but never before the cut;
    ``cold_products`` were sold in the test period but never before the cut.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    cut: pd.Timestamp
    cold_customers: np.ndarray
    cold_products: np.ndarray

    def summary(self) -> dict[str, object]:
        """Counts for reports and MLflow params."""
        return {
            "cut": str(self.cut),  # the exact timestamp
            "train_rows": len(self.train),
            "test_rows": len(self.test),
            "test_customers": int(self.test["customer_id"].nunique()),
            "cold_customers": len(self.cold_customers),
            "cold_products": len(self.cold_products),
        }


def temporal_split(
    transactions: pd.DataFrame,
    cut: pd.Timestamp | str | None = None,
    *,
    test_days: int | None = None,
    end: pd.Timestamp | str | None = None,
) -> TemporalSplit:
    """Split at ``cut``, or ``test_days`` before the last timestamp when ``cut`` is None.

    ``end`` (exclusive) trims the test period, e.g. to make a validation split that stops
    where the real test period begins.
    """
    ts = transactions["timestamp"]
    if cut is None:
        if test_days is None:
            raise ValueError("temporal_split needs a cut date or test_days.")
        cut = (ts.max() - pd.Timedelta(days=test_days)).normalize() + pd.Timedelta(days=1)
    cut = pd.Timestamp(cut)
    train = transactions[ts < cut]
    test_mask = ts >= cut
    if end is not None:
        test_mask &= ts < pd.Timestamp(end)
    test = transactions[test_mask]
    if train.empty or test.empty:
        raise ValueError(f"cut {cut.date()} leaves an empty train or test period; "
                         f"data spans {ts.min().date()} to {ts.max().date()}.")
    known_c = set(train["customer_id"].unique())
    known_p = set(train["product_id"].unique())
    test_c, test_p = test["customer_id"].unique(), test["product_id"].unique()
    cold_c = np.array(sorted(c for c in test_c if c not in known_c), dtype=object)
    cold_p = np.array(sorted(p for p in test_p if p not in known_p), dtype=object)
    return TemporalSplit(train, test, cut, cold_c, cold_p)


__all__ = ["TemporalSplit", "temporal_split"]
