"""Engine.coupons: the bundle's catalog chosen per customer, with consent, redemptions, budgets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.bundle import read_bundle
from recsys.data.synthetic import generate
from recsys.policy.pipeline import Engine
from tests.bundles import repo_bundle


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = generate(n_customers=400, n_products=150, seed=3)
    out = tmp_path_factory.mktemp("coupons") / "bundle"
    repo_bundle(data, out, "als", factors=8, iterations=3)
    return out


@pytest.fixture()
def engine(bundle_dir: Path) -> Engine:
    return Engine(read_bundle(bundle_dir))


def offered(engine: Engine, n: int = 3) -> dict[str, list[str]]:
    ids = engine.customers.ids.tolist()
    return {c: [p.coupon_id for p in picks] for c, picks in
            zip(ids, engine.coupons_many(ids, n), strict=True)}


def test_every_coupon_is_eligible_for_the_customer_and_explained(engine: Engine) -> None:
    catalog = {c.id: c for c in engine.coupon_chooser.catalog.coupons}
    stages = dict(zip(engine.bundle.customers["customer_id"],
                      engine.bundle.customers["stage"], strict=True))
    given = 0
    for customer, picks in zip(engine.customers.ids, engine.coupons_many(
            engine.customers.ids.tolist(), 3), strict=True):
        assert len(picks) <= 3
        assert [p.score for p in picks] == sorted((p.score for p in picks), reverse=True)
        for p in picks:
            allowed = catalog[p.coupon_id].eligible.stages
            assert allowed is None or stages[customer] in allowed
            assert p.reason and p.rule and p.score > 0 and 0 < p.p_redeem < 1
            given += 1
    assert given > 0


def test_one_customer_answer_equals_the_many_answer(engine: Engine) -> None:
    many = offered(engine)
    for customer in list(many)[:20]:
        assert [p.coupon_id for p in engine.coupons(customer, 3)] == many[customer]


def test_opted_out_and_erased_customers_get_no_targeted_coupon(bundle_dir: Path) -> None:
    bundle = read_bundle(bundle_dir)
    bundle.coupons_yaml += """
  - id: everyone-2off
    kind: amount_off
    value: 2.0
    valid_from: 2017-01-01
    valid_to: 2030-12-31
    budget: 100000.0
    margin: {basket_value: 45.0, target_share: 1.0, gross_margin: 0.28, incrementality: 0.5}
"""
    engine = Engine(bundle)
    stranger = [p.coupon_id for p in engine.coupons("never-seen", 9)]
    assert "welcome-10" in stranger and "everyone-2off" in stranger  # a new shopper's offers
    targeted = {c.id for c in engine.coupon_chooser.catalog.coupons} - {"everyone-2off"}
    regulars = [c for c, o in offered(engine, 9).items() if set(o) & targeted][:2]
    a, b = regulars
    engine.set_consent(a, False)
    engine.erase(b)
    for customer in (a, b):  # the welcome offer is targeted too (stage prospect)
        assert [p.coupon_id for p in engine.coupons(customer, 9)] == ["everyone-2off"]
    engine.set_consent(a, True)
    assert {p.coupon_id for p in engine.coupons(a, 9)} & targeted


def test_no_marketing_consent_means_no_coupons(bundle_dir: Path) -> None:
    bundle = read_bundle(bundle_dir)
    bundle.customers["consent_marketing"] = False
    engine = Engine(bundle)
    assert all(not picks for picks in engine.coupons_many(engine.customers.ids.tolist(), 3))


def test_a_redeemed_coupon_is_not_offered_again(engine: Engine) -> None:
    customer, coupons = next((c, o) for c, o in offered(engine).items() if o)
    engine.add_redemption(customer, coupons[0])
    assert coupons[0] not in [p.coupon_id for p in engine.coupons(customer, 3)]


def test_a_shared_budget_is_spent_across_calls(engine: Engine) -> None:
    budget = engine.coupon_budget()
    start = budget.budget
    ids = engine.customers.ids.tolist()
    first = engine.coupons_many(ids[:200], 1, budget=budget)
    assert budget.budget < start and np.all(budget.coupon_budget >= -1e-9)
    assert sum(len(p) for p in first) > 0


def test_a_bundle_without_a_catalog_gives_no_coupons(bundle_dir: Path) -> None:
    bundle = read_bundle(bundle_dir)
    bundle.coupons_yaml = None
    assert Engine(bundle).coupons("x", 3) == []


def test_a_batch_spends_budget_only_on_coupons_it_gives(engine: Engine) -> None:
    budget = engine.coupon_budget()
    start = budget.budget
    picks = engine.coupons_many(engine.customers.ids.tolist(), 1, budget=budget)
    assert all(len(p) <= 1 for p in picks)
    catalog = {c.id: j for j, c in enumerate(engine.coupon_chooser.catalog.coupons)}
    given = np.bincount([catalog[p.coupon_id] for row in picks for p in row],
                        minlength=len(catalog))
    issues_spent = engine.coupon_budget().coupon_issues - budget.coupon_issues
    assert np.array_equal(issues_spent, given) and budget.budget < start
