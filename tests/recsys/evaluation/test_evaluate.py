"""evaluate() on a hand-made split with two tiny models whose scores are known in advance."""

from __future__ import annotations

import math
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recsys.data.baskets import Baskets
from recsys.data.features import ItemFeatures
from recsys.data.split import temporal_split
from recsys.evaluation.evaluate import SLICES, evaluate, prepare
from recsys.models.base import RecommenderBase


class BuyAgainOnly(RecommenderBase):
    """Recommends the customer's own past products (by weight), nothing else."""

    name: ClassVar[str] = "again"

    def __init__(self) -> None:
        pass

    def fit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
            baskets: Baskets | None = None) -> Self:
        self.n_items_ = interactions.shape[1]
        self.items_seen_ = items
        return self

    def _score_users(self, history: sparse.csr_matrix, users: Any) -> np.ndarray:
        dense = history.toarray()
        return np.where(dense > 0, dense, -np.inf)


class NeverSold(RecommenderBase):
    """Recommends the products with no training sales (the cold ones), to everyone."""

    name: ClassVar[str] = "never_sold"

    def __init__(self, *, boost: float = 1.0) -> None:
        self.boost = boost

    def fit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
            baskets: Baskets | None = None) -> Self:
        self.n_items_ = interactions.shape[1]
        self.cold_ = np.asarray(interactions.sum(axis=0)).ravel() == 0
        return self

    def _score_users(self, history: sparse.csr_matrix, users: Any) -> np.ndarray:
        row = np.where(self.cold_, self.boost, -np.inf)
        return np.tile(row, (history.shape[0], 1))


