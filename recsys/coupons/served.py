"""The trained redemption model as the bundle carries it and serving scores with it.

At bundle build, :func:`fit_served_propensity` fits a :class:`~recsys.coupons.propensity.
RedemptionModel` (``method="logistic"``, isotonic calibration) on the past offers of the
training data (:func:`~recsys.coupons.propensity.build_offer_table`; at most ``MAX_OFFERS``,
a random share of each campaign's recipients above that), using only
``SERVED_FEATURES``: the offer features serving can compute from what the bundle holds
(customer x product history priced by the catalog, the customer profile, redemptions counted
at build plus those folded in online, and the coupon's targets). It also fits the same model on
the campaigns before a temporal cut and reports the ROC AUC on the campaigns after it.

:class:`ServedPropensity` holds the fitted model as plain numbers (per calibration fold:
imputation medians, means, scales, coefficients, intercept and the isotonic thresholds) and
goes into the bundle as ``propensity.json`` (sha256 in the manifest, no pickle). Its
probabilities equal ``RedemptionModel.redemption_probability`` on the same features.

:class:`ServedFeatures` computes the features of (customer, catalog coupon) pairs online with
``features.offer_features``, the function that builds the training table. Sitewide coupons are
left to the prior: the offer history holds product-list coupons only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import sparse
from sklearn.metrics import roc_auc_score

from recsys.coupons.offer_features import (
    FEATURES,
    CustomerHistory,
    PurchaseLog,
    coupon_side,
    offer_feature_columns,
)
from recsys.coupons.propensity import RedemptionModel, build_offer_table
from recsys.data.schema import RetailData
from recsys.errors import DataError

log = logging.getLogger(__name__)

SERVED_FEATURES: tuple[str, ...] = (
    "target_share", "target_products_bought", "main_category_share", "categories_share",
    "past_redemptions", "has_history", "recency_days", "avg_basket", "coupon_breadth",
    "coupon_popularity")
MIN_REDEMPTIONS = 20  # fewer redemptions than this: nothing to learn, keep the prior
MIN_VALIDATION_AUC = 0.6  # a model ranking held-out offers worse than this: keep the prior
MAX_OFFERS = 2_000_000  # offers it learns from at most (~0.7 GiB of features; CJ has 0.8M)
_FOLD_KEYS = ("median", "mean", "scale", "coef")


@dataclass(frozen=True)
class ServedPropensity:
    """A calibrated logistic redemption model in plain arrays (``k`` folds, ``d`` features).

    ``median``/``mean``/``scale``/``coef`` have shape ``(k, d)``, ``intercept`` ``(k,)``;
    ``calibration`` holds each fold's isotonic thresholds ``(x, y)``; ``info`` says how it was
    trained and validated (recorded in the bundle manifest).
    """

    features: tuple[str, ...]
    median: NDArray[np.float64]
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    coef: NDArray[np.float64]
    intercept: NDArray[np.float64]
    calibration: tuple[tuple[NDArray[np.float64], NDArray[np.float64]], ...]
    info: dict[str, Any]

    @classmethod
    def from_model(cls, model: RedemptionModel, info: dict[str, Any]) -> ServedPropensity:
        """Export a fitted ``RedemptionModel(method="logistic", calibration="isotonic")``."""
        if model.method != "logistic" or model.calibration != "isotonic":
            raise ValueError("only a logistic model with isotonic calibration can be served "
                             f"as plain arrays, not {model.method}/{model.calibration}.")
        folds = model.model_.calibrated_classifiers_
        est = [f.estimator for f in folds]
        iso = [f.calibrators[0] for f in folds]
        return cls(
            features=tuple(str(c) for c in model.features_used_),
            median=np.array([e.median_ for e in est]), mean=np.array([e.mean_ for e in est]),
            scale=np.array([e.scale_ for e in est]),
            coef=np.array([e.lr_.coef_[0] for e in est]),
            intercept=np.array([e.lr_.intercept_[0] for e in est]),
            calibration=tuple((np.asarray(c.X_thresholds_, np.float64),
                               np.asarray(c.y_thresholds_, np.float64)) for c in iso),
            info=dict(info))

    def probability(self, X: NDArray[np.floating]) -> NDArray[np.float64]:
        """P(redeem) per row of ``X``, shape ``(n, d)`` in ``features`` order (NaN = unknown)."""
        X = np.asarray(X, dtype=np.float64)
        out = np.zeros(len(X))
        for k, (cx, cy) in enumerate(self.calibration):
            z = (np.where(np.isnan(X), self.median[k], X) - self.mean[k]) / self.scale[k]
            out += np.interp(z @ self.coef[k] + self.intercept[k], cx, cy)
        return out / len(self.calibration)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (lists of floats) for ``propensity.json``."""
        return {"kind": "logistic-isotonic", "features": list(self.features),
                "folds": [{**{key: getattr(self, key)[k].tolist() for key in _FOLD_KEYS},
                           "intercept": float(self.intercept[k]),
                           "calibration_x": cx.tolist(), "calibration_y": cy.tolist()}
                          for k, (cx, cy) in enumerate(self.calibration)],
                "info": self.info}

    @classmethod
    def from_json(cls, raw: Any) -> ServedPropensity:
        """Parse and check :meth:`to_json` output; ``ValueError`` says what is wrong."""
        if not isinstance(raw, dict) or raw.get("kind") != "logistic-isotonic":
            raise ValueError("not a 'logistic-isotonic' propensity model")
        features = tuple(raw.get("features") or ())
        if not features or not set(features) <= set(SERVED_FEATURES):
            raise ValueError(f"features must be a non-empty subset of SERVED_FEATURES, not "
                             f"{features}")
        folds = raw.get("folds")
        if not isinstance(folds, list) or not folds:
            raise ValueError("folds must be a non-empty list")
        arrays, intercept, calibration = _parse_folds(folds, len(features))
        return cls(features, arrays["median"], arrays["mean"], arrays["scale"],
                   arrays["coef"], intercept, calibration, dict(raw.get("info") or {}))


