"""BG/NBD: how many purchases a customer will make, and whether they are still "alive".

Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the
Pareto/NBD model", Marketing Science 24(2):275-284. While alive a customer buys at Poisson rate
lambda ~ Gamma(r, alpha); after each purchase they drop out with probability p ~ Beta(a, b).

Per customer: ``x`` repeat purchases (purchase days after the first), ``t_x`` time of the last
purchase and ``T`` the age at the end of the calibration window, both measured from the first
purchase, in the model's time unit. Everything is computed in log space with
``gammaln``/``betaln``/``logsumexp`` and vectorised; the likelihood's gradient is analytic, so a
fit over a million customers takes a handful of vectorised passes.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1

from recsys.errors import DataError, NotFittedError

log = logging.getLogger(__name__)
FloatArray = NDArray[np.float64]


def check_rft(x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> tuple[FloatArray, ...]:
    """Validate and broadcast ``x, t_x, T`` to float64 arrays (0 <= t_x <= T, x >= 0)."""
    x, t_x, T = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (x, t_x, T)))
    bad = ~(np.isfinite(x) & np.isfinite(t_x) & np.isfinite(T))
    if bad.any():
        raise ValueError(f"{int(bad.sum())} customer(s) have non-finite x, t_x or T")
    if (x < 0).any() or (t_x < 0).any() or (t_x > T + 1e-9).any():
        raise ValueError("need x >= 0 and 0 <= t_x <= T for every customer")
    if ((x == 0) & (t_x > 0)).any():
        raise ValueError("customers with x = 0 repeat purchases must have t_x = 0")
    return x, t_x, T


Levels = tuple[FloatArray, NDArray[np.intp]]


def x_levels(x: FloatArray) -> Levels:
    """Distinct repeat counts and each customer's position among them.

    Every special function in the likelihood depends on the data only through ``x``, which
    takes few distinct values, so they are evaluated once per level and gathered.
    """
    values, inverse = np.unique(x, return_inverse=True)
    return values, inverse.reshape(-1)


def _terms(params: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray,
           levels: Levels | None = None) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The two log-likelihood branches (FHL 2005 eq. 6) and the shared term A."""
    r, alpha, a, b = params
    xv, xi = levels or x_levels(x)
    xs = np.where(xv > 0, xv, 1.0)  # keeps betaln(a + 1, b + x - 1) defined for x = 0
    A = (gammaln(r + xv) - gammaln(r))[xi] + r * np.log(alpha)
    t1 = (betaln(a, b + xv) - betaln(a, b))[xi] - (r + x) * np.log(alpha + T)
    t2 = np.where(x > 0, (betaln(a + 1, b + xs - 1) - betaln(a, b))[xi]
                  - (r + x) * np.log(alpha + t_x), -np.inf)
    return A, t1, t2


