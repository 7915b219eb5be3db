"""ALS: fold-in reproduces the stored users; stored users are used only when given."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from recsys.models import ALS
from tests.recsys.models.board import FAST, Board, N


def test_fold_in_equals_stored_user_factors(board: Board) -> None:
    model = ALS(**FAST["als"]).fit(board.matrix)
    np.testing.assert_allclose(model.fold_in(board.matrix), model.user_factors_, rtol=1e-4,
                               atol=1e-5)
    stored = model.recommend(board.matrix, 5, users=np.arange(N))
    folded = model.recommend(board.matrix, 5)
    np.testing.assert_allclose(stored.scores, folded.scores, rtol=1e-4, atol=1e-5)


def test_users_select_stored_vectors_and_minus_one_folds_in(board: Board) -> None:
    model = ALS(**FAST["als"]).fit(board.matrix)
    fresh = sparse.csr_matrix(board.matrix[[1]])  # customer 1's basket (odd items)
    as_user0 = model.recommend(fresh, 3, users=np.array([0]))  # stored vector of customer 0
    folded = model.recommend(fresh, 3, users=np.array([-1]))
    assert (as_user0.ids[0] % 2 == 0).sum() >= 2  # customer 0 buys even items
    assert (folded.ids[0] % 2 == 1).sum() >= 2


def test_seeded_and_alpha_sensitive(board: Board) -> None:
    a = ALS(**FAST["als"]).fit(board.matrix)
    b = ALS(**FAST["als"]).fit(board.matrix)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    c = ALS(**{**FAST["als"], "alpha": 5.0}).fit(board.matrix)
    assert not np.allclose(a.item_factors_, c.item_factors_)
