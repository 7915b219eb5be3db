"""Coupon economics (hand-computed per kind) and target shares."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from scipy import sparse

from recsys.coupons.catalog import parse_catalog
from recsys.coupons.scoring import (
    coupon_products,
    economics,
    prefix_mask,
    target_share,
)

MARGIN = {"basket_value": 40.0, "target_share": 0.25, "gross_margin": 0.3,
          "incrementality": 0.5, "future_margin": 2.0}


def _coupon(id_: str, kind: str, **kw: Any) -> dict[str, Any]:
    return {"id": id_, "kind": kind, "budget": 100.0, "valid_from": "2024-01-01",
            "valid_to": "2024-12-31", "target": {"categories": ["A"]}, **kw}


def test_redemption_cost_of_each_kind_matches_the_formula() -> None:
    cat = parse_catalog({"budget": 1.0, "margin": MARGIN, "points_value": 0.02,
                         "points_per_currency": 2.0, "coupons": [
                             _coupon("pct", "percent_off", value=20),
                             _coupon("amt", "amount_off", value=4),
                             _coupon("amt_big", "amount_off", value=50),
                             _coupon("ship", "free_shipping", value=4.99, target={}),
                             _coupon("pts", "points_multiplier", value=3),
                             _coupon("bxgy", "buy_x_get_y", buy=2, get=1),
                             _coupon("fixed", "percent_off", value=20,
                                     cost={"model": "fixed", "per_redemption": 1.5,
                                           "per_issue": 0.1}),
                             _coupon("minb", "percent_off", value=10, min_basket=80),
                         ]}, today=dt.date(2024, 1, 1))
    e = economics(cat)
    spend = 40.0 * 0.25  # expected spend on target
    expected = [0.2 * spend, 4.0, spend, 4.99, 2 * 2.0 * 0.02 * spend, spend / 3, 1.5,
                0.1 * 80 * 0.25]
    np.testing.assert_allclose(e.redemption_cost, expected)
    np.testing.assert_allclose(e.incremental_margin[:7], 40 * 0.3 * 0.5 + 2.0)
    assert e.incremental_margin[7] == pytest.approx(80 * 0.3 * 0.5 + 2.0)  # min basket
    np.testing.assert_allclose(e.issue_cost, [0, 0, 0, 0, 0, 0, 0.1, 0])
    assert e.discount_depth[0] == pytest.approx(0.2)
    assert e.max_issues.min() > 10**12  # no cap given


def test_expected_value_and_cost() -> None:
    cat = parse_catalog({"budget": 1.0, "margin": MARGIN, "coupons": [
        _coupon("pct", "percent_off", value=20, cost={"per_issue": 0.5})]},
        today=dt.date(2024, 1, 1))
    e = economics(cat)
    score, cost = e.expected_value(np.array([[0.0], [0.1], [1.0]]))
    inc, red = e.incremental_margin[0], e.redemption_cost[0]
    np.testing.assert_allclose(score[:, 0], [-0.5, 0.1 * (inc - red) - 0.5, inc - red - 0.5])
    np.testing.assert_allclose(cost[:, 0], [0.5, 0.1 * red + 0.5, red + 0.5])


def test_prefix_matching_respects_level_boundaries() -> None:
    cats = np.array(["MEAT > BEEF", "MEAT-PCKGD > HAM", "MEAT", "GROCERY > MEAT"], dtype=object)
    assert prefix_mask(cats, "MEAT").tolist() == [True, False, True, False]


def test_coupon_products_union_of_categories_and_products() -> None:
    cat = parse_catalog({"budget": 1.0, "coupons": [
        _coupon("a", "percent_off", value=5, target={"categories": ["A > X"]}),
        _coupon("b", "percent_off", value=5, target={"categories": ["B"], "products": ["p0"]}),
        _coupon("site", "percent_off", value=5, target={}),
    ]}, today=dt.date(2024, 1, 1))
    ids = np.array(["p0", "p1", "p2", "p3"], dtype=object)
    cats = np.array(["A > X > 1", "A > Y", "B > Z", "A > X"], dtype=object)
    m = coupon_products(cat, ids, cats).toarray()
    assert m.tolist() == [[1, 0, 0, 1], [1, 0, 1, 0], [0, 0, 0, 0]]


def test_target_share_rows_sum_to_share_and_sitewide_is_one() -> None:
    spend = sparse.csr_matrix(np.array([[2.0, 6.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 3.0]]))
    products = sparse.csr_matrix(np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0]], dtype=np.float32))
    share = target_share(spend, products, sitewide=np.array([False, False, True]))
    np.testing.assert_allclose(share, [[0.25, 0.75, 1.0], [0, 0, 0], [0.25, 0.75, 1.0]])
    assert share.dtype == np.float32
