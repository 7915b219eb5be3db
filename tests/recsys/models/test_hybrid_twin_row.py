"""The one-row ``new`` part (``Hybrid._twin_row``) is scipy's sparse product, to the bit."""

from __future__ import annotations

import numpy as np

from recsys.data.dataset import IdMap, build_interactions
from recsys.data.features import item_features
from recsys.data.synthetic import generate
from recsys.models import Hybrid


def test_twin_row_equals_the_sparse_product_bit_for_bit() -> None:
    data = generate(n_customers=300, n_products=400, seed=3)
    products = IdMap(sorted(data.products["product_id"].astype(str)))
    inter = build_interactions(data.transactions, products=products)
    items = item_features(data.products, data.transactions, products)
    # fit on the first half of the customers: products only the others bought have no sales
    matrix = inter.matrix[: inter.matrix.shape[0] // 2]
    model = Hybrid(cf_params={"factors": 8, "iterations": 3, "num_threads": 1}).fit(
        matrix, items=items)
    assert model._twins.nnz > 0
    reached_any = 0
    for r in range(inter.matrix.shape[0]):
        again = model.buyagain_.repurchase_scores(inter.matrix[r])
        expected = (again @ model._twins).toarray()[0]
        items, sums = model._twin_row(again.data, again.indices)
        assert sums.dtype == np.float32 and (np.diff(items) > 0).all()
        dense = np.zeros_like(expected)
        dense[items] = sums
        assert dense.tobytes() == expected.tobytes()  # the same floats, zero elsewhere
        reached_any += bool((sums != 0).any())
    assert reached_any > 0
