"""TIFU-KNN against values computed by hand from the paper's definition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recsys.data.baskets import build_baskets
from recsys.data.dataset import IdMap
from recsys.models import TIFUKNN

PRODUCTS = IdMap(np.array(["A", "B", "C", "D"]))


def baskets_of(orders: dict[str, list[list[str]]]):  # type: ignore[no-untyped-def]
    """One order per day per customer, in the listed order."""
    rows = [(c, p, f"{c}-{day}", pd.Timestamp("2024-01-01") + pd.Timedelta(days=day))
            for c, days in orders.items() for day, basket in enumerate(days) for p in basket]
    tx = pd.DataFrame(rows, columns=["customer_id", "product_id", "order_id", "timestamp"])
    tx["quantity"] = 1.0
    customers = IdMap(np.array(sorted(orders)))
    baskets = build_baskets(tx, customers, PRODUCTS)
    return baskets, sparse.csr_matrix(baskets.counts())


def test_vector_decays_within_and_across_groups() -> None:
    # baskets oldest first: {A}, {B}, {A, C}; groups of 2 from the latest: [{B}, {A, C}], [{A}]
    baskets, counts = baskets_of({"u": [["A"], ["B"], ["A", "C"]]})
    model = TIFUKNN(k=1, group_size=2, r_b=0.5, r_g=0.4, alpha=1.0).fit(counts,
                                                                       baskets=baskets)
    # latest group: (1 * {A,C} + 0.5 * {B}) / 2; older group {A} / 1, decayed 0.4; over 2 groups
    expected = (np.array([0.5, 0.25, 0.5, 0]) + 0.4 * np.array([1.0, 0, 0, 0])) / 2
    np.testing.assert_allclose(model.score_rows(counts, np.array([0])).toarray()[0], expected,
                               rtol=1e-6)


def test_score_blends_own_vector_with_the_nearest_customers_mean() -> None:
    orders = {"a": [["A"], ["A", "B"]], "b": [["A", "B"], ["B"]], "c": [["C", "D"]],
              "d": [["D"], ["C"], ["A"]]}
    baskets, counts = baskets_of(orders)
    model = TIFUKNN(k=2, group_size=1, r_b=1.0, r_g=0.5, alpha=0.3).fit(counts,
                                                                       baskets=baskets)
    own = TIFUKNN(k=2, group_size=1, r_b=1.0, r_g=0.5, alpha=1.0).fit(
        counts, baskets=baskets).score_rows(counts, np.arange(4)).toarray()
    unit = own / np.linalg.norm(own, axis=1, keepdims=True)
    cosine = unit @ unit.T
    np.fill_diagonal(cosine, -np.inf)
    near = np.argsort(-cosine, axis=1, kind="stable")[:, :2]
    similar = np.take_along_axis(cosine, near, axis=1) > 0  # c's 2nd nearest shares nothing
    assert not similar.all()
    expected = 0.3 * own + 0.7 * (own[near] * similar[:, :, None]).sum(axis=1) / 2
    got = model.score_rows(counts, np.arange(4)).toarray()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert set(model.neighbours_[0].tolist()) == set(near[0].tolist())
    assert (model.neighbours_ != np.arange(4)[:, None]).all()  # never itself
    # recommend ranks by the same scores; products with no support are not returned
    ranked = model.recommend(counts, 4, users=np.arange(4))
    for row in range(4):
        support = np.flatnonzero(expected[row] > 0)
        assert set(ranked.ids[row][ranked.ids[row] >= 0].tolist()) == set(support.tolist())


def test_live_customer_is_one_group_from_its_history_and_stored_neighbours() -> None:
    orders = {"a": [["A", "B"]], "b": [["C"], ["C", "D"]]}
    baskets, counts = baskets_of(orders)
    model = TIFUKNN(k=1, group_size=3, alpha=0.6).fit(counts, baskets=baskets)
    history = sparse.csr_matrix(np.array([[0.0, 0.0, 2.0, 1.0]], np.float32))
    got = model.score_rows(history, np.array([-1])).toarray()[0]
    stored_b = model.score_rows(counts[1], np.array([1])).toarray()[0]
    vector_b = TIFUKNN(k=1, group_size=3, alpha=1.0).fit(counts, baskets=baskets).score_rows(
        counts[1], np.array([1])).toarray()[0]  # b's own stored vector
    np.testing.assert_allclose(got, 0.6 * np.array([0, 0, 1.0, 0.5]) + 0.4 * vector_b,
                               rtol=1e-6)
    # a shares no product with b: b has no neighbour, the rest of its score is 0
    assert (model.neighbours_[1] == -1).all()
    np.testing.assert_allclose(stored_b, 0.6 * vector_b, rtol=1e-6)
    # no history and no stored row: nothing to go on
    empty = model.recommend(sparse.csr_matrix((1, 4), dtype=np.float32), 2, users=[-1])
    assert (empty.ids == -1).all()


def test_baskets_must_match_the_matrix() -> None:
    baskets, counts = baskets_of({"a": [["A"]], "b": [["B"]]})
    with pytest.raises(ValueError, match="baskets cover"):
        TIFUKNN().fit(counts[:1], baskets=baskets)
    for bad in ({"r_b": 0.0}, {"r_g": 1.5}, {"alpha": -0.1}, {"k": 0}, {"group_size": 0}):
        with pytest.raises(ValueError):
            TIFUKNN(**bad).fit(counts, baskets=baskets)


def test_sparse_neighbour_sums_equal_the_dense_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    orders = {f"c{u}": [list(rng.choice(list("ABCD"), size=rng.integers(1, 4), replace=False))
                        for _ in range(rng.integers(1, 6))] for u in range(30)}
    baskets, counts = baskets_of(orders)
    model = TIFUKNN(k=4, group_size=2).fit(counts, baskets=baskets)
    users = np.r_[np.arange(30), -1, -1]
    history = sparse.vstack([counts, counts[:2]]).tocsr()
    dense = model.score_rows(history, users).toarray()
    monkeypatch.setattr("recsys.models.tifuknn._SIM_CELLS", 0)  # a huge customer base
    np.testing.assert_allclose(model.score_rows(history, users).toarray(), dense, rtol=1e-5)
    np.testing.assert_allclose(dense[30:], TIFUKNN(k=4, group_size=2).fit(
        counts, baskets=baskets).score_rows(counts[:2]).toarray(), rtol=1e-6)  # live rows
