"""Statistics of an online experiment: intervals, sample-ratio mismatch, CUPED, sample size.

Every function takes per-customer outcomes (the customer is the randomisation unit). The
interval of a difference in means is Welch's t interval (``scipy.stats.ttest_ind`` with
unequal variances) unless a percentile bootstrap is asked for. Functions on 2-D arrays treat
each row as one experiment, so a simulation of many experiments is one call.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05
SRM_ALPHA = 0.001  # a broken split is a bug to find, not a 1-in-20 event: flag only if sure
INTERVALS = ("welch", "bootstrap")


@dataclass(frozen=True)
class Difference:
    """``treatment - control`` of a per-customer mean, with its interval and p-value."""

    metric: str
    method: str  # "welch" or "bootstrap" (and "+cuped" when adjusted)
    n_treatment: int
    n_control: int
    mean_treatment: float
    mean_control: float
    diff: float
    low: float
    high: float
    p_value: float

    @property
    def relative(self) -> float:
        """``diff / mean_control`` (nan when the control mean is 0)."""
        return self.diff / self.mean_control if self.mean_control else float("nan")

    @property
    def significant(self) -> bool:
        """The interval excludes zero."""
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"relative": self.relative, "significant": self.significant}


def welch(treatment: np.ndarray, control: np.ndarray, alpha: float = ALPHA
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(diff, low, high, p)`` of ``mean(treatment) - mean(control)`` along the last axis,
    Welch's t interval at level ``1 - alpha``."""
    res = stats.ttest_ind(treatment, control, axis=-1, equal_var=False)
    ci = res.confidence_interval(confidence_level=1 - alpha)
    diff = np.mean(treatment, axis=-1) - np.mean(control, axis=-1)
    return diff, np.asarray(ci.low), np.asarray(ci.high), np.asarray(res.pvalue)


def bootstrap(treatment: np.ndarray, control: np.ndarray, alpha: float = ALPHA,
              resamples: int = 2000, seed: int = 0) -> tuple[float, float, float, float]:
    """``(diff, low, high, p)`` with a percentile bootstrap interval (each group resampled
    with replacement); ``p`` is the two-sided share of resampled differences beyond 0."""
    rng = np.random.default_rng(seed)
    t, c = np.asarray(treatment, np.float64), np.asarray(control, np.float64)
    means_t = t[rng.integers(0, len(t), (resamples, len(t)))].mean(axis=1)
    means_c = c[rng.integers(0, len(c), (resamples, len(c)))].mean(axis=1)
    boot = means_t - means_c
    low, high = np.quantile(boot, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * min(np.mean(boot <= 0), np.mean(boot >= 0)))
    return float(t.mean() - c.mean()), float(low), float(high), float(p)


def cuped(outcome: np.ndarray, covariate: np.ndarray) -> np.ndarray:
    """CUPED (Deng et al. 2013): ``y - theta (x - mean x)`` with ``theta = cov(x, y) / var x``
    pooled over both groups (the covariate is measured before exposure, so the adjustment
    keeps the difference unbiased and removes the variance ``x`` explains). Rows of 2-D
    input are separate experiments."""
    y, x = np.asarray(outcome, np.float64), np.asarray(covariate, np.float64)
    xc = x - x.mean(axis=-1, keepdims=True)
    var = (xc * xc).mean(axis=-1, keepdims=True)
    theta = np.divide((xc * (y - y.mean(axis=-1, keepdims=True))).mean(axis=-1, keepdims=True),
                      var, out=np.zeros_like(var), where=var > 0)
    return y - theta * xc


