"""Redemption propensity: the prior, offer features without leakage, the calibrated model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse
from sklearn.metrics import roc_auc_score

from recsys.coupons.catalog import Prior
from recsys.coupons.offer_features import FEATURES
from recsys.coupons.propensity import (
    OfferTable,
    RedemptionModel,
    build_offer_table,
    prior_propensity,
    top_fraction_lift,
)
from recsys.data.schema import RetailData
from recsys.data.sources import conform
from recsys.data.synthetic import generate
from recsys.errors import DataError, NotFittedError


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + np.exp(-x))


def test_prior_matches_the_documented_formula() -> None:
    prior = Prior(intercept=-3.0, affinity_slope=2.0, stage_offsets={"new": 1.0}, basket_slope=0.5)
    aff = np.array([[0.0, 0.5], [0.5, 1.0]])
    p = prior_propensity(aff, np.array(["new", "unknown"], dtype=object), prior,
                         min_basket=np.array([0.0, 60.0]), avg_basket=np.array([30.0, np.nan]))
    assert p[0, 0] == pytest.approx(_sigmoid(-3 + 1))
    assert p[0, 1] == pytest.approx(_sigmoid(-3 + 1 + 1 - 0.5 * (60 / 30 - 1)))
    assert p[1, 0] == pytest.approx(_sigmoid(-3 + 1))  # unknown stage: offset 0
    assert p[1, 1] == pytest.approx(_sigmoid(-3 + 2))  # unknown avg basket: no penalty


def test_prior_grows_with_affinity() -> None:
    aff = np.linspace(0, 1, 11)[None, :]
    p = prior_propensity(aff, np.array(["active"], dtype=object), Prior())
    assert (np.diff(p[0]) > 0).all() and ((p > 0) & (p < 1)).all()


def test_top_fraction_lift_shares_ties() -> None:
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    assert top_fraction_lift(y, np.zeros(10), 0.2) == pytest.approx(1.0)
    assert top_fraction_lift(y, y.astype(float), 0.2) == pytest.approx(5.0)
    # top 2 = one sure hit + one of three tied (one hit among them): (1 + 1/3) / 2 / 0.2
    score = np.array([3, 1, 1, 0, 1, 0, 0, 0, 0, 0], dtype=float)
    assert top_fraction_lift(y, score, 0.2) == pytest.approx((1 + 1 / 3) / 2 / 0.2)
    with pytest.raises(ValueError):
        top_fraction_lift(np.zeros(4), np.zeros(4))


# -- a tiny retailer with two campaigns ----------------------------------------------------
def _retail(extra_tx: list[tuple[str, str, str, float, str]] = (),  # type: ignore[assignment]
            extra_red: list[tuple[str, str, str, str]] = ()) -> RetailData:  # type: ignore[assignment]
    tx = [  # order, customer, product, amount, time
        ("o1", "a", "milk", 6.0, "2024-01-02"), ("o1", "a", "bread", 2.0, "2024-01-02"),
        ("o2", "a", "milk", 4.0, "2024-02-10"), ("o3", "b", "beef", 10.0, "2024-01-05"),
        ("o4", "b", "bread", 10.0, "2024-02-20"), ("o5", "c", "milk", 1.0, "2024-03-20"),
        *extra_tx]
    t = pd.DataFrame(tx, columns=["order_id", "customer_id", "product_id", "amount", "timestamp"])
    t["quantity"] = 1.0
    products = pd.DataFrame({"product_id": ["milk", "bread", "beef"],
                             "category": ["DAIRY > MILK > WHOLE", "BAKERY > BREAD > WHITE",
                                          "MEAT > BEEF > STEAK"]})
    campaigns = pd.DataFrame({"campaign_id": ["early", "c1", "c2"],
                              "start": ["2024-01-03", "2024-03-01", "2024-04-01"],
                              "end": ["2024-01-20", "2024-03-31", "2024-04-30"]})
    coupons = pd.DataFrame({"coupon_id": ["k_milk", "k_milk", "k_beef", "k_milk", "k_beef"],
                            "campaign_id": ["c1", "c1", "c1", "c2", "early"],
                            "product_id": ["milk", "milk", "beef", "milk", "beef"]})
    offers = pd.DataFrame({"campaign_id": ["c1", "c1", "c1", "c2", "c2", "early"],
                           "customer_id": ["a", "b", "c", "a", "c", "a"]})
    red = pd.DataFrame([("a", "k_milk", "c1", "2024-03-05"), *extra_red],
                       columns=["customer_id", "coupon_id", "campaign_id", "timestamp"])
    return RetailData("tiny", conform(t, "transactions"), conform(products, "products"),
                      campaigns=conform(campaigns, "campaigns"),
                      coupons=conform(coupons, "coupons"), offers=conform(offers, "offers"),
                      redemptions=conform(red, "redemptions"))


def test_offer_table_rows_labels_and_hand_features() -> None:
    table = build_offer_table(_retail(), min_history_days=28)
    assert list(table.X.columns) == list(FEATURES)
    assert "early" in table.skipped  # starts 1 day after the first transaction
    # c1: 3 customers x 2 coupons, c2: 2 customers x 1 coupon
    assert len(table.y) == 8 and table.y.sum() == 1
    frame = table.X.assign(cust=table.customer_id, coupon=table.coupon_id,
                           camp=table.campaign_id, y=table.y)
    hit = frame[frame.y == 1]
    assert (hit.cust.tolist(), hit.coupon.tolist(), hit.camp.tolist()) == (["a"], ["k_milk"],
                                                                            ["c1"])
    a_c1 = frame[(frame.cust == "a") & (frame.camp == "c1") & (frame.coupon == "k_milk")].iloc[0]
    assert a_c1.target_share == pytest.approx(10 / 12)
    assert a_c1.main_category_share == pytest.approx(10 / 12)
    assert a_c1.past_redemptions == 0.0
    assert a_c1.recency_days == pytest.approx(20.0)
    a_c2 = frame[(frame.cust == "a") & (frame.camp == "c2")].iloc[0]
    assert a_c2.past_redemptions == pytest.approx(np.log1p(1))  # redeemed in c1, before c2
    assert a_c2.coupon_past_redemptions == pytest.approx(np.log1p(1))
    c_c1 = frame[(frame.cust == "c") & (frame.camp == "c1")].iloc[0]
    assert c_c1.has_history == 0.0 and c_c1.target_share == 0.0  # first order after start


def test_offer_features_ignore_everything_after_the_campaign_start() -> None:
    base = build_offer_table(_retail())
    later = build_offer_table(_retail(
        extra_tx=[("o9", "b", "milk", 50.0, "2024-03-02"), ("o9", "b", "beef", 5.0,
                                                             "2024-03-02")],
        extra_red=[("b", "k_beef", "c1", "2024-03-02")]))
    c1 = base.campaign_id == "c1"
    pd.testing.assert_frame_equal(base.X[c1].reset_index(drop=True),
                                  later.X[c1].reset_index(drop=True))
    assert later.y[c1].sum() == 2  # the new redemption is a label, never a feature


def test_offer_table_takes_a_cf_callable() -> None:
    seen = []

    def cf(customers: np.ndarray, products: sparse.csr_matrix, product_ids: np.ndarray,
           as_of: pd.Timestamp) -> np.ndarray:
        seen.append((as_of, sorted(customers)))
        assert products.shape[1] == len(product_ids)
        # affinity 1 for customer "a", whatever the coupon; ids are external strings
        return np.tile(np.array([[float(c == "a")] for c in customers]), products.shape[0])

    table = build_offer_table(_retail(), cf=cf)
    assert seen == [(pd.Timestamp("2024-03-01"), ["a", "b", "c"]),
                    (pd.Timestamp("2024-04-01"), ["a", "c"])]
    c1 = table.campaign_id == "c1"
    assert (table.X.cf_affinity[c1] == (table.customer_id[c1] == "a")).all()

    def wrong(*args: object) -> np.ndarray:
        return np.zeros((1, 1))

    with pytest.raises(ValueError, match="cf must give shape"):
        build_offer_table(_retail(), cf=wrong)


def test_offer_table_needs_campaign_history() -> None:
    data = _retail()
    data.offers = data.offers.iloc[:0]
    with pytest.raises(DataError, match="no offers"):
        build_offer_table(data)


# -- the model --------------------------------------------------------------------------------
def _planted(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"target_share": rng.beta(0.3, 3, n), "frequency": rng.gamma(2, 2, n),
                      "cf_affinity": np.full(n, np.nan), "noise": rng.normal(size=n)})
    logit = -6 + 8 * X.target_share + 0.2 * X.frequency
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


@pytest.mark.parametrize("method", ["hgb", "logistic"])
def test_model_learns_planted_signal_and_stays_calibrated(method: str) -> None:
    X, y = _planted(20_000, 0)
    model = RedemptionModel(method=method, negative_rate=0.3, max_iter=60, n_threads=1)
    model.fit(X, y)
    assert list(model.features_used_) == ["target_share", "frequency", "noise"]
    Xt, yt = _planted(20_000, 1)
    p = model.redemption_probability(Xt)
    assert roc_auc_score(yt, p) > 0.8
    assert p.mean() == pytest.approx(yt.mean(), rel=0.3)  # down-sampling re-weighted away
    assert model.predict_proba(Xt).shape == (len(Xt), 2)


def test_model_input_errors() -> None:
    X, y = _planted(500, 2)
    with pytest.raises(NotFittedError):
        RedemptionModel().predict_proba(X)
    with pytest.raises(TypeError, match="DataFrame"):
        RedemptionModel().fit(X.to_numpy(), y)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both classes"):
        RedemptionModel().fit(X, np.zeros(len(X)))
    model = RedemptionModel(method="logistic").fit(X, y)
    with pytest.raises(ValueError, match="lacks the training features"):
        model.predict_proba(X.drop(columns="frequency"))
    with pytest.raises(ValueError, match="method must be"):
        RedemptionModel(method="forest").fit(X, y)  # type: ignore[arg-type]


def test_offer_table_keeps_a_share_of_recipients_under_max_offers() -> None:
    """A retailer too big for memory learns from a random share of each campaign's
    recipients: whole recipients (all their coupons), same labels, about max_offers rows."""
    data = generate(3000, 300, n_lines=30_000, seed=0)
    full = build_offer_table(data)
    cap = len(full.y) // 4
    small = build_offer_table(data, max_offers=cap)
    assert full.sampled == 1.0 and 0 < small.sampled <= cap / len(full.y)
    assert 0.5 * small.sampled * len(full.y) < len(small.y) <= 1.2 * cap

    def offers(table: OfferTable) -> set[tuple[str, str, str, int]]:
        return set(zip(table.campaign_id, table.customer_id, table.coupon_id,
                       table.y.tolist(), strict=True))

    assert offers(small) <= offers(full)
    kept = pd.DataFrame({"camp": small.campaign_id, "cust": small.customer_id})
    coupons = pd.Series(full.coupon_id).groupby(full.campaign_id).nunique()
    per_recipient = kept.groupby(["camp", "cust"]).size()
    assert (per_recipient.to_numpy() == coupons.reindex(
        per_recipient.index.get_level_values("camp")).to_numpy()).all()
