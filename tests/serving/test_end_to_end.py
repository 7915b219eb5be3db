"""Issue 7's "Done means", end to end through the real app: synthetic data -> `retrain` into
a private MLflow store -> the app serves the champion alias -> every kind of question,
events, erasure, consent, and a reload to a new champion under concurrent requests.

The tests share one trained store and one app (training is the slow part) and use distinct
customers; the reload test runs last because it moves the champion.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import mlflow
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from recsys.errors import BundleError
from recsys.policy.pipeline import Engine
from serving.loader import example_customer
from serving.main import create_app
from tests.configs import repo_config
from tests.serving.conftest import (
    ADMIN,
    HEADERS,
    PRIVACY,
    known_customers,
    product_ids,
    settings_for,
)
from training.jobs.promote import promote
from training.jobs.train import TrainResult, load_clean, retrain

pytestmark = pytest.mark.slow
NAME = "e2e-recsys"
CONFIG = repo_config("als", factors=16, iterations=5, random_state=0, num_threads=1).model_copy(
    update={"dataset": "synthetic:customers=300,products=120,seed=0",
            "baselines": ["popularity"], "registered_model": NAME, "experiment": NAME})


@dataclass(frozen=True)
class Served:
    client: TestClient
    trained: TrainResult
    customers: list[str]  # known to the model, with consent; each test takes its own
    products: list[str]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Train and promote into a private store, then start the app on ``@champion``."""
    root = tmp_path_factory.mktemp("e2e")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.delenv("RECSYS_EVENTS_URL", raising=False)
        mp.setenv("RECSYS_DATA_DIR", str(root / "data"))
        trained, decision = retrain(CONFIG)
        assert decision.promoted, decision.reason
        settings = settings_for(
            None, root / "data", bundle_path=None,  # type: ignore[arg-type]
            model_uri=f"models:/{NAME}@champion",
            mlflow_tracking_uri=f"sqlite:///{root / 'data' / 'mlflow.db'}")
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            yield Served(client, trained, known_customers(trained.bundle_dir, 40),
                         product_ids(trained.bundle_dir))
        mlflow.set_tracking_uri(None)  # also unsets the MLFLOW_TRACKING_URI it exported


def get(client: TestClient, url: str, **params: object) -> dict:
    response = client.get(url, params=params, headers=HEADERS)
    assert response.status_code == 200, response.text
    return dict(response.json())


def recs(client: TestClient, customer: str, n: int = 10) -> dict:
    return get(client, f"/v1/customers/{customer}/recommendations", n=n)


def purchases(customer: str, products: list[str], tag: str) -> list[dict]:
    return [{"event_id": f"{tag}-{i}", "customer_id": customer, "event_type": "purchase",
             "product_id": p} for i, p in enumerate(products)]


def post_events(client: TestClient, events: list[dict]) -> dict:
    response = client.post("/v1/events", json={"events": events}, headers=HEADERS)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_champion_answers_every_kind_of_question(served: Served) -> None:
    client, version = served.client, served.trained.version
    ready = client.get("/ready").json()
    assert ready["ready"] is True
    assert [(m["variant"], m["model_version"]) for m in ready["models"]] == \
        [("champion", version)]
    assert ready["models"][0]["index"] == "flat"

    customer = served.customers[0]
    body = recs(client, customer, 5)
    assert body["model_version"] == version and body["variant"] == "champion"
    assert body["personalized"] is True and len(body["items"]) == 5 and body["request_id"]
    assert all(i["reason"] and isinstance(i["score"], float) for i in body["items"])
    cold = recs(client, "e2e-stranger", 5)
    assert cold["fallback"] == "cold_start" and len(cold["items"]) == 5

    product = served.products[0]
    similar = get(client, f"/v1/products/{product}/similar", n=6)
    assert len(similar["items"]) == 6 and product not in {i["product_id"] for i in
                                                          similar["items"]}
    missing = client.get("/v1/products/no-such-sku/similar", headers=HEADERS)
    assert missing.status_code == 404 and "no-such-sku" in missing.json()["detail"]

    popular = get(client, "/v1/popular", n=5)
    scores = [i["score"] for i in popular["items"]]
    assert len(scores) == 5 and scores == sorted(scores, reverse=True)
    cart = client.post("/v1/cart/recommendations", json={"product_ids": served.products[:2]},
                       headers=HEADERS)
    assert cart.status_code == 200 and cart.json()["items"]

    batch = client.post("/v1/batch/recommendations", headers=HEADERS,
                        json={"customer_ids": [customer, "e2e-stranger"], "n": 5})
    assert batch.status_code == 200
    assert [[i["product_id"] for i in r["items"]] for r in batch.json()["results"]] == \
        [[i["product_id"] for i in r["items"]] for r in (body, cold)]
    assert 'route="/v1/customers/{customer_id}/recommendations"' in client.get("/metrics").text


def test_demo_example_customer_comes_from_the_champion(served: Served) -> None:
    settings = served.client.app.state.settings  # type: ignore[attr-defined]
    expected = served.customers[0]  # the first customer with consent
    assert example_customer(settings, f"models:/{NAME}@champion") == expected
    assert example_customer(settings, served.trained.bundle_dir) == expected
    with pytest.raises(BundleError, match="recsys retrain"):
        example_customer(settings, "models:/no-such-model@champion")


