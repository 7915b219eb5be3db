"""RFM: recency, frequency and monetary value per customer, quantile scores and named segments.

Definitions (as of a reference date ``as_of``):

- ``recency_days``: calendar days from the last purchase day to ``as_of``'s day.
- ``frequency``: number of distinct orders (within ``rfm.window_days`` when set).
- ``monetary``: total spend of those orders.

Scores are quantiles of the population: each customer's percentile is ``(mean rank - 0.5) / n``
(ties share their mean rank, so equal values always get equal scores), and the cut points
``rfm.quantiles`` turn percentiles into scores ``1..len(quantiles) + 1``. Higher is better:
recency is ranked in reverse. A lone customer sits at percentile 0.5 (score 3 of 5), two get
the 25th and 75th. Segments are the first rule of ``rfm.segments`` whose R/F/M ranges all hold;
customers matching none get ``rfm.default_segment``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.stats import rankdata

from recsys.customers.config import RFMConfig
from recsys.customers.history import NS_PER_DAY, History, build_history
from recsys.customers.summary import Summary, summarize, window_totals

ScoreArray = NDArray[np.int8]


def quantile_scores(values: NDArray[np.float64], quantiles: tuple[float, ...], *,
                    higher_is_better: bool = True) -> ScoreArray:
    """Score values ``1..len(quantiles)+1`` by their mid-rank percentile.

    Parameters
    ----------
    values : (n,) float
        NaN values get score 0 (unscored).
    quantiles : increasing cut points in (0, 1)
    higher_is_better : bool
        False ranks small values best (recency).

    Returns
    -------
    (n,) int8
    """
    values = np.asarray(values, dtype=np.float64)
    out = np.zeros(len(values), dtype=np.int8)
    ok = ~np.isnan(values)
    n = int(ok.sum())
    if n == 0:
        return out
    v = values[ok] if higher_is_better else -values[ok]
    pct = (rankdata(v, method="average") - 0.5) / n
    out[ok] = 1 + np.searchsorted(np.asarray(quantiles), pct, side="right")
    return out


def assign_segments(r: ScoreArray, f: ScoreArray, m: ScoreArray,
                    config: RFMConfig) -> NDArray[np.object_]:
    """Name each customer's segment: the first matching rule of ``config.segments``.

    Parameters
    ----------
    r, f, m : (n,) int8 scores

    Returns
    -------
    (n,) object array of str
    """
    names = [s.name for s in config.segments] + [config.default_segment]
    code = np.full(len(r), len(config.segments), dtype=np.int32)
    free = np.ones(len(r), dtype=bool)
    for i, rule in enumerate(config.segments):
        hit = free.copy()
        for scores, rng in ((r, rule.r), (f, rule.f), (m, rule.m)):
            if rng is not None:
                hit &= (scores >= rng[0]) & (scores <= rng[1])
        code[hit] = i
        free &= ~hit
    return np.asarray(names, dtype=object)[code]


def rfm_arrays(history: History, config: RFMConfig,
               summary: Summary | None = None) -> dict[str, np.ndarray]:
    """RFM values, scores and segments of every customer of ``history`` (aligned arrays).

    ``summary`` is ``summarize(history)`` when the caller already has it.
    """
    summary = summary or summarize(history)
    recency = summary.recency_days
    if config.window_days is None:
        frequency, monetary = summary.n_orders, summary.total
    else:
        start = history.as_of_ns - config.window_days * NS_PER_DAY
        monetary, frequency = window_totals(history, start, history.as_of_ns)
    r = quantile_scores(recency, config.quantiles, higher_is_better=False)
    f = quantile_scores(frequency.astype(np.float64), config.quantiles)
    m = quantile_scores(monetary, config.quantiles)
    return {"recency_days": recency, "frequency": frequency.astype(np.int64),
            "monetary": monetary.astype(np.float64), "r_score": r, "f_score": f, "m_score": m,
            "segment": assign_segments(r, f, m, config)}


def rfm(transactions: pd.DataFrame, *, as_of: object | None = None,
        config: RFMConfig | None = None) -> pd.DataFrame:
    """RFM table of every customer with an order up to ``as_of``.

    Parameters
    ----------
    transactions : DataFrame
        Canonical transactions (``customer_id, order_id, amount, timestamp``).
    as_of : date-like, optional
        Reference date (default: latest timestamp); later rows are excluded with a warning.
    config : RFMConfig, optional

    Returns
    -------
    DataFrame
        ``customer_id`` (str), ``recency_days`` (float64), ``frequency`` (int64), ``monetary``
        (float64), ``r_score``/``f_score``/``m_score`` (int8), ``segment`` (str); sorted by id.
    """
    config = config or RFMConfig()
    history = build_history(transactions, as_of=as_of)
    cols = rfm_arrays(history, config)
    frame = pd.DataFrame({"customer_id": history.customer_ids, **cols})
    return frame.astype({"customer_id": "str", "segment": "str"})


__all__ = ["quantile_scores", "assign_segments", "rfm_arrays", "rfm"]
