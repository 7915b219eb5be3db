"""Item-kNN: each weighting gives a zero-diagonal, k-sparse similarity."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.models import ItemKNN
from tests.recsys.models.board import Board


@pytest.mark.parametrize("weighting", ["cosine", "bm25", "tfidf"])
def test_weightings_give_sparse_neighbourhoods(weighting: str, board: Board) -> None:
    model = ItemKNN(weighting=weighting, neighbours=4, num_threads=1).fit(board.matrix)
    sim = model.similarity_
    assert sim.diagonal().sum() == 0
    assert np.diff(sim.indptr).max() <= 4
    top = model.similar_items(np.arange(24), 1).ids[:, 0]
    assert ((top % 2) == (np.arange(24) % 2)).all()  # neighbours share the board's parity


def test_unknown_weighting_is_rejected(board: Board) -> None:
    with pytest.raises(ValueError, match="weighting"):
        ItemKNN(weighting="jaccard").fit(board.matrix)
