"""The evaluation protocol: returning customers as the headline, discover and new_arrivals
lists, the two new-arrival references and the baskets handed to ``fit``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recsys.data.split import temporal_split
from recsys.evaluation.evaluate import evaluate, launch_order, new_arrival_references, prepare
from recsys.evaluation.report import evaluate_many, margins
from tests.recsys.evaluation.test_evaluate import BuyAgainOnly, NeverSold, _tx


@pytest.fixture
def split():
    # Train: c1 buys p1, p2 (two orders); c2 buys p2, p3, p4 (three orders).
    # Test: c1 buys p1 (repeat), p4 (never bought by c1) and p7 (new); c2 buys p5 (new);
    # c3 (new customer) buys p2. New products p5, p6, p7 are first sold in the test period.
    tx = _tx([("c1", "p1", "2024-01-02"), ("c1", "p2", "2024-01-03"),
              ("c2", "p2", "2024-01-05"), ("c2", "p3", "2024-01-06"),
              ("c2", "p4", "2024-01-07"),
              ("c1", "p1", "2024-02-02"), ("c1", "p4", "2024-02-03"),
              ("c1", "p7", "2024-02-03"), ("c2", "p5", "2024-02-04"),
              ("c3", "p2", "2024-02-05"), ("c3", "p6", "2024-02-06")])
    return temporal_split(tx, "2024-02-01")


class Recorder(BuyAgainOnly):
    def fit(self, interactions, *, items=None, baskets=None):  # type: ignore[no-untyped-def]
        self.baskets_seen_ = baskets
        return super().fit(interactions, items=items)


def test_headline_is_returning_customers_and_new_customers_are_apart(split) -> None:
    report = evaluate(BuyAgainOnly(), split, k=3)
    # c1 [p1, p2] vs {p1, p4, p7}: one hit at rank 1 of 3 relevant; c2 [p2, p3, p4] vs {p5}: 0
    ndcg_c1 = 1 / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert report.slices["returning"]["users"] == 2
    assert report.slices["returning"]["ndcg@3"] == pytest.approx(ndcg_c1 / 2)
    assert report.slices["cold_customers"]["users"] == 1  # c3 only
    assert report.metrics["users"] == 3  # the overall average still mixes them


def test_discover_ranks_without_purchased_products(split) -> None:
    again = evaluate(BuyAgainOnly(), split, k=3).slices["discover"]
    assert again["users"] == 2 and again["ndcg@3"] == 0.0  # own products are all excluded
    fresh = evaluate(NeverSold(), split, k=3).slices["discover"]
    # [p5, p6, p7] for both: c1's never-bought {p4, p7} -> p7 at rank 3; c2's {p5} at rank 1
    c1 = (1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert fresh["ndcg@3"] == pytest.approx((c1 + 1.0) / 2)


def test_new_arrivals_rank_only_new_products(split) -> None:
    report = evaluate(BuyAgainOnly(), split, k=3, cold_k=2)
    assert report.slices["new_arrivals"]["users"] == 2  # c1 (p7) and c2 (p5); not c3
    assert report.slices["new_arrivals"]["recall@2"] == 0.0  # nothing of its own is new
    assert evaluate(NeverSold(), split, k=3, cold_k=3).slices["new_arrivals"]["recall@3"] == 1.0


def test_new_arrival_references_use_no_test_purchase(split) -> None:
    data = prepare(split)
    assert data.train.products.ids[data.newest_first].tolist() == ["p7", "p6", "p5"]
    refs = new_arrival_references(data, cold_k=1)
    # newest first by id: p7 for everyone: c1 bought p7, c2 did not
    assert refs["newest_first"]["recall@1"] == pytest.approx(0.5)
    assert refs["oldest_first"]["recall@1"] == pytest.approx(0.5)  # p5: c2's
    assert new_arrival_references(data, cold_k=2)["oldest_first"]["recall@2"] == \
        pytest.approx(0.5)  # [p5, p6]: c2's p5, not c1's p7
    assert refs["random"]["users"] == 2
    full = new_arrival_references(data, cold_k=3)
    assert full["random"]["recall@3"] == full["newest_first"]["recall@3"] == 1.0
    # a catalog date, when the product table has one, decides instead of the id
    products = pd.DataFrame({"product_id": ["p5", "p6", "p7"],
                             "first_seen": pd.to_datetime(["2024-02-03", "2024-01-31",
                                                           "2024-01-30"])})
    dated = prepare(split, products=products)
    assert dated.train.products.ids[dated.newest_first].tolist() == ["p5", "p6", "p7"]
    assert new_arrival_references(dated, cold_k=1)["newest_first"]["recall@1"] == \
        pytest.approx(0.5)


def test_launch_order_reads_leading_numbers_then_text() -> None:
    key = launch_order(np.array(["900", "85123A", "85123", "POST", "1000"]), None)
    assert np.argsort(key).tolist() == [3, 0, 4, 2, 1]


def test_fit_gets_the_training_baskets_at_the_cut(split) -> None:
    model = Recorder()
    evaluate(model, split, k=3)
    baskets = model.baskets_seen_
    assert baskets is not None and len(baskets) == 5  # c1: 2 orders, c2: 3
    assert baskets.as_of == split.cut and (baskets.age > 0).all()
    assert baskets.items.shape[1] == 7  # the same columns as the matrix (cold ones last)


def test_margins_divide_by_the_strongest_baseline_of_each_column() -> None:
    table = pd.DataFrame({"a": [0.4, 0.3, 0.44], "b": [0.0, 0.0, 0.1]},
                         index=pd.Index(["tifu", "again", "model"], name="model"))
    out = margins(table, ["tifu", "again", "absent"])
    assert out.loc["model", "a"] == pytest.approx(1.1)
    assert math.isnan(out.loc["model", "b"])  # the strongest baseline scores 0
    assert out.loc["(which)"].tolist() == ["tifu", "tifu"]
    assert out.loc["strongest baseline", "a"] == 0.4 and "tifu" not in out.index


def test_comparison_writes_the_margins_with_the_cut(split, tmp_path) -> None:
    comparison = evaluate_many({"popularity": {}, "buyagain": {}}, split, k=3)
    comparison.write(tmp_path, baselines=["buyagain"])
    text = (tmp_path / "comparison.md").read_text()
    assert "Cut `2024-02-01 00:00:00`" in text and "| (which) | buyagain |" in text
    assert "| popularity |" in text.split("Margins")[1]
