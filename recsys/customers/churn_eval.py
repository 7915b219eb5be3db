"""Out-of-time evaluation of churn risk against simple baselines.

The evaluation cut is ``as_of - horizon_days`` (the latest cut whose outcome is known). The
classifier is fitted with ``end = eval cut``, so none of its training or calibration labels
reach past the evaluation cut. Baselines, scored on the same rows:

- ``recency``: logistic regression on ``log1p(recency_days)`` fitted on the training windows;
- ``bgnbd``: BG/NBD ``prob_no_purchase(horizon)`` fitted on the history up to the cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score

from recsys.customers.bgnbd import BGNBD
from recsys.customers.churn import ChurnModel, churn_features, churn_labels
from recsys.customers.config import CustomersConfig
from recsys.customers.history import NS_PER_DAY, History
from recsys.customers.summary import summarize
from recsys.errors import DataError


@dataclass(frozen=True)
class ChurnReport:
    """Scores of the classifier and baselines on one later window.

    ``scores``: one row per method (``model``, ``recency``, ``bgnbd``) with ``roc_auc``,
    ``brier``, ``ece`` (expected calibration error over the ten bins) and ``mean_predicted``
    (to compare with ``churn_rate``); ``calibration``: per method and probability bin, ``n``,
    ``mean_predicted``, ``observed`` churn rate.
    """

    cut: pd.Timestamp
    n_train: int
    n_eval: int
    churn_rate: float
    scores: pd.DataFrame
    calibration: pd.DataFrame


def calibration_table(y: NDArray[np.int8], p: NDArray[np.float64], n_bins: int = 10
                      ) -> pd.DataFrame:
    """Reliability table: predictions in ``n_bins`` equal-width bins of [0, 1].

    Returns
    -------
    DataFrame with ``bin`` ("0.0-0.1", ...), ``n``, ``mean_predicted``, ``observed``;
    empty bins are left out.
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    b = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    n = np.bincount(b, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.bincount(b, weights=p, minlength=n_bins) / n
        obs = np.bincount(b, weights=y.astype(float), minlength=n_bins) / n
    labels = [f"{lo:.1f}-{hi:.1f}" for lo, hi in pairwise(edges)]
    table = pd.DataFrame({"bin": labels, "n": n, "mean_predicted": mean_p, "observed": obs})
    return table[table["n"] > 0].reset_index(drop=True)


def _ece(table: pd.DataFrame) -> float:
    """Expected calibration error: bin-size-weighted mean |mean predicted - observed|."""
    gap = (table["mean_predicted"] - table["observed"]).abs()
    return float((table["n"] * gap).sum() / table["n"].sum())


def _recency_baseline(model: ChurnModel, history: History, end_ns: int) -> LogisticRegression:
    wins = model.windows(history, end_ns)
    x = np.concatenate([np.log1p(w[1]["recency_days"].to_numpy()) for w in wins])
    y = np.concatenate([w[2] for w in wins])
    return LogisticRegression().fit(x[:, None], y)


def _bgnbd_no_purchase(history: History, cut_ns: int, customers: NDArray[np.int64],
                       config: CustomersConfig) -> NDArray[np.float64]:
    s = summarize(history, cut_ns)
    unit = config.clv.time_unit_days
    x = (s.n_days - 1)[customers].astype(float)
    t_x = ((s.last_day - s.first_day) / unit)[customers]
    T = ((s.cut_day - s.first_day) / unit)[customers]
    model = BGNBD().fit(x, t_x, T)
    return model.prob_no_purchase(config.churn.horizon_days / unit, x, t_x, T)


def evaluate_churn(history: History, *, config: CustomersConfig | None = None,
                   cut: object | None = None) -> ChurnReport:
    """Fit on windows before ``cut``, score customers at ``cut``, compare with baselines.

    Parameters
    ----------
    history : History
        Built with ``products``/``redemptions`` to use those features.
    config : CustomersConfig, optional
    cut : date-like, optional
        Evaluation cut; default ``history.as_of - churn.horizon_days``. The outcome window
        ``(cut, cut + horizon]`` must lie within the history.

    Raises
    ------
    DataError
        Outcome window beyond ``as_of``, or too little history to train.
    """
    config = config or CustomersConfig()
    horizon = config.churn.horizon_days
    cut_ns = history.as_of_ns - horizon * NS_PER_DAY if cut is None else \
        pd.Timestamp(cut).value  # type: ignore[arg-type]
    if cut_ns + horizon * NS_PER_DAY > history.as_of_ns:
        raise DataError(f"evaluation cut {pd.Timestamp(cut_ns)} + {horizon} days is after "
                        f"as_of {history.as_of}: the outcome is not known yet")
    model = ChurnModel.from_config(config.churn).fit(history, end_ns=cut_ns)
    who, feats = churn_features(history, cut_ns, trend_days=config.churn.trend_days,
                                horizon_days=horizon)
    y = churn_labels(history, cut_ns, horizon, who)
    if len(np.unique(y)) < 2:
        raise DataError("the evaluation window has only one outcome; AUC is undefined")
    baseline = _recency_baseline(model, history, cut_ns)
    preds = {
        "model": model.predict_features(feats),
        "recency": baseline.predict_proba(np.log1p(feats[["recency_days"]].to_numpy()))[:, 1],
        "bgnbd": _bgnbd_no_purchase(history, cut_ns, who, config),
    }
    tables = {k: calibration_table(y, p) for k, p in preds.items()}
    scores = pd.DataFrame([{"method": k, "roc_auc": roc_auc_score(y, p),
                            "brier": brier_score_loss(y, p), "ece": _ece(tables[k]),
                            "mean_predicted": float(p.mean())} for k, p in preds.items()])
    calibration = pd.concat([t.assign(method=k) for k, t in tables.items()], ignore_index=True)
    return ChurnReport(cut=pd.Timestamp(cut_ns), n_train=model.n_train_, n_eval=len(y),
                       churn_rate=float(y.mean()), scores=scores,
                       calibration=calibration[["method", "bin", "n", "mean_predicted",
                                                "observed"]])


__all__ = ["ChurnReport", "calibration_table", "evaluate_churn"]
