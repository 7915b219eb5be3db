"""Churn classifier: leakage-free windows, labels, calibration, evaluation against baselines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.customers.churn import ChurnModel, churn_features, churn_labels
from recsys.customers.churn_eval import calibration_table, evaluate_churn
from recsys.customers.config import ChurnConfig, CustomersConfig
from recsys.customers.history import NS_PER_DAY, build_history
from recsys.data.synthetic import generate
from recsys.errors import DataError

FAST = {"n_threads": 1, "params": {"max_iter": 60, "learning_rate": 0.1, "max_depth": 3,
                                   "min_samples_leaf": 40}}


@pytest.fixture(scope="module")
def retailer():
    return generate(1500, 200, seed=0)


@pytest.fixture(scope="module")
def history(retailer):
    return build_history(retailer.transactions, products=retailer.products,
                         redemptions=retailer.redemptions)


def ns(day: str) -> int:
    return pd.Timestamp(day).value


def test_features_ignore_orders_after_the_cut(tx_builder) -> None:
    rows = [("a", "2024-01-01", 10), ("a", "2024-02-01", 20), ("b", "2024-01-15", 5)]
    later = rows + [("a", "2024-03-05", 99), ("c", "2024-03-02", 1), ("b", "2024-03-09", 4)]
    cut = ns("2024-03-01")
    who1, f1 = churn_features(build_history(tx_builder(rows)), cut, trend_days=30,
                              horizon_days=30)
    h2 = build_history(tx_builder(later))
    who2, f2 = churn_features(h2, cut, trend_days=30, horizon_days=30)
    assert list(h2.customer_ids[who2]) == ["a", "b"]  # c has no order by the cut
    pd.testing.assert_frame_equal(f1.drop(columns=["p_alive", "p_no_purchase"]),
                                  f2.drop(columns=["p_alive", "p_no_purchase"]))
    assert f1.loc[0, "recency_days"] == 29 and f1.loc[0, "order_value"] == 15.0


def test_labels_mark_customers_without_an_order_in_the_horizon(tx_builder) -> None:
    h = build_history(tx_builder([
        ("a", "2024-01-01", 1), ("a", "2024-01-20", 1),   # buys again within 30 days
        ("b", "2024-01-01", 1), ("b", "2024-03-01", 1),   # buys again, but after 30 days
        ("c", "2024-01-05", 1)]))                          # never again
    labels = churn_labels(h, ns("2024-01-10"), 30, np.arange(3))
    assert labels.tolist() == [0, 1, 1]


def test_fit_needs_two_usable_windows(tx_builder) -> None:
    h = build_history(tx_builder([("a", "2024-01-01", 1), ("b", "2024-03-01", 2)]))
    with pytest.raises(DataError, match="2 usable windows"):
        ChurnModel(horizon_days=30).fit(h)


def test_model_windows_end_before_the_fit_end(history) -> None:
    end = history.as_of_ns - 60 * NS_PER_DAY
    model = ChurnModel.from_config(ChurnConfig(**FAST)).fit(history, end_ns=end)
    assert max(model.cuts_).value == end - 90 * NS_PER_DAY
    assert model.cuts_ == sorted(model.cuts_, reverse=True) and len(model.cuts_) == 3
    assert "n_categories" in model.feature_names_ and "coupons" in model.feature_names_


def test_predictions_are_probabilities_and_nan_without_history(history) -> None:
    for calibration in ("isotonic", "sigmoid"):
        model = ChurnModel.from_config(ChurnConfig(calibration=calibration, **FAST))
        model.fit(history)
        early = history.as_of_ns - 200 * NS_PER_DAY
        risk = model.predict(history, early)
        bought = np.bincount(history.customer[history.ts <= early],
                             minlength=history.n_customers) > 0
        assert np.isnan(risk[~bought]).all()
        assert ((risk[bought] >= 0) & (risk[bought] <= 1)).all()


def test_feature_set_must_match_the_fit(retailer, history) -> None:
    model = ChurnModel.from_config(ChurnConfig(**FAST)).fit(history)
    plain = build_history(retailer.transactions)
    with pytest.raises(ValueError, match="same products/redemptions"):
        model.predict(plain)


def test_evaluation_reports_model_and_baselines_on_a_later_window(history) -> None:
    report = evaluate_churn(history, config=CustomersConfig(churn=ChurnConfig(**FAST)))
    assert report.cut == history.as_of - pd.Timedelta(days=90)
    assert list(report.scores["method"]) == ["model", "recency", "bgnbd"]
    assert report.scores[["roc_auc", "brier", "ece", "mean_predicted"]].apply(
        lambda s: s.between(0, 1)).all().all()
    assert (report.scores["roc_auc"] > 0.6).all()  # planted churn is learnable
    counts = report.calibration.groupby("method")["n"].sum()
    assert (counts == report.n_eval).all()
    model = report.calibration[report.calibration["method"] == "model"]
    gap = (model["mean_predicted"] - model["observed"]).abs() * model["n"] / report.n_eval
    assert report.scores.set_index("method").at["model", "ece"] == pytest.approx(gap.sum())
    with pytest.raises(DataError, match="not known yet"):
        evaluate_churn(history, cut=history.as_of - pd.Timedelta(days=10))


def test_calibration_table_bins() -> None:
    y = np.array([0, 0, 1, 1, 1], dtype=np.int8)
    p = np.array([0.05, 0.15, 0.12, 0.95, 1.0])
    table = calibration_table(y, p)
    assert table["bin"].tolist() == ["0.0-0.1", "0.1-0.2", "0.9-1.0"]
    assert table["n"].tolist() == [1, 2, 2]
    np.testing.assert_allclose(table["observed"], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(table["mean_predicted"], [0.05, 0.135, 0.975])


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize("source", ["completejourney", "online_retail"])
def test_classifier_beats_recency_on_real_data(source: str, shared_data) -> None:
    from recsys.data.clean import clean
    from recsys.data.load import load_dataset

    path = shared_data / "online_retail" / "online_retail.csv.gz"
    data, _ = clean(load_dataset(path if source == "online_retail" else source))
    history = build_history(data.transactions,
                            products=data.products if len(data.products) else None,
                            redemptions=data.redemptions if len(data.redemptions) else None)
    scores = evaluate_churn(history).scores.set_index("method")
    assert scores.at["model", "roc_auc"] > scores.at["recency", "roc_auc"]
    assert scores.at["model", "brier"] < scores.at["recency", "brier"]
