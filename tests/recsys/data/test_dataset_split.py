"""recsys.data.dataset (IdMap, build_interactions) and recsys.data.split (temporal_split)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.data.dataset import IdMap, build_interactions
from recsys.data.sources import conform
from recsys.data.split import temporal_split
from recsys.errors import UnknownIdError

T0 = pd.Timestamp("2024-01-01")


def _tx(rows: list[tuple[str, str, str, float, float, int]]) -> pd.DataFrame:
    """(order, customer, product, quantity, amount, day) -> canonical transactions."""
    f = pd.DataFrame(rows, columns=["order_id", "customer_id", "product_id", "quantity",
                                    "amount", "day"])
    return conform(f.assign(timestamp=T0 + pd.to_timedelta(f["day"], unit="D")),
                   "transactions")


TX = _tx([
    ("o1", "a", "x", 1, 2.0, 0), ("o1", "a", "x", 2, 4.0, 0),  # two lines, one order
    ("o2", "a", "x", 1, 2.0, 10), ("o3", "a", "y", 1, 5.0, 20),
    ("o4", "b", "y", 3, 15.0, 20), ("o5", "b", "z", 1, 1.0, 30),
])


# -- IdMap ---------------------------------------------------------------------------------

def test_idmap_round_trip_and_missing_modes() -> None:
    m = IdMap(["b", "a", "c"])
    assert len(m) == 3 and "a" in m and "z" not in m
    idx = m.to_index(["c", "b"])
    assert idx.dtype == np.int32 and idx.tolist() == [2, 0]
    assert m.to_ids(idx).tolist() == ["c", "b"]
    assert m.to_index("a").tolist() == [1]
    assert m.to_index(["a", "z"], missing="mark").tolist() == [1, -1]
    assert m.to_index(["z", "a"], missing="skip").tolist() == [1]
    with pytest.raises(UnknownIdError, match=r"unknown id\(s\) \['z'\]"):
        m.to_index(["a", "z"])
    assert m.to_ids(np.array([0, -1])).tolist() == ["b", ""]


def test_idmap_rejects_duplicates_and_stringifies() -> None:
    with pytest.raises(ValueError, match="must be unique"):
        IdMap(["a", "a"])
    assert IdMap(np.array([10, 20])).to_index(["20"]).tolist() == [1]


# -- build_interactions --------------------------------------------------------------------

def _dense(weighting: str, **kw: object) -> np.ndarray:
    inter = build_interactions(TX, weighting=weighting, **kw)  # type: ignore[arg-type]
    assert inter.customers.ids.tolist() == ["a", "b"]
    assert inter.products.ids.tolist() == ["x", "y", "z"]
    assert inter.matrix.dtype == np.float32
    return inter.matrix.toarray()


def test_weighting_binary_count_log_monetary() -> None:
    np.testing.assert_array_equal(_dense("binary"), [[1, 1, 0], [0, 1, 1]])
    # count = distinct orders: a bought x in o1 (two lines) and o2.
    np.testing.assert_array_equal(_dense("count"), [[2, 1, 0], [0, 1, 1]])
    np.testing.assert_allclose(_dense("log"), [[1 + np.log(2), 1, 0], [0, 1, 1]], rtol=1e-6)
    np.testing.assert_allclose(_dense("monetary"), [[8, 5, 0], [0, 15, 1]])


def test_recency_decay_halves_weight_per_half_life() -> None:
    # as_of = last day (30); half-life 10 days: x lines at ages 30, 30, 20; y at 10; z at 0.
    got = _dense("monetary", half_life_days=10.0)
    want = [[2 * 0.125 + 4 * 0.125 + 2 * 0.25, 5 * 0.5, 0], [0, 15 * 0.5, 1]]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    later = _dense("binary", half_life_days=10.0, as_of=T0 + pd.Timedelta(days=40))
    np.testing.assert_allclose(later[1], [0, 0.5 ** 2, 0.5], rtol=1e-6)


def test_fixed_maps_drop_unknown_lines_and_keep_order() -> None:
    inter = build_interactions(TX, customers=IdMap(["b", "a", "new"]),
                               products=IdMap(["z", "x"]), weighting="binary")
    assert inter.shape == (3, 2)
    np.testing.assert_array_equal(inter.matrix.toarray(), [[1, 0], [0, 1], [0, 0]])
    assert inter.density == pytest.approx(2 / 6)


def test_unknown_weighting_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="weighting must be"):
        build_interactions(TX, weighting="tfidf")  # type: ignore[arg-type]


# -- temporal_split ------------------------------------------------------------------------

def test_split_has_no_leak_and_reports_cold_ids() -> None:
    tx = pd.concat([TX, _tx([("o6", "c", "w", 1, 1.0, 25), ("o7", "a", "y", 1, 5.0, 26)])],
                   ignore_index=True)
    split = temporal_split(tx, T0 + pd.Timedelta(days=20))
    assert split.train["timestamp"].max() < split.cut <= split.test["timestamp"].min()
    assert len(split.train) + len(split.test) == len(tx)
    assert split.cold_customers.tolist() == ["b", "c"]   # b and c first buy on/after the cut
    assert split.cold_products.tolist() == ["w", "y", "z"]
    summary = split.summary()
    assert summary["cut"] == "2024-01-21 00:00:00" and summary["cold_customers"] == 2
    assert summary["train_rows"] == 3 and summary["test_rows"] == 5


def test_split_by_test_days_and_end() -> None:
    split = temporal_split(TX, test_days=10)
    assert split.cut == pd.Timestamp("2024-01-22")  # midnight after (last day - 10 days)
    assert split.test["order_id"].tolist() == ["o5"]
    trimmed = temporal_split(TX, "2024-01-05", end="2024-01-25")
    assert trimmed.test["order_id"].tolist() == ["o2", "o3", "o4"]


def test_split_rejects_empty_side_and_missing_cut() -> None:
    with pytest.raises(ValueError, match="empty train or test"):
        temporal_split(TX, "2030-01-01")
    with pytest.raises(ValueError, match="needs a cut date or test_days"):
        temporal_split(TX)
