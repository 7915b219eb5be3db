"""The API's event, consent and erasure routes on both store backends (SQLite and a real
PostgreSQL server): ids a database cannot hold (a NUL character, a lone surrogate) are a
422 on both, never a 500, and the store keeps nothing of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.serving.conftest import HEADERS, PRIVACY, known_customers, product_ids


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request: pytest.FixtureRequest, make_client: Any) -> Iterator[TestClient]:
    extra = {} if request.param == "sqlite" else {
        "events_url": request.getfixturevalue("postgres_url"), "privacy_key": "k"}
    with make_client(**extra) as client:
        yield client


HOSTILE = ["a\x00b", "\ud800x"]


@pytest.mark.parametrize("bad", HOSTILE)
def test_ids_a_database_cannot_hold_are_422(api: TestClient, als_bundle: Path,
                                            bad: str) -> None:
    product = product_ids(als_bundle)[0]
    good = {"event_id": "e1", "customer_id": "c1", "event_type": "view", "product_id": product}
    for field in ("event_id", "customer_id", "product_id"):
        body = json.dumps({"events": [good | {field: bad}]})  # ASCII: "\\ud800" escaped
        answer = api.post("/v1/events", content=body,
                          headers=HEADERS | {"Content-Type": "application/json"})
        assert answer.status_code == 422, (field, answer.status_code, answer.text)
    if "\x00" in bad:  # in a path (a lone surrogate there decodes to U+FFFD, a valid id)
        for method, url, kw in (("DELETE", "/v1/customers/a%00b", {}),
                                ("PUT", "/v1/customers/a%00b/consent",
                                 {"json": {"personalization": True}})):
            answer = api.request(method, url, headers=PRIVACY, **kw)
            assert answer.status_code == 422, (method, answer.status_code, answer.text)
    assert api.post("/v1/events", json={"events": [good]}, headers=HEADERS
                    ).json()["stored"] == 1  # the store still works


def test_events_consent_and_erasure_on_both_backends(api: TestClient, als_bundle: Path
                                                     ) -> None:
    who = known_customers(als_bundle, 1)[0]
    product = product_ids(als_bundle)[0]
    event = {"event_id": "buy-1", "customer_id": who, "event_type": "purchase",
             "product_id": product}
    assert api.post("/v1/events", json={"events": [event]}, headers=HEADERS
                    ).json()["stored"] == 1
    assert api.post("/v1/events", json={"events": [event]}, headers=HEADERS
                    ).json()["duplicates"] == ["buy-1"]
    assert api.put(f"/v1/customers/{who}/consent", json={"personalization": True},
                   headers=PRIVACY).status_code == 200
    gone = api.delete(f"/v1/customers/{who}", headers=PRIVACY)
    assert gone.status_code == 200 and gone.json()["records_deleted"] == 2
    again = api.post("/v1/events", json={"events": [event | {"event_id": "buy-2"}]},
                     headers=HEADERS).json()
    assert again["stored"] == 0 and [r["event_id"] for r in again["refused"]] == ["buy-2"]
    answer = api.get(f"/v1/customers/{who}/recommendations", headers=HEADERS)
    assert answer.status_code == 200 and not answer.json()["personalized"]
