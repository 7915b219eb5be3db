"""BPR: reproducible with one thread; the fold-in map tracks the stored users."""

from __future__ import annotations

import numpy as np

from recsys.models import BPR
from tests.recsys.models.board import FAST, Board


def test_same_seed_same_factors(board: Board) -> None:
    a = BPR(**FAST["bpr"]).fit(board.matrix)
    b = BPR(**FAST["bpr"]).fit(board.matrix)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)


def test_fold_in_approximates_stored_users(board: Board) -> None:
    model = BPR(**FAST["bpr"]).fit(board.matrix)
    folded = model.fold_in(board.matrix)
    assert folded.shape == model.user_factors_.shape
    assert (folded[:, -1] == 1).all()  # the bias column
    cos = np.sum(folded[:, :-1] * model.user_factors_[:, :-1], axis=1) / (
        np.linalg.norm(folded[:, :-1], axis=1) * np.linalg.norm(model.user_factors_[:, :-1],
                                                                axis=1))
    assert np.median(cos) > 0.8
