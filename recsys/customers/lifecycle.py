"""Lifecycle stages relative to each customer's own purchase rhythm, and membership tiers.

Stage rules (``configs/customers.yaml: lifecycle``), first match wins. ``gap`` is the
customer's mean gap between purchase days; one-day customers use the median gap of repeat
customers (``default_gap_days`` when there are none); every gap is floored at ``min_gap_days``.

1. ``prospect``: known customer (customers table) without any purchase.
2. ``new``: first purchase at most ``new_days`` ago.
3. ``churned``: recency > min(``churn_horizon_days``, ``churn_gap_multiple`` x gap).
4. ``at_risk``: recency > ``at_risk_gap_multiple`` x gap, or churn_risk >= ``at_risk_churn_risk``.
5. ``new``: a single purchase day that has not lapsed (waiting for the second purchase).
6. ``loyal``: >= ``loyal_min_orders`` orders and F and M scores >= ``loyal_min_score``.
7. ``active``: everyone else (2+ purchase days, recency within their usual rhythm).

Tier: the highest ``tiers.levels`` entry whose ``min_spend`` the customer's spend over the
trailing ``tiers.window_days`` reaches (prospects and lapsed customers get the first level).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from recsys.customers.config import LifecycleConfig, TierConfig

STAGES = ("prospect", "new", "active", "loyal", "at_risk", "churned")


def own_gap(n_days: NDArray[np.int64], mean_gap: NDArray[np.float64],
            config: LifecycleConfig) -> NDArray[np.float64]:
    """Each customer's usual gap in days, with the population fallback and the floor.

    Parameters
    ----------
    n_days : (n,) int64 distinct purchase days
    mean_gap : (n,) float64 mean gap (NaN for fewer than 2 days)

    Returns
    -------
    (n,) float64
    """
    repeat = (n_days > 1) & np.isfinite(mean_gap)
    fallback = float(np.median(mean_gap[repeat])) if repeat.any() else config.default_gap_days
    gap = np.where(repeat, mean_gap, fallback)
    return np.maximum(gap, config.min_gap_days)


def assign_stages(*, recency_days: NDArray[np.float64], tenure_days: NDArray[np.float64],
                  n_days: NDArray[np.int64], n_orders: NDArray[np.int64],
                  mean_gap: NDArray[np.float64], f_score: NDArray[np.int8],
                  m_score: NDArray[np.int8], churn_risk: NDArray[np.float64] | None,
                  config: LifecycleConfig) -> NDArray[np.object_]:
    """Lifecycle stage of each customer by the rules in the module docstring.

    Parameters
    ----------
    recency_days, tenure_days : (n,) float64 days since last / first purchase (NaN: prospect)
    n_days, n_orders : (n,) int64 purchase days and orders (0: prospect)
    mean_gap : (n,) float64 mean days between purchase days (NaN below 2 days)
    f_score, m_score : (n,) int8 RFM scores
    churn_risk : (n,) float64 or None; NaN entries never trigger ``at_risk``

    Returns
    -------
    (n,) object array of str, values from ``STAGES``
    """
    gap = own_gap(n_days, mean_gap, config)
    with np.errstate(invalid="ignore"):
        risky = np.zeros(len(gap), bool) if churn_risk is None else \
            np.nan_to_num(churn_risk, nan=-1.0) >= config.at_risk_churn_risk
        churn_after = np.minimum(config.churn_horizon_days, config.churn_gap_multiple * gap)
        conditions = [
            n_orders == 0,
            tenure_days <= config.new_days,
            recency_days > churn_after,
            (recency_days > config.at_risk_gap_multiple * gap) | risky,
            n_days <= 1,
            (n_orders >= config.loyal_min_orders) & (f_score >= config.loyal_min_score)
            & (m_score >= config.loyal_min_score),
        ]
    names = ["prospect", "new", "churned", "at_risk", "new", "loyal"]
    return np.select(conditions, names, default="active").astype(object)


def assign_tiers(trailing_spend: NDArray[np.float64], config: TierConfig) -> NDArray[np.object_]:
    """Membership tier from trailing spend.

    Parameters
    ----------
    trailing_spend : (n,) float64 spend over the last ``config.window_days`` (NaN -> 0)

    Returns
    -------
    (n,) object array of str
    """
    spend = np.nan_to_num(np.asarray(trailing_spend, dtype=np.float64), nan=0.0)
    edges = np.array([lv.min_spend for lv in config.levels])
    level = np.searchsorted(edges, spend, side="right") - 1
    names = np.array([lv.name for lv in config.levels], dtype=object)
    return names[np.clip(level, 0, len(edges) - 1)]


__all__ = ["STAGES", "own_gap", "assign_stages", "assign_tiers"]
