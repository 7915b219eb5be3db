"""Fixtures of the model tests: the checkerboard (see ``board.py``) and models fitted on it."""

from __future__ import annotations

import pytest

from recsys.models import RecommenderBase
from tests.recsys.models.board import Board, build, make_board

_FITTED: dict[str, RecommenderBase] = {}


@pytest.fixture(scope="session")
def board() -> Board:
    return make_board()


@pytest.fixture
def fitted(request: pytest.FixtureRequest, board: Board) -> RecommenderBase:
    """The model named by the test's ``name`` parameter, fitted once per session on the board.

    Tests must not modify it.
    """
    name = request.getfixturevalue("name")
    if name not in _FITTED:
        _FITTED[name] = build(name).fit(board.matrix, items=board.items,
                                        baskets=board.baskets)
    return _FITTED[name]