def compare(metric: str, treatment: np.ndarray, control: np.ndarray, *,
            covariate: tuple[np.ndarray, np.ndarray] | None = None, method: str = "welch",
            alpha: float = ALPHA, seed: int = 0) -> Difference:
    """One metric's difference between two groups of customers. ``covariate``: each group's
    pre-period values for CUPED (the means reported stay the raw ones)."""
    if method not in INTERVALS:
        raise ValueError(f"interval method must be one of {INTERVALS}, not {method!r}")
    t, c = np.asarray(treatment, np.float64), np.asarray(control, np.float64)
    if len(t) < 2 or len(c) < 2:
        raise ValueError(f"{metric}: each group needs at least 2 customers "
                         f"(treatment {len(t)}, control {len(c)})")
    at, ac, label = t, c, method
    if covariate is not None:
        adjusted = cuped(np.concatenate([t, c]), np.concatenate(covariate))
        at, ac, label = adjusted[:len(t)], adjusted[len(t):], method + "+cuped"
    if method == "welch":
        diff, low, high, p = (float(v) for v in welch(at, ac, alpha))
    else:
        diff, low, high, p = bootstrap(at, ac, alpha, seed=seed)
    return Difference(metric, label, len(t), len(c), float(t.mean()), float(c.mean()),
                      diff, low, high, p)


@dataclass(frozen=True)
class SampleRatio:
    """Sample-ratio mismatch check: observed counts against the configured shares."""

    counts: dict[str, int]
    expected: dict[str, float]
    chi2: float
    p_value: float

    @property
    def mismatch(self) -> bool:
        """The split is broken (p below ``SRM_ALPHA``): do not trust the comparison."""
        return self.p_value < SRM_ALPHA

    def to_dict(self) -> dict[str, object]:
        return asdict(self) | {"mismatch": self.mismatch, "threshold": SRM_ALPHA}


def srm(counts: dict[str, int], shares: dict[str, float]) -> SampleRatio:
    """Pearson's chi-square of the customers per group against the intended shares."""
    names = list(shares)
    observed = np.array([counts.get(k, 0) for k in names], np.float64)
    share = np.array([shares[k] for k in names], np.float64)
    if observed.sum() == 0 or np.any(share <= 0):
        return SampleRatio({k: int(v) for k, v in zip(names, observed, strict=True)},
                           dict(shares), 0.0, 1.0)
    res = stats.chisquare(observed, observed.sum() * share / share.sum())
    return SampleRatio({k: int(v) for k, v in zip(names, observed, strict=True)},
                       dict(shares), float(res.statistic), float(res.pvalue))


def power(n_per_group: int, effect: float, sd: float, alpha: float = ALPHA,
          ratio: float = 1.0) -> float:
    """Power of a two-sided two-sample t test with ``n_per_group`` controls and
    ``ratio * n_per_group`` treated customers (noncentral t)."""
    n_c, n_t = n_per_group, ratio * n_per_group
    se = sd * np.sqrt(1 / n_c + 1 / n_t)
    dof = n_c + n_t - 2
    crit = stats.t.ppf(1 - alpha / 2, dof)
    nc = abs(effect) / se
    return float(stats.nct.sf(crit, dof, nc) + stats.nct.cdf(-crit, dof, nc))


def sample_size(effect: float, sd: float, alpha: float = ALPHA, target_power: float = 0.8,
                ratio: float = 1.0) -> int:
    """Smallest control-group size whose test detects ``effect`` (an absolute difference in
    means, outcome standard deviation ``sd``) with ``target_power``: the normal
    approximation, then stepped up until the exact t power reaches the target."""
    if effect == 0 or sd <= 0:
        raise ValueError("effect must be non-zero and sd positive")
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(target_power)
    n = max(2, int(np.ceil((z * sd / abs(effect)) ** 2 * (1 + 1 / ratio))))
    while power(n, effect, sd, alpha, ratio) < target_power:
        n += 1  # the t test needs a few more than the normal approximation says
    return n


__all__ = ["ALPHA", "SRM_ALPHA", "INTERVALS", "Difference", "welch", "bootstrap", "cuped",
           "compare", "SampleRatio", "srm", "power", "sample_size"]
