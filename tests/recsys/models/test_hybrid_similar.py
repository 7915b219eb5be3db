"""The hybrid's one-item ``similar_items`` gives the answer of the dense computation it replaced."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import sparse

from recsys.data.dataset import IdMap, build_interactions
from recsys.data.features import ItemFeatures, item_features
from recsys.data.synthetic import generate
from recsys.models import Hybrid
from recsys.models import hybrid as hybrid_module
from recsys.models._common import row_max_scale
from recsys.models.base import Ranked, top_n

UNSOLD = 20  # products added without sales, half of them with the text of a sold one
CF = {"als": {"factors": 16, "iterations": 8, "num_threads": 1},
      "bpr": {"factors": 16, "iterations": 20, "num_threads": 1}}
_FITTED: dict[tuple[str, bool, float, bool], Hybrid] = {}


@pytest.fixture(scope="module")
def catalog() -> tuple[sparse.csr_matrix, ItemFeatures]:
    """Synthetic purchases plus unsold products; every 7th product repeats the text of the
    one before (sizes and flavours), so that many products share a text vector."""
    data = generate(n_customers=400, n_products=300, seed=5)
    products = IdMap(sorted(data.products["product_id"].astype(str)))
    matrix = build_interactions(data.transactions, products=products).matrix
    items = item_features(data.products, data.transactions, products)
    sold = matrix.shape[1]
    matrix = sparse.hstack([matrix, sparse.csr_matrix((matrix.shape[0], UNSOLD),
                                                      dtype=np.float32)]).tocsr()
    text = [*items.text, *(items.text[i] if i % 2 else f"new product {i}" for i in
                           range(UNSOLD))]
    for i in range(1, len(text), 7):
        text[i] = text[i - 1]
    items = ItemFeatures(text=text, category=np.append(items.category,
                                                       items.category[:UNSOLD]).astype(object))
    assert len(items) == sold + UNSOLD
    return matrix, items


def fitted(catalog: tuple[sparse.csr_matrix, ItemFeatures], cf: str = "als",
           content: bool = True, content_weight: float = 0.01, unsold_vectors: bool = False
           ) -> Hybrid:
    """A hybrid fitted once per module; ``unsold_vectors`` gives the products without sales
    non-zero CF vectors (implicit's ALS and BPR leave them at zero; others may not)."""
    key = (cf, content, content_weight, unsold_vectors)
    if key not in _FITTED:
        matrix, items = catalog
        if not content:
            items = dataclasses.replace(items, text=[""] * len(items))
        model = Hybrid(cf=cf, cf_params=CF[cf], content_weight=content_weight
                       ).fit(matrix, items=items)
        if unsold_vectors:
            factors = model.cf_.item_factors_.copy()
            unsold = ~model.item_seen_
            factors[unsold] = np.random.default_rng(0).normal(
                0.0, 2 * factors[~unsold].std(), (unsold.sum(), factors.shape[1]))
            model.cf_.item_factors_ = factors
        _FITTED[key] = model
    return _FITTED[key]


def dense_row(model: Hybrid, item: int) -> np.ndarray:
    """The dense computation ``similar_items`` replaced: both parts over the whole catalog,
    blended for a sold product, the item itself at -inf."""
    def similarity(unit: np.ndarray) -> np.ndarray:
        return row_max_scale(unit[[item]] @ unit.T)

    cf = similarity(model.cf_.unit_item_vectors()) * model.item_seen_
    if model.has_content_:
        content = similarity(model.content_.unit_item_vectors())
        blend = model.cf_weight * cf + max(model.content_weight, 1e-3) * content
    else:
        content = row_max_scale(model.popularity_._item_similarity(np.array([item])))
        blend = cf
    row = np.array((blend if model.item_seen_[item] else content)[0], np.float32)
    row[item] = -np.inf
    return row


def assert_same_answer(got: Ranked, row: np.ndarray, n: int) -> int:
    """``got`` is ``row``'s top ``n``; ids may differ only between scores equal up to the
    rounding of the dot products. Returns the number of such swaps."""
    want = top_n(row[None], n)
    assert got.ids.shape == got.scores.shape == (1, n)
    assert got.ids.dtype == np.int32 and got.scores.dtype == np.float32
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(got.ids < 0, want.ids < 0)
    ids, wanted = got.ids[0][got.ids[0] >= 0], want.ids[0][want.ids[0] >= 0]
    assert len(set(ids.tolist())) == len(ids)
    np.testing.assert_allclose(row[ids], got.scores[0][: len(ids)], rtol=1e-6, atol=1e-6)
    swapped = ids != wanted
    np.testing.assert_allclose(row[ids[swapped]], row[wanted[swapped]], rtol=1e-6, atol=1e-6)
    return int(swapped.sum())


@pytest.mark.parametrize(("cf", "content", "content_weight", "unsold_vectors"),
                         [("als", True, 0.01, False), ("als", True, 0.3, False),
                          ("als", True, 3.0, False),  # content outweighs CF: dense rows
                          ("als", False, 0.01, False), ("bpr", True, 0.01, False),
                          ("als", True, 0.01, True), ("als", False, 0.01, True)])
def test_one_item_gives_the_dense_answer(catalog: tuple[sparse.csr_matrix, ItemFeatures],
                                         monkeypatch: pytest.MonkeyPatch, cf: str,
                                         content: bool, content_weight: float,
                                         unsold_vectors: bool) -> None:
    model = fitted(catalog, cf, content, content_weight, unsold_vectors)
    assert model.has_content_ == content
    scanned = len(model._similarity_index()[0])
    assert scanned == (model.n_items_ if unsold_vectors else model.item_seen_.sum())
    n_items = model.n_items_
    monkeypatch.setattr(model, "_item_similarity", None)  # one item never takes the dense way
    cold = np.flatnonzero(~model.item_seen_)
    assert len(cold) >= UNSOLD
    items = np.concatenate([np.flatnonzero(model.item_seen_)[::9], cold[::3], [n_items - 1]])
    swaps = total = 0
    for item in items:
        row = dense_row(model, int(item))
        for n in (1, 5, 10, 40, n_items + 3):  # below and above n_items / SIMILAR_STRIDE
            swaps += assert_same_answer(model.similar_items(np.array([item]), n), row, n)
            total += min(n, n_items - 1)
    assert swaps <= total // 100


def test_the_blend_ranks_few_products(catalog: tuple[sparse.csr_matrix, ItemFeatures],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of it: a sold product's blend is computed on candidates, and the dense
    row only when the bounds cannot settle it (here: never at n = 5)."""
    model = fitted(catalog)
    sizes: list[int] = []
    real = hybrid_module.top_n

    def counting(scores: np.ndarray, n: int) -> Ranked:
        sizes.append(scores.shape[1])
        return real(scores, n)

    monkeypatch.setattr(hybrid_module, "top_n", counting)
    monkeypatch.setattr(model, "_similarity_row", None)
    for item in np.flatnonzero(model.item_seen_)[:40]:
        model.similar_items(np.array([item]), 5)
    assert len(sizes) == 40 and np.median(sizes) < model.n_items_ / 4


def test_products_with_equal_texts_tie_by_column(
        catalog: tuple[sparse.csr_matrix, ItemFeatures]) -> None:
    model = fitted(catalog)
    codes = model._similarity_index()[-1]  # each product's text
    shared = np.bincount(codes)[codes] > 1
    item = int(np.flatnonzero(~model.item_seen_ & shared)[0])  # unsold, with a twin's text
    twins = np.flatnonzero(codes == codes[item])
    twins = twins[twins != item]
    ranked = model.similar_items(np.array([item]), len(twins))
    np.testing.assert_array_equal(ranked.ids[0], twins)  # content 1 for all, first columns
    assert (ranked.scores[0] == ranked.scores[0, 0]).all()


def test_batches_and_bad_input_take_the_dense_way(
        catalog: tuple[sparse.csr_matrix, ItemFeatures]) -> None:
    model = fitted(catalog)
    items = np.array([3, int(np.flatnonzero(~model.item_seen_)[0])])
    batch = model.similar_items(items, 10)
    for r, item in enumerate(items):
        assert_same_answer(Ranked(batch.ids[r:r + 1], batch.scores[r:r + 1]),
                           dense_row(model, int(item)), 10)
    for bad in ([model.n_items_], [-1], [[1]]):
        with pytest.raises(ValueError):
            model.similar_items(np.array(bad), 10)


def test_the_index_follows_refits(catalog: tuple[sparse.csr_matrix, ItemFeatures]) -> None:
    matrix, items = catalog
    model = Hybrid(cf_params=CF["als"]).fit(matrix, items=items)
    model.similar_items(np.array([0]), 5)
    model.fit(matrix[: matrix.shape[0] // 2], items=items)  # fewer sold products, new vectors
    row = dense_row(model, 0)
    assert_same_answer(model.similar_items(np.array([0]), 10), row, 10)


@pytest.mark.parametrize("values", [[0.5, -0.2, 0.9, 0.1], [-1.0, -2.0], [0.0, 0.0],
                                    [0.3, np.nan, 0.6], [np.inf, 0.2], [-np.inf, 0.4]])
def test_clip_max_scales_as_row_max_scale(values: list[float]) -> None:
    row = np.array(values, np.float32)
    want = row_max_scale(row[None])[0]
    clipped, top = hybrid_module._clip_max(row.copy())
    np.testing.assert_array_equal(clipped / top, want)
