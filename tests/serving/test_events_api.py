"""POST /v1/events: validated, stored durably, idempotent, folded in at once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recsys.events import EventStore
from tests.serving.conftest import HEADERS, MakeClient, known_customers, product_ids


def post(client: TestClient, events: list[dict]) -> dict:
    response = client.post("/v1/events", json={"events": events}, headers=HEADERS)
    assert response.status_code == 200, response.text
    return response.json()


def recs(client: TestClient, customer: str, n: int = 5) -> dict:
    response = client.get(f"/v1/customers/{customer}/recommendations", params={"n": n},
                          headers=HEADERS)
    assert response.status_code == 200, response.text
    return response.json()


def purchases(customer: str, products: list[str], prefix: str = "e") -> list[dict]:
    return [{"event_id": f"{prefix}-{customer}-{i}", "customer_id": customer,
             "event_type": "purchase", "product_id": p} for i, p in enumerate(products)]


def test_events_make_a_new_customer_personalized_at_once(make_client: MakeClient,
                                                         als_bundle: Path) -> None:
    products = product_ids(als_bundle)
    with make_client() as client:
        before = recs(client, "new-shopper")
        assert before["fallback"] == "cold_start"
        result = post(client, purchases("new-shopper", products[40:43]))
        assert result == {**result, "stored": 3, "duplicates": [], "folded": 3}
        after = recs(client, "new-shopper")
        assert after["personalized"] is True
        assert [i["product_id"] for i in after["items"]] != \
            [i["product_id"] for i in before["items"]]


def test_events_change_a_known_customers_next_recommendation(make_client: MakeClient,
                                                             als_bundle: Path) -> None:
    customer = known_customers(als_bundle)[0]
    products = product_ids(als_bundle)
    with make_client() as client:
        before = recs(client, customer, 10)
        post(client, purchases(customer, products[-6:]))
        after = recs(client, customer, 10)
        assert after["items"] != before["items"]


def test_resent_events_are_stored_and_folded_once(make_client: MakeClient,
                                                  als_bundle: Path, tmp_path: Path) -> None:
    batch = purchases("repeat-shopper", product_ids(als_bundle)[10:12])
    with make_client() as client:
        post(client, batch)
        once = recs(client, "repeat-shopper")
        again = post(client, batch)
        assert again["stored"] == 0 and sorted(again["duplicates"]) == sorted(
            e["event_id"] for e in batch)
        assert recs(client, "repeat-shopper")["items"] == once["items"]
    assert len(EventStore(f"sqlite:///{tmp_path / 'data' / 'events.db'}").events()) == 2


def test_views_and_unknown_products_are_stored_but_fold_what_they_can(
        make_client: MakeClient, als_bundle: Path) -> None:
    product = product_ids(als_bundle)[5]
    with make_client() as client:
        result = post(client, [
            {"event_id": "v1", "customer_id": "viewer", "event_type": "view",
             "product_id": product, "timestamp": "2024-06-01T10:00:00+02:00"},
            {"event_id": "v2", "customer_id": "viewer", "event_type": "add_to_cart",
             "product_id": "not-in-catalog"},
            {"event_id": "v3", "customer_id": "viewer", "event_type": "coupon_redeemed",
             "coupon_id": "k001", "amount": 2.5}])
        assert result["stored"] == 3 and result["folded"] == 1


def test_events_survive_a_restart_and_are_replayed(make_client: MakeClient,
                                                   als_bundle: Path) -> None:
    with make_client() as client:
        post(client, purchases("returning", product_ids(als_bundle)[20:23]))
        expected = recs(client, "returning")
    with make_client() as client:
        assert expected["personalized"] is True
        assert recs(client, "returning")["items"] == expected["items"]


def test_a_second_worker_sees_events_through_the_journal(make_client: MakeClient,
                                                         als_bundle: Path) -> None:
    with make_client() as first, make_client() as second:
        cold = recs(second, "cross-worker")
        assert cold["fallback"] == "cold_start"
        post(first, purchases("cross-worker", product_ids(als_bundle)[30:33]))
        deadline = time.monotonic() + 5
        while recs(second, "cross-worker")["fallback"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert recs(second, "cross-worker")["items"] == recs(first, "cross-worker")["items"]


@pytest.mark.parametrize(("event", "fragment"), [
    ({"event_type": "click", "product_id": "p001"}, "'view', 'add_to_cart', 'purchase'"),
    ({"event_type": "purchase"}, "a purchase event needs a product_id"),
    ({"event_type": "coupon_redeemed"}, "needs a coupon_id"),
    ({"event_type": "view", "product_id": "p001", "quantity": "lots"}, "valid number"),
    ({"event_type": "view", "product_id": "p001", "quantity": -1}, "greater than 0"),
    ({"event_type": "view", "product_id": "p001", "timestamp": "yesterday"}, "datetime"),
    ({"event_type": "view", "product_id": 17}, "valid string"),
    ({"event_type": "view", "product_id": "p001", "price": 3}, "Extra inputs"),
])
def test_invalid_events_are_422_with_a_reason(client: TestClient, event: dict,
                                              fragment: str) -> None:
    body = {"events": [{"event_id": "bad-1", "customer_id": "c1", **event}]}
    response = client.post("/v1/events", json=body, headers=HEADERS)
    assert response.status_code == 422
    assert fragment in response.text


@pytest.mark.parametrize("body", [{"events": []}, {}, {"events": "view"}, []])
def test_malformed_batches_are_422(client: TestClient, body: object) -> None:
    assert client.post("/v1/events", json=body, headers=HEADERS).status_code == 422


def test_bad_json_is_422(client: TestClient) -> None:
    response = client.post("/v1/events", content=b'{"events": [', headers={
        **HEADERS, "Content-Type": "application/json"})
    assert response.status_code == 422 and "JSON decode error" in response.text


def test_oversized_batch_is_413_and_stores_nothing(make_client: MakeClient,
                                                   tmp_path: Path) -> None:
    with make_client(max_events_per_batch=5) as client:
        response = client.post("/v1/events", headers=HEADERS,
                               json={"events": purchases("big", ["p001"] * 6)})
        assert response.status_code == 413
        assert "at most 5 events; got 6" in response.json()["detail"]
    assert EventStore(f"sqlite:///{tmp_path / 'data' / 'events.db'}").count() == 0


def test_oversized_body_is_413(make_client: MakeClient) -> None:
    with make_client(max_body_bytes=2048) as client:
        response = client.post("/v1/events", headers=HEADERS,
                               json={"events": purchases("huge", ["p001"] * 100)})
        assert response.status_code == 413
        assert "over the 2048-byte limit" in response.json()["detail"]
        chunked = client.post("/v1/events", headers={**HEADERS, "Content-Type":
                                                     "application/json"},
                              content=iter([b'{"events": [', b" " * 3000, b"]}"]))
        assert chunked.status_code == 413 and "2048-byte limit" in chunked.json()["detail"]
        small = client.post("/v1/events", headers={**HEADERS, "Content-Type":
                                                   "application/json"},
                            content=iter([b'{"events": [', b"]}"]))
        assert small.status_code == 422  # read in full and passed on


@pytest.mark.parametrize("stamp", ["9999-12-31T23:00:00-05:00", "1970-01-01T00:00:00Z",
                                   "1999-12-31T23:59:59", "2100-01-01T00:00:00+01:00"])
def test_timestamps_outside_the_window_are_422_naming_the_field(client: TestClient,
                                                                 stamp: str) -> None:
    events = [{"event_id": "ok-1", "customer_id": "c1", "event_type": "view",
               "product_id": "p001"},
              {"event_id": "far-1", "customer_id": "c1", "event_type": "view",
               "product_id": "p001", "timestamp": stamp}]
    response = client.post("/v1/events", json={"events": events}, headers=HEADERS)
    assert response.status_code == 422, response.text
    (error,) = response.json()["detail"]
    assert error["loc"] == ["body", "events", 1, "timestamp"] and "between" in error["msg"]


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/events", b'{"events": [{"event_id": "n1", "customer_id": "c1", "event_type": '
                   b'"purchase", "product_id": "p1", "quantity": NaN}]}'),
    ("/v1/events", b'{"events": [{"event_id": "n2", "customer_id": "c1", "event_type": '
                   b'"purchase", "product_id": "p1", "amount": Infinity}]}'),
    ("/v1/events", b'{"events": [NaN, -Infinity]}'),
    ("/v1/cart/recommendations", b'{"product_ids": [NaN], "customer_id": Infinity}'),
    ("/v1/batch/recommendations", b'{"customer_ids": ["c1"], "min_price": NaN}'),
])
def test_non_finite_numbers_are_422_not_500(client: TestClient, path: str, body: bytes
                                            ) -> None:
    response = client.post(path, content=body,
                           headers={**HEADERS, "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][0] == "body"


def test_a_non_finite_consent_is_422(make_client: MakeClient) -> None:
    from tests.serving.conftest import PRIVACY

    with make_client() as client:
        response = client.put("/v1/customers/c1/consent", content=b'{"personalization": NaN}',
                              headers={**PRIVACY, "Content-Type": "application/json"})
        assert response.status_code == 422 and "NaN" in response.text


def test_a_422_echoes_at_most_1_kb_of_input(client: TestClient) -> None:
    one = client.post("/v1/events", headers=HEADERS, json={"events": [
        {"event_id": "x" * 50_000, "customer_id": "c1", "event_type": "view",
         "product_id": "p1"}]})
    assert one.status_code == 422 and len(one.content) < 1_500, len(one.content)
    huge = "x" * 30_000  # 30 errors of 30 KB each, under the body limit
    response = client.post("/v1/events", headers=HEADERS, json={"events": [
        {"event_id": huge, "customer_id": huge, "event_type": "view", "product_id": huge}
        for _ in range(10)]})
    assert response.status_code == 422
    assert len(response.content) < 8_000, len(response.content)
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", "events", 0, "event_id"]
    assert len(detail) <= 21 and detail[-1]["type"] == "too_many_errors"


def test_a_shopper_who_only_looked_is_not_told_about_purchases(client: TestClient,
                                                               als_bundle: Path) -> None:
    products = product_ids(als_bundle)[20:23]
    post(client, [{"event_id": f"look-{i}", "customer_id": "looker-1", "event_type": kind,
                   "product_id": p} for i, (kind, p) in enumerate(
                       zip(["view", "add_to_cart", "view"], products, strict=True))])
    for mode in ("discover", "buy_again"):
        body = client.get("/v1/customers/looker-1/recommendations", headers=HEADERS,
                          params={"n": 10, "mode": mode}).json()
        assert body["personalized"] is True
        codes = {i["reason_code"] for i in body["items"]}
        assert codes <= {"from_what_you_looked_at", "looked_at", "popular"}, codes
        assert not any("bought" in i["reason"] or "buy" in i["reason"] for i in body["items"])
        assert codes - {"popular"}
