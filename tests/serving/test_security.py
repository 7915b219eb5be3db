"""API keys on every protected route (generated from the route table), no ids in INFO logs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from serving.main import create_app
from serving.security import key_matches
from serving.settings import Settings
from tests.serving.conftest import (
    ADMIN,
    CLIENT_KEY,
    HEADERS,
    PRIVACY,
    MakeClient,
    settings_for,
)

PUBLIC = {"/health", "/ready", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect",
          "/redoc"}


def protected_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, concrete path) of the app outside the public operations routes."""
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    routes = [(method.upper(), re.sub(r"\{[^}]+\}", "x1", path))
              for path, ops in paths.items() for method in ops if path not in PUBLIC]
    assert len(routes) >= 9  # the table is really read (7 resources, 9 operations today)
    return routes


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    return client.request(method, path, headers=headers).status_code


def test_every_protected_route_needs_a_key(client: TestClient) -> None:
    for method, path in protected_routes(client):
        assert call(client, method, path, {}) == 401, (method, path)
        assert call(client, method, path, {"X-API-Key": "wrong"}) == 403, (method, path)


SCOPE_OF = {"/admin": "admin", "/v1/customers/x1": "privacy",
            "/v1/customers/x1/consent": "privacy", "/v1/events": "events"}


def test_each_key_opens_only_its_scopes(client: TestClient) -> None:
    keys = {"storefront": HEADERS, "privacy": PRIVACY, "admin": ADMIN}
    opens = {"storefront": {"read", "events"}, "privacy": {"privacy"}, "admin": {"admin"}}
    seen = set()
    for method, path in protected_routes(client):
        scope = next((s for p, s in SCOPE_OF.items() if path == p or
                      (p == "/admin" and path.startswith(p))), "read")
        seen.add(scope)
        for name, headers in keys.items():
            status = call(client, method, path, headers)
            if scope in opens[name]:
                assert status not in (401, 403), (method, path, name)
            else:
                assert status == 403, (method, path, name)
    assert seen == {"read", "events", "privacy", "admin"}


def test_auth_comes_before_the_body_is_read(client: TestClient) -> None:
    for path in ("/v1/events", "/v1/cart/recommendations", "/v1/batch/recommendations"):
        for body in (b"{not json", b'{"events": [NaN]}', b"[]"):
            response = client.post(path, content=body,
                                   headers={"Content-Type": "application/json"})
            assert response.status_code == 401, (path, body, response.text)
            assert client.post(path, content=body, headers={
                "Content-Type": "application/json", "X-API-Key": "wrong"}).status_code == 403
        assert client.post(path, content=b"{not json", headers={
            "Content-Type": "application/json", **HEADERS}).status_code == 422
    response = client.put("/v1/customers/c1/consent", content=b"{not json",
                          headers={"Content-Type": "application/json", **HEADERS})
    assert response.status_code == 403  # a storefront key cannot change consent


def test_a_read_only_storefront_key_cannot_post_events(make_client: MakeClient) -> None:
    with make_client(api_key_scopes=frozenset({"read"})) as client:
        assert client.get("/v1/popular", headers=HEADERS).status_code == 200
        response = client.post("/v1/events", headers=HEADERS, json={"events": []})
        assert response.status_code == 403 and "'events'" in response.json()["detail"]


def test_public_operations_routes_need_no_key(client: TestClient) -> None:
    for path in ("/health", "/ready", "/metrics"):
        assert client.get(path).status_code == 200


def test_missing_key_says_where_to_put_it(client: TestClient) -> None:
    response = client.get("/v1/popular")
    assert response.status_code == 401
    assert "X-API-Key" in response.json()["detail"]
    assert response.headers["www-authenticate"] == "ApiKey"


def test_non_ascii_key_is_refused_not_an_error(client: TestClient) -> None:
    response = client.get("/v1/popular", headers={"X-API-Key": "cl\xe9".encode("latin-1")})
    assert response.status_code == 403


