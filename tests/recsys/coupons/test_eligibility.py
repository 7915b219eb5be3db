"""Hard eligibility rules, one test per rule, and the admitting-rule sentence."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recsys.coupons.catalog import Catalog, parse_catalog
from recsys.coupons.eligibility import Audience, EligibilityRules, admitting_rule, eligibility

AT = dt.date(2024, 6, 15)


def _coupon(id_: str, **kw: Any) -> dict[str, Any]:
    return {"id": id_, "kind": "amount_off", "value": 5, "budget": 100.0,
            "valid_from": "2024-01-01", "valid_to": "2024-12-31", **kw}


def _catalog(*coupons: dict[str, Any]) -> Catalog:
    return parse_catalog({"budget": 1000.0, "coupons": list(coupons)}, today=dt.date(2024, 1, 1))


def _audience(**cols: list[Any]) -> Audience:
    n = len(next(iter(cols.values())))
    frame = pd.DataFrame({"customer_id": [f"c{i}" for i in range(n)],
                          "consent_marketing": [True] * n, **cols})
    return Audience.from_frame(frame)


def test_validity_window_at_the_date() -> None:
    cat = _catalog(_coupon("open"), _coupon("later", valid_from="2024-07-01"),
                   _coupon("ended", valid_from="2024-01-01", valid_to="2024-06-14"),
                   _coupon("last_day", valid_to="2024-06-15"))
    mask = eligibility(cat, _audience(stage=["new", "active"]), AT)
    assert mask.tolist() == [[True, False, False, True]] * 2


def test_segment_stage_and_tier_lists() -> None:
    cat = _catalog(_coupon("winback", purpose="win_back",
                           eligible={"stages": ["at_risk", "churned"]}),
                   _coupon("gold", eligible={"tiers": ["gold"], "segments": ["champions"]}),
                   _coupon("all"))
    aud = _audience(stage=["at_risk", "active", "churned", ""],
                    tier=["gold", "gold", "basic", "gold"],
                    segment=["champions", "other", "champions", "champions"])
    mask = eligibility(cat, aud, AT)
    assert mask.tolist() == [[True, True, True], [False, False, True], [True, False, True],
                             [False, True, True]]


def test_marketing_consent_is_required() -> None:
    aud = _audience(stage=["new", "new"], consent_marketing=[True, False])
    assert eligibility(_catalog(_coupon("a")), aud, AT).tolist() == [[True], [False]]
    no_column = Audience.from_frame(pd.DataFrame({"customer_id": ["x"]}))
    assert not eligibility(_catalog(_coupon("a")), no_column, AT).any()


def test_per_customer_cap_counts_past_issues() -> None:
    cat = _catalog(_coupon("once"), _coupon("twice", per_customer_cap=2))
    issued = sparse.csr_matrix(np.array([[0, 0], [1, 1], [0, 2]]))
    mask = eligibility(cat, _audience(stage=["a", "b", "c"]), AT, issued=issued)
    assert mask.tolist() == [[True, True], [False, True], [True, False]]


def test_already_redeemed_is_excluded() -> None:
    cat = _catalog(_coupon("a", per_customer_cap=5), _coupon("b"))
    redeemed = sparse.csr_matrix(np.array([[True, False], [False, False]]))
    mask = eligibility(cat, _audience(stage=["x", "y"]), AT, redeemed=redeemed)
    assert mask.tolist() == [[False, True], [True, True]]


def test_one_welcome_coupon_per_person_ever() -> None:
    cat = _catalog(_coupon("w1", purpose="welcome"), _coupon("w2", purpose="welcome"),
                   _coupon("other"))
    issued = sparse.csr_matrix(np.array([[1, 0, 0], [0, 0, 1], [0, 0, 0]]))
    mask = eligibility(cat, _audience(stage=["new"] * 3), AT, issued=issued,
                       welcome_received=np.array([False, False, True]))
    assert mask.tolist() == [[False, False, True], [True, True, False], [False, False, True]]


def test_birthday_coupon_only_in_the_birth_month() -> None:
    cat = _catalog(_coupon("bday", purpose="birthday"))
    aud = _audience(stage=["a", "b", "c"], birth_month=[6, 7, 0])
    assert eligibility(cat, aud, AT)[:, 0].tolist() == [True, False, False]


def test_compiled_rules_agree_row_by_row_and_in_batch() -> None:
    rng = np.random.default_rng(3)
    stages = ["new", "active", "at_risk", "churned", ""]
    cat = _catalog(*[_coupon(f"c{j}", eligible={"stages": list(rng.choice(stages, 2))})
                     for j in range(12)])
    aud = _audience(stage=list(rng.choice(stages, 30)))
    rules = EligibilityRules(cat)
    batch = rules.mask(aud, AT)
    rows = np.vstack([rules.mask(aud.take(slice(i, i + 1)), AT) for i in range(len(aud))])
    assert (batch == rows).all()
    assert batch.any() and not batch.all()


def test_shapes_are_checked() -> None:
    with pytest.raises(ValueError, match=r"issued must have shape \(customers, coupons\)"):
        eligibility(_catalog(_coupon("a")), _audience(stage=["x"]), AT,
                    issued=sparse.csr_matrix((2, 1)))
    with pytest.raises(ValueError, match="must have 2 rows"):
        Audience(customer_ids=np.array(["a", "b"], dtype=object),
                 stage=np.array([""], dtype=object), segment=np.array(["", ""], dtype=object),
                 tier=np.array(["", ""], dtype=object), consent_marketing=np.ones(2, bool),
                 birth_month=np.zeros(2, np.int8), avg_basket=np.zeros(2))


def test_admitting_rule_names_the_matching_list() -> None:
    cat = _catalog(_coupon("wb", purpose="win_back", eligible={"stages": ["at_risk"]}),
                   _coupon("gold", purpose="perk", eligible={"tiers": ["gold"]}),
                   _coupon("bday", purpose="birthday"), _coupon("x"))
    assert admitting_rule(cat.coupons[0], stage="at_risk") == \
        "win-back offer for at_risk customers"
    assert admitting_rule(cat.coupons[1], tier="gold") == "member perk for gold tier members"
    assert "birthday month" in admitting_rule(cat.coupons[2])
    assert admitting_rule(cat.coupons[3]) == "cross-sell offer for all customers"