def _parse_folds(folds: list[Any], d: int) -> tuple[dict[str, NDArray[np.float64]],
                                                    NDArray[np.float64],
                                                    tuple[tuple[NDArray[np.float64], ...], ...]]:
    """Each fold's ``_FOLD_KEYS`` arrays ``(folds, d)``, intercepts and calibration pairs,
    checked: finite, positive scales, increasing thresholds with values in [0, 1]."""
    try:
        arrays = {key: np.array([f[key] for f in folds], np.float64) for key in _FOLD_KEYS}
        intercept = np.array([f["intercept"] for f in folds], np.float64)
        calibration = tuple((np.array(f["calibration_x"], np.float64),
                             np.array(f["calibration_y"], np.float64)) for f in folds)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"malformed fold: {type(exc).__name__}: {exc}") from exc
    bad = [key for key, a in arrays.items()
           if a.shape != (len(folds), d) or not np.isfinite(a).all()]
    if bad or not np.isfinite(intercept).all() or (arrays["scale"] <= 0).any():
        raise ValueError(f"fold arrays {bad or ['intercept/scale']} are not finite "
                         f"({len(folds)}, {d}) arrays with positive scales")
    if not all(_is_calibration(cx, cy) for cx, cy in calibration):
        raise ValueError("calibration thresholds must be increasing x with y in [0, 1]")
    return arrays, intercept, calibration


def _is_calibration(cx: NDArray[np.float64], cy: NDArray[np.float64]) -> bool:
    return cx.ndim == 1 and cx.shape == cy.shape and len(cx) > 0 and \
        not np.any(np.diff(cx) < 0) and bool(((cy >= 0) & (cy <= 1)).all())


def _validation(table_start: NDArray[np.datetime64], table_end: NDArray[np.datetime64],
                X: pd.DataFrame, y: NDArray[np.int8], share: float, model: RedemptionModel
                ) -> dict[str, Any]:
    """Fit on campaigns ended before a cut, ROC AUC on campaigns started after it; the cut
    leaves about ``share`` of the offers (by start date) to the test side."""
    cut = np.sort(table_start)[int((1.0 - share) * (len(table_start) - 1))]
    train, test = table_end < cut, table_start >= cut
    if y[train].sum() < MIN_REDEMPTIONS or not 0 < y[test].sum() < test.sum():
        return {"validation": f"skipped: too few redemptions on either side of {cut}"}
    p = model.fit(X[train], y[train]).redemption_probability(X[test])
    return {"validation_cut": str(pd.Timestamp(cut).date()),
            "validation_auc": round(float(roc_auc_score(y[test], p)), 4),
            "validation_offers": int(test.sum()), "validation_rate": float(y[test].mean()),
            "validation_mean_p": float(p.mean())}


