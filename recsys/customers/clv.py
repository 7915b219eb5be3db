"""Gamma-Gamma spend model and discounted customer lifetime value.

Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves for customer base
analysis", J. Marketing Research 42(4); Fader & Hardie 2013, "The Gamma-Gamma model of monetary
value"): a customer's purchase values are Gamma(p, nu) with nu ~ Gamma(q, gamma) across
customers. Fitted on customers with ``x >= 1`` repeat purchases and their mean repeat value
``m_x > 0``; the conditional mean spend per purchase shrinks ``m_x`` towards the population mean
``p gamma / (q - 1)`` (which is what customers without repeat purchases get).

CLV over a horizon = margin x E[spend per purchase] x sum over steps k of
(E[purchases by t_k] - E[purchases by t_(k-1)]) / (1 + annual rate)^(t_k / 365 days).
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

from recsys.customers.bgnbd import BGNBD, Levels, x_levels
from recsys.errors import DataError, NotFittedError

log = logging.getLogger(__name__)
FloatArray = NDArray[np.float64]


def _neg_ll_and_grad(theta: FloatArray, x: FloatArray, m: FloatArray, w: FloatArray,
                     levels: Levels | None = None) -> tuple[float, FloatArray]:
    """Mean negative Gamma-Gamma log-likelihood and its gradient in ``log(p, q, gamma)``.

    The special functions depend on the data only through ``x``: evaluated once per level.
    """
    p, q, g = params = np.exp(theta)
    xv, xi = levels or x_levels(x)
    px = p * x
    log_tot = np.log(g + x * m)
    log_m = np.log(m)
    ll = ((gammaln(p * xv + q) - gammaln(p * xv) + p * xv * np.log(xv))[xi] - gammaln(q)
          + q * np.log(g) + (px - 1) * log_m - (px + q) * log_tot)
    d_p = x * ((digamma(p * xv + q) - digamma(p * xv) + np.log(xv))[xi] + log_m - log_tot)
    d_q = (digamma(p * xv + q) - digamma(q))[xi] + np.log(g) - log_tot
    d_g = q / g - (px + q) / (g + x * m)
    total = w.sum()
    return -float(ll @ w) / total, -(np.stack([d_p, d_q, d_g]) @ w) * params / total


class GammaGamma:
    """Gamma-Gamma model of spend per purchase, fitted by maximum likelihood.

    Parameters
    ----------
    max_iter : int
    tol : float

    Attributes
    ----------
    params_ : (3,) float64 ``(p, q, gamma)``
    log_likelihood_ : float
    """

    def __init__(self, *, max_iter: int = 500, tol: float = 1e-9) -> None:
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, x: ArrayLike, monetary: ArrayLike,
            weights: ArrayLike | None = None) -> GammaGamma:
        """Fit on customers' repeat-purchase counts ``x`` and mean repeat values, (n,) each.

        Customers with ``x < 1`` or ``monetary <= 0`` carry no information and are skipped.

        Raises
        ------
        DataError
            Fewer than two usable customers.
        """
        x = np.asarray(x, dtype=np.float64)
        m = np.asarray(monetary, dtype=np.float64)
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
        ok = (x >= 1) & np.isfinite(m) & (m > 0) & (w > 0)
        if ok.sum() < 2:
            raise DataError("Gamma-Gamma needs at least two customers with a repeat purchase of "
                            f"positive value, got {int(ok.sum())}")
        x, m, w = x[ok], m[ok], w[ok]
        start = np.log([1.0, 2.0, float(np.average(m, weights=w))])
        res = minimize(_neg_ll_and_grad, start, args=(x, m, w, x_levels(x)), jac=True,
                       method="L-BFGS-B",
                       bounds=[(-20.0, 20.0)] * 3,
                       options={"maxiter": self.max_iter, "gtol": self.tol, "ftol": 1e-13})
        # L-BFGS-B reports ABNORMAL when the line search cannot improve on a flat optimum;
        # only a large gradient means it did not converge.
        if not res.success and np.max(np.abs(res.jac)) > 1e-5:
            log.warning("Gamma-Gamma optimizer stopped early: %s", res.message)
        self.params_ = np.exp(res.x)
        self.log_likelihood_ = -float(res.fun) * float(w.sum())
        if self.params_[1] <= 1:
            log.warning("Gamma-Gamma q=%.3f <= 1: the population mean spend is infinite; "
                        "expected spend is capped at observed means", self.params_[1])
        return self

    def expected_spend(self, x: ArrayLike, monetary: ArrayLike) -> FloatArray:
        """E[spend per purchase | x, m_x]; customers with ``x = 0`` get the population mean.

        Parameters
        ----------
        x : (n,) repeat purchases
        monetary : (n,) mean value of the repeat purchases (ignored where ``x = 0``; NaN ok)

        Returns
        -------
        (n,) float64
        """
        if not hasattr(self, "params_"):
            raise NotFittedError("GammaGamma is not fitted; call fit(x, monetary) first")
        p, q, g = self.params_
        x = np.asarray(x, dtype=np.float64)
        m = np.where(x > 0, np.nan_to_num(np.asarray(monetary, dtype=np.float64)), 0.0)
        m = np.maximum(m, 0.0)
        denom = p * x + q - 1
        if q <= 1:  # no finite prior mean: fall back to the customer's own mean
            return np.where(x > 0, m, np.nan)
        return p * (g + x * m) / denom


def customer_lifetime_value(bgnbd: BGNBD, x: ArrayLike, t_x: ArrayLike, T: ArrayLike,
                            spend: ArrayLike, *, horizon_days: float, step_days: float,
                            time_unit_days: float, annual_discount_rate: float,
                            margin: float = 1.0) -> FloatArray:
    """Discounted value of each customer's expected purchases over ``horizon_days``.

    Parameters
    ----------
    bgnbd : fitted BGNBD (time in ``time_unit_days`` units)
    x, t_x, T : (n,) BG/NBD inputs in model time units
    spend : (n,) expected spend per purchase (e.g. ``GammaGamma.expected_spend``)
    horizon_days, step_days : horizon and cash-flow step, in days
    annual_discount_rate : yearly rate (0.1 = 10 %)
    margin : share of revenue that is profit

    Returns
    -------
    (n,) float64
    """
    if horizon_days <= 0 or step_days <= 0:
        raise ValueError("horizon_days and step_days must be positive")
    steps = np.minimum(np.arange(1, int(np.ceil(horizon_days / step_days)) + 1) * step_days,
                       horizon_days)
    total = np.zeros(np.broadcast(np.asarray(x), np.asarray(T)).shape)
    previous = np.zeros_like(total)
    for days in steps:
        cumulative = bgnbd.expected_purchases(days / time_unit_days, x, t_x, T)
        total += (cumulative - previous) * (1.0 + annual_discount_rate) ** (-days / 365.0)
        previous = cumulative
    return margin * np.asarray(spend, dtype=np.float64) * total


__all__ = ["GammaGamma", "customer_lifetime_value"]
