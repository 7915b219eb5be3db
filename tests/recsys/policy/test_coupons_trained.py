"""Coupons with the bundle's trained redemption model: stored and checked in the bundle, used
online and in batch for targeted coupons, the prior for sitewide ones and without a model."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

from recsys.bundle import Bundle, read_bundle
from recsys.coupons.served import ServedPropensity, fit_served_propensity
from recsys.data.schema import RetailData
from recsys.data.synthetic import generate
from recsys.errors import BundleError
from recsys.policy.pipeline import Engine
from tests.bundles import repo_bundle


@pytest.fixture(scope="module")
def data() -> RetailData:
    return generate(n_customers=1000, n_products=300, seed=3)


@pytest.fixture(scope="module")
def bundle_dir(data: RetailData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "bundle"
    repo_bundle(data, out, "als", factors=8, iterations=3)
    return out


def one_feature_model(weight: float, intercept: float = -3.0) -> ServedPropensity:
    """P = expit(intercept + weight * log1p(past redemptions)), calibration ~ identity."""
    grid = np.linspace(-20, 20, 4001)
    return ServedPropensity(("past_redemptions",), np.zeros((1, 1)), np.zeros((1, 1)),
                            np.ones((1, 1)), np.full((1, 1), weight), np.array([intercept]),
                            ((grid, expit(grid)),), {"source": "trained"})


def with_model(bundle_dir: Path, model: ServedPropensity | None) -> Engine:
    return Engine(dataclasses.replace(read_bundle(bundle_dir), coupon_propensity=model))


def test_the_bundle_round_trips_the_trained_model(bundle_dir: Path, data: RetailData) -> None:
    bundle = read_bundle(bundle_dir)
    manifest = bundle.manifest
    assert "propensity.json" in manifest["files"]
    info = manifest["coupon_propensity"]
    assert info["source"] == "trained" and 0.6 <= info["validation_auc"] <= 1
    assert bundle.coupon_propensity is not None
    fresh = fit_served_propensity(data)  # deterministic: the same fit as at build
    X = np.random.default_rng(1).random((40, len(fresh.features))) * 3
    assert np.array_equal(bundle.coupon_propensity.probability(X), fresh.probability(X))
    assert bundle.customers["coupon_redemptions"].sum() == len(data.redemptions)


def test_trained_probabilities_drive_targeted_coupons_and_the_prior_sitewide(
        bundle_dir: Path) -> None:
    trained = Engine(read_bundle(bundle_dir))
    prior = with_model(bundle_dir, None)
    sitewide = trained.coupon_chooser._sitewide
    index = trained.coupon_chooser._coupon_index
    ids = trained.customers.ids[:200].tolist()
    seen = {True: 0, False: 0}
    for a, b in zip(trained.coupons_many(ids, 3), prior.coupons_many(ids, 3), strict=True):
        base = {p.coupon_id: p for p in b}
        for p in a:
            site = bool(sitewide[index[p.coupon_id]])
            seen[site] += 1
            if p.coupon_id in base:
                q = base[p.coupon_id]
                assert (p.p_redeem == q.p_redeem) == site  # trained only where targeted
    assert seen[True] and seen[False]


def test_more_past_redemptions_raise_p_and_rank_the_coupon_higher(bundle_dir: Path) -> None:
    engine = with_model(bundle_dir, one_feature_model(weight=2.0))
    chooser = engine.coupon_chooser
    sitewide = chooser._sitewide
    customer = engine.customers.ids[0]
    bundle_count = float(engine.bundle.customers["coupon_redemptions"].iloc[0])

    def targeted(c: str) -> dict[str, tuple[float, float]]:
        return {p.coupon_id: (p.p_redeem, p.score) for p in engine.coupons(c, 3)
                if not sitewide[chooser._coupon_index[p.coupon_id]]}

    before = targeted(customer)
    assert before
    for p, _ in before.values():
        assert p == pytest.approx(expit(-3.0 + 2.0 * np.log1p(bundle_count)), abs=1e-3)
    for k in range(3):  # redemptions folded in online count too (ids outside the catalog)
        engine.add_redemption(customer, f"paper-coupon-{k}")
    after = targeted(customer)
    for coupon, (p, score) in before.items():
        assert after[coupon][0] == pytest.approx(
            expit(-3.0 + 2.0 * np.log1p(bundle_count + 3)), abs=1e-3)
        assert after[coupon][0] > p and after[coupon][1] > score
    # A stranger has no profile or redemptions from the bundle: the lowest probability.
    stranger = [p.p_redeem for p in engine.coupons("never-seen", 3)
                if not sitewide[chooser._coupon_index[p.coupon_id]]]
    assert all(p == pytest.approx(expit(-3.0), abs=1e-3) for p in stranger)


def test_batch_picks_use_the_trained_probabilities(bundle_dir: Path) -> None:
    customers = read_bundle(bundle_dir).customers
    counts = customers["coupon_redemptions"].to_numpy(np.float64)
    ids = customers["customer_id"].astype(str).tolist()
    engine = with_model(bundle_dir, one_feature_model(weight=-1.5, intercept=-2.0))
    chooser = engine.coupon_chooser
    given = 0
    for count, row in zip(counts, engine.coupons_many(ids, 3, budget=engine.coupon_budget()),
                          strict=True):
        for p in row:
            if not chooser._sitewide[chooser._coupon_index[p.coupon_id]]:
                given += 1
                assert p.p_redeem == pytest.approx(expit(-2.0 - 1.5 * np.log1p(count)),
                                                   abs=1e-3)
    assert given and counts.max() > 0


def test_one_customers_features_and_picks_are_the_batchs(bundle_dir: Path) -> None:
    """The one-customer path (no scipy products) gives the batch's features bit for bit."""
    engine = Engine(read_bundle(bundle_dir))
    chooser = engine.coupon_chooser
    ids = engine.customers.ids[:150].tolist() + ["never-seen"]
    products = engine.bundle.products["product_id"].astype(str).tolist()
    engine.add_interactions(ids[0], products[:3] + products[:1], [1.0, 2.0, 0.5, 3.0])
    engine.add_interactions("never-seen", products[5:7], [1.0, 1.0])
    engine.set_consent(ids[1], False)
    history, _, allowed = engine._histories(ids)
    rows = chooser.customers.to_index(ids, missing="mark")
    known = (rows >= 0) & allowed
    at = np.clip(rows, 0, None)

    def features(spend: object, r: slice) -> np.ndarray:
        return chooser._features(
            spend, past_redemptions=np.where(known, chooser._redemptions[at], 0.0)[r],
            recency_days=np.where(known, chooser._recency[at], np.nan)[r],
            avg_basket=chooser._audience(rows, allowed).avg_basket[r],
            columns=chooser.trained.features)

    batch = features(chooser._spend(history, allowed), slice(None))
    m = batch.shape[0] // len(ids)
    for i, customer in enumerate(ids):
        one = features(chooser._spend(history[i], allowed[i:i + 1]), slice(i, i + 1))
        assert one.tobytes() == batch[i * m:(i + 1) * m].tobytes(), customer
    many = engine.coupons_many(ids, 3)
    for customer, picks in zip(ids, many, strict=True):
        assert [(p.coupon_id, p.rule, p.reason) for p in engine.coupons(customer, 3)] == \
            [(p.coupon_id, p.rule, p.reason) for p in picks]


