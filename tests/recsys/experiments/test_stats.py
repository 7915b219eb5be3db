"""Statistics against textbook values and known cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from recsys.experiments.stats import bootstrap, compare, cuped, power, sample_size, srm


def test_welch_interval_matches_the_textbook_formula() -> None:
    rng = np.random.default_rng(0)
    t, c = rng.normal(1.0, 2.0, 300), rng.normal(0.0, 1.0, 500)
    d = compare("x", t, c)
    vt, vc = t.var(ddof=1) / len(t), c.var(ddof=1) / len(c)
    dof = (vt + vc) ** 2 / (vt**2 / (len(t) - 1) + vc**2 / (len(c) - 1))
    half = stats.t.ppf(0.975, dof) * np.sqrt(vt + vc)
    assert d.method == "welch"
    assert d.diff == pytest.approx(t.mean() - c.mean())
    assert (d.low, d.high) == pytest.approx((d.diff - half, d.diff + half))
    assert d.significant and d.p_value < 1e-6


def test_bootstrap_agrees_with_welch_on_a_large_sample() -> None:
    rng = np.random.default_rng(1)
    t, c = rng.exponential(10.5, 4000), rng.exponential(10.0, 4000)
    w = compare("x", t, c)
    b = compare("x", t, c, method="bootstrap")
    assert b.method == "bootstrap" and b.diff == pytest.approx(w.diff)
    assert b.low == pytest.approx(w.low, abs=0.1) and b.high == pytest.approx(w.high, abs=0.1)
    assert bootstrap(t, c, seed=3) == bootstrap(t, c, seed=3)


def test_cuped_keeps_the_difference_and_narrows_the_interval() -> None:
    rng = np.random.default_rng(2)
    x = rng.gamma(2.0, 20.0, 4000)
    y = x + rng.normal(0, 10, 4000)
    y[:2000] += 3.0
    raw = compare("y", y[:2000], y[2000:])
    adj = compare("y", y[:2000], y[2000:], covariate=(x[:2000], x[2000:]))
    assert adj.method == "welch+cuped"
    assert adj.high - adj.low < 0.5 * (raw.high - raw.low)
    assert adj.low < 3.0 < adj.high
    assert cuped(y, x).mean() == pytest.approx(y.mean())
    assert np.array_equal(cuped(y, np.ones_like(x)), y)  # a constant covariate explains nothing


def test_srm_flags_a_45_55_split_and_passes_a_fair_one() -> None:
    shares = {"champion": 0.5, "challenger": 0.5}
    assert srm({"champion": 4500, "challenger": 5500}, shares).mismatch
    fair = srm({"champion": 5030, "challenger": 4970}, shares)
    assert not fair.mismatch and fair.p_value > 0.5
    assert not srm({"treated": 800, "held_out": 200}, {"treated": 0.8, "held_out": 0.2}).mismatch


def test_sample_size_reaches_the_power_asked_for() -> None:
    n = sample_size(effect=2.0, sd=20.0)
    # textbook normal approximation: 2 (1.96 + 0.8416)^2 (20/2)^2 = 1569.8
    assert n == 1571  # the t test needs one more
    assert power(n, 2.0, 20.0) >= 0.8 > power(n - 20, 2.0, 20.0)
    assert sample_size(effect=2.0, sd=20.0, ratio=4.0) < n  # more treated, fewer controls


def test_bad_input_is_refused_clearly() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        compare("x", [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="interval method"):
        compare("x", [1.0, 2.0], [1.0, 2.0], method="bayes")
    with pytest.raises(ValueError, match="non-zero"):
        sample_size(effect=0.0, sd=1.0)
