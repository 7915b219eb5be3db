"""Popularity per category, and trending's boost for products new on the shelf."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsys.data.features import ItemFeatures
from recsys.errors import UnknownIdError
from recsys.models import Popularity, Trending
from tests.recsys.models.board import STAPLE, Board


def test_popular_in_category(board: Board) -> None:
    model = Popularity().fit(board.matrix, items=board.items)
    ranked = model.popular_in(["Food > Dairy", "Store > Bags"], 13)
    assert (ranked.ids[0, :12] % 2 == 0).all() and ranked.ids[0, 12] == -1
    assert ranked.ids[1, 0] == STAPLE and (ranked.ids[1, 1:] == -1).all()
    allowed = model.popular_in(["Food > Dairy"], 5, candidates=np.array([2, 3, 4])).ids[0]
    np.testing.assert_array_equal(np.sort(allowed[allowed >= 0]), [2, 4])
    with pytest.raises(UnknownIdError, match="Toys"):
        model.popular_in(["Toys"])


def test_category_depth_groups_paths(board: Board) -> None:
    model = Popularity(category_depth=1).fit(board.matrix, items=board.items)
    assert model.categories_.tolist() == ["Food", "Home", "Store"]


def test_counts_customers_or_weights() -> None:
    matrix = sparse.csr_matrix(np.array([[9.0, 1.0], [0.0, 1.0]], np.float32))
    assert Popularity().fit(matrix).recommend(matrix, 1).ids[0, 0] == 1
    assert Popularity(by="weight").fit(matrix).recommend(matrix, 1).ids[0, 0] == 0
    with pytest.raises(ValueError, match="by must"):
        Popularity(by="money").fit(matrix)


def test_trending_favours_fast_selling_new_products() -> None:
    matrix = sparse.csr_matrix(np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]], np.float32))
    items = ItemFeatures(text=["", ""], category=np.array(["", ""], dtype=object),
                         first_sold_days=np.array([300.0, 3.0], np.float32))
    assert Popularity().fit(matrix, items=items).recommend(matrix, 1).ids[0, 0] == 0
    assert Trending().fit(matrix, items=items).recommend(matrix, 1).ids[0, 0] == 1
    assert Trending().fit(matrix).recommend(matrix, 1).ids[0, 0] == 0  # no launch dates
