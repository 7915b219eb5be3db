"""The recommendations route's fast path (``recommend_fast``, taken through ``AuthRoute``)
answers exactly as FastAPI's own handler: same status, headers that matter and body bytes,
for valid requests and for every kind of bad one (which it leaves to FastAPI)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.responses import Response

from serving.main import create_app
from serving.routers import recommendations
from tests.serving.conftest import HEADERS, known_customers, settings_for

HEADERS_KEPT = ("content-type", "content-length", "x-request-id", "retry-after",
                "www-authenticate")
VALID = ["", "n=5", "n=100", "n=%2B7", "category=A", "min_price=1.5&max_price=40",
         "exclude_purchased=true", "exclude_purchased=0", "exclude_purchased=yes",
         "mode=buy_again", "mode=discover&n=3", "include_coupons=true",
         "n=4&category=A&min_price=0&exclude_purchased=false&mode=mixed"]
SLOW_BUT_VALID = ["n=5&n=6", "n=0&n=5", "n=5&utm_source=mail"]  # to FastAPI (the last n counts)
INVALID = ["n=0", "n=101", "n=ten", "n=", "n=1.5", "mode=everything", "min_price=-1",
           "min_price=nan", "min_price=cheap", "min_price=5&max_price=1", "category=",
           "exclude_purchased=maybe", f"category={'x' * 201}"]


@contextmanager
def client_for(bundle: Path, data_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(bundle, data_dir)),
                    raise_server_exceptions=False) as client:
        yield client


def answer(client: TestClient, path: str, headers: dict[str, str]
           ) -> tuple[int, dict[str, str], bytes]:
    response = client.get(path, headers={**headers, "X-Request-ID": "same-id"})
    return (response.status_code,
            {k: response.headers[k] for k in HEADERS_KEPT if k in response.headers},
            response.content)


def test_fast_path_answers_as_fastapi_does(als_bundle: Path, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    customers = known_customers(als_bundle, 3) + ["never-seen", "x" * 128]
    cases = [(f"/v1/customers/{c}/recommendations?{q}", HEADERS)
             for c in customers for q in VALID + SLOW_BUT_VALID + INVALID]
    cases += [(f"/v1/customers/{c}/recommendations?n=3", HEADERS)
              for c in ("x" * 129, "bad%00id")]  # 422s of the path
    cases += [("/v1/customers/c001/recommendations?n=3", {}),  # 401
              ("/v1/customers/c001/recommendations?n=3", {"X-API-Key": "wrong"})]  # 403
    with monkeypatch.context() as patch:  # FastAPI's handler alone: the reference
        patch.delattr(recommendations.recommend, "fast_path")
        with client_for(als_bundle, tmp_path / "reference") as client:
            expected = [answer(client, path, headers) for path, headers in cases]
    answered_fast: list[int] = []

    def spy(request: Request, route: APIRoute) -> Response | None:
        response = recommendations.recommend_fast(request, route)
        if response is not None:
            answered_fast.append(response.status_code)
        return response

    monkeypatch.setattr(recommendations.recommend, "fast_path", spy)  # read by create_app
    with client_for(als_bundle, tmp_path / "fast") as client:
        answered_fast.clear()  # the warm-up's own requests
        for (path, headers), reference in zip(cases, expected, strict=True):
            assert answer(client, path, headers) == reference, path
    statuses = {status for status, _, _ in expected}
    assert statuses == {200, 401, 403, 422}
    assert answered_fast == [200] * (len(customers) * len(VALID))  # only the plain ones
    ok = [body for status, _, body in expected if status == 200]
    assert len(ok) == len(customers) * (len(VALID) + len(SLOW_BUT_VALID))
    assert any(b'"personalized":true' in body for body in ok)


def test_fast_path_leaves_a_server_without_model_to_fastapi(als_bundle: Path,
                                                            tmp_path: Path) -> None:
    with client_for(als_bundle, tmp_path) as client:
        client.app.state.runtime.models = None  # type: ignore[attr-defined]
        response = client.get("/v1/customers/c001/recommendations", headers=HEADERS)
    assert response.status_code == 503
    assert "no model loaded" in response.json()["detail"]
