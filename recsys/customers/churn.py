"""Churn risk: P(no purchase in the next ``horizon_days``), learned on rolling time windows.

For a cut date ``c`` every customer with an order at or before ``c`` is one row; features use
only orders up to ``c`` and the label is 1 when the customer makes no order in
``(c, c + horizon_days]``. ``ChurnModel.fit(history, end)`` builds ``n_windows`` cuts
``end - horizon - i * window_step_days`` (so every label is known by ``end``): the newest cut is
held out to calibrate (isotonic or sigmoid), the older ones train a scikit-learn
``HistGradientBoostingClassifier``. Features: recency, tenure, orders, purchase days, spend,
order value, inter-purchase gap mean/std/last and recency over gap, spend and orders in the
last ``trend_days`` vs the ``trend_days`` before (trend), distinct categories (with products)
and coupon redemptions (with redemptions).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from recsys.customers.bgnbd import BGNBD, unique_rft
from recsys.customers.config import ChurnConfig
from recsys.customers.history import NS_PER_DAY, History
from recsys.customers.summary import Summary, summarize, window_totals
from recsys.errors import DataError, NotFittedError

log = logging.getLogger(__name__)
FloatArray = NDArray[np.float64]


def churn_features(history: History, cut_ns: int, *, trend_days: int, horizon_days: int
                   ) -> tuple[NDArray[np.int64], pd.DataFrame]:
    """Features of every customer with an order up to ``cut_ns``.

    Besides the raw behaviour, a BG/NBD model fitted on the same history (no labels needed)
    contributes ``p_alive`` and P(no purchase within ``horizon_days``): the classifier then
    learns what the parametric model misses.

    Returns
    -------
    customers : (m,) int64 indices into ``history.customer_ids``
    features : DataFrame (m, n_features) float64
    """
    s = summarize(history, cut_ns)
    idx = np.flatnonzero(s.n_orders > 0)
    trend = trend_days * NS_PER_DAY
    recent, n_recent = window_totals(history, cut_ns - trend, cut_ns)
    prior, n_prior = window_totals(history, cut_ns - 2 * trend, cut_ns - trend)
    with np.errstate(invalid="ignore", divide="ignore"):
        active_days = np.maximum(s.tenure_days, 1.0)
        cols: dict[str, FloatArray] = {
            "recency_days": s.recency_days, "tenure_days": s.tenure_days,
            "days_per_week": 7.0 * s.n_days / active_days,
            "spend_per_week": 7.0 * s.total / active_days,
            "order_value": s.total / np.maximum(s.n_orders, 1),
            "mean_gap": s.mean_gap, "gap_cv": s.gap_std / s.mean_gap, "last_gap": s.last_gap,
            "recency_over_gap": s.recency_days / s.mean_gap,
            "spend_recent": recent, "orders_recent": n_recent.astype(float),
            "spend_trend": np.nan_to_num((recent - prior) / (np.abs(recent) + np.abs(prior))),
            "orders_trend": (n_recent - n_prior) / np.maximum(n_recent + n_prior, 1),
        }
        if history.category_customer is not None:
            cols["n_categories"] = _distinct_categories(history, cut_ns)
        if history.coupon_customer is not None:
            assert history.coupon_ts is not None
            used = history.coupon_ts <= cut_ns
            n_coupons = np.bincount(history.coupon_customer[used],
                                    minlength=history.n_customers).astype(float)
            cols["coupons"] = n_coupons
            cols["coupons_per_order"] = n_coupons / np.maximum(s.n_orders, 1)
    frame = pd.DataFrame({k: np.asarray(v, dtype=np.float64)[idx] for k, v in cols.items()})
    frame["p_alive"], frame["p_no_purchase"] = _bgnbd_features(s, idx, horizon_days)
    return idx, frame


def _bgnbd_features(s: Summary, idx: NDArray[np.int64], horizon_days: int
                    ) -> tuple[FloatArray, FloatArray]:
    x = (s.n_days - 1)[idx].astype(np.float64)
    t_x = (s.last_day - s.first_day)[idx]
    T = s.cut_day - s.first_day[idx]
    ux, ut, uT, counts, inverse = unique_rft(x, t_x, T)
    try:
        model = BGNBD().fit(ux, ut, uT, weights=counts)
    except DataError:
        nan = np.full(len(idx), np.nan)
        return nan, nan
    return (model.p_alive(ux, ut, uT)[inverse],
            model.prob_no_purchase(horizon_days, ux, ut, uT)[inverse])


def _distinct_categories(history: History, cut_ns: int) -> FloatArray:
    assert history.category_customer is not None and history.category_first_ts is not None
    seen = history.category_first_ts <= cut_ns
    return np.bincount(history.category_customer[seen],
                       minlength=history.n_customers).astype(np.float64)


def churn_labels(history: History, cut_ns: int, horizon_days: int,
                 customers: NDArray[np.int64]) -> NDArray[np.int8]:
    """1 where the customer makes no order in ``(cut, cut + horizon_days]``; (m,) int8."""
    _, orders = window_totals(history, cut_ns, cut_ns + horizon_days * NS_PER_DAY)
    return (orders[customers] == 0).astype(np.int8)


class ChurnModel:
    """Calibrated gradient-boosting churn classifier over rolling windows.

    Parameters mirror ``ChurnConfig`` (see ``configs/customers.yaml``); ``params`` go to
    ``HistGradientBoostingClassifier``; ``n_threads`` caps its OpenMP threads (on a busy
    machine one thread is often faster than oversubscribed cores).

    Attributes
    ----------
    estimator_ : HistGradientBoostingClassifier
    calibrator_ : IsotonicRegression or LogisticRegression (on the estimator's log-odds)
    feature_names_ : list of str
    cuts_ : list of pandas Timestamps, newest (calibration) first
    n_train_, n_calibration_ : int rows used
    """

    def __init__(self, *, horizon_days: int = 90, n_windows: int = 3,
                 window_step_days: int = 30, trend_days: int = 90,
                 calibration: str = "isotonic", min_window_customers: int = 50,
                 max_train_rows: int = 200_000, random_state: int = 0,
                 n_threads: int | None = None, params: dict[str, Any] | None = None) -> None:
        self.horizon_days = horizon_days
        self.n_windows = n_windows
        self.window_step_days = window_step_days
        self.trend_days = trend_days
        self.calibration = calibration
        self.min_window_customers = min_window_customers
        self.max_train_rows = max_train_rows
        self.random_state = random_state
        self.n_threads = n_threads
        self.params = params

    @classmethod
    def from_config(cls, config: ChurnConfig) -> ChurnModel:
        """A model with the hyper-parameters of ``config``."""
        return cls(**config.model_dump())

    def windows(self, history: History, end_ns: int) -> list[tuple[int, pd.DataFrame, NDArray]]:
        """``(cut_ns, features, labels)`` per usable cut, newest first."""
        first = int(history.ts.min()) if len(history.ts) else end_ns
        out = []
        for i in range(self.n_windows):
            cut = end_ns - (self.horizon_days + i * self.window_step_days) * NS_PER_DAY
            if cut <= first:
                break
            who, feats = churn_features(history, cut, trend_days=self.trend_days,
                                         horizon_days=self.horizon_days)
            labels = churn_labels(history, cut, self.horizon_days, who)
            if len(labels) >= self.min_window_customers and 0 < labels.mean() < 1:
                out.append((cut, feats, labels))
        return out

    def fit(self, history: History, end_ns: int | None = None) -> ChurnModel:
        """Fit on windows whose labels end by ``end_ns`` (default ``history.as_of``).

        Raises
        ------
        DataError
            Fewer than two usable windows (history shorter than horizon + step, fewer than
            ``min_window_customers`` customers, or one class only).
        """
        end = history.as_of_ns if end_ns is None else int(end_ns)
        wins = self.windows(history, end)
        if len(wins) < 2:
            raise DataError(f"churn model needs 2 usable windows of {self.horizon_days} days "
                            f"(>= {self.min_window_customers} customers, both outcomes); "
                            f"the history gives {len(wins)}")
        rng = np.random.default_rng(self.random_state)
        X = pd.concat([w[1] for w in wins[1:]], ignore_index=True)
        y = np.concatenate([w[2] for w in wins[1:]])
        if len(y) > self.max_train_rows:
            keep = np.sort(rng.choice(len(y), self.max_train_rows, replace=False))
            X, y = X.iloc[keep], y[keep]
        self.feature_names_ = list(X.columns)
        with threadpool_limits(self.n_threads, user_api="openmp"):
            self.estimator_ = HistGradientBoostingClassifier(
                random_state=self.random_state, **(self.params or {})).fit(X, y)
        _, X_cal, y_cal = wins[0]
        if len(y_cal) > self.max_train_rows:
            keep = np.sort(rng.choice(len(y_cal), self.max_train_rows, replace=False))
            X_cal, y_cal = X_cal.iloc[keep], y_cal[keep]
        raw = self._raw(X_cal)
        if self.calibration == "isotonic":
            self.calibrator_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            self.calibrator_.fit(raw, y_cal)
        elif self.calibration == "sigmoid":
            self.calibrator_ = LogisticRegression().fit(_logit(raw)[:, None], y_cal)
        else:
            raise ValueError(f"calibration must be 'isotonic' or 'sigmoid', got "
                             f"{self.calibration!r}")
        self.cuts_ = [pd.Timestamp(w[0]) for w in wins]
        self.n_train_, self.n_calibration_ = len(y), len(y_cal)
        log.info("churn model: %d training rows over %d windows, %d calibration rows",
                 len(y), len(wins) - 1, len(y_cal))
        return self

    def predict_features(self, features: pd.DataFrame) -> FloatArray:
        """Calibrated churn probability of feature rows; (m,) float64."""
        if not hasattr(self, "estimator_"):
            raise NotFittedError("ChurnModel is not fitted; call fit(history) first")
        if list(features.columns) != self.feature_names_:
            raise ValueError(f"features {list(features.columns)} differ from the fitted "
                             f"{self.feature_names_}; pass the same products/redemptions")
        if len(features) == 0:
            return np.zeros(0)
        raw = self._raw(features)
        if isinstance(self.calibrator_, IsotonicRegression):
            return np.asarray(self.calibrator_.predict(raw), dtype=np.float64)
        return self.calibrator_.predict_proba(_logit(raw)[:, None])[:, 1]

    def _raw(self, features: pd.DataFrame) -> FloatArray:
        with threadpool_limits(self.n_threads, user_api="openmp"):
            return self.estimator_.predict_proba(features)[:, 1]

    def predict(self, history: History, cut_ns: int | None = None) -> FloatArray:
        """Churn risk of every customer of ``history`` at ``cut_ns`` (default ``as_of``).

        Returns
        -------
        (n_customers,) float64, NaN for customers without an order by the cut
        """
        cut = history.as_of_ns if cut_ns is None else int(cut_ns)
        who, feats = churn_features(history, cut, trend_days=self.trend_days,
                                         horizon_days=self.horizon_days)
        out = np.full(history.n_customers, np.nan)
        out[who] = self.predict_features(feats)
        return out


def _logit(p: FloatArray) -> FloatArray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


__all__ = ["churn_features", "churn_labels", "ChurnModel"]
