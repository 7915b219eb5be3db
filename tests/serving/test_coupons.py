"""GET /v1/customers/{id}/coupons and include_coupons (coupon choice is Engine.coupons)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.serving.conftest import HEADERS, PRIVACY, MakeClient, known_customers


def test_coupons_for_a_known_customer(client: TestClient, als_bundle: Path) -> None:
    customer = known_customers(als_bundle)[0]
    response = client.get(f"/v1/customers/{customer}/coupons", params={"n": 2},
                          headers=HEADERS)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["variant"] == "champion" and body["model_version"] and body["request_id"]
    assert len(body["coupons"]) <= 2
    for coupon in body["coupons"]:
        assert isinstance(coupon["coupon_id"], str) and coupon["reason"]
    embedded = client.get(f"/v1/customers/{customer}/recommendations",
                          params={"include_coupons": True, "n": 2}, headers=HEADERS).json()
    assert embedded["coupons"] is not None


def test_opted_out_customer_gets_no_targeted_coupons(make_client: MakeClient,
                                                     als_bundle: Path) -> None:
    customer = known_customers(als_bundle)[1]
    with make_client() as client:
        client.put(f"/v1/customers/{customer}/consent", json={"personalization": False},
                   headers=PRIVACY)
        body = client.get(f"/v1/customers/{customer}/coupons", headers=HEADERS).json()
        anonymous = client.get("/v1/customers/never-seen/coupons", headers=HEADERS).json()
        # Without consent nothing is targeted, not even the new customer's welcome offer
        # (the shipped catalog has only targeted coupons).
        assert "welcome-10" in [c["coupon_id"] for c in anonymous["coupons"]]
        assert body["coupons"] == []


def test_coupons_n_is_bounded(client: TestClient) -> None:
    response = client.get("/v1/customers/c001/coupons", params={"n": 1000}, headers=HEADERS)
    assert response.status_code == 422
