"""Content model: never-sold products get recommended and get neighbours; no pickled state."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsys.data.features import ItemFeatures
from recsys.models import ContentTFIDF
from tests.recsys.models.board import STAPLE, Board, N, make_board, with_new_product


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


def test_repeated_texts_give_the_full_catalog_tfidf() -> None:
    """Analysing each distinct text once (weighted by its copies) changes nothing: the idf and
    TF-IDF rows equal sklearn's on the full catalog, and copies share one vector."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = ["whole milk 1l", "whole milk 1l", "whole milk 1l", "skim milk 1l", "soap bar",
             "soap bar", "dish soap lemon", "lemon curd"]
    items = ItemFeatures(text=texts, category=np.array([""] * len(texts), dtype=object))
    matrix = sparse.csr_matrix(np.ones((1, len(texts)), np.float32))
    model = ContentTFIDF(dims=3).fit(matrix, items=items)
    reference = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)
    expected = reference.fit_transform(texts)
    order = np.argsort(reference.get_feature_names_out())
    np.testing.assert_array_equal(reference.get_feature_names_out()[order], model.vocabulary_)
    np.testing.assert_allclose(reference.idf_[order], model.idf_, rtol=1e-6)
    np.testing.assert_allclose(expected[:, order].toarray(), model._tfidf(texts).toarray(),
                               atol=1e-6)
    vectors = model.item_vectors_
    np.testing.assert_array_equal(vectors[0], vectors[1])
    np.testing.assert_array_equal(vectors[4], vectors[5])


def test_neighbours_match_brute_force(launched) -> None:
    board, new, model = launched
    unit = model.item_vectors_
    queries, pool = np.array([0, 3, new]), np.arange(1, board.n_items - 1, 2)
    found = model.neighbours(queries, pool, 2, 0.1).tocsc()
    for q in queries:
        sims = unit[pool] @ unit[q]
        keep = sims >= 0.1
        best = pool[keep][np.argsort(-sims[keep], kind="stable")[:2]]
        col = found[:, q]
        np.testing.assert_array_equal(np.sort(col.indices), np.sort(best))
        np.testing.assert_allclose(col.toarray().ravel()[best], unit[best] @ unit[q],
                                   rtol=1e-5)
    groups = np.arange(board.n_items) % 3  # neighbours only from the query's group
    grouped = model.neighbours(queries, np.arange(board.n_items), 4, -1.0, groups).tocoo()
    assert len(grouped.data) == 4 * len(queries)
    np.testing.assert_array_equal(groups[grouped.row], groups[grouped.col])
