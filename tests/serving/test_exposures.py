"""The exposure log from the API: what each answer showed is stored off the request path,
held-out coupons are logged as such, and erasure removes a customer's exposures."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from recsys.experiments.assignment import in_holdout
from recsys.exposures import ExposureLog
from tests.serving.conftest import HEADERS, PRIVACY, MakeClient, known_customers, product_ids


def log_of(tmp_path: Path) -> ExposureLog:
    return ExposureLog(sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'events.db'}"))


def flush(client: TestClient) -> None:
    client.app.state.runtime.exposures.flush()  # type: ignore[attr-defined]


def test_answers_are_logged_with_what_they_showed(make_client: MakeClient, als_bundle: Path,
                                                  tmp_path: Path) -> None:
    customer = known_customers(als_bundle)[0]
    basket = product_ids(als_bundle)[:2]
    with make_client() as client:
        recs = client.get(f"/v1/customers/{customer}/recommendations?n=5&include_coupons=true",
                          headers=HEADERS).json()
        coupons = client.get(f"/v1/customers/{customer}/coupons", headers=HEADERS).json()
        cart = client.post("/v1/cart/recommendations?n=3", headers=HEADERS,
                           json={"product_ids": basket, "customer_id": customer}).json()
        client.post("/v1/cart/recommendations?n=3", headers=HEADERS,  # anonymous: not logged
                    json={"product_ids": basket})
        client.get("/v1/popular", headers=HEADERS)  # no customer: not logged
    rows = log_of(tmp_path).frame()  # the writer flushed what was queued at shutdown
    assert rows["mode"].tolist() == ["recommendations", "coupons", "cart"]
    assert set(rows["customer_id"]) == {customer} and set(rows["variant"]) == {"champion"}
    assert rows["request_id"].tolist() == [recs["request_id"], coupons["request_id"],
                                           cart["request_id"]]
    assert rows["model_version"].tolist() == [recs["model_version"]] * 3
    assert rows["product_ids"][0] == [i["product_id"] for i in recs["items"]]
    assert rows["coupon_ids"][0] == [c["coupon_id"] for c in recs["coupons"]]
    assert rows["coupon_ids"][1] == [c["coupon_id"] for c in coupons["coupons"]]
    assert rows["product_ids"][2] == [i["product_id"] for i in cart["items"]]
    assert rows["product_ids"][1] == [] and rows["coupon_ids"][2] == []


def test_held_out_coupons_are_withheld_and_logged(make_client: MakeClient, als_bundle: Path,
                                                  tmp_path: Path) -> None:
    # configs/coupons.yaml holds 10 % of the customers eligible for winback-5off-30 out.
    customers = known_customers(als_bundle, k=300)
    with make_client() as client:
        answers = {c: client.get(f"/v1/customers/{c}/coupons?n=3", headers=HEADERS).json()
                   for c in customers}
    rows = log_of(tmp_path).frame()
    held = rows[rows["held_out"].map(len) > 0]
    assert len(held) > 0
    for row in held.itertuples():
        for coupon in row.held_out:
            assert in_holdout(row.customer_id, coupon, 0.1)
            assert coupon not in [c["coupon_id"] for c in answers[row.customer_id]["coupons"]]
    given = rows[rows["coupon_ids"].map(lambda ids: "winback-5off-30" in ids)]
    assert len(given) > len(held)  # most eligible customers get it
    assert not any(in_holdout(c, "winback-5off-30", 0.1) for c in given["customer_id"])


def test_erasure_removes_the_customers_exposures(make_client: MakeClient, als_bundle: Path,
                                                 tmp_path: Path) -> None:
    gone, kept = known_customers(als_bundle)[:2]
    with make_client() as client:
        for customer in (gone, kept, gone):
            client.get(f"/v1/customers/{customer}/recommendations", headers=HEADERS)
        flush(client)
        log = log_of(tmp_path)
        assert (log.count(gone), log.count(kept)) == (2, 1)
        client.get(f"/v1/customers/{gone}/recommendations", headers=HEADERS)  # still queued
        assert client.delete(f"/v1/customers/{gone}", headers=PRIVACY).status_code == 200
        assert log.count(gone) == 0
    assert (log.count(gone), log.count(kept)) == (0, 1)  # nothing queued came back at exit


def test_opted_out_or_erased_customers_are_not_logged(make_client: MakeClient,
                                                     als_bundle: Path, tmp_path: Path) -> None:
    opted_out, erased, kept = known_customers(als_bundle)[:3]
    with make_client() as client:
        assert client.put(f"/v1/customers/{opted_out}/consent", headers=PRIVACY,
                          json={"personalization": False}).status_code == 200
        assert client.delete(f"/v1/customers/{erased}", headers=PRIVACY).status_code == 200
        for customer in (opted_out, erased, kept):
            assert client.get(f"/v1/customers/{customer}/recommendations",
                              headers=HEADERS).status_code == 200
    assert log_of(tmp_path).frame()["customer_id"].tolist() == [kept]


def test_logging_can_be_turned_off(make_client: MakeClient, als_bundle: Path,
                                   tmp_path: Path) -> None:
    customer = known_customers(als_bundle)[0]
    with make_client(log_exposures=False) as client:
        assert client.get(f"/v1/customers/{customer}/recommendations",
                          headers=HEADERS).status_code == 200
        assert client.app.state.runtime.exposures is None  # type: ignore[attr-defined]
    assert log_of(tmp_path).count() == 0
