"""Content model: never-sold products get recommended and get neighbours; no pickled state."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsys.models import ContentTFIDF
from recsys.models.base import ItemFeatures
from tests.recsys.models.board import N, STAPLE, Board, make_board, with_new_product


@pytest.fixture(scope="module")
def launched() -> tuple[Board, int, ContentTFIDF]:
    board, new = with_new_product(make_board())
    return board, new, ContentTFIDF().fit(board.matrix, items=board.items)


def test_never_sold_product_is_recommended_to_its_audience(launched) -> None:
    board, new, model = launched
    top = model.recommend(board.matrix, 3, exclude=board.matrix).ids
    even = np.arange(N) % 2 == 0
    assert (top[even] == new).any(axis=1).all()  # dairy buyers see the new dairy product
    assert not (top[~even] == new).any()


def test_never_sold_product_has_neighbours(launched) -> None:
    board, new, model = launched
    neighbours = model.similar_items(np.array([new]), 5).ids[0]
    assert (neighbours % 2 == 0).all() and STAPLE not in neighbours


def test_embed_reproduces_item_vectors_without_refit(launched) -> None:
    board, _, model = launched
    restored = ContentTFIDF.from_state(model.get_params(), model.state())
    np.testing.assert_allclose(restored.embed(board.items.text), model.item_vectors_, atol=1e-6)
    fresh = restored.embed(["yoghurt kefir", "bleach scrub"])
    assert fresh.shape == (2, model.item_vectors_.shape[1])
    sims = fresh @ model.item_vectors_.T
    assert sims[0].argmax() % 2 == 0 and sims[1].argmax() % 2 == 1
    assert all(v.dtype != object for v in model.state().values())


def test_needs_item_text() -> None:
    matrix = sparse.csr_matrix(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="needs items"):
        ContentTFIDF().fit(matrix)
    blank = ItemFeatures(text=["", " ", ""], category=np.array(["", "", ""], dtype=object))
    with pytest.raises(ValueError, match="no text"):
        ContentTFIDF().fit(matrix, items=blank)
    with pytest.raises(TypeError):
        ContentTFIDF().fit(matrix, items=ItemFeatures(text=["a b", "c d", "e f"],
                                                      category=np.array(["", "", ""]))
                           ).embed("one string")