def test_keys_from_a_file_allow_rotation(make_client: MakeClient, tmp_path: Path) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("# rotated monthly\nold-key\nnew-key\n")
    with make_client(api_keys=None, api_keys_file=keys) as client:
        for key in ("old-key", "new-key"):
            assert client.get("/v1/popular", headers={"X-API-Key": key}).status_code == 200
        assert client.get("/v1/popular", headers=HEADERS).status_code == 403


def test_admin_routes_are_closed_without_an_admin_key(make_client: MakeClient) -> None:
    with make_client(admin_key=None) as client:
        response = client.post("/admin/reload", headers=ADMIN)
        assert response.status_code == 403 and "RECSYS_ADMIN_KEY" in response.json()["detail"]


def test_server_refuses_to_start_without_client_keys(als_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no API key configured"):
        settings_for(als_bundle, tmp_path, api_keys=None)
    open_settings = settings_for(als_bundle, tmp_path, api_keys=None, insecure_no_auth=True)
    with TestClient(create_app(open_settings)) as client:
        assert client.get("/v1/popular").status_code == 200


def test_unreadable_key_file_is_a_clear_error(als_bundle: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="cannot read key file"):
        settings_for(als_bundle, tmp_path, api_keys=None, api_keys_file=tmp_path / "none")


def test_key_matches_checks_every_key() -> None:
    keys = (b"alpha", b"beta")
    assert key_matches("beta", keys) and key_matches("alpha", keys)
    assert not key_matches("gamma", keys) and not key_matches("alph", keys)
    assert not key_matches("x", ())


def test_info_logs_carry_no_customer_ids_or_keys(make_client: MakeClient,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    secret_customer = "customer-7f3a9"
    with caplog.at_level(logging.INFO), make_client() as client:
        client.get(f"/v1/customers/{secret_customer}/recommendations", headers=HEADERS)
        client.post("/v1/events", headers=HEADERS, json={"events": [
            {"event_id": "log-1", "customer_id": secret_customer, "event_type": "view",
             "product_id": "p001"}]})
        client.put(f"/v1/customers/{secret_customer}/consent", headers=PRIVACY,
                   json={"personalization": False})
        client.delete(f"/v1/customers/{secret_customer}", headers=PRIVACY)
        client.get("/v1/popular", headers={"X-API-Key": "leaked-wrong-key"})
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO
                and not r.name.startswith("httpx")]  # the test client's own request log
    assert messages  # start-up lines are there
    for text in messages:
        assert secret_customer not in text and CLIENT_KEY not in text
        assert "leaked-wrong-key" not in text


def test_settings_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECSYS_API_KEYS", "k1, k2")
    monkeypatch.setenv("RECSYS_CHALLENGER_SHARE", "0.25")
    settings = Settings()
    assert settings.client_keys() == (b"k1", b"k2") and settings.challenger_share == 0.25
    assert settings.challenger_source() == "models:/loyalty-recsys@challenger"
    monkeypatch.setenv("RECSYS_CHALLENGER_SHARE", "2")
    with pytest.raises(ValidationError, match="challenger_share"):
        Settings()


def test_the_demo_writes_a_storefront_key_a_privacy_key_and_an_admin_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from training.commands.serve import demo_keys

    # demo_keys sets the *_FILE variables in os.environ: recorded here so that they are
    # removed again after the test (later tests in this process would see demo keys)
    for name in {*os.environ, "RECSYS_ADMIN_KEY_FILE", "RECSYS_PRIVACY_KEYS_FILE",
                 "RECSYS_API_KEYS_FILE"}:
        if name.startswith("RECSYS_"):
            monkeypatch.setenv(name, "")  # an unset variable is only restored once set
            monkeypatch.delenv(name)
    storefront = demo_keys(tmp_path)
    keys = Settings().keys_by_scope()
    privacy = (tmp_path / "demo-privacy-key").read_text().strip().encode()
    assert storefront is not None and keys["read"] == keys["events"] == (storefront.encode(),)
    assert keys["privacy"] == (privacy,) and privacy != storefront.encode()
    assert keys["admin"] == ((tmp_path / "demo-admin-key").read_text().strip().encode(),)
    assert all((tmp_path / f).stat().st_mode & 0o077 == 0
               for f in ("demo-api-key", "demo-privacy-key", "demo-admin-key"))
