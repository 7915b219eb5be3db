"""POST /v1/batch/recommendations: the single endpoint's answers for many customers at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import HEADERS, PRIVACY, MakeClient, known_customers, product_ids

URL = "/v1/batch/recommendations"


def batch(client: TestClient, customer_ids: list[str], **options: Any) -> list[dict]:
    response = client.post(URL, json={"customer_ids": customer_ids, **options},
                           headers=HEADERS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert all(r["request_id"] == body["request_id"] for r in body["results"])
    return list(body["results"])


def single(client: TestClient, customer_id: str, **options: Any) -> dict:
    response = client.get(f"/v1/customers/{customer_id}/recommendations", params=options,
                          headers=HEADERS)
    assert response.status_code == 200, response.text
    return dict(response.json())


def assert_same_answer(got: dict, expected: dict) -> None:
    """Equal but for the request id; scores to float32 rounding (a batch is one matrix
    product, a single answer a row of one)."""
    strip = {"request_id", "items"}
    assert {k: v for k, v in got.items() if k not in strip} == \
        {k: v for k, v in expected.items() if k not in strip}
    assert [{k: v for k, v in i.items() if k != "score"} for i in got["items"]] == \
        [{k: v for k, v in i.items() if k != "score"} for i in expected["items"]]
    assert [i["score"] for i in got["items"]] == \
        pytest.approx([i["score"] for i in expected["items"]], rel=1e-5, abs=1e-6)


def test_batch_answers_equal_the_single_endpoint(make_client: MakeClient,
                                                 als_bundle: Path) -> None:
    known = known_customers(als_bundle, 12)
    with make_client() as client:
        client.put(f"/v1/customers/{known[0]}/consent", json={"personalization": False},
                   headers=PRIVACY)
        client.post("/v1/events", headers=HEADERS, json={"events": [
            {"event_id": f"b-{i}", "customer_id": "fresh-shopper", "event_type": "purchase",
             "product_id": p} for i, p in enumerate(product_ids(als_bundle)[7:10])]})
        customers = [*known, "never-seen", "fresh-shopper", known[3]]  # a repeat too
        for options in ({}, {"n": 4, "mode": "buy_again"},
                        {"n": 6, "max_price": 20.0, "exclude_purchased": False},
                        {"n": 3, "include_coupons": True}):
            results = batch(client, customers, **options)
            assert [r["customer_id"] for r in results] == customers
            if options.get("include_coupons"):
                assert any(r["coupons"] for r in results)
            for customer, got in zip(customers, results, strict=True):
                assert_same_answer(got, single(client, customer, **options))
        fallbacks = {r["customer_id"]: r["fallback"] for r in batch(client, customers)}
        assert fallbacks[known[0]] == "not_personalized"
        assert fallbacks["never-seen"] == "cold_start" and fallbacks["fresh-shopper"] is None


def test_batch_routes_each_customer_to_its_ab_variant(make_client: MakeClient,
                                                      hybrid_bundle: Path) -> None:
    customers = [f"ab-batch-{i}" for i in range(30)]
    with make_client(challenger_bundle_path=hybrid_bundle, challenger_share=0.5) as client:
        results = batch(client, customers, n=5)
        assert {r["variant"] for r in results} == {"champion", "challenger"}
        for customer, got in zip(customers, results, strict=True):
            assert_same_answer(got, single(client, customer, n=5))
        assert 'route="/v1/batch/recommendations",variant="mixed"' in \
            client.get("/metrics").text


def test_batch_over_the_limit_is_413_and_at_the_limit_is_answered(
        make_client: MakeClient) -> None:
    with make_client(max_batch_customers=3) as client:
        assert len(batch(client, ["a", "b", "c"])) == 3
        response = client.post(URL, json={"customer_ids": ["a", "b", "c", "d"]},
                               headers=HEADERS)
        assert response.status_code == 413
        assert "at most 3 customers; got 4" in response.json()["detail"]


@pytest.mark.parametrize(("body", "fragment"), [
    ({"customer_ids": []}, "at least 1 item"),
    ({}, "Field required"),
    ({"customer_ids": "c001"}, "valid list"),
    ({"customer_ids": [7]}, "valid string"),
    ({"customer_ids": ["x" * 200]}, "at most 128 characters"),
    ({"customer_ids": ["c001"], "n": 0}, "greater than or equal to 1"),
    ({"customer_ids": ["c001"], "n": 101}, "less than or equal to 100"),
    ({"customer_ids": ["c001"], "mode": "everything"}, "discover"),
    ({"customer_ids": ["c001"], "min_price": 5, "max_price": 1}, "above max_price"),
    ({"customer_ids": ["c001"], "min_price": "cheap"}, "valid number"),
    ({"customer_ids": ["c001"], "audience": "all"}, "Extra inputs"),
    ([], "valid dictionary"),
])
def test_bad_batch_bodies_are_422_with_a_reason(client: TestClient, body: object,
                                                fragment: str) -> None:
    response = client.post(URL, json=body, headers=HEADERS)
    assert response.status_code == 422
    assert fragment in response.text


def test_batch_bad_json_is_422(client: TestClient) -> None:
    response = client.post(URL, content=b'{"customer_ids": [',
                           headers={**HEADERS, "Content-Type": "application/json"})
    assert response.status_code == 422 and "JSON decode error" in response.text