def _rewrite(bundle: Path, name: str, text: str) -> None:
    """Replace a bundle file and its manifest checksum (a well-formed but wrong file)."""
    (bundle / name).write_text(text)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": hashlib.sha256(text.encode()).hexdigest(),
                               "bytes": len(text.encode())}
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def test_a_damaged_or_missing_propensity_file_is_refused(bundle_dir: Path,
                                                         tmp_path: Path) -> None:
    def copy(name: str) -> Path:
        return Path(shutil.copytree(bundle_dir, tmp_path / name))

    flipped = copy("flipped")
    raw = bytearray((flipped / "propensity.json").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (flipped / "propensity.json").write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="propensity.json is corrupt"):
        read_bundle(flipped)

    missing = copy("missing")
    (missing / "propensity.json").unlink()
    with pytest.raises(BundleError, match="propensity.json is missing"):
        read_bundle(missing)

    unlisted = copy("unlisted")
    (unlisted / "propensity.json").unlink()
    manifest = json.loads((unlisted / "manifest.json").read_text())
    del manifest["files"]["propensity.json"]
    (unlisted / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="trained but lists no propensity.json"):
        read_bundle(unlisted)

    invalid = copy("invalid")
    _rewrite(invalid, "propensity.json", json.dumps({"kind": "logistic-isotonic",
                                                     "features": ["target_share"]}))
    with pytest.raises(BundleError, match="propensity.json is invalid: folds"):
        read_bundle(invalid)
    _rewrite(invalid, "propensity.json", "{not json")
    with pytest.raises(BundleError, match="propensity.json is invalid"):
        read_bundle(invalid)


def test_without_history_to_learn_from_the_bundle_records_the_prior(tmp_path: Path) -> None:
    data = generate(n_customers=300, n_products=100, seed=1)
    data = dataclasses.replace(data, offers=data.offers.iloc[:0])
    bundle = repo_bundle(data, tmp_path / "b", "als", factors=4, iterations=2)
    loaded: Bundle = read_bundle(tmp_path / "b")
    assert bundle.coupon_propensity is None and loaded.coupon_propensity is None
    assert loaded.manifest["coupon_propensity"]["source"] == "prior"
    assert "offers" in loaded.manifest["coupon_propensity"]["reason"]
    assert "propensity.json" not in loaded.manifest["files"]
