"""Assignment: every budget and cap holds (property test), greedy vs the exact MILP, online
vs batch, explanations."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

from recsys.coupons.assign import BudgetState, CouponAssigner, assign_optimal, greedy_select
from recsys.coupons.catalog import Catalog, parse_catalog
from recsys.coupons.eligibility import Audience, EligibilityRules

AT = dt.date(2024, 6, 15)
STAGES = ["new", "active", "at_risk", "churned", "loyal"]


@dataclass
class Case:
    catalog: Catalog
    audience: Audience
    affinity: np.ndarray
    issued: sparse.csr_matrix
    chunk_size: int
    candidates: int | None


@st.composite
def cases(draw: st.DrawFn, max_customers: int = 40, max_coupons: int = 8) -> Case:
    """A random catalog (budgets, caps, welcome coupons) and audience."""
    n = draw(st.integers(1, max_customers))
    m = draw(st.integers(1, max_coupons))
    money = st.floats(0.5, 30.0)
    coupons = []
    for j in range(m):
        coupons.append({
            "id": f"k{j}", "kind": "amount_off", "value": draw(st.floats(0.5, 10.0)),
            "purpose": draw(st.sampled_from(["welcome", "win_back", "cross_sell"])),
            "budget": draw(money), "per_customer_cap": draw(st.integers(1, 2)),
            "max_issues": draw(st.none() | st.integers(1, 10)),
            "valid_from": "2024-01-01", "valid_to": "2024-12-31",
            "eligible": {"stages": draw(st.none() | st.lists(st.sampled_from(STAGES),
                                                             min_size=1, max_size=3))},
            "cost": {"per_issue": draw(st.sampled_from([0.0, 0.05]))},
            "margin": {"basket_value": draw(st.floats(10, 60)), "target_share": 1.0,
                       "gross_margin": 0.3, "incrementality": 0.5,
                       "future_margin": draw(st.floats(0, 20))}})
    catalog = parse_catalog({"budget": draw(st.floats(1.0, 100.0)),
                             "max_per_customer": draw(st.integers(1, 4)),
                             "prior": {"intercept": -1.0, "affinity_slope": 3.0},
                             "coupons": coupons}, today=dt.date(2024, 1, 1))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    audience = Audience.from_frame(pd.DataFrame({
        "customer_id": [f"c{i}" for i in range(n)], "stage": rng.choice(STAGES, n),
        "consent_marketing": rng.random(n) < 0.9}))
    issued = sparse.csr_matrix((rng.random((n, m)) < 0.1).astype(np.int64))
    return Case(catalog, audience, rng.random((n, m)), issued,
                draw(st.integers(1, n + 1)), draw(st.none() | st.integers(1, m)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_assignment_respects_every_budget_and_cap(case: Case) -> None:
    cat, aud = case.catalog, case.audience
    assigner = CouponAssigner(cat)
    state = BudgetState.from_catalog(cat)
    res = assigner.assign_batch(aud, case.affinity, AT, state=state, issued=case.issued,
                                chunk_size=case.chunk_size,
                                candidates_per_customer=case.candidates)
    n, m = len(aud), len(cat.coupons)
    ci, cj = res.customer_idx, res.coupon_idx
    econ = assigner.econ
    # per customer: cap, no pair twice, at most one welcome
    assert np.bincount(ci, minlength=n).max(initial=0) <= cat.max_per_customer
    assert len(set(zip(ci.tolist(), cj.tolist(), strict=True))) == len(ci)
    welcome = EligibilityRules(cat).welcome
    assert np.bincount(ci[welcome[cj]], minlength=n).max(initial=0) <= 1
    # per coupon: issues and budget; globally: budget
    assert (np.bincount(cj, minlength=m) <= econ.max_issues).all()
    spent = np.bincount(cj, weights=res.expected_cost, minlength=m)
    assert (spent <= econ.budget + 1e-6).all()
    assert res.expected_cost.sum() <= cat.budget + 1e-6
    # only eligible pairs with positive value, costs as the economics say
    mask = EligibilityRules(cat).mask(aud, AT, issued=case.issued)
    assert mask[ci, cj].all() and (res.score > 0).all()
    np.testing.assert_allclose(res.expected_cost, res.p_redeem * econ.redemption_cost[cj]
                               + econ.issue_cost[cj])
    # the state was charged exactly what was spent
    np.testing.assert_allclose(state.coupon_budget, econ.budget - spent, atol=1e-9)
    assert state.budget == pytest.approx(cat.budget - res.expected_cost.sum())


def _random_problem(seed: int, n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = rng.exponential(1.0, (n, m))
    score[rng.random((n, m)) < 0.2] = -np.inf
    return score, rng.uniform(0.1, 1.0, (n, m))


def _greedy_total(score: np.ndarray, cost: np.ndarray, state: BudgetState, k: int,
                  welcome: np.ndarray, ratio: bool = False) -> float:
    r, c = np.nonzero(np.isfinite(score))
    key = score[r, c] / cost[r, c] if ratio else score[r, c]
    chosen = greedy_select(r.astype(np.int64), c.astype(np.int64), key, cost[r, c], welcome,
                           state, k, score.shape[0])
    return float(score[r[chosen], c[chosen]].sum())


def _state(m: int, budget: float = 1e9, issues: int | None = None) -> BudgetState:
    return BudgetState(np.full(m, budget), np.full(m, issues or 10**9, np.int64), 1e9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 7), m=st.integers(1, 5),
       k=st.integers(1, 3))
def test_greedy_is_optimal_when_only_customer_caps_bind(seed: int, n: int, m: int,
                                                        k: int) -> None:
    score, cost = _random_problem(seed, n, m)
    welcome = np.zeros(m, bool)
    opt = assign_optimal(score, cost, max_per_customer=k, welcome=welcome, state=_state(m))
    greedy = _greedy_total(score, cost, _state(m), k, welcome)
    assert greedy == pytest.approx(score[opt].sum(), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10**6), n=st.integers(1, 7), m=st.integers(1, 5),
       k=st.integers(1, 3), issues=st.integers(1, 4), budget=st.floats(0.2, 3.0))
def test_greedy_is_within_its_bounds_of_the_milp(seed: int, n: int, m: int, k: int,
                                                 issues: int, budget: float) -> None:
    score, cost = _random_problem(seed, n, m)
    welcome = np.arange(m) == 0
    # issue caps bind: at least half the optimum (two partition matroids)
    opt = score[assign_optimal(score, cost, max_per_customer=k, welcome=welcome,
                               state=_state(m, issues=issues))].sum()
    assert _greedy_total(score, cost, _state(m, issues=issues), k, welcome) >= 0.5 * opt - 1e-9
    # budgets bind: the exact optimum is an upper bound of both greedy orders
    limits = _state(m, budget=budget, issues=issues)
    opt_b = score[assign_optimal(score, cost, max_per_customer=k, welcome=welcome,
                                 state=limits)].sum()
    for ratio in (False, True):
        assert _greedy_total(score, cost, _state(m, budget, issues), k, welcome,
                             ratio) <= opt_b + 1e-6


def _catalog(**over: Any) -> Catalog:
    coupons = [
        {"id": "dairy", "kind": "percent_off", "value": 10, "budget": 100.0,
         "purpose": "win_back", "eligible": {"stages": ["at_risk", "churned"]},
         "target": {"categories": ["GROCERY > DAIRY"]}},
        {"id": "site", "kind": "amount_off", "value": 1, "budget": 100.0},
        {"id": "meat", "kind": "percent_off", "value": 10, "budget": 100.0,
         "target": {"categories": ["MEAT"]}},
    ]
    for c in coupons:
        c.update(valid_from="2024-01-01", valid_to="2024-12-31")
    raw = {"budget": 1000.0, "max_per_customer": 2, "coupons": coupons,
           "margin": {"future_margin": 5.0}, **over}
    return parse_catalog(raw, today=dt.date(2024, 1, 1))


def _audience(stages: list[str]) -> Audience:
    return Audience.from_frame(pd.DataFrame({"customer_id": [f"c{i}" for i in
                                                             range(len(stages))],
                                             "stage": stages, "consent_marketing": True}))


def test_explanations_name_the_rule_and_the_spend_share() -> None:
    cat = _catalog()
    res = CouponAssigner(cat).assign_batch(_audience(["at_risk"]),
                                           np.array([[0.34, 1.0, 0.01]]), AT)
    frame = res.to_frame(cat, _audience(["at_risk"])).set_index("coupon_id")
    assert set(frame.index) == {"dairy", "site"}  # max 2, meat has the lowest value
    assert frame.loc["dairy", "rule"] == "win-back offer for at_risk customers"
    assert frame.loc["dairy", "reason"] == "34% of your spend is in dairy"
    assert frame.loc["site", "rule"] == "cross-sell offer for all customers"
    assert frame.loc["site", "reason"] == "money off your whole basket"


def test_online_matches_batch_and_charges_the_shared_state() -> None:
    cat = _catalog(budget=2.0)
    assigner = CouponAssigner(cat)
    aud = _audience(["at_risk", "churned", "active", "at_risk"])
    aff = np.random.default_rng(0).random((4, 3))
    batch = assigner.assign_batch(aud, aff, AT)
    state = BudgetState.from_catalog(cat)
    online = [assigner.assign_one(aud.take(slice(i, i + 1)), aff[i], AT, state)
              for i in range(4)]
    assert state.budget >= -1e-9 and state.budget < 2.0
    spent = sum(float(o.expected_cost.sum()) for o in online)
    assert spent == pytest.approx(2.0 - state.budget)
    # one customer alone: online and batch agree
    first = assigner.assign_batch(aud.take(slice(0, 1)), aff[:1], AT)
    alone = assigner.assign_one(aud.take(slice(0, 1)), aff[0], AT, BudgetState.from_catalog(cat))
    assert alone.coupon_idx.tolist() == first.coupon_idx.tolist()
    assert len(batch) > 0
    with pytest.raises(ValueError, match="exactly one customer"):
        assigner.assign_one(aud, aff, AT, state)


def test_a_plugged_in_propensity_is_used() -> None:
    cat = _catalog()
    seen: list[np.ndarray] = []

    def propensity(rows: np.ndarray, affinity: np.ndarray) -> np.ndarray:
        seen.append(rows)
        p = np.zeros_like(affinity)
        p[:, 2] = 0.5  # only meat can be worth anything
        return p

    res = CouponAssigner(cat, propensity=propensity).assign_batch(
        _audience(["active"] * 5), np.zeros((5, 3)), AT, chunk_size=2)
    assert [r.tolist() for r in seen] == [[0, 1], [2, 3], [4]]
    assert res.coupon_idx.tolist() == [2] * 5
    np.testing.assert_allclose(res.p_redeem, 0.5)


def test_affinity_callable_is_read_chunk_by_chunk() -> None:
    cat = _catalog()
    full = np.random.default_rng(1).random((7, 3))
    assigner = CouponAssigner(cat)
    a = assigner.assign_batch(_audience(["at_risk"] * 7), full, AT)
    b = assigner.assign_batch(_audience(["at_risk"] * 7), lambda rows: full[rows], AT,
                              chunk_size=3)
    assert a.customer_idx.tolist() == b.customer_idx.tolist()
    assert a.coupon_idx.tolist() == b.coupon_idx.tolist()
