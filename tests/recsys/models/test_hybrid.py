"""Hybrid-specific behaviour: explanations, fallbacks for cold customers and products, modes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsys.data.features import ItemFeatures
from recsys.models import Hybrid, Reason
from tests.recsys.models.board import FAST, STAPLE, Board, N, with_new_product

PARAMS = FAST["hybrid"]


@pytest.fixture(scope="module")
def hybrid(board: Board) -> Hybrid:
    return Hybrid(**PARAMS).fit(board.matrix, items=board.items)


def test_reasons_come_with_the_same_ranking_as_recommend(hybrid: Hybrid, board: Board) -> None:
    exclude = sparse.random(N, board.n_items, density=0.3, format="csr", random_state=1)
    candidates = np.arange(0, board.n_items, 2)
    for users in (np.arange(N), None):
        ranked, kind, item = hybrid.recommend_with_reasons(
            board.matrix, 8, users=users, exclude=exclude, candidates=candidates)
        plain = hybrid.recommend(board.matrix, 8, users=users, exclude=exclude,
                                 candidates=candidates)
        np.testing.assert_array_equal(ranked.ids, plain.ids)
        np.testing.assert_array_equal(ranked.scores, plain.scores)
        assert kind.dtype == np.int8 and item.dtype == np.int32
        assert kind.shape == item.shape == (N, 8)
        assert set(np.unique(kind)) <= {int(r) for r in Reason}
        np.testing.assert_array_equal(kind == Reason.NONE, ranked.ids == -1)


def test_buy_again_reason_names_the_pick_itself(hybrid: Hybrid, board: Board) -> None:
    ranked, kind, item = hybrid.recommend_with_reasons(board.matrix, 3)
    again = kind == Reason.BUY_AGAIN
    assert again.any()
    np.testing.assert_array_equal(item[again], ranked.ids[again])
    bought = board.matrix.toarray() > 0
    rows = np.nonzero(again)[0]
    assert bought[rows, ranked.ids[again]].all()


def test_because_you_bought_points_to_a_history_item_of_the_same_group(
        hybrid: Hybrid, board: Board) -> None:
    ranked, kind, item = hybrid.recommend_with_reasons(board.matrix, 1, exclude=board.matrix)
    np.testing.assert_array_equal(ranked.ids[:, 0], np.arange(N))  # the checkerboard answer
    assert (kind[:, 0] == Reason.BECAUSE_YOU_BOUGHT).all()
    bought = board.matrix.toarray() > 0
    assert bought[np.arange(N), item[:, 0]].all()
    assert ((item[:, 0] % 2) == (np.arange(N) % 2)).all()  # never the staple or other group


def test_cold_customers_get_popular_products(hybrid: Hybrid, board: Board) -> None:
    empty = sparse.csr_matrix((3, board.n_items), dtype=np.float32)
    ranked, kind, item = hybrid.recommend_with_reasons(empty, 5, users=np.full(3, -1))
    assert (ranked.ids[:, 0] == STAPLE).all()
    assert np.isin(kind, [Reason.POPULAR, Reason.TRENDING]).all()
    assert (item == -1).all()


def test_new_product_reaches_customers_of_its_category() -> None:
    from tests.recsys.models.board import make_board

    board, new = with_new_product(make_board())
    model = Hybrid(**PARAMS).fit(board.matrix, items=board.items)
    ranked, kind, _ = model.recommend_with_reasons(board.matrix, 3, exclude=board.matrix)
    even = np.arange(N) % 2 == 0
    got = ranked.ids == new
    assert got[even].any(axis=1).all() and not got[~even].any()
    assert np.isin(kind[got], [Reason.NEW_IN_CATEGORY_YOU_BUY, Reason.BECAUSE_YOU_BOUGHT]).all()
    neighbours = model.similar_items(np.array([new]), 5).ids[0]
    assert (neighbours % 2 == 0).all() and STAPLE not in neighbours  # dairy, from content


def test_discover_mode_never_returns_past_purchases(board: Board) -> None:
    model = Hybrid(**PARAMS, mode="discover").fit(board.matrix, items=board.items)
    ranked, kind, _ = model.recommend_with_reasons(board.matrix, board.n_items)
    bought = board.matrix.toarray() > 0
    for row in range(N):
        picks = ranked.ids[row][ranked.ids[row] >= 0]
        assert len(picks) and not bought[row, picks].any()
    assert not (kind == Reason.BUY_AGAIN).any()


def test_state_is_the_prefixed_union_of_the_parts(hybrid: Hybrid) -> None:
    state = hybrid.state()
    for key in ("cf.item_factors_", "cf.user_factors_", "content.item_vectors_",
                "popularity.item_scores_", "trending.item_scores_", "buyagain.item_rate_",
                "item_seen_"):
        assert key in state
    assert all(v.dtype != object for v in state.values())


def test_works_without_item_features(board: Board) -> None:
    model = Hybrid(**PARAMS).fit(board.matrix)
    assert model.content_ is None
    restored = Hybrid.from_state(model.get_params(), model.state())
    a = model.recommend(board.matrix, 4, exclude=board.matrix)
    b = restored.recommend(board.matrix, 4, exclude=board.matrix)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_array_equal(a.ids[:, 0], np.arange(N))


@pytest.mark.parametrize("params", [{"cf_weight": -1.0}, {"cf": "svd"}, {"mode": "both"},
                                    {"new_weight": float("nan")}])
def test_bad_parameters_are_rejected(params: dict, board: Board) -> None:
    with pytest.raises(ValueError):
        Hybrid(**params).fit(board.matrix)


@pytest.mark.parametrize("cf", ["bpr", "itemknn", "ease"])
def test_other_cf_parts_explain_too(cf: str, board: Board) -> None:
    params = {"bpr": FAST["bpr"], "itemknn": FAST["itemknn"], "ease": {}}[cf]
    model = Hybrid(cf=cf, cf_params=params, content_weight=0.0).fit(
        board.matrix, items=ItemFeatures(text=board.items.text, category=board.items.category))
    ranked, kind, item = model.recommend_with_reasons(board.matrix, 1, exclude=board.matrix)
    np.testing.assert_array_equal(ranked.ids[:, 0], np.arange(N))
    because = kind[:, 0] == Reason.BECAUSE_YOU_BOUGHT
    assert because.all()
    assert (board.matrix.toarray()[np.arange(N), item[:, 0]] > 0).all()


def test_new_product_borrows_the_demand_of_its_text_twin() -> None:
    """A new size of item 0 reaches customer 22 (who buys item 0 three times as often) first,
    explained by item 0, and never reaches cleaning customers; the state keeps the twins."""
    from tests.recsys.models.board import make_board

    board = make_board()
    new = board.n_items
    it = board.items
    items = ItemFeatures(text=[*it.text, it.text[0] + " 2l"],
                         category=np.append(it.category, it.category[0]).astype(object))
    matrix = sparse.hstack([board.matrix, sparse.csr_matrix((N, 1), dtype=np.float32)]).tocsr()
    model = Hybrid(**PARAMS).fit(matrix, items=items)
    assert 0 in model._twins[:, new].indices
    ranked, kind, item = model.recommend_with_reasons(matrix, 3, exclude=matrix)
    assert ranked.ids[22, 0] == new
    assert kind[22, 0] == Reason.NEW_IN_CATEGORY_YOU_BUY and item[22, 0] == 0
    assert not (ranked.ids[1::2] == new).any()
    restored = Hybrid.from_state(model.get_params(), model.state())
    np.testing.assert_array_equal(restored.recommend(matrix, 3, exclude=matrix).ids, ranked.ids)
