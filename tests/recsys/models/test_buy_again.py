"""Buy-again ordering: frequency and recency (history weight), then the repurchase cycle."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsys.data.features import ItemFeatures
from recsys.models import BuyAgain


def items(repurchase_days: list[float]) -> ItemFeatures:
    n = len(repurchase_days)
    return ItemFeatures(text=[""] * n, category=np.array([""] * n, dtype=object),
                        repurchase_days=np.array(repurchase_days, np.float32))


def test_more_frequent_or_recent_purchases_rank_first() -> None:
    history = sparse.csr_matrix(np.array([[3.0, 0.0, 1.0, 2.0, 0.0]], np.float32))
    model = BuyAgain(popularity_fill=False).fit(history, items=items([14.0] * 5))
    ranked = model.recommend(history, 5)
    np.testing.assert_array_equal(ranked.ids[0], [0, 3, 2, -1, -1])
    assert np.isneginf(ranked.scores[0, 3:]).all()  # never bought: never recommended


def test_short_repurchase_cycle_beats_long_one_at_equal_weight() -> None:
    history = sparse.csr_matrix(np.array([[1.0, 1.0, 1.0]], np.float32))
    # detergent every 60 days, milk every 7, candles never bought twice (nan)
    model = BuyAgain(horizon_days=28.0).fit(history, items=items([60.0, 7.0, np.nan]))
    np.testing.assert_array_equal(model.recommend(history, 3).ids[0], [1, 0, 2])
    rate = model.item_rate_
    np.testing.assert_allclose(rate[:2], 1 - np.exp(-28.0 / np.array([60.0, 7.0])), rtol=1e-6)


def test_frequency_power_trades_weight_against_cycle() -> None:
    history = sparse.csr_matrix(np.array([[4.0, 1.0]], np.float32))
    features = items([120.0, 7.0])
    assert BuyAgain(frequency_power=2.0).fit(history, items=features).recommend(
        history, 1).ids[0, 0] == 0
    assert BuyAgain(frequency_power=0.0).fit(history, items=features).recommend(
        history, 1).ids[0, 0] == 1


def test_without_item_features_it_ranks_by_weight() -> None:
    history = sparse.csr_matrix(np.array([[1.0, 5.0, 2.0]], np.float32))
    np.testing.assert_array_equal(BuyAgain().fit(history).recommend(history, 3).ids[0],
                                  [1, 2, 0])


@pytest.mark.parametrize("params", [{"horizon_days": 0.0}, {"unknown_interval_days": -1.0}])
def test_bad_parameters_are_rejected(params: dict) -> None:
    with pytest.raises(ValueError):
        BuyAgain(**params).fit(sparse.csr_matrix(np.ones((2, 2), np.float32)))


def test_repurchase_scores_are_the_scores_of_bought_cells() -> None:
    history = sparse.random(5, 7, density=0.4, format="csr", random_state=0, dtype=np.float32)
    model = BuyAgain(frequency_power=1.5, popularity_fill=False).fit(
        history, items=items([10.0, 30.0, np.nan, 7.0, 90.0, 5.0, 14.0]))
    sparse_scores = model.repurchase_scores(history)
    dense = model._score_users(history, None)
    np.testing.assert_array_equal(sparse_scores.nonzero(), history.nonzero())
    np.testing.assert_allclose(sparse_scores.toarray()[history.toarray() > 0],
                               dense[history.toarray() > 0], rtol=1e-6)
    assert np.isneginf(dense[history.toarray() == 0]).all()
    expected = history.toarray() ** 1.5 * model.item_rate_[None, :]
    np.testing.assert_allclose(sparse_scores.toarray(), expected, rtol=1e-5)


def test_popularity_fills_the_list_below_every_own_product() -> None:
    # product 3 has the most buyers, then 1; customer 0 bought only product 0 (one buyer)
    train = sparse.csr_matrix(np.array([[1, 0, 0, 0, 0],
                                        [0, 1, 0, 1, 0],
                                        [0, 1, 0, 1, 0],
                                        [0, 0, 1, 1, 0]], np.float32))
    model = BuyAgain().fit(train, items=items([14.0] * 5))
    ranked = model.recommend(train[:1], 5)
    np.testing.assert_array_equal(ranked.ids[0], [0, 3, 1, 2, 4])
    assert ranked.scores[0, 0] > 0 > ranked.scores[0, 1] > ranked.scores[0, 2] \
        > ranked.scores[0, 3] > ranked.scores[0, 4]
    # a customer with no history gets the best sellers; excluded products stay out
    empty = sparse.csr_matrix((1, 5), dtype=np.float32)
    np.testing.assert_array_equal(model.recommend(empty, 2).ids[0], [3, 1])
    np.testing.assert_array_equal(model.recommend(train[:1], 2, exclude=train[:1]).ids[0],
                                  [3, 1])
    # the own products keep the unfilled model's scores (up to the popularity nudge)
    plain = BuyAgain(popularity_fill=False).fit(train, items=items([14.0] * 5))
    np.testing.assert_allclose(plain.recommend(train[:1], 1).scores, ranked.scores[:, :1],
                               rtol=2e-4)


def test_equal_own_scores_rank_the_best_seller_first() -> None:
    train = sparse.csr_matrix(np.array([[1, 0, 1, 0],
                                        [0, 0, 1, 1],
                                        [0, 0, 1, 0]], np.float32))
    features = items([14.0] * 4)
    # customer 0 bought products 0 and 2 once each; 2 has three buyers, 0 one
    np.testing.assert_array_equal(BuyAgain().fit(train, items=features).recommend(
        train[:1], 2).ids[0], [2, 0])
    np.testing.assert_array_equal(BuyAgain(popularity_fill=False).fit(
        train, items=features).recommend(train[:1], 2).ids[0], [0, 2])  # column order
    # a real difference in the customer's own frequency still wins over popularity
    heavy = sparse.csr_matrix(np.array([[2, 0, 1, 0]], np.float32))
    np.testing.assert_array_equal(BuyAgain().fit(train, items=features).recommend(
        heavy, 1).ids[0], [0])


def test_popularity_is_in_the_state_only_when_filling() -> None:
    train = sparse.csr_matrix(np.eye(3, dtype=np.float32))
    filled, plain = BuyAgain().fit(train), BuyAgain(popularity_fill=False).fit(train)
    assert "item_popularity_" in filled.state() and "item_popularity_" not in plain.state()
    with pytest.raises(ValueError, match="state lacks"):
        BuyAgain.from_state(filled.get_params(), plain.state())
    back = BuyAgain.from_state(filled.get_params(), filled.state())
    np.testing.assert_array_equal(back.recommend(train, 3).ids, filled.recommend(train, 3).ids)