def log_likelihood(params: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
    """Per-customer BG/NBD log-likelihood at ``params = (r, alpha, a, b)``.

    Returns
    -------
    (n,) float64
    """
    x, t_x, T = check_rft(x, t_x, T)
    A, t1, t2 = _terms(np.asarray(params, dtype=np.float64), x, t_x, T)
    return A + np.logaddexp(t1, t2)


def _neg_ll_and_grad(theta: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray,
                     w: FloatArray, levels: Levels | None = None) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood and its gradient in ``theta = log(params)``."""
    params = np.exp(theta)
    r, alpha, a, b = params
    levels = levels or x_levels(x)
    xv, xi = levels
    A, t1, t2 = _terms(params, x, t_x, T, levels)
    ll = A + np.logaddexp(t1, t2)
    w1 = np.exp(t1 - np.logaddexp(t1, t2))  # posterior weight of the "still alive" branch
    w2 = 1.0 - w1
    xs = np.where(xv > 0, xv, 1.0)
    log_aT, log_at = np.log(alpha + T), np.log(alpha + t_x)
    d_r = (digamma(r + xv) - digamma(r))[xi] + np.log(alpha) - w1 * log_aT - w2 * log_at
    d_alpha = r / alpha - (r + x) * (w1 / (alpha + T) + w2 / (alpha + t_x))
    common = (digamma(a + b) - digamma(a + b + xv))[xi]
    d_a = common + w2 * (digamma(a + 1) - digamma(a))
    d_b = common + w1 * (digamma(b + xv) - digamma(b))[xi] \
        + w2 * np.where(xv > 0, digamma(b + xs - 1) - digamma(b), 0.0)[xi]
    grads = np.stack([d_r, d_alpha, d_a, d_b]) @ w
    total = w.sum()
    return -float(ll @ w) / total, -(grads * params) / total


def unique_rft(x: ArrayLike, t_x: ArrayLike, T: ArrayLike
               ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, NDArray[np.intp]]:
    """Distinct ``(x, t_x, T)`` rows, their counts and the inverse map (n,) -> (u,).

    Fitting and predicting on distinct rows gives the same answer far faster when customers
    share histories (day-resolution data: many do).
    """
    cols = [np.asarray(v, dtype=np.float64).ravel() for v in (x, t_x, T)]
    inverse = np.zeros(len(cols[0]), dtype=np.int64)
    for col in cols:  # pairwise codes, re-factorized so the key never exceeds n * n_unique
        codes, uniques = pd.factorize(col)
        inverse = pd.factorize(inverse * len(uniques) + codes)[0]
    first = np.full(int(inverse.max(initial=-1)) + 1, len(inverse), dtype=np.intp)
    np.minimum.at(first, inverse, np.arange(len(inverse)))
    counts = np.bincount(inverse, minlength=len(first)).astype(np.float64)
    return cols[0][first], cols[1][first], cols[2][first], counts, inverse.astype(np.intp)


class BGNBD:
    """BG/NBD purchase model fitted by maximum likelihood (L-BFGS on log-parameters).

    Parameters
    ----------
    max_iter : int
        Optimizer iterations.
    tol : float
        Gradient tolerance of the optimizer.

    Attributes
    ----------
    params_ : (4,) float64 ``(r, alpha, a, b)``
    log_likelihood_ : float total log-likelihood at ``params_``
    n_customers_ : int customers (total weight) fitted
    """

    def __init__(self, *, max_iter: int = 500, tol: float = 1e-9) -> None:
        self.max_iter = max_iter
        self.tol = tol

    def fit(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike,
            weights: ArrayLike | None = None) -> BGNBD:
        """Fit on ``(x, t_x, T)`` arrays of shape (n,); ``weights`` count identical customers.

        Raises
        ------
        DataError
            No customers, or no repeat purchase at all (the dropout is then unidentified).
        """
        x, t_x, T = check_rft(x, t_x, T)
        w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=np.float64)
        if w.sum() <= 0:
            raise DataError("BG/NBD needs at least one customer")
        if not (w[x > 0] > 0).any():
            raise DataError("BG/NBD needs customers with repeat purchases; none has any")
        scale = float(np.average(T, weights=w)) or 1.0
        start = np.log([1.0, scale, 1.0, 1.0])
        res = minimize(_neg_ll_and_grad, start, args=(x, t_x, T, w, x_levels(x)), jac=True,
                       method="L-BFGS-B", bounds=[(-20.0, 20.0)] * 4,
                       options={"maxiter": self.max_iter, "gtol": self.tol, "ftol": 1e-13})
        # L-BFGS-B reports ABNORMAL when the line search cannot improve on a flat optimum
        # (e.g. no dropout: a -> 0, b -> inf); only a large gradient means it did not converge.
        if not res.success and np.max(np.abs(res.jac)) > 1e-5:
            log.warning("BG/NBD optimizer stopped early: %s", res.message)
        self.params_ = np.exp(res.x)
        self.log_likelihood_ = -float(res.fun) * float(w.sum())
        self.n_customers_ = float(w.sum())
        return self

    def _params(self) -> FloatArray:
        if not hasattr(self, "params_"):
            raise NotFittedError("BGNBD is not fitted; call fit(x, t_x, T) first")
        return self.params_

    def p_alive(self, x: ArrayLike, t_x: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(customer still active at T | x, t_x, T) (FHL 2005 eq. 11 in log space); (n,)."""
        r, alpha, a, b = self._params()
        x, t_x, T = check_rft(x, t_x, T)
        rep = x > 0
        xs = np.where(rep, x, 1.0)
        log_odds_dead = np.log(a) - np.log(b + xs - 1) \
            + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return np.where(rep, expit(-log_odds_dead), 1.0)

    def expected_purchases(self, t: float, x: ArrayLike, t_x: ArrayLike,
                           T: ArrayLike) -> FloatArray:
        """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005 eq. 10); (n,) float64.

        Uses Euler's transformation ``2F1(r+x, b+x; a+b+x-1; z) (1-z)^(r+x) =
        (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)`` so the series' parameters do not grow with
        ``x``, and ``expm1``/``log1p`` for the bracket, which stays accurate for small ``t``.
        """
        r, alpha, a, b = self._params()
        x, t_x, T = check_rft(x, t_x, T)
        if t < 0:
            raise ValueError(f"t must be >= 0, got {t}")
        if abs(a - 1.0) < 1e-8:
            a = 1.0 + 1e-8  # removable singularity of the closed form at a = 1
        z = t / (alpha + T + t)
        hyp = hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        bracket = -np.expm1((a - 1) * np.log1p(-z) + np.log(hyp))
        return (a + b + x - 1) / (a - 1) * bracket * self.p_alive(x, t_x, T)

    def prob_no_purchase(self, t: float, x: ArrayLike, t_x: ArrayLike,
                         T: ArrayLike) -> FloatArray:
        """P(no purchase in (T, T + t] | x, t_x, T); (n,) float64.

        Dead customers never buy; an alive one's rate has posterior Gamma(r + x, alpha + T), and
        dropout only follows a purchase, so ``1 - p_alive + p_alive ((alpha+T)/(alpha+T+t))^(r+x)``.
        """
        r, alpha, _, _ = self._params()
        x, t_x, T = check_rft(x, t_x, T)
        pa = self.p_alive(x, t_x, T)
        stay = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + T + t)))
        return 1.0 - pa + pa * stay

    def expected_purchases_new(self, t: ArrayLike) -> FloatArray:
        """E[X(t)] for a customer who has just made their first purchase (FHL 2005 eq. 9)."""
        r, alpha, a, b = self._params()
        t = np.asarray(t, dtype=np.float64)
        z = t / (alpha + t)
        hyp = hyp2f1(r, b, a + b - 1, z)
        return (a + b - 1) / (a - 1) * (1 - np.exp(r * np.log1p(-z)) * hyp)


__all__ = ["BGNBD", "Levels", "log_likelihood", "check_rft", "unique_rft", "x_levels"]
