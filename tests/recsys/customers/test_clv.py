"""Gamma-Gamma spend model and discounted CLV."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import check_grad

from recsys.customers.bgnbd import BGNBD
from recsys.customers.clv import GammaGamma, _neg_ll_and_grad, customer_lifetime_value
from recsys.errors import DataError, NotFittedError

P, Q, G = 6.0, 4.0, 15.0


@pytest.fixture(scope="module")
def spend_data() -> tuple[np.ndarray, np.ndarray]:
    """Mean repeat spend of customers drawn from a Gamma-Gamma population."""
    rng = np.random.default_rng(3)
    n = 8000
    x = rng.integers(1, 12, n).astype(float)
    nu = rng.gamma(Q, 1.0 / G, n)  # per-customer scale, Gamma(q, gamma)
    m = np.array([rng.gamma(P, 1.0 / v, int(k)).mean() for v, k in zip(nu, x, strict=True)])
    return x, m


@pytest.fixture
def bgnbd() -> BGNBD:
    model = BGNBD()
    model.params_ = np.array([0.243, 4.414, 0.793, 2.426])  # CDNOW (FHL 2005)
    return model


def test_gradient_matches_finite_differences(spend_data) -> None:
    x, m = spend_data
    w = np.ones_like(x)
    err = check_grad(lambda th: _neg_ll_and_grad(th, x, m, w)[0],
                     lambda th: _neg_ll_and_grad(th, x, m, w)[1], np.log([3.0, 2.0, 10.0]))
    assert err < 1e-5


def test_fit_recovers_population_mean_and_shape(spend_data) -> None:
    x, m = spend_data
    p, q, g = GammaGamma().fit(x, m).params_
    assert p * g / (q - 1) == pytest.approx(P * G / (Q - 1), rel=0.05)  # mean spend
    assert p == pytest.approx(P, rel=0.1)


def test_expected_spend_shrinks_towards_population_mean(spend_data) -> None:
    gg = GammaGamma().fit(*spend_data)
    p, q, g = gg.params_
    prior = p * g / (q - 1)
    one, many = gg.expected_spend([1, 50], [3 * prior, 3 * prior])
    assert prior < one < many < 3 * prior  # more purchases -> closer to the own mean
    assert gg.expected_spend([0], [np.nan])[0] == pytest.approx(prior)


def test_fit_skips_customers_without_usable_spend() -> None:
    x = np.array([0, 1, 2, 3, 2, 5.0])
    m = np.array([np.nan, 0.0, 10.0, 12.0, 9.0, 11.0])
    a = GammaGamma().fit(x, m).params_
    b = GammaGamma().fit(x[2:], m[2:]).params_
    np.testing.assert_allclose(a, b)
    with pytest.raises(DataError, match="at least two"):
        GammaGamma().fit([0, 1], [5.0, 0.0])
    with pytest.raises(NotFittedError):
        GammaGamma().expected_spend([1], [2.0])


def test_clv_without_discount_is_spend_times_expected_purchases(bgnbd: BGNBD) -> None:
    x, t_x, T = np.array([0, 2, 7.0]), np.array([0, 20, 35.0]), np.full(3, 39.0)
    spend = np.array([10.0, 20.0, 30.0])
    value = customer_lifetime_value(bgnbd, x, t_x, T, spend, horizon_days=364, step_days=30,
                                    time_unit_days=7, annual_discount_rate=0.0)
    np.testing.assert_allclose(value, spend * bgnbd.expected_purchases(52, x, t_x, T))


def test_clv_discounting_margin_and_horizon(bgnbd: BGNBD) -> None:
    x, t_x, T, spend = np.array([3.0]), np.array([30.0]), np.array([39.0]), np.array([40.0])

    def clv(**kw: float) -> float:
        args = {"horizon_days": 365, "step_days": 30, "time_unit_days": 7,
                "annual_discount_rate": 0.1, "margin": 1.0} | kw
        return float(customer_lifetime_value(bgnbd, x, t_x, T, spend, **args)[0])

    base = clv()
    assert clv(annual_discount_rate=0.0) > base > clv(annual_discount_rate=0.5) > 0
    assert clv(margin=0.25) == pytest.approx(0.25 * base)
    assert clv(horizon_days=730) > base > clv(horizon_days=90)
    # one step per year discounts every purchase a full year: lower than monthly steps
    assert clv(step_days=365) < base
    with pytest.raises(ValueError, match="positive"):
        clv(horizon_days=0)
