"""EASE: the closed form equals one ridge regression per item, and the item cap holds."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from recsys.models import EASE


def test_weights_solve_each_items_ridge_regression() -> None:
    rng = np.random.default_rng(3)
    dense = (rng.random((30, 6)) < 0.4).astype(np.float32) * rng.integers(1, 4, (30, 6))
    lam = 2.5
    model = EASE(regularization=lam).fit(sparse.csr_matrix(dense))
    order = model.item_index_
    weights = np.zeros((6, 6))
    weights[np.ix_(order, order)] = model.weights_
    x = dense.astype(np.float64)
    for j in range(6):  # predict column j from the other columns, ridge penalty lam
        others = [i for i in range(6) if i != j]
        a = x[:, others]
        coef = np.linalg.solve(a.T @ a + lam * np.eye(5), a.T @ x[:, j])
        np.testing.assert_allclose(weights[others, j], coef, rtol=1e-4, atol=1e-5)
        assert weights[j, j] == 0.0
    scores = model.recommend(sparse.csr_matrix(dense[:2]), 6).scores
    expected = np.sort(dense[:2] @ weights, axis=1)[:, ::-1]
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)


def test_max_items_keeps_the_most_bought_items_only() -> None:
    dense = np.zeros((5, 4), np.float32)
    dense[:, 0] = 1  # 5 buyers
    dense[:3, 2] = 1  # 3 buyers
    dense[:1, 3] = 1  # 1 buyer; item 1 never bought
    model = EASE(regularization=1.0, max_items=2).fit(sparse.csr_matrix(dense))
    np.testing.assert_array_equal(model.item_index_, [0, 2])
    ranked = model.recommend(sparse.csr_matrix(dense), 4)
    assert np.isin(ranked.ids[ranked.ids >= 0], [0, 2]).all()
    assert (ranked.ids[:, 2:] == -1).all()
    assert np.isneginf(model.similar_items(np.array([3]), 2).scores).all()  # not modelled
