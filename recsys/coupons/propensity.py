"""Redemption propensity: P(customer redeems a coupon | it was offered).

Two sources, same output (an ``(n, n_coupons)`` probability matrix):

- :class:`RedemptionModel`, a calibrated classifier trained on past offers
  (:func:`build_offer_table`; on The Complete Journey one row per household x coupon of a
  campaign the household received);
- :func:`prior_propensity`, the documented prior for retailers without coupon history:
  ``logit P = intercept + affinity_slope * affinity + stage_offsets[stage]
  - basket_slope * max(0, min_basket / avg_basket - 1)`` (parameters in ``coupons.yaml``,
  ``prior:``). Affinity is the share of the customer's spend on the coupon's target, so a
  coupon for what the customer already buys is likelier to be used; stage offsets encode that
  new and active customers redeem more than churned ones; a minimum basket above the
  customer's usual basket lowers the odds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from threadpoolctl import threadpool_limits

from recsys.coupons.catalog import Prior
from recsys.coupons.offer_features import (
    CF,
    PurchaseLog,
    coupon_side,
    customer_history,
    offer_features,
)
from recsys.data.dataset import IdMap
from recsys.data.schema import RetailData
from recsys.errors import DataError, NotFittedError

log = logging.getLogger(__name__)


def prior_propensity(affinity: NDArray[np.floating], stage: NDArray[np.object_], prior: Prior,
                     *, min_basket: NDArray[np.floating] | None = None,
                     avg_basket: NDArray[np.floating] | None = None) -> NDArray[np.float64]:
    """Redemption probability without history (formula in the module docstring).

    Parameters
    ----------
    affinity : ndarray of float, shape (n, n_coupons), values in [0, 1]
        Share of each customer's spend on each coupon's target (``scoring.target_share``).
    stage : ndarray of str, shape (n,)
        Lifecycle stage; stages missing from ``prior.stage_offsets`` get offset 0.
    prior : Prior
    min_basket : ndarray of float, shape (n_coupons,), optional
    avg_basket : ndarray of float, shape (n,), optional
        The customer's usual basket; NaN or 0 means unknown (no penalty).

    Returns
    -------
    ndarray of float64, shape (n, n_coupons), values in (0, 1)
    """
    aff = np.asarray(affinity, dtype=np.float64)
    uniq, inv = np.unique(np.asarray(stage).astype(str), return_inverse=True)
    offset = np.array([prior.stage_offsets.get(s, 0.0) for s in uniq])[inv]
    logit = prior.intercept + prior.affinity_slope * aff + offset[:, None]
    if min_basket is not None and avg_basket is not None and prior.basket_slope > 0:
        avg = np.asarray(avg_basket, dtype=np.float64)
        ok = np.isfinite(avg) & (avg > 0)
        ratio = np.zeros((len(avg), len(min_basket)))
        ratio[ok] = np.asarray(min_basket, dtype=np.float64)[None, :] / avg[ok, None]
        logit -= prior.basket_slope * np.clip(ratio - 1.0, 0.0, None)
    return 1.0 / (1.0 + np.exp(-logit))


class ScaledLogistic(ClassifierMixin, BaseEstimator):
    """Median imputation, standardisation and a logistic regression in one estimator, so
    ``sample_weight`` reaches the regression (a ``Pipeline`` would drop it under
    ``CalibratedClassifierCV``)."""

    def __init__(self, *, C: float = 1.0) -> None:
        self.C = C

    def _z(self, X: NDArray[np.floating]) -> NDArray[np.float64]:
        Z = np.where(np.isnan(X), self.median_, X)
        return (Z - self.mean_) / self.scale_

    def fit(self, X: NDArray[np.floating], y: NDArray[np.integer],
            sample_weight: NDArray[np.floating] | None = None) -> ScaledLogistic:
        X = np.asarray(X, dtype=np.float64)
        self.median_ = np.nan_to_num(np.nanmedian(X, axis=0))
        Z = np.where(np.isnan(X), self.median_, X)
        self.mean_ = Z.mean(axis=0)
        self.scale_ = np.where(Z.std(axis=0) > 0, Z.std(axis=0), 1.0)
        self.lr_ = LogisticRegression(C=self.C, max_iter=2000).fit(
            self._z(X), y, sample_weight=sample_weight)
        self.classes_ = self.lr_.classes_
        return self

    def decision_function(self, X: NDArray[np.floating]) -> NDArray[np.float64]:
        return np.asarray(self.lr_.decision_function(self._z(np.asarray(X, np.float64))))

    def predict_proba(self, X: NDArray[np.floating]) -> NDArray[np.float64]:
        return np.asarray(self.lr_.predict_proba(self._z(np.asarray(X, np.float64))))


class RedemptionModel(ClassifierMixin, BaseEstimator):
    """A calibrated redemption classifier over offer features.

    Parameters
    ----------
    method : {"hgb", "logistic"}
        Histogram gradient boosting, or a standardised logistic regression.
    calibration : {"isotonic", "sigmoid"}
        ``CalibratedClassifierCV`` method; probabilities are used as money weights, so they
        must be calibrated, not just ranked.
    cv : int
        Calibration folds (stratified, shuffled with ``random_state``).
    negative_rate : float in (0, 1]
        Share of non-redeemed offers kept for training (redemptions are rare, ~0.3%); kept
        negatives are up-weighted by ``1 / negative_rate`` so probabilities stay unbiased.
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization
        Gradient-boosting parameters (``method="hgb"``).
    C : float
        Inverse regularisation (``method="logistic"``).
    n_threads : int, optional
        OpenMP threads while fitting and predicting (``None``: the environment's default).
        On a shared machine 1 is much faster than oversubscribed cores.
    random_state : int
    """

    def __init__(self, *, method: Literal["hgb", "logistic"] = "hgb",
                 calibration: Literal["isotonic", "sigmoid"] = "isotonic", cv: int = 3,
                 negative_rate: float = 0.1, max_iter: int = 150, learning_rate: float = 0.1,
                 max_leaf_nodes: int = 15, min_samples_leaf: int = 100,
                 l2_regularization: float = 1.0, C: float = 1.0, n_threads: int | None = None,
                 random_state: int = 0) -> None:
        self.method = method
        self.calibration = calibration
        self.cv = cv
        self.negative_rate = negative_rate
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.C = C
        self.n_threads = n_threads
        self.random_state = random_state

    def _estimator(self) -> Any:
        if self.method == "hgb":
            return HistGradientBoostingClassifier(
                max_iter=self.max_iter, learning_rate=self.learning_rate,
                max_leaf_nodes=self.max_leaf_nodes, min_samples_leaf=self.min_samples_leaf,
                l2_regularization=self.l2_regularization, early_stopping=False,
                random_state=self.random_state)
        if self.method == "logistic":
            return ScaledLogistic(C=self.C)
        raise ValueError(f"method must be 'hgb' or 'logistic', not {self.method!r}.")

    def fit(self, X: pd.DataFrame, y: NDArray[np.integer]) -> RedemptionModel:
        """Fit on offers ``X`` (one row per offer, named feature columns) and labels ``y``
        (1 = redeemed), shape ``(n_offers,)``."""
        if not isinstance(X, pd.DataFrame):
            raise TypeError("X must be a DataFrame of named offer features "
                            "(see recsys.coupons.offer_features.FEATURES).")
        y = np.asarray(y).astype(np.int8)
        if len(y) != len(X) or not 0 < y.sum() < len(y):
            raise ValueError("y must have one 0/1 label per row of X and contain both classes.")
        if not 0 < self.negative_rate <= 1:
            raise ValueError(f"negative_rate must be in (0, 1], not {self.negative_rate}.")
        rng = np.random.default_rng(self.random_state)
        keep = (y == 1) | (rng.random(len(y)) < self.negative_rate)
        weight = np.where(y[keep] == 1, 1.0, 1.0 / self.negative_rate)
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        self.model_ = CalibratedClassifierCV(self._estimator(), method=self.calibration,
                                             cv=folds)
        # Features never observed (e.g. cf_affinity without a CF model) carry no signal and
        # break gradient-boosting binning; they are left out and ignored at predict time.
        used = [c for c in X.columns if X[c].notna().any()]
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            self.model_.fit(X[used].to_numpy(np.float32)[keep], y[keep], sample_weight=weight)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.features_used_ = np.asarray(used, dtype=object)
        self.classes_ = np.array([0, 1])
        self.base_rate_ = float(y.mean())
        log.info("redemption model (%s) fit on %d of %d offers, base rate %.4f",
                 self.method, int(keep.sum()), len(y), self.base_rate_)
        return self

    def predict_proba(self, X: pd.DataFrame) -> NDArray[np.float64]:
        """``(n, 2)`` probabilities of [not redeemed, redeemed]; ``X`` must have the training
        columns (extra columns are ignored, missing ones are an error)."""
        if not hasattr(self, "model_"):
            raise NotFittedError("RedemptionModel is not fitted; call fit(X, y) first.")
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks the training features {missing}.")
        cols = list(self.features_used_)
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            return np.asarray(self.model_.predict_proba(X[cols].to_numpy(np.float32)))

    def redemption_probability(self, X: pd.DataFrame) -> NDArray[np.float64]:
        """P(redeem) per row of ``X``, shape ``(n,)``."""
        return self.predict_proba(X)[:, 1]


@dataclass(frozen=True)
class OfferTable:
    """Past offers with features and outcomes; arrays have one entry per offer.

    ``X`` holds ``features.FEATURES``; ``y`` is 1 when the customer redeemed the coupon in that
    campaign; ``start``/``end`` are the campaign's window (for temporal splits).
    ``skipped`` maps campaign ids left out to the reason.
    """

    X: pd.DataFrame
    y: NDArray[np.int8]
    campaign_id: NDArray[np.object_]
    customer_id: NDArray[np.object_]
    coupon_id: NDArray[np.object_]
    start: NDArray[np.datetime64]
    end: NDArray[np.datetime64]
    skipped: dict[str, str]
    sampled: float = 1.0  # share of each campaign's recipients kept (``max_offers``)


def _sample_share(offers: pd.DataFrame, coupons: pd.DataFrame, max_offers: int | None
                  ) -> float:
    """The share of each campaign's recipients that keeps the table near ``max_offers``."""
    per_campaign = offers.groupby("campaign_id").size() * coupons.groupby(
        "campaign_id")["coupon_id"].nunique().reindex(offers["campaign_id"].unique(),
                                                     fill_value=0)
    total = int(per_campaign.sum())
    return 1.0 if max_offers is None or total <= max_offers else max_offers / total


def _coupon_products(coupons: pd.DataFrame, log: PurchaseLog
                     ) -> tuple[pd.Index, sparse.csr_matrix]:
    """A campaign's coupon ids and which products each applies to (coupons x products)."""
    codes, coupon_ids = pd.factorize(coupons["coupon_id"])
    prod = log.products.to_index(coupons["product_id"].to_numpy(), missing="mark")
    products = sparse.csr_matrix((np.ones(int((prod >= 0).sum())),
                                  (codes[prod >= 0], prod[prod >= 0])),
                                 shape=(len(coupon_ids), len(log.products)))
    products.data[:] = 1.0  # a product listed twice in a coupon counts once
    return coupon_ids, products


def _redeemed(hits: pd.DataFrame, log: PurchaseLog, rows: np.ndarray, coupon_ids: pd.Index
              ) -> NDArray[np.int8]:
    """1 where the offer (row, coupon), flattened row-major, was redeemed (``hits``)."""
    m = len(coupon_ids)
    y = np.zeros(len(rows) * m, np.int8)
    r = pd.Index(rows).get_indexer(log.customers.to_index(hits["customer_id"], missing="mark"))
    j = pd.Index(coupon_ids).get_indexer(hits["coupon_id"])
    ok = (r >= 0) & (j >= 0)
    y[r[ok] * m + j[ok]] = 1
    return y


def build_offer_table(data: RetailData, *, category_depth: int = 2, recent_days: int = 28,
                      min_history_days: int = 28, cf: CF | None = None,
                      max_offers: int | None = None, random_state: int = 0) -> OfferTable:
    """One row per (customer, coupon, campaign) offered, with pre-campaign features.

    With ``max_offers``, each campaign keeps the same random share of its recipients so that
    the table holds at most about that many rows (a million customers times a dozen coupons
    per campaign would not fit in memory); the share is ``OfferTable.sampled``.

    An offer is every coupon of a campaign (``data.coupons``) for every customer who received
    the campaign (``data.offers``); it is positive when ``data.redemptions`` has that
    customer, coupon and campaign. Features use only transactions and redemptions before the
    campaign's start (no leakage); campaigns starting less than ``min_history_days`` after
    the first transaction are skipped (no history to learn from).

    Raises
    ------
    DataError
        If campaigns, coupons or offers are empty.
    """
    empty = [t for t in ("campaigns", "coupons", "offers") if not len(getattr(data, t))]
    if empty:
        raise DataError(f"{data.name} has no {', '.join(empty)}: redemption history needs "
                        "campaigns, their coupons and who received them")
    red = data.redemptions
    ids = np.unique(np.concatenate([frame["customer_id"].astype(str).to_numpy(dtype=object)
                                    for frame in (data.transactions, data.offers, red)]))
    log = PurchaseLog.from_frames(data.transactions, data.products, customers=IdMap(ids),
                                  category_depth=category_depth)
    offers = data.offers.drop_duplicates()
    share = _sample_share(offers, data.coupons, max_offers)
    rng = np.random.default_rng(random_state)
    parts, skipped = [], {}
    for camp in data.campaigns.sort_values("start").itertuples(index=False):
        cid, as_of = str(camp.campaign_id), pd.Timestamp(camp.start)
        if (as_of.value / 86_400e9) - log.start_day < min_history_days:
            skipped[cid] = f"starts {as_of.date()}, under {min_history_days} days of history"
            continue
        cc = data.coupons[data.coupons["campaign_id"] == cid]
        rows = log.customers.to_index(offers.loc[offers["campaign_id"] == cid, "customer_id"])
        if share < 1.0:
            rows = rows[rng.random(len(rows)) < share]
        if not len(cc) or not len(rows):
            skipped[cid] = "no coupons or no recipients"
            continue
        coupon_ids, products = _coupon_products(cc, log)
        history = customer_history(log, as_of, redemptions=red, recent_days=recent_days)
        before = red[red["timestamp"] < as_of]
        past = before.groupby("coupon_id").size().reindex(coupon_ids).fillna(0).to_numpy()
        side = coupon_side(log, history, products, past_redemptions=past,
                           duration_days=np.full(len(coupon_ids),
                                                 (pd.Timestamp(camp.end) - as_of).days))
        X = offer_features(history, side, rows, cf=cf)
        m = len(coupon_ids)
        y = _redeemed(red[red["campaign_id"] == cid], log, rows, coupon_ids)
        parts.append((X, y, cid, log.customers.ids[np.repeat(rows, m)],
                      np.tile(np.asarray(coupon_ids, dtype=object), len(rows)), camp))
    if not parts:
        raise DataError(f"{data.name}: no campaign has {min_history_days} days of history")
    return _stack(parts, skipped, share)


def _stack(parts: list[tuple[Any, ...]], skipped: dict[str, str], share: float) -> OfferTable:
    """One table from each campaign's ``(X, y, campaign id, customers, coupons, campaign)``."""
    n = [len(p[1]) for p in parts]
    return OfferTable(
        X=pd.concat([p[0] for p in parts], ignore_index=True),
        y=np.concatenate([p[1] for p in parts]),
        campaign_id=np.repeat(np.array([p[2] for p in parts], dtype=object), n),
        customer_id=np.concatenate([p[3] for p in parts]).astype(object),
        coupon_id=np.concatenate([p[4] for p in parts]).astype(object),
        start=np.repeat(np.array([p[5].start for p in parts], dtype="datetime64[ns]"), n),
        end=np.repeat(np.array([p[5].end for p in parts], dtype="datetime64[ns]"), n),
        skipped=skipped, sampled=share)


def top_fraction_lift(y: NDArray[np.integer], score: NDArray[np.floating],
                      fraction: float = 0.1) -> float:
    """Redemption rate among the top ``fraction`` of offers by ``score`` over the overall rate.

    Ties at the cut are shared pro rata (the expected lift of breaking them at random), so a
    constant score has lift 1 exactly.
    """
    y = np.asarray(y, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    if not 0 < fraction <= 1 or y.sum() == 0:
        raise ValueError("fraction must be in (0, 1] and y must contain a positive.")
    k = max(int(np.ceil(fraction * len(y))), 1)
    cut = np.sort(score)[::-1][k - 1]
    above = score > cut
    tied = score == cut
    hits = y[above].sum() + (k - above.sum()) * y[tied].mean()
    return float(hits / k / y.mean())


__all__ = ["prior_propensity", "ScaledLogistic", "RedemptionModel", "OfferTable",
           "build_offer_table", "top_fraction_lift"]
