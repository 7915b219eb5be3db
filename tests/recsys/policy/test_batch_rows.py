"""A customer's list does not depend on who else is in the batch (batch picks vs the API):
an opted-out or unknown customer in a chunk used to switch every row to fold-in."""

from __future__ import annotations

import pytest

from recsys.bundle import read_bundle
from recsys.data.synthetic import generate
from recsys.policy.pipeline import Engine
from tests.bundles import repo_bundle


@pytest.fixture(scope="module", params=["als", "hybrid"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    data = generate(n_customers=300, n_products=120, seed=7)
    out = tmp_path_factory.mktemp(request.param) / "bundle"
    params = {"factors": 8, "iterations": 3}
    if request.param == "als":
        repo_bundle(data, out, "als", **params)
    else:
        repo_bundle(data, out, "hybrid", cf_params=params)
    return Engine(read_bundle(out))


@pytest.mark.parametrize("mode", ["discover", "mixed"])
def test_a_stranger_in_the_batch_changes_no_one_else(engine: Engine, mode: str) -> None:
    known = [str(c) for c in engine.customers.ids[:30] if engine.is_personalizable(str(c))]

    def ids(results: list) -> list[list[str]]:  # type: ignore[type-arg]
        return [[p.product_id for p in r.picks] for r in results]

    alone = ids([engine.recommend(c, 10, mode=mode) for c in known])
    together = ids(engine.recommend_many(known, 10, mode=mode))
    engine.set_consent(known[0], False)  # an opted-out customer in the same batch
    mixed = engine.recommend_many([known[0], *known[1:], "never-seen-customer"], 10, mode=mode)
    assert ids(mixed[1:-1]) == together[1:] == alone[1:]
    assert not mixed[0].personalized and not mixed[-1].personalized
