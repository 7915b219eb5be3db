"""The served redemption model: plain-array export equals the fitted model, JSON round trip,
refusal of malformed state, and when the prior is kept instead."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from recsys.coupons.propensity import RedemptionModel, build_offer_table
from recsys.coupons.served import SERVED_FEATURES, ServedPropensity, fit_served_propensity
from recsys.data.schema import RetailData
from recsys.data.synthetic import generate
from recsys.errors import DataError


@pytest.fixture(scope="module")
def data() -> RetailData:
    return generate(n_customers=1000, n_products=300, seed=3)


def test_exported_model_gives_the_fitted_models_probabilities(data: RetailData) -> None:
    table = build_offer_table(data)
    X = table.X[list(SERVED_FEATURES)]
    model = RedemptionModel(method="logistic", n_threads=1).fit(X, table.y)
    served = ServedPropensity.from_model(model, {"source": "trained"})
    p = served.probability(X[list(served.features)].to_numpy())
    assert np.allclose(p, model.redemption_probability(X), rtol=0, atol=1e-9)
    assert p.std() > 0


def test_json_round_trip_keeps_every_probability(data: RetailData) -> None:
    served = fit_served_propensity(data)
    assert served.info["source"] == "trained" and served.info["validation_auc"] >= 0.6
    again = ServedPropensity.from_json(json.loads(json.dumps(served.to_json())))
    X = np.random.default_rng(0).random((50, len(served.features))) * 5
    X[::7, 0] = np.nan  # unknown values are imputed the same way
    assert np.array_equal(again.probability(X), served.probability(X))
    assert again.features == served.features and again.info == served.info


@pytest.mark.parametrize("damage", [
    lambda raw: raw.update(kind="hgb"),
    lambda raw: raw.update(features=["shoe_size"]),
    lambda raw: raw.update(folds=[]),
    lambda raw: raw["folds"][0].pop("coef"),
    lambda raw: raw["folds"][0].update(coef=raw["folds"][0]["coef"][:-1]),
    lambda raw: raw["folds"][0].update(scale=[0.0] * len(raw["features"])),
    lambda raw: raw["folds"][0].update(calibration_y=[2.0] * len(raw["folds"][0]["calibration_x"])),
])
def test_malformed_state_is_refused(data: RetailData, damage) -> None:
    raw = fit_served_propensity(data).to_json()
    damage(raw)
    with pytest.raises(ValueError):
        ServedPropensity.from_json(raw)


def test_data_without_offers_or_with_a_weak_model_keeps_the_prior() -> None:
    data = generate(n_customers=400, n_products=150, seed=3)
    with pytest.raises(DataError, match="offers"):
        fit_served_propensity(dataclasses.replace(data, offers=data.offers.iloc[:0]))
    with pytest.raises(DataError, match="redeemed offers"):
        fit_served_propensity(dataclasses.replace(data, redemptions=data.redemptions.iloc[:5]))
    with pytest.raises(DataError, match="validation ROC AUC"):  # 48 redemptions: AUC 0.58
        fit_served_propensity(data)
