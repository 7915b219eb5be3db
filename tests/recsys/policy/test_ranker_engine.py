"""The engine over a learned-ranker bundle: every mode, live events, truthful reasons."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from recsys.bundle import read_bundle
from recsys.data.synthetic import generate
from recsys.events import Event
from recsys.policy.pipeline import Engine
from tests.bundles import repo_bundle

SMALL = {"windows": 2, "per_source": 20, "ease_items": 200, "trees": 40, "min_child": 10}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    data = generate(n_customers=400, n_products=150, seed=11)
    out = tmp_path_factory.mktemp("ranker") / "bundle"
    repo_bundle(data, out, "ranker", **SMALL)
    return Engine(read_bundle(out))


def bought(engine: Engine, customer: str) -> set[str]:
    u = engine.customers.to_index([customer])[0]
    h = engine.bundle.history
    return set(engine.product_ids[h.indices[h.indptr[u]:h.indptr[u + 1]]].tolist())


def consenting(engine: Engine, n: int) -> list[str]:
    return [str(c) for c in engine.customers.ids if engine.is_personalizable(str(c))][:n]


def test_modes(engine: Engine) -> None:
    customers = consenting(engine, 40)
    for mode in ("mixed", "buy_again", "discover", "new_arrivals"):
        for customer, result in zip(customers, engine.recommend_many(customers, 8, mode=mode),
                                    strict=True):
            ids = [p.product_id for p in result.picks]
            assert result.personalized and len(ids) == len(set(ids))
            own = bought(engine, customer)
            if mode == "buy_again":
                assert set(ids[: len(own)]) <= own
            if mode == "discover":
                assert not set(ids) & own
            if mode == "new_arrivals":
                index = engine.products.to_index(ids)
                assert engine._new_arrivals[index].all()
    # the same lists one customer at a time as in a batch
    one = [engine.recommend(c, 8, mode="mixed").picks for c in customers[:10]]
    assert one == [r.picks for r in engine.recommend_many(customers[:10], 8, mode="mixed")]


def test_reasons_are_true(engine: Engine) -> None:
    titles = dict(zip(engine.bundle.products["product_id"], engine.bundle.products["title"],
                      strict=True))
    for customer in consenting(engine, 60):
        own_titles = {titles[p] for p in bought(engine, customer)}
        for pick in engine.recommend(customer, 10).picks:
            if pick.reason_code in ("because_you_bought", "bought_together"):
                named = pick.reason.split(" as ", 1)[-1].split("bought ", 1)[-1]
                assert named in own_titles and named != titles[pick.product_id]
            if pick.reason_code in ("repeats_every", "bought_before"):
                assert pick.product_id in bought(engine, customer)


def test_live_purchase_changes_the_next_answer(engine: Engine) -> None:
    customer = consenting(engine, 4)[3]
    n = len(bought(engine, customer)) + 1  # room for every own product
    before = engine.recommend(customer, n, mode="buy_again").picks
    fresh = next(p for p in engine.product_ids if p not in bought(engine, customer))
    engine.apply_changes([Event(event_id="x1", customer_id=customer, event_type="purchase",
                                timestamp=datetime(2026, 1, 1), product_id=str(fresh), seq=1)],
                         set())
    after = engine.recommend(customer, n, mode="buy_again").picks
    assert fresh not in [p.product_id for p in before]
    assert fresh in [p.product_id for p in after]
    ranked = {p.product_id for p in after if p.reason_code != "popular"}  # not the padding
    assert fresh in ranked and ranked <= bought(engine, customer) | {fresh}
    assert np.isfinite([p.score for p in after]).all()


def test_engine_lists_are_the_models_own(engine: Engine) -> None:
    """What the API and batch picks answer is what the model ranks when asked directly on the
    same history (the lists that offline evaluation scores), for every mode's exclusions."""
    customers = consenting(engine, 60)[10:]  # none with live events from the tests above
    users = engine.customers.to_index(customers)
    history = engine.bundle.history[users]
    allowed = np.flatnonzero(engine.filters.mask())
    for mode, exclude in (("discover", history), ("mixed", None)):
        direct = engine.model.recommend(history, 10, users=users, exclude=exclude,
                                        candidates=allowed)
        served = engine.recommend_many(customers, 10, mode=mode)
        for row, result in zip(direct.ids, served, strict=True):
            assert [p.product_id for p in result.picks] == \
                list(engine.product_ids[row[row >= 0]])
