"""Coupon holdout groups: customers hashed into a coupon's holdout are eligible but not given it."""

from __future__ import annotations

import numpy as np
import pytest

from recsys.bundle import read_bundle
from recsys.data.synthetic import generate
from recsys.experiments.assignment import in_holdout
from recsys.policy.coupon_choice import CouponChooser
from recsys.policy.pipeline import Engine
from tests.bundles import repo_bundle

SHARE = 0.5


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    data = generate(n_customers=400, n_products=150, seed=3)
    out = tmp_path_factory.mktemp("holdout") / "bundle"
    repo_bundle(data, out, "als", factors=8, iterations=3)
    engine = Engine(read_bundle(out))
    catalog = engine.coupon_chooser.catalog

    def with_share(share: float) -> CouponChooser:
        return CouponChooser(engine.bundle, catalog.model_copy(update={"coupons": tuple(
            c.model_copy(update={"holdout_share": share}) for c in catalog.coupons)}))

    engine.coupon_chooser = with_share(SHARE)
    engine.plain = with_share(0.0)  # type: ignore[attr-defined]
    return engine


def test_held_out_customers_do_not_get_the_coupon_and_are_marked(engine: Engine) -> None:
    ids = engine.customers.ids.tolist()
    marked = engine.coupons_many(ids, 3, held_out=True)
    given = engine.coupons_many(ids, 3)
    with_holdout, engine.coupon_chooser = engine.coupon_chooser, engine.plain  # type: ignore[attr-defined]
    plain = engine.coupons_many(ids, 3)
    engine.coupon_chooser = with_holdout
    held = shown = 0
    for customer, m, g, p in zip(ids, marked, given, plain, strict=True):
        assert [x.coupon_id for x in m] == [x.coupon_id for x in p]  # same choice...
        for pick in m:  # ...split by the hash alone
            assert pick.held_out == in_holdout(customer, pick.coupon_id, SHARE)
        assert [x.coupon_id for x in g] == [x.coupon_id for x in m if not x.held_out]
        held += sum(x.held_out for x in m)
        shown += sum(not x.held_out for x in m)
    assert held > 50 and shown > 50
    assert 0.35 < held / (held + shown) < 0.65


def test_a_batch_campaign_never_gives_a_held_out_coupon(engine: Engine) -> None:
    ids = engine.customers.ids.tolist()
    picks = engine.coupons_many(ids, 2, budget=engine.coupon_budget())
    assert any(picks)
    for customer, row in zip(ids, picks, strict=True):
        assert not any(in_holdout(customer, p.coupon_id, SHARE) for p in row)


def test_holdout_share_is_validated() -> None:
    from recsys.coupons.catalog import parse_catalog
    from recsys.errors import ConfigError

    raw = {"budget": 10, "coupons": [{"id": "a", "kind": "amount_off", "value": 1, "budget": 5,
                                      "valid_from": "2020-01-01", "valid_to": "2030-01-01",
                                      "holdout_share": 1.0}]}
    with pytest.raises(ConfigError, match="holdout_share"):
        parse_catalog(raw, today=None)


def test_a_batch_spends_budget_only_on_coupons_it_gives(engine: Engine) -> None:
    budget = engine.coupon_budget()
    picks = engine.coupons_many(engine.customers.ids.tolist(), 1, budget=budget)
    catalog = {c.id: j for j, c in enumerate(engine.coupon_chooser.catalog.coupons)}
    given = np.bincount([catalog[p.coupon_id] for row in picks for p in row],
                        minlength=len(catalog))
    assert given.sum() > 0
    assert np.array_equal(engine.coupon_budget().coupon_issues - budget.coupon_issues, given)