def _tx(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "product_id", "timestamp"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    frame["order_id"] = frame["customer_id"] + frame["timestamp"].astype(str)
    frame["quantity"], frame["amount"] = 1.0, 2.0
    return frame


@pytest.fixture
def split():
    # Train (before 2024-02-01): c1 buys p1, p2; c2 buys p2, p3, p4.
    # Test: c1 buys p1 (repeat) and p4 (new to c1); c2 buys p5 (first sold in the test
    # period); c3 (new customer) buys p2.
    tx = _tx([("c1", "p1", "2024-01-02"), ("c1", "p2", "2024-01-03"),
              ("c2", "p2", "2024-01-05"), ("c2", "p3", "2024-01-06"),
              ("c2", "p4", "2024-01-07"),
              ("c1", "p1", "2024-02-02"), ("c1", "p4", "2024-02-03"),
              ("c2", "p5", "2024-02-04"), ("c3", "p2", "2024-02-05")])
    return temporal_split(tx, "2024-02-01")


@pytest.fixture
def products() -> pd.DataFrame:
    return pd.DataFrame({"product_id": [f"p{i}" for i in range(1, 6)],
                         "title": ["milk", "bread", "cheese", "jam", "oat milk"],
                         "category": ["DAIRY", "BAKERY", "BAKERY", "", "DAIRY"]})


def test_prepare_puts_cold_products_last_and_cold_customers_unknown(split) -> None:
    data = prepare(split)
    assert data.train.products.ids.tolist() == ["p1", "p2", "p3", "p4", "p5"]
    assert data.cold_items.tolist() == [4]
    assert data.train.matrix[:, 4].nnz == 0  # no test-period sale leaks into training
    assert data.test_customers.ids.tolist() == ["c1", "c2", "c3"]
    assert data.users.tolist() == [0, 1, -1]
    assert data.history[2].nnz == 0
    assert (data.history[:2] != data.train.matrix).nnz == 0
    assert data.item_users.tolist() == [1, 2, 1, 1, 0]


def test_evaluate_buy_again_scores_repeat_slice_only(split) -> None:
    report = evaluate(BuyAgainOnly(), split, k=3)
    # c1 gets [p1, p2] vs {p1, p4}: one hit at rank 1; c2 {p5} and c3 {p2} get nothing.
    ndcg_c1 = 1 / (1 + 1 / math.log2(3))
    assert report.metrics["users"] == 3
    assert report.metrics["ndcg@3"] == pytest.approx(ndcg_c1 / 3)
    assert report.metrics["recall@3"] == pytest.approx(0.5 / 3)
    assert report.metrics["precision@3"] == pytest.approx((1 / 3) / 3)
    assert report.slices["repeat"]["users"] == 1
    assert report.slices["repeat"]["ndcg@3"] == pytest.approx(1.0)
    assert report.slices["new"]["users"] == 3
    assert report.slices["new"]["hit_rate@3"] == 0.0
    assert report.slices["cold_customers"]["users"] == 1
    assert report.slices["cold_customers"]["recall@3"] == 0.0
    assert report.slices["cold_products"]["recall@20"] == 0.0
    # Lists: c1 {p1, p2}, c2 {p2, p3, p4}: 4 of 5 products covered.
    assert report.metrics["coverage@3"] == pytest.approx(4 / 5)
    assert report.fit_seconds >= 0 and report.recommend_seconds >= 0
    assert set(report.slices) == set(SLICES) | {"discover", "new_arrivals"}


def test_evaluate_cold_products_reachable_only_by_content_like_model(split) -> None:
    report = evaluate(NeverSold(boost=2.0), split, k=3)
    assert report.slices["cold_products"]["users"] == 1
    assert report.slices["cold_products"]["recall@20"] == pytest.approx(1.0)
    assert report.slices["cold_products"]["ndcg@3"] == pytest.approx(1.0)
    assert report.metrics["hit_rate@3"] == pytest.approx(1 / 3)
    assert report.params == {"boost": 2.0}
    flat = report.flat()
    assert flat["cold_products/recall@20"] == pytest.approx(1.0) and "fit_s" in flat


def test_evaluate_passes_item_features_and_measures_diversity(split, products) -> None:
    model = BuyAgainOnly()
    data = prepare(split, products=products)
    report = evaluate(model, data, k=3)
    assert len(model.items_seen_) == 5
    assert model.items_seen_.text[4] == "oat milk DAIRY"
    # c1: [p1 DAIRY, p2 BAKERY] -> 1; c2: [p2 BAKERY, p3 BAKERY, p4 unknown] -> 0 (p4 has
    # no category and is left out); c3 gets no list.
    assert report.metrics["diversity@3"] == pytest.approx(0.5)


def test_diversity_falls_back_to_title_words_without_categories(split, products) -> None:
    data = prepare(split, products=products.assign(category=""))
    assert data.item_vectors is not None and data.item_vectors.shape[0] == 5
    # "milk" and "oat milk" share a word; "bread" and "cheese" share none.
    sim = (data.item_vectors @ data.item_vectors.T).toarray()
    assert sim[0, 4] > 0 and sim[1, 2] == 0


def test_exclude_seen_removes_repeat_hits(split) -> None:
    report = evaluate(BuyAgainOnly(), split, k=3, exclude_seen=True)
    assert report.metrics["hit_rate@3"] == 0.0
    assert report.metrics["coverage@3"] == 0.0


def test_prepare_samples_test_customers_reproducibly(split) -> None:
    a = prepare(split, max_test_customers=2, random_state=1)
    b = prepare(split, max_test_customers=2, random_state=1)
    assert len(a.test_customers) == 2 and a.relevant.shape[0] == a.history.shape[0] == 2
    assert a.test_customers.ids.tolist() == b.test_customers.ids.tolist()
    full = prepare(split)
    rows = full.test_customers.to_index(a.test_customers.ids)
    assert (full.relevant[rows] != a.relevant).nnz == 0
    assert a.users.tolist() == full.users[rows].tolist()
    assert a.train.shape == full.train.shape


def test_prepare_rejects_misaligned_item_vectors(split) -> None:
    with pytest.raises(ValueError, match="5 products"):
        prepare(split, item_vectors=np.ones((3, 2)))