@pytest.mark.skipif(not hasattr(Engine, "coupons"),
                    reason="Engine.coupons is not in this build: coupon choice is not wired "
                           "into recsys.policy yet")
def test_coupons_for_customers_and_opted_out_customers(served: Served) -> None:
    client = served.client
    customer, opting_out = served.customers[1], served.customers[2]
    coupons = get(client, f"/v1/customers/{customer}/coupons", n=3)
    assert coupons["model_version"] == served.trained.version
    assert 1 <= len(coupons["coupons"]) <= 3
    assert all(c["coupon_id"] and c["reason"] for c in coupons["coupons"])
    embedded = get(client, f"/v1/customers/{customer}/recommendations", n=3,
                   include_coupons=True)
    assert embedded["coupons"] == coupons["coupons"]
    client.put(f"/v1/customers/{opting_out}/consent", json={"personalization": False},
               headers=PRIVACY)
    stranger = get(client, "/v1/customers/e2e-coupon-stranger/coupons", n=3)["coupons"]
    assert "welcome-10" in [c["coupon_id"] for c in stranger]  # a new shopper's offer
    # Only sitewide coupons open to everyone without consent; the shipped catalog has none.
    assert get(client, f"/v1/customers/{opting_out}/coupons", n=3)["coupons"] == []


def test_events_change_the_next_recommendation(served: Served) -> None:
    client = served.client
    customer = served.customers[3]
    before = [i["product_id"] for i in recs(client, customer)["items"]]
    bought = [p for p in served.products if p not in before][:5]
    events = purchases(customer, bought, "e2e-known")
    assert post_events(client, events)["folded"] == 5
    after = [i["product_id"] for i in recs(client, customer)["items"]]
    assert after != before
    assert post_events(client, events)["stored"] == 0  # resent: idempotent
    assert [i["product_id"] for i in recs(client, customer)["items"]] == after

    assert recs(client, "e2e-newcomer")["fallback"] == "cold_start"
    post_events(client, purchases("e2e-newcomer", served.products[10:13], "e2e-new"))
    assert recs(client, "e2e-newcomer")["personalized"] is True


def test_erase_forgets_the_customer_here_and_in_the_next_training(served: Served) -> None:
    client = served.client
    customer = served.customers[4]
    post_events(client, purchases(customer, served.products[20:22], "e2e-erase"))
    assert recs(client, customer)["personalized"] is True
    erased = client.delete(f"/v1/customers/{customer}", headers=PRIVACY)
    assert erased.status_code == 200 and erased.json()["records_deleted"] == 2
    assert recs(client, customer)["fallback"] == "not_personalized"
    assert customer not in set(load_clean(CONFIG.dataset).transactions["customer_id"])


def test_consent_opt_out_and_back_in(served: Served) -> None:
    client = served.client
    customer = served.customers[5]
    personal = recs(client, customer)
    assert personal["personalized"] is True
    client.put(f"/v1/customers/{customer}/consent", json={"personalization": False},
               headers=PRIVACY)
    opted_out = recs(client, customer)
    assert opted_out["fallback"] == "not_personalized"
    assert opted_out["items"] == recs(client, "e2e-anyone")["items"]
    client.put(f"/v1/customers/{customer}/consent", json={"personalization": True},
               headers=PRIVACY)
    assert recs(client, customer)["items"] == personal["items"]


def test_reload_to_a_new_champion_under_concurrent_requests_fails_none(served: Served) -> None:
    client, old = served.client, served.trained.version
    # Version 2 re-registers the champion's artifacts: this test measures the swap (download,
    # index, warm-up, journal replay, atomic switch), not another training.
    registry = MlflowClient()
    current = registry.get_model_version_by_alias(NAME, "champion")
    new = str(registry.create_model_version(NAME, current.source, run_id=current.run_id,
                                            model_id=current.model_id).version)
    shopper = "e2e-reload-shopper"
    post_events(client, purchases(shopper, served.products[30:33], "e2e-reload"))
    expected = recs(client, shopper)["items"]

    statuses: Counter[int] = Counter()
    versions: Counter[str] = Counter()
    stop = threading.Event()
    customers = [*served.customers[10:30], "e2e-cold-1", "e2e-cold-2"]
    calls = [lambda c: client.get(f"/v1/customers/{c}/recommendations", headers=HEADERS),
             lambda c: client.get("/v1/popular", headers=HEADERS),
             lambda c: client.post("/v1/batch/recommendations", headers=HEADERS,
                                   json={"customer_ids": [c, "e2e-cold-3"]})]

    def hammer(worker: int) -> None:
        i = worker
        while not stop.is_set():
            response = calls[i % len(calls)](customers[i % len(customers)])
            statuses[response.status_code] += 1
            if response.status_code == 200 and "model_version" in response.json():
                versions[response.json()["model_version"]] += 1
            i += 1

    threads = [threading.Thread(target=hammer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        decision = promote(NAME, new, force=True)  # the copy ties the champion: forced
        assert decision.promoted, decision.reason
        assert client.post("/admin/reload", headers=ADMIN).status_code == 202
        deadline = time.monotonic() + 30
        while client.get("/ready").json()["models"][0]["model_version"] != new:
            assert time.monotonic() < deadline, "the reload did not finish in 30 s"
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert set(statuses) == {200}, statuses
    assert versions[old] > 0 and versions[new] > 0
    after = recs(client, shopper)
    assert after["model_version"] == new and after["items"] == expected  # journal replayed
