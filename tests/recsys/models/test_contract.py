"""The recommender contract (DESIGN.md B3), run over every model in the registry."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from scipy import sparse

from recsys.errors import NotFittedError
from recsys.models import REGISTRY, ItemFeatures, Ranked, RecommenderBase, make_model
from tests.recsys.models.board import STAPLE, Board, N, build

NAMES = sorted(REGISTRY)
DISCOVERY = {"itemknn", "ease", "als", "bpr", "content", "hybrid", "tifuknn"}
pytestmark = pytest.mark.parametrize("name", NAMES)


def assert_same_ranking(a: Ranked, b: Ranked, tol: float = 1e-5) -> None:
    """Equal scores (to float rounding) and equal ids wherever the score is not a near-tie.

    The last column only serves to detect ties at the cut-off and is not compared.
    """
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=tol)
    gaps = np.abs(np.diff(np.where(np.isfinite(a.scores), a.scores, -1e30), axis=1))
    unique = np.ones(a.ids.shape, bool)
    unique[:, 1:] &= gaps > tol
    unique[:, :-1] &= gaps > tol
    unique[:, -1] = False
    np.testing.assert_array_equal(a.ids[unique], b.ids[unique])


def test_checkerboard_right_answer(name: str, fitted: RecommenderBase, board: Board) -> None:
    users = np.arange(N)
    if name == "ranker":
        pytest.skip("the learned ranker has no single right answer on a board without time; "
                    "tests/recsys/models/test_ranker.py checks it on a shop with one")
    if name in DISCOVERY:  # the only unbought item of the customer's own parity
        top = fitted.recommend(board.matrix, 1, users=users, exclude=board.matrix).ids[:, 0]
        np.testing.assert_array_equal(top, np.arange(N))
    elif name == "buyagain":  # the item bought three times as often
        top = fitted.recommend(board.matrix, 1, users=users).ids[:, 0]
        np.testing.assert_array_equal(top, (np.arange(N) + 2) % N)
    else:  # everyone bought the staple
        top = fitted.recommend(board.matrix, 1, users=users).ids[:, 0]
        np.testing.assert_array_equal(top, np.full(N, STAPLE))


def test_own_only_ranks_the_rows_own_products_first(name: str, fitted: RecommenderBase,
                                                     board: Board) -> None:
    """The buy-again mode's question: every model answers it with the row's own products
    (the popularity-filled buy-again model then adds best sellers after them)."""
    users = np.arange(N, dtype=np.int32)
    ranked, kinds, anchors = fitted.recommend_with_reasons(board.matrix, 3, users=users,
                                                           own_only=True)
    assert ranked.ids.shape == kinds.shape == anchors.shape == (N, 3)
    for row in range(N):
        picks = ranked.ids[row][ranked.ids[row] >= 0]
        own = np.isin(picks, board.matrix[row].indices)
        assert own[0] and (name == "buyagain" or own.all())
        assert not (own[1:] & ~own[:-1]).any()  # nothing of its own after a best seller


def test_batch_equals_row_by_row(name: str, fitted: RecommenderBase, board: Board) -> None:
    for users in (np.arange(N, dtype=np.int32), None):
        batch = fitted.recommend(board.matrix, 5, users=users)
        for row in range(N):
            one = fitted.recommend(board.matrix[row], 5,
                                   users=None if users is None else users[row:row + 1])
            assert one.ids.shape == (1, 5)
            assert_same_ranking(Ranked(batch.ids[row:row + 1], batch.scores[row:row + 1]), one)


def test_exclude_is_respected(name: str, fitted: RecommenderBase, board: Board) -> None:
    rng = np.random.default_rng(0)
    exclude = sparse.random(N, board.n_items, density=0.5, format="csr", random_state=rng)
    ranked = fitted.recommend(board.matrix, board.n_items, exclude=exclude)
    for row in range(N):
        returned = set(ranked.ids[row][ranked.ids[row] >= 0].tolist())
        assert not returned & set(exclude[row].indices.tolist())


def test_candidates_are_respected(name: str, fitted: RecommenderBase, board: Board) -> None:
    candidates = np.array([0, 3, 4, 9, STAPLE])
    ranked = fitted.recommend(board.matrix, 8, candidates=candidates)
    assert ranked.ids.shape == (N, 8)
    assert np.isin(ranked.ids[ranked.ids >= 0], candidates).all()
    assert (ranked.ids[:, len(candidates):] == -1).all()
    mask = np.zeros(board.n_items, bool)
    mask[candidates] = True
    as_mask = fitted.recommend(board.matrix, 8, candidates=mask)  # the serving filters' form
    np.testing.assert_array_equal(as_mask.ids, ranked.ids)
    np.testing.assert_array_equal(as_mask.scores, ranked.scores)


def test_n_larger_than_catalog_is_padded(name: str, fitted: RecommenderBase,
                                         board: Board) -> None:
    n = board.n_items + 7
    ranked = fitted.recommend(board.matrix, n)
    assert ranked.ids.shape == ranked.scores.shape == (N, n)
    assert ranked.ids.dtype == np.int32 and ranked.scores.dtype == np.float32
    assert (ranked.ids[:, board.n_items:] == -1).all()
    np.testing.assert_array_equal(ranked.ids == -1, np.isneginf(ranked.scores))
    for row in ranked.ids:
        valid = row[row >= 0]
        assert len(valid) == len(set(valid.tolist()))
        assert (row[len(valid):] == -1).all()  # padding only at the end
    for ids, scores in zip(ranked.ids, ranked.scores, strict=True):
        assert (np.diff(scores[ids >= 0]) <= 0).all()  # best first


def test_empty_history_rows(name: str, fitted: RecommenderBase, board: Board) -> None:
    history = board.matrix.copy().tolil()
    history[[1, 4]] = 0
    history = history.tocsr()
    history.eliminate_zeros()
    ranked = fitted.recommend(history, 5)
    empty = ranked.ids[[1, 4]]
    if type(fitted).cold_start:
        assert (empty >= 0).all()  # falls back to non-personalised picks
    else:
        assert (empty == -1).all() and np.isneginf(ranked.scores[[1, 4]]).all()
    assert (ranked.ids[[0, 2, 3]] >= 0).any(axis=1).all()


def test_cold_start_models_are_the_non_personalised_ones(name: str) -> None:
    assert REGISTRY[name].cold_start == (name in {"popularity", "trending", "hybrid", "buyagain",
                                                  "ranker"})


def test_fold_in_agrees_with_stored_users(name: str, fitted: RecommenderBase,
                                          board: Board) -> None:
    users = np.arange(N, dtype=np.int32)
    stored = fitted.recommend(board.matrix, 3, users=users, exclude=board.matrix)
    folded = fitted.recommend(board.matrix, 3, users=None, exclude=board.matrix)
    marked = fitted.recommend(board.matrix, 3, users=np.full(N, -1), exclude=board.matrix)
    assert_same_ranking(folded, marked)
    if getattr(fitted, "stores_users", False) or name == "hybrid":
        assert (stored.ids[:, 0] == folded.ids[:, 0]).mean() >= 0.9
    else:  # no user state: users change nothing
        assert_same_ranking(stored, folded, tol=0.0)


def test_state_round_trip_is_bit_identical(name: str, fitted: RecommenderBase,
                                           board: Board) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **fitted.state())
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        state = {k: npz[k] for k in npz.files}
    params = json.loads(json.dumps(fitted.get_params()))  # the bundle keeps params as JSON
    restored = type(fitted).from_state(params, state)
    for users in (np.arange(N, dtype=np.int32), None):
        a = fitted.recommend(board.matrix, 6, users=users)
        b = restored.recommend(board.matrix, 6, users=users)
        np.testing.assert_array_equal(a.ids, b.ids)
        np.testing.assert_array_equal(a.scores, b.scores)
    items = np.arange(board.n_items)
    np.testing.assert_array_equal(fitted.similar_items(items, 4).ids,
                                  restored.similar_items(items, 4).ids)
    with pytest.raises(ValueError, match="state lacks"):
        type(fitted).from_state(params, {})


def test_similar_items_exclude_the_item_itself(name: str, fitted: RecommenderBase,
                                               board: Board) -> None:
    items = np.arange(board.n_items)
    ranked = fitted.similar_items(items, 5)
    assert ranked.ids.shape == (board.n_items, 5)
    assert not (ranked.ids == items[:, None]).any()
    assert (ranked.ids[:, 0] >= 0).all()


def test_unfitted_model_raises_not_fitted(name: str, board: Board) -> None:
    model = build(name)
    with pytest.raises(NotFittedError):
        model.recommend(board.matrix, 3)
    with pytest.raises(NotFittedError):
        model.similar_items(np.array([0]))
    with pytest.raises(NotFittedError):
        model.state()


def test_bad_inputs_raise(name: str, fitted: RecommenderBase, board: Board) -> None:
    h = board.matrix
    bad_calls = [
        lambda: fitted.recommend(h[:, :-1], 3),
        lambda: fitted.recommend(h, 0),
        lambda: fitted.recommend(h, 3, users=np.arange(N - 1)),
        lambda: fitted.recommend(h, 3, users=np.full(N, -2)),
        lambda: fitted.recommend(h, 3, exclude=h[:-1]),
        lambda: fitted.recommend(h, 3, candidates=np.array([board.n_items])),
        lambda: fitted.recommend(h, 3, candidates=np.ones(board.n_items + 1, bool)),
        lambda: fitted.similar_items(np.array([board.n_items])),
        lambda: build(name).fit(h, items=ItemFeatures(text=board.items.text[:-1],
                                                      category=board.items.category[:-1])),
        lambda: build(name).fit(-h),
    ]
    for call in bad_calls:
        with pytest.raises(ValueError):
            call()
    with pytest.raises(TypeError):
        fitted.recommend(h.toarray(), 3)


def test_sklearn_conventions(name: str, board: Board) -> None:
    model = make_model(name)
    params = model.get_params()
    assert type(model)(**params).get_params() == params
    assert model.fit(board.matrix, items=board.items, baskets=board.baskets) is model
    assert model.get_params() == params  # fit never changes hyper-parameters
    with pytest.raises(ValueError, match="bad parameters"):
        make_model(name, not_a_parameter=1)


def test_make_model_rejects_unknown_names(name: str) -> None:
    with pytest.raises(ValueError, match="unknown model"):
        make_model(name + "_nope")
