"""BG/NBD: likelihood, gradient, recovery of known parameters, predictions, CDNOW benchmark."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import check_grad
from scipy.special import hyp2f1

from recsys.customers.bgnbd import BGNBD, _neg_ll_and_grad, log_likelihood, unique_rft
from recsys.customers.clv import GammaGamma
from recsys.customers.history import build_history
from recsys.customers.summary import summarize
from recsys.errors import DataError, NotFittedError

TRUE = (0.5, 6.0, 0.8, 2.5)


def simulate(n: int, params: tuple[float, ...], T_max: float, holdout: float, seed: int
             ) -> tuple[np.ndarray, ...]:
    """Draw BG/NBD customers: (x, t_x, T) in the calibration window and holdout purchases."""
    r, alpha, a, b = params
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    T = rng.uniform(0.2 * T_max, T_max, n)
    x, t_x, later = np.zeros(n), np.zeros(n), np.zeros(n)
    t, alive = np.zeros(n), np.ones(n, bool)
    while alive.any():
        t = t + rng.exponential(1.0 / np.maximum(lam, 1e-12))
        buys = alive & (t <= T + holdout)
        cal = buys & (t <= T)
        x[cal] += 1
        t_x[cal] = t[cal]
        later[buys & ~cal] += 1
        alive = buys & (rng.random(n) >= p)  # dropout right after a purchase
    return x, t_x, T, later


@pytest.fixture(scope="module")
def simulated() -> tuple[np.ndarray, ...]:
    return simulate(20_000, TRUE, T_max=52.0, holdout=39.0, seed=7)


@pytest.fixture(scope="module")
def fitted(simulated: tuple[np.ndarray, ...]) -> BGNBD:
    x, t_x, T, _ = simulated
    return BGNBD().fit(x, t_x, T)


def test_gradient_matches_finite_differences(simulated: tuple[np.ndarray, ...]) -> None:
    x, t_x, T, _ = (v[:2000] for v in simulated)
    w = np.ones_like(x)
    for theta in (np.log([0.3, 4.0, 0.9, 2.0]), np.log([2.0, 10.0, 0.3, 7.0])):
        err = check_grad(lambda th: _neg_ll_and_grad(th, x, t_x, T, w)[0],
                         lambda th: _neg_ll_and_grad(th, x, t_x, T, w)[1], theta)
        assert err < 1e-5


def test_fit_recovers_simulated_parameters(fitted: BGNBD,
                                           simulated: tuple[np.ndarray, ...]) -> None:
    r, alpha, a, b = fitted.params_
    np.testing.assert_allclose([r, alpha, a / (a + b)], [0.5, 6.0, 0.8 / 3.3], rtol=0.05)
    np.testing.assert_allclose([a, b], [0.8, 2.5], rtol=0.25)  # a and b trade off
    x, t_x, T, _ = simulated  # the maximum is at least as likely as the truth
    assert log_likelihood(fitted.params_, x, t_x, T).sum() >= \
        log_likelihood(TRUE, x, t_x, T).sum()


def test_conditional_expectation_matches_simulated_holdout(
        simulated: tuple[np.ndarray, ...]) -> None:
    x, t_x, T, later = simulated
    model = BGNBD()
    model.params_ = np.array(TRUE)  # the true parameters: checks the formula, not the fit
    predicted = model.expected_purchases(39.0, x, t_x, T)
    assert predicted.sum() == pytest.approx(later.sum(), rel=0.04)
    for lo, hi in ((0, 0), (1, 2), (3, 100)):  # and within groups of calibration frequency
        g = (x >= lo) & (x <= hi)
        assert predicted[g].sum() == pytest.approx(later[g].sum(), rel=0.08)


def test_expected_purchases_equals_fhl_closed_form(fitted: BGNBD) -> None:
    r, alpha, a, b = fitted.params_
    x, t_x, T, t = np.array([0, 1, 4, 12.0]), np.array([0, 3, 20, 30.0]), np.full(4, 35.0), 20.0
    direct = ((a + b + x - 1) / (a - 1)
              * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x)
                 * hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t)))
              * fitted.p_alive(x, t_x, T))
    np.testing.assert_allclose(fitted.expected_purchases(t, x, t_x, T), direct, rtol=1e-9)


def test_predictions_are_finite_and_ordered_for_extreme_histories(fitted: BGNBD) -> None:
    x = np.array([0, 1, 500, 5_000, 20_000.0])
    t_x = np.array([0, 1e-6, 900, 9_990, 99_000.0])
    T = np.array([1e-6, 1e4, 1_000, 10_000, 100_000.0])
    for out in (fitted.p_alive(x, t_x, T), fitted.expected_purchases(52, x, t_x, T),
                fitted.prob_no_purchase(52, x, t_x, T), log_likelihood(fitted.params_, x, t_x, T)):
        assert np.isfinite(out).all()
    pa = fitted.p_alive(x, t_x, T)
    assert ((pa >= 0) & (pa <= 1)).all() and pa[0] == 1.0
    # a frequent buyer seen recently is alive; one silent for 10 of its 11 periods is not
    assert fitted.p_alive([50], [100], [101])[0] > 0.95 > 0.01 > fitted.p_alive([50], [10], [110])


def test_expected_purchases_grow_with_horizon_and_vanish_at_zero(fitted: BGNBD) -> None:
    x, t_x, T = np.array([0, 3.0]), np.array([0, 10.0]), np.array([30, 30.0])
    assert np.allclose(fitted.expected_purchases(0.0, x, t_x, T), 0.0)
    e = [fitted.expected_purchases(t, x, t_x, T) for t in (1.0, 10.0, 100.0)]
    assert (np.diff(np.stack(e), axis=0) > 0).all()


def test_prob_no_purchase_limits(fitted: BGNBD) -> None:
    x, t_x, T = np.array([0, 2, 6.0]), np.array([0, 5, 25.0]), np.array([30, 30, 30.0])
    assert np.allclose(fitted.prob_no_purchase(0.0, x, t_x, T), 1.0)
    far = fitted.prob_no_purchase(1e15, x, t_x, T)
    np.testing.assert_allclose(far, 1 - fitted.p_alive(x, t_x, T), atol=1e-6)


def test_unique_rft_inverse_rebuilds_rows() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, 500).astype(float)
    T = rng.integers(5, 9, 500).astype(float)
    t_x = np.where(x > 0, np.minimum(rng.integers(0, 9, 500), T), 0.0)
    ux, ut, uT, counts, inv = unique_rft(x, t_x, T)
    assert len(ux) == len({*zip(x, t_x, T, strict=True)}) and counts.sum() == 500
    np.testing.assert_array_equal(np.stack([ux[inv], ut[inv], uT[inv]]), np.stack([x, t_x, T]))


def test_weighted_fit_equals_fit_on_repeated_rows(simulated: tuple[np.ndarray, ...]) -> None:
    x, t_x, T, _ = (v[:3000] for v in simulated)
    ux, ut, uT, counts, _ = unique_rft(np.round(x), np.round(t_x), np.round(T))
    full = BGNBD().fit(np.round(x), np.round(t_x), np.round(T)).params_
    np.testing.assert_allclose(BGNBD().fit(ux, ut, uT, weights=counts).params_, full, rtol=1e-4)


def test_bad_inputs_raise() -> None:
    with pytest.raises(NotFittedError):
        BGNBD().p_alive([1], [1], [2])
    with pytest.raises(DataError, match="repeat purchases"):
        BGNBD().fit([0, 0], [0, 0], [5, 6])
    with pytest.raises(ValueError, match="t_x <= T"):
        BGNBD().fit([1, 2], [3, 9], [5, 6])
    with pytest.raises(ValueError, match="non-finite"):
        BGNBD().fit([1, np.nan], [1, 1], [5, 6])


def read_cdnow_sample(path) -> pd.DataFrame:
    """CDNOW sample (``id sample_index yyyymmdd n_cds dollars``) -> canonical transactions."""
    raw = pd.read_csv(path, sep=r"\s+", header=None, dtype={0: str, 2: str},
                      names=["customer_id", "index", "date", "cds", "amount"])
    return pd.DataFrame({"order_id": raw.index.astype(str), "customer_id": raw["customer_id"],
                         "amount": raw["amount"],
                         "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d")})


@pytest.mark.data
def test_cdnow_recovers_fader_hardie_lee_2005(shared_data) -> None:
    tx = read_cdnow_sample(shared_data / "cdnow" / "CDNOW_sample.txt.gz")
    with warnings.catch_warnings():  # the holdout rows are "future" at the calibration end
        warnings.simplefilter("ignore")
        s = summarize(build_history(tx, as_of="1997-09-30"))
    x = s.n_days - 1  # repeat purchase days: several transactions on one day are one
    t_x, T = (s.last_day - s.first_day) / 7, (s.cut_day - s.first_day) / 7
    assert len(x) == 2357 and T.max() == pytest.approx(272 / 7)
    model = BGNBD().fit(x, t_x, T)
    np.testing.assert_allclose(model.params_, [0.243, 4.414, 0.793, 2.426], rtol=0.01)
    assert model.log_likelihood_ == pytest.approx(-9582.4, abs=0.5)
    # Gamma-Gamma on the same calibration data (Fader & Hardie 2013: p=6.25, q=3.74, g=15.44)
    gg = GammaGamma().fit(x, s.repeat_mean)
    np.testing.assert_allclose(gg.params_, [6.25, 3.74, 15.44], rtol=0.01)
