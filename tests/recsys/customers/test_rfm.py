"""RFM values, quantile scores (ties, tiny populations) and config-driven segments."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.customers.config import RFMConfig, SegmentRule
from recsys.customers.rfm import assign_segments, quantile_scores, rfm

Q5 = (0.2, 0.4, 0.6, 0.8)


def test_distinct_values_fill_every_score_evenly() -> None:
    scores = quantile_scores(np.arange(10.0), Q5)
    np.testing.assert_array_equal(scores, [1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    assert scores.dtype == np.int8


def test_ties_share_one_score_at_their_mid_rank() -> None:
    scores = quantile_scores(np.array([1, 1, 1, 1, 5.0]), Q5)
    # mid rank 2.5 of 5 -> percentile 0.4 -> third score; the top value gets 5
    np.testing.assert_array_equal(scores, [3, 3, 3, 3, 5])
    assert set(quantile_scores(np.full(7, 2.0), Q5)) == {3}


def test_tiny_populations_are_scored_symmetrically() -> None:
    np.testing.assert_array_equal(quantile_scores(np.array([4.0]), Q5), [3])
    np.testing.assert_array_equal(quantile_scores(np.array([9.0, 4.0]), Q5), [4, 2])
    assert len(quantile_scores(np.array([]), Q5)) == 0


def test_lower_is_better_reverses_and_nan_is_unscored() -> None:
    scores = quantile_scores(np.array([1.0, 50.0, np.nan, 300.0]), (0.5,),
                             higher_is_better=False)
    # percentiles of -1, -50, -300: 5/6, 1/2 (a cut point belongs to the upper score), 1/6
    np.testing.assert_array_equal(scores, [2, 2, 0, 1])


def test_segments_take_the_first_matching_rule_else_default() -> None:
    config = RFMConfig(quantiles=(0.5,), segments=(
        SegmentRule(name="best", r=(2, 2), f=(2, 2)),
        SegmentRule(name="recent", r=(2, 2)),
        SegmentRule(name="big", m=(2, 2))), default_segment="rest")
    r, f, m = (np.array(v, dtype=np.int8) for v in ([2, 2, 1, 1], [2, 1, 2, 1], [2, 2, 2, 1]))
    assert list(assign_segments(r, f, m, config)) == ["best", "recent", "big", "rest"]


def test_default_segments_cover_every_score_combination() -> None:
    config = RFMConfig()
    grid = np.array(np.meshgrid(*[np.arange(1, 6)] * 3)).reshape(3, -1).astype(np.int8)
    names = assign_segments(*grid, config)
    assert config.default_segment not in set(names)
    assert {"champions", "lost", "new", "at_risk", "cant_lose"} <= set(names)


def test_rfm_counts_orders_not_lines_and_sums_spend(tx_builder) -> None:
    tx = tx_builder([
        ("a", "2024-01-01", 10, "o1"), ("a", "2024-01-01", 5, "o1"),  # one order, two lines
        ("a", "2024-01-20", 20, "o2"),
        ("b", "2024-01-05", 7, "o3"),
        ("c", "2024-01-31", 100, "o4"), ("c", "2024-01-31", 1, "o5"),  # two orders, one day
    ])
    table = rfm(tx, as_of="2024-02-01").set_index("customer_id")
    assert list(table.index) == ["a", "b", "c"]
    np.testing.assert_array_equal(table["recency_days"], [12, 27, 1])
    np.testing.assert_array_equal(table["frequency"], [2, 1, 2])
    np.testing.assert_allclose(table["monetary"], [35.0, 7.0, 101.0])
    # three customers sit at percentiles 1/6, 1/2, 5/6 -> scores 1, 3, 5; recent is best
    np.testing.assert_array_equal(table["r_score"], [3, 1, 5])
    np.testing.assert_array_equal(table["m_score"], [3, 1, 5])
    assert table["f_score"]["a"] == table["f_score"]["c"] > table["f_score"]["b"]
    assert table["segment"].dtype == "str"


def test_rfm_window_limits_frequency_and_monetary(tx_builder) -> None:
    tx = tx_builder([("a", "2023-01-01", 50), ("a", "2024-01-10", 5), ("b", "2024-01-15", 9)])
    table = rfm(tx, as_of="2024-02-01", config=RFMConfig(window_days=60))
    assert table["frequency"].tolist() == [1, 1]
    assert table["monetary"].tolist() == pytest.approx([5.0, 9.0])
