"""The hybrid's candidate ranking (small batches, online calls) gives the full blend's answer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsys.data.dataset import IdMap, build_interactions
from recsys.data.features import item_features
from recsys.data.synthetic import generate
from recsys.models import Hybrid
from recsys.models import hybrid as hybrid_module

ROWS = 60


@pytest.fixture(autouse=True)
def small_catalogs_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The synthetic catalog is below CANDIDATE_MIN_ITEMS; rank it from candidates anyway."""
    monkeypatch.setattr(hybrid_module, "CANDIDATE_MIN_ITEMS", 0)
    monkeypatch.setattr(hybrid_module, "CANDIDATE_ALL_ITEMS", 10**9)


@pytest.fixture(scope="module")
def fitted() -> tuple[Hybrid, sparse.csr_matrix]:
    data = generate(n_customers=400, n_products=300, seed=5)
    products = IdMap(sorted(data.products["product_id"].astype(str)))
    inter = build_interactions(data.transactions, products=products)
    items = item_features(data.products, data.transactions, products)
    model = Hybrid(cf_params={"factors": 16, "iterations": 8, "num_threads": 1},
                   category_weight=0.2, popularity_weight=0.05)
    return model.fit(inter.matrix, items=items), inter.matrix


def one_by_one(model: Hybrid, history: sparse.csr_matrix, users: np.ndarray | None,
               **kwargs: object) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each row alone (the candidate path), stacked."""
    out = [model.recommend_with_reasons(history[r], 10, users=None if users is None else
                                        users[r:r + 1], **{k: (v[r] if sparse.issparse(v)
                                                             else v) for k, v in
                                                            kwargs.items()})
           for r in range(history.shape[0])]
    return (np.vstack([o[0].ids for o in out]), np.vstack([o[0].scores for o in out]),
            np.vstack([o[1] for o in out]), np.vstack([o[2] for o in out]))


def dense(model: Hybrid, history: sparse.csr_matrix, users: np.ndarray | None,
          monkeypatch: pytest.MonkeyPatch, **kwargs: object
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    with monkeypatch.context() as patch:
        patch.setattr(hybrid_module, "CANDIDATE_ROWS", 0)
        patch.setattr(hybrid_module, "CANDIDATE_ALL_ITEMS", 10**9)
        ranked, kind, item = model.recommend_with_reasons(history, 10, users=users, **kwargs)
    return ranked.ids, ranked.scores, kind, item


def assert_same(got: tuple[np.ndarray, ...], want: tuple[np.ndarray, ...]) -> None:
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)
    clear = np.ones(len(got[0]), bool)  # rows without two scores within rounding of each other
    for r, row in enumerate(want[1]):
        finite = row[np.isfinite(row)]
        clear[r] = not (np.diff(np.sort(finite)) < 1e-5).any()
    assert clear.sum() >= len(clear) // 2
    for got_part, want_part in zip(got[::2] + got[3:], want[::2] + want[3:], strict=True):
        np.testing.assert_array_equal(got_part[clear], want_part[clear])


@pytest.mark.parametrize("mode", ["mixed", "discover"])
@pytest.mark.parametrize("first", [256, 2])  # 2: the candidates must grow, several times
def test_candidates_rank_as_the_full_blend(fitted: tuple[Hybrid, sparse.csr_matrix],
                                           monkeypatch: pytest.MonkeyPatch, mode: str,
                                           first: int) -> None:
    model, matrix = fitted
    monkeypatch.setattr(model, "mode", mode)
    monkeypatch.setattr(hybrid_module, "FIRST_CANDIDATES", first)
    history, users = matrix[:ROWS], np.arange(ROWS, dtype=np.int32)
    users[::3] = -1  # fold in a third of them
    exclude = sparse.random(ROWS, matrix.shape[1], density=0.05, format="csr", random_state=3)
    allowed = np.arange(0, matrix.shape[1], 3)
    answered: list[bool] = []
    real = model._rank_candidates

    def recording(*args):  # type: ignore[no-untyped-def]
        found = real(*args)
        answered.append(found is not None)
        return found

    monkeypatch.setattr(model, "_rank_candidates", recording)
    for kwargs in ({}, {"exclude": exclude}, {"candidates": allowed}):
        assert_same(one_by_one(model, history, users, **kwargs),
                    dense(model, history, users, monkeypatch, **kwargs))
    assert len(answered) == 3 * ROWS and all(answered)  # none fell back to the dense blend


def test_an_allow_list_smaller_than_n_gives_all_of_it(
        fitted: tuple[Hybrid, sparse.csr_matrix]) -> None:
    model, matrix = fitted
    ranked = model.recommend(matrix[:1], 10, users=np.array([0]), candidates=np.array([4, 9]))
    assert sorted(ranked.ids[0][:2]) == [4, 9] and (ranked.ids[0][2:] == -1).all()


def test_candidate_ranking_scores_few_products(fitted: tuple[Hybrid, sparse.csr_matrix],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The point of it: the blend is computed on the candidates, not the catalog."""
    model, matrix = fitted
    sizes: list[int] = []
    real = model._candidate_parts

    def counting(vectors, items, *args):  # type: ignore[no-untyped-def]
        sizes.append(len(items))
        return real(vectors, items, *args)

    monkeypatch.setattr(model, "_candidate_parts", counting)
    monkeypatch.setattr(hybrid_module, "FIRST_CANDIDATES", 16)
    for r in range(20):
        model.recommend(matrix[r], 5, users=np.array([r]))
    assert len(sizes) >= 20 and np.median(sizes) < matrix.shape[1] / 2


def test_a_very_large_catalog_ranks_whole_batches_from_candidates(
        fitted: tuple[Hybrid, sparse.csr_matrix], monkeypatch: pytest.MonkeyPatch) -> None:
    model, matrix = fitted
    history, users = matrix[:ROWS], np.arange(ROWS, dtype=np.int32)
    want = dense(model, history, users, monkeypatch, exclude=history)
    monkeypatch.setattr(hybrid_module, "CANDIDATE_ALL_ITEMS", 0)
    rows: list[int] = []
    real = model._rank_candidates

    def counting(history, *args):  # type: ignore[no-untyped-def]
        rows.append(history.shape[0])
        return real(history, *args)

    monkeypatch.setattr(model, "_rank_candidates", counting)
    ranked, kind, item = model.recommend_with_reasons(history, 10, users=users, exclude=history)
    assert len(rows) == ROWS  # one batch, every row from candidates
    assert_same((ranked.ids, ranked.scores, kind, item), want)
