"""`recsys data prepare` in process: a directory that `load_dataset` (and so `recsys train`)
reads back as the cleaned data, with its interaction table and cleaning report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.clean import clean
from recsys.data.dataset import build_interactions
from recsys.data.load import load_dataset
from recsys.data.prepare import INTERACTIONS, REPORT, prepare

SOURCE = "synthetic:customers=300,products=60,seed=4"


def test_the_prepared_directory_is_the_cleaned_dataset(tmp_path: Path) -> None:
    report = prepare(SOURCE, tmp_path)
    cleaned, expected = clean(load_dataset(SOURCE))
    back = load_dataset(tmp_path)
    pd.testing.assert_frame_equal(back.transactions, cleaned.transactions)
    pd.testing.assert_frame_equal(back.products, cleaned.products)
    assert report.to_frame().equals(expected.to_frame())
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / REPORT), expected.to_frame())

    pairs = pd.read_parquet(tmp_path / INTERACTIONS)
    counts = build_interactions(cleaned.transactions, weighting="count")
    assert len(pairs) == counts.matrix.nnz
    rows = counts.customers.to_index(pairs["customer_id"].to_numpy())
    cols = counts.products.to_index(pairs["product_id"].to_numpy())
    np.testing.assert_array_equal(np.asarray(counts.matrix[rows, cols]).ravel(),
                                  pairs["orders"].to_numpy(dtype=np.float32))
    assert pairs["lines"].sum() == len(cleaned.transactions)
    assert (pairs["first"] <= pairs["last"]).all()