def fit_served_propensity(data: RetailData, *, validation_share: float = 0.3,
                          random_state: int = 0) -> ServedPropensity:
    """Fit the served redemption model on ``data``'s past offers (module docstring).

    Raises
    ------
    DataError
        If ``data`` has no campaigns, coupons or offers, fewer than ``MIN_REDEMPTIONS``
        redeemed offers, or a validation ROC AUC under ``MIN_VALIDATION_AUC``.
    """
    table = build_offer_table(data, max_offers=MAX_OFFERS, random_state=random_state)
    X, y = table.X[list(SERVED_FEATURES)], table.y
    if y.sum() < MIN_REDEMPTIONS:
        raise DataError(f"{data.name}: {int(y.sum())} redeemed offers, under "
                        f"{MIN_REDEMPTIONS}; nothing to learn a redemption model from")

    def model() -> RedemptionModel:
        return RedemptionModel(method="logistic", n_threads=1, random_state=random_state)

    info: dict[str, Any] = {
        "source": "trained", "model": "logistic, isotonic calibration",
        "offers": len(y), "offers_sampled": round(table.sampled, 4),
        "redemptions": int(y.sum()),
        "campaigns": len(set(table.campaign_id)),
        **_validation(table.start, table.end, X, y, validation_share, model())}
    if info.get("validation_auc", 1.0) < MIN_VALIDATION_AUC:
        raise DataError(f"{data.name}: redemption model validation ROC AUC "
                        f"{info['validation_auc']} is under {MIN_VALIDATION_AUC}")
    served = ServedPropensity.from_model(model().fit(X, y), info)
    log.info("redemption model for serving: %s", info)
    return served


class ServedFeatures:
    """``SERVED_FEATURES`` of (customer, coupon) pairs for a fixed coupon list and catalog.

    Parameters
    ----------
    product_ids, categories : ndarray of str, shape (n_products,)
        The bundle's products (column order of every spend matrix).
    targets : csr_matrix, shape (n_coupons, n_products)
        0/1 coupon products (``scoring.coupon_products``); empty rows are sitewide.
    sitewide : ndarray of bool, shape (n_coupons,)
    population : csr_matrix, shape (n_customers, n_products)
        Everyone's spend, for the coupons' popularity.
    """

    def __init__(self, product_ids: NDArray[np.object_], categories: NDArray[np.object_],
                 targets: sparse.csr_matrix, sitewide: NDArray[np.bool_],
                 population: sparse.csr_matrix) -> None:
        self.log = PurchaseLog.catalog_only(product_ids, categories)
        self.onehot = self.log.category_onehot()
        self.product_ids = self.log.products.ids
        everyone = self._history(population, {"has_history": np.asarray(
            population.sum(axis=1)).ravel() > 0})
        side = coupon_side(self.log, everyone, targets.astype(np.float64).tocsr(),
                           sitewide=sitewide)
        # CSC coupon matrices make the ``spend @ products.T`` of every call a CSR product
        # (no conversion of the transpose over all products per request).
        self.coupons = replace(side, products=side.products.tocsc(),
                               categories=side.categories.tocsc())

    @staticmethod
    def _stats(n: int, stats: dict[str, NDArray[Any]]) -> dict[str, NDArray[np.float64]]:
        """Per-customer features ``(n,)``: ``stats``, NaN for the others."""
        return dict.fromkeys(FEATURES, np.full(n, np.nan)) | {
            k: np.asarray(v, np.float64) for k, v in stats.items()}

    def _history(self, spend: sparse.csr_matrix, stats: dict[str, NDArray[Any]]
                 ) -> CustomerHistory:
        return CustomerHistory(as_of=pd.Timestamp(0), customer_ids=np.arange(spend.shape[0]),
                               product_ids=self.product_ids, spend=spend, recent=spend,
                               category_spend=(spend @ self.onehot).tocsr(),
                               stats=self._stats(spend.shape[0], stats))

    def __call__(self, spend: sparse.csr_matrix, *,
                 past_redemptions: NDArray[np.floating], recency_days: NDArray[np.floating],
                 avg_basket: NDArray[np.floating],
                 columns: tuple[str, ...] = SERVED_FEATURES) -> NDArray[np.float32]:
        """Features ``(n * n_coupons, len(columns))``, customer-major, for customers with
        ``spend`` rows ``(n, n_products)`` and per-customer arrays of
        shape ``(n,)`` (``past_redemptions`` a count; NaN recency or basket = unknown)."""
        spend = sparse.csr_matrix(spend)
        total = np.asarray(spend.sum(axis=1)).ravel()
        has = total > 0
        stats = {"has_history": has, "past_redemptions": np.log1p(past_redemptions),
                 "recency_days": np.where(has, recency_days, np.nan),
                 "avg_basket": np.where(has, avg_basket, np.nan)}
        out = offer_feature_columns(self._history(spend, stats), self.coupons, None,
                                    names=columns)
        return np.column_stack([out[name] for name in columns])


__all__ = ["SERVED_FEATURES", "MIN_REDEMPTIONS", "MIN_VALIDATION_AUC", "ServedPropensity",
           "fit_served_propensity", "ServedFeatures"]
