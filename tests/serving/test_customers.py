"""Privacy: erasure (right to be forgotten) and consent to personalization."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from recsys.events import EventStore
from tests.serving.conftest import HEADERS, PRIVACY, MakeClient, known_customers, product_ids


def recs(client: TestClient, customer: str) -> dict:
    response = client.get(f"/v1/customers/{customer}/recommendations", headers=HEADERS)
    assert response.status_code == 200, response.text
    return response.json()


def store_of(tmp_path: Path) -> EventStore:
    return EventStore(f"sqlite:///{tmp_path / 'data' / 'events.db'}")


def buy(client: TestClient, customer: str, products: list[str], tag: str) -> None:
    events = [{"event_id": f"{tag}-{i}", "customer_id": customer, "event_type": "purchase",
               "product_id": p} for i, p in enumerate(products)]
    assert client.post("/v1/events", json={"events": events}, headers=HEADERS).status_code == 200


def test_erase_forgets_events_history_and_lists_the_customer(
        make_client: MakeClient, als_bundle: Path, tmp_path: Path) -> None:
    customer = known_customers(als_bundle)[0]
    with make_client() as client:
        buy(client, customer, product_ids(als_bundle)[:3], "pre")
        assert recs(client, customer)["personalized"] is True
        response = client.delete(f"/v1/customers/{customer}", headers=PRIVACY)
        assert response.status_code == 200
        assert response.json()["records_deleted"] == 3
        after = recs(client, customer)
        assert after["personalized"] is False and after["fallback"] == "not_personalized"
        # A producer resends an old event and sends a new one: neither is stored.
        resent = client.post("/v1/events", headers=HEADERS, json={"events": [
            {"event_id": "pre-0", "customer_id": customer, "event_type": "purchase",
             "product_id": product_ids(als_bundle)[0]},
            {"event_id": "post-0", "customer_id": customer, "event_type": "purchase",
             "product_id": product_ids(als_bundle)[3]}]}).json()
        assert resent["stored"] == 0 and resent["duplicates"] == ["pre-0"]
        assert [r["event_id"] for r in resent["refused"]] == ["post-0"]
        assert "erased" in resent["refused"][0]["reason"]
        assert recs(client, customer)["personalized"] is False
    store = store_of(tmp_path)
    assert store.erased_among([customer]) == {customer}
    assert store.events(customer) == []
    with make_client() as client:  # the erasure is replayed at start-up
        assert recs(client, customer)["fallback"] == "not_personalized"


def test_erase_of_an_event_only_customer_removes_their_personalization(
        make_client: MakeClient, als_bundle: Path, tmp_path: Path) -> None:
    with make_client() as client:
        buy(client, "web-only", product_ids(als_bundle)[50:52], "w")
        assert recs(client, "web-only")["personalized"] is True
        assert client.delete("/v1/customers/web-only", headers=PRIVACY).json()[
            "records_deleted"] == 2
        assert recs(client, "web-only")["personalized"] is False
    assert store_of(tmp_path).events("web-only") == []


def test_consent_opt_out_gives_non_personalized_results_until_opt_in(
        make_client: MakeClient, als_bundle: Path) -> None:
    customer = known_customers(als_bundle)[1]
    with make_client() as client:
        personal = recs(client, customer)
        assert personal["personalized"] is True
        out = client.put(f"/v1/customers/{customer}/consent", headers=PRIVACY,
                         json={"personalization": False})
        assert out.status_code == 200 and out.json()["personalization"] is False
        opted_out = recs(client, customer)
        assert opted_out["fallback"] == "not_personalized"
        assert recs(client, "never-seen")["items"] == opted_out["items"]  # what everyone gets
    with make_client() as client:  # consent is durable
        assert recs(client, customer)["fallback"] == "not_personalized"
        client.put(f"/v1/customers/{customer}/consent", headers=PRIVACY,
                   json={"personalization": True})
        assert recs(client, customer)["items"] == personal["items"]


def test_bad_consent_bodies_are_422(client: TestClient) -> None:
    for body in ({}, {"personalization": "perhaps"}, {"personalization": True, "x": 1}):
        response = client.put("/v1/customers/c1/consent", json=body, headers=PRIVACY)
        assert response.status_code == 422, body


def test_a_new_consent_after_an_erasure_starts_a_new_history(
        make_client: MakeClient, als_bundle: Path, tmp_path: Path) -> None:
    with make_client() as client:
        customer = next(c for c in known_customers(als_bundle, 50) if client.get(
            f"/v1/customers/{c}/coupons", headers=HEADERS).json()["coupons"])
        before = recs(client, customer)
        assert before["personalized"] is True
        assert client.delete(f"/v1/customers/{customer}", headers=PRIVACY).status_code == 200
        client.put(f"/v1/customers/{customer}/consent", headers=PRIVACY,
                   json={"personalization": True})
        # Consent alone brings nothing back: the bundle's history predates the erasure, and
        # so does its profile (stage, segment) that targeted coupons read.
        assert recs(client, customer)["fallback"] == "cold_start"
        assert client.get(f"/v1/customers/{customer}/coupons",
                          headers=HEADERS).json()["coupons"] == []
        buy(client, customer, product_ids(als_bundle)[60:62], "again")
        after = recs(client, customer)
        assert after["personalized"] is True and after["items"] != before["items"]
    with make_client() as client:  # the same after a restart (the journal replayed)
        assert recs(client, customer)["items"] == after["items"]
    assert [e.event_id for e in store_of(tmp_path).events(customer)] == ["again-0", "again-1"]
