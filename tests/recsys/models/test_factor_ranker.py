"""The pruned top-n that ALS and BPR rank with (``recommend``, through
recsys.models.factor_ranker) gives the answers of full scoring (``RecommenderBase.recommend``),
whatever the batch around a customer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from recsys.models import ALS, BPR
from recsys.models import factor_ranker as factors
from recsys.models.base import RecommenderBase

N_USERS, N_ITEMS = 120, 300


@pytest.fixture(scope="module")
def interactions() -> sparse.csr_matrix:
    """Purchases with power-law item popularity (vector norms then differ widely, as in
    retail, so the bound prunes) and a tail of items nobody bought (zero vectors, ties)."""
    rng = np.random.default_rng(0)
    popularity = 1.0 / np.arange(1, N_ITEMS + 1) ** 1.1
    popularity[N_ITEMS - 40:] = 0.0
    bought = rng.random((N_USERS, N_ITEMS)) < 0.9 * popularity[rng.permutation(N_ITEMS)]
    counts = rng.integers(1, 4, (N_USERS, N_ITEMS))
    return sparse.csr_matrix(np.where(bought, counts, 0).astype(np.float32))


@pytest.fixture(scope="module", params=["als", "bpr"])
def model(request: pytest.FixtureRequest, interactions: sparse.csr_matrix) -> RecommenderBase:
    kind = ALS(factors=8, iterations=4, num_threads=1) if request.param == "als" else \
        BPR(factors=8, iterations=20, random_state=0)
    return kind.fit(interactions)


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a few items, so a few hundred items take many blocks and the bound; a lone
    customer's blocks differ from a batch's."""
    monkeypatch.setattr(factors, "FIRST_BLOCK", 4)
    monkeypatch.setattr(factors, "FIRST_BLOCK_FEW", 16)
    monkeypatch.setattr(factors, "MAX_BLOCK", 32)


@pytest.mark.parametrize("n", [1, 10, 250])
@pytest.mark.parametrize("excluding", [False, True])
def test_answers_equal_full_scoring(model: RecommenderBase, interactions: sparse.csr_matrix,
                                    n: int, excluding: bool) -> None:
    rng = np.random.default_rng(n)
    allowed = rng.random(N_ITEMS) < 0.8
    users = np.arange(N_USERS, dtype=np.int32)
    users[rng.random(N_USERS) < 0.3] = -1  # folded in from history
    history = sparse.diags((np.arange(N_USERS) >= 3).astype(np.float32)) @ interactions
    history = sparse.csr_matrix(history)  # nothing to go on for three unknown customers
    history.eliminate_zeros()
    users[:3] = -1
    exclude = history if excluding else None
    got = model.recommend(history, n, users=users, exclude=exclude, candidates=allowed)
    want = RecommenderBase.recommend(model, history, n, users=users, exclude=exclude,
                                     candidates=allowed)
    # Equal scores (items without sales have zero vectors) come in index order here, in
    # argpartition's order there; put those in index order too.
    order = np.lexsort((np.where(want.ids < 0, N_ITEMS, want.ids), -want.scores), axis=1)
    np.testing.assert_array_equal(got.ids, np.take_along_axis(want.ids, order, axis=1))
    np.testing.assert_allclose(got.scores, want.scores, rtol=1e-6)
    assert (got.ids[:3] == -1).all()
    if excluding:
        assert not any(history[r, i] for r in range(N_USERS) for i in got.ids[r] if i >= 0)


@pytest.mark.parametrize("n", [1, 3, 10, 250])
def test_a_customer_gets_the_same_answer_alone_as_in_any_batch(
        model: RecommenderBase, interactions: sparse.csr_matrix, n: int) -> None:
    """A request's lone row (first block FIRST_BLOCK_FEW) and a batch (FIRST_BLOCK) split
    the catalog differently; with exclusions and a filter they agree bit for bit."""
    rng = np.random.default_rng(n)
    allowed = rng.random(N_ITEMS) < 0.7
    users = np.arange(N_USERS, dtype=np.int32)
    batch = model.recommend(interactions, n, users=users, exclude=interactions,
                            candidates=allowed)
    for r in range(0, N_USERS, 3):
        alone = model.recommend(interactions[r], n, users=users[r:r + 1],
                                exclude=interactions[r], candidates=allowed)
        np.testing.assert_array_equal(alone.ids[0], batch.ids[r])
        np.testing.assert_array_equal(alone.scores[0], batch.scores[r])


def test_the_bound_spares_scoring_part_of_the_catalog(
        model: RecommenderBase, interactions: sparse.csr_matrix,
        monkeypatch: pytest.MonkeyPatch) -> None:
    scored = []

    def counting(users: np.ndarray, items: np.ndarray) -> np.ndarray:
        scored.append(users.shape[0] * items.shape[0])
        return users @ items.T

    monkeypatch.setattr(factors, "_gemm", counting)
    model.recommend(interactions, 10, users=np.arange(N_USERS, dtype=np.int32))
    assert sum(scored) < 0.8 * N_USERS * N_ITEMS
