"""/health, /ready, /metrics, /admin/reload (atomic swap, failures), A/B routing, start-up."""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from recsys.bundle import read_manifest
from serving.ab import bucket, variant_of
from tests.serving.conftest import ADMIN, HEADERS, MakeClient, known_customers


def version_of(bundle: Path) -> str:
    return str(read_manifest(bundle)["bundle_id"])


def test_health_ready_and_metrics(client: TestClient, als_bundle: Path) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    body = ready.json()
    assert body["ready"] is True and body["reload"] == "ok"
    (model,) = body["models"]
    assert model["model_version"] == version_of(als_bundle) and model["index"] == "flat"
    assert model["index_recall"] == pytest.approx(1.0)
    client.get("/v1/customers/somebody-new/recommendations", headers=HEADERS)
    text = client.get("/metrics").text
    assert 'recsys_request_duration_seconds_bucket{le="0.005",method="GET",' \
           'route="/v1/customers/{customer_id}/recommendations",variant="champion"}' in text
    assert 'recsys_fallbacks_total{reason="cold_start",variant="champion"}' in text
    assert f'recsys_model_info{{variant="champion",version="{version_of(als_bundle)}"}} 1.0' \
        in text
    assert "somebody-new" not in text


def test_reload_under_concurrent_requests_fails_none(make_client: MakeClient, bundle_copy: Path,
                                                     hybrid_bundle: Path) -> None:
    customers = [*known_customers(bundle_copy, 20), "cold-1", "cold-2"]
    old, new = version_of(bundle_copy), version_of(hybrid_bundle)
    statuses: Counter[int] = Counter()
    versions: Counter[str] = Counter()
    stop = threading.Event()
    with make_client(bundle=bundle_copy) as client:

        def hammer(worker: int) -> None:
            i = worker
            while not stop.is_set():
                r = client.get(f"/v1/customers/{customers[i % len(customers)]}/"
                               "recommendations", headers=HEADERS)
                statuses[r.status_code] += 1
                if r.status_code == 200:
                    versions[r.json()["model_version"]] += 1
                i += 3

        threads = [threading.Thread(target=hammer, args=(w,)) for w in range(3)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        shutil.rmtree(bundle_copy)
        shutil.copytree(hybrid_bundle, bundle_copy)
        assert client.post("/admin/reload", headers=ADMIN).status_code == 202
        deadline = time.monotonic() + 30
        while client.get("/ready").json()["models"][0]["model_version"] != new:
            assert time.monotonic() < deadline, "reload did not finish"
            time.sleep(0.05)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
    assert set(statuses) == {200}, statuses
    assert versions[old] > 0 and versions[new] > 0


def test_reload_reaches_every_worker(make_client: MakeClient, bundle_copy: Path,
                                     hybrid_bundle: Path) -> None:
    new = version_of(hybrid_bundle)
    with make_client(bundle=bundle_copy) as first, make_client(bundle=bundle_copy) as second:
        shutil.rmtree(bundle_copy)
        shutil.copytree(hybrid_bundle, bundle_copy)
        reloaded = first.post("/admin/reload", params={"wait": True}, headers=ADMIN)
        assert reloaded.json()["models"][0]["model_version"] == new
        deadline = time.monotonic() + 20
        while second.get("/ready").json()["models"][0]["model_version"] != new:
            assert time.monotonic() < deadline, "the second worker did not reload"
            time.sleep(0.05)


def test_a_worker_does_not_take_its_own_reload_request_for_another_workers(
        make_client: MakeClient, bundle_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal poller reads the reload marker just as this worker's POST /admin/reload
    writes a new token: no extra reload (it used to run one, so ``/ready`` said "loading"
    after the request's own reload had answered)."""
    with make_client(bundle=bundle_copy) as client:
        runtime = client.app.state.runtime
        reloads: list[bool] = []
        monkeypatch.setattr(runtime, "reload", lambda broadcast=False: reloads.append(True))
        real_read, once = runtime._read_marker, threading.Lock()
        writer = threading.Thread(target=runtime._request_reload)

        def read_while_writing() -> str | None:
            value = real_read()
            if once.acquire(blocking=False):  # the first read, by the poller or by us
                writer.start()  # the token write happens between the read and the compare
                writer.join(0.3)
            return value

        monkeypatch.setattr(runtime, "_read_marker", read_while_writing)
        if runtime._asked_to_reload():
            runtime.reload()
        writer.join(5)
        time.sleep(0.3)  # several poller rounds
        assert once.locked() and not writer.is_alive()
        assert runtime._read_marker() == runtime._reload_token
        assert reloads == []


def test_reload_requested_during_a_load_runs_after_it(make_client: MakeClient,
                                                       bundle_copy: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A reload asked for while one loads is queued, not dropped (the running load may have
    read the old bundle); requests beyond the one queued share it."""
    with make_client(bundle=bundle_copy) as client:
        runtime = client.app.state.runtime
        release, loads = threading.Event(), []
        real_load = runtime._load

        def slow_load():  # type: ignore[no-untyped-def]
            loads.append(time.monotonic())
            release.wait(10)
            return real_load()

        monkeypatch.setattr(runtime, "_load", slow_load)
        first = client.post("/admin/reload", headers=ADMIN).json()
        deadline = time.monotonic() + 10
        while not loads:
            assert time.monotonic() < deadline, "the first load did not start"
            time.sleep(0.01)
        second = client.post("/admin/reload", headers=ADMIN).json()
        third = client.post("/admin/reload", headers=ADMIN).json()
        assert (first["started"], second["started"], third["started"]) == (True, True, False)
        release.set()
        waited = client.post("/admin/reload", params={"wait": True}, headers=ADMIN).json()
        assert waited["reload"] == "ok"
        deadline = time.monotonic() + 10
        while len(loads) < 3:  # the first, the queued one and the waiting request's own
            assert time.monotonic() < deadline, f"{len(loads)} loads ran, not 3"
            time.sleep(0.01)
        time.sleep(0.3)
        assert len(loads) == 3


def test_failed_reload_keeps_the_old_model_and_reports_it(make_client: MakeClient,
                                                          bundle_copy: Path) -> None:
    version = version_of(bundle_copy)
    with make_client(bundle=bundle_copy) as client:
        with (bundle_copy / "model.npz").open("r+b") as fh:
            fh.truncate(100)
        response = client.post("/admin/reload", params={"wait": True}, headers=ADMIN)
        assert response.status_code == 200
        assert response.json()["reload"] == "failed"
        assert "model.npz is corrupt or truncated" in response.json()["reload_error"]
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json()["reload"] == "failed"
        assert ready.json()["models"][0]["model_version"] == version
        served = client.get("/v1/popular", headers=HEADERS)
        assert served.status_code == 200 and served.json()["model_version"] == version
        metrics = client.get("/metrics").text
        assert "recsys_last_reload_failed 1.0" in metrics
        assert 'recsys_reloads_total{outcome="failed"} 1.0' in metrics


def test_start_without_a_usable_bundle_stays_unready_then_recovers(
        make_client: MakeClient, bundle_copy: Path, als_bundle: Path) -> None:
    shutil.rmtree(bundle_copy)
    with make_client(bundle=bundle_copy) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json()["ready"] is False
        assert "manifest.json is missing" in ready.json()["problems"]["model"]
        down = client.get("/v1/popular", headers=HEADERS)
        assert down.status_code == 503 and "no model loaded" in down.json()["detail"]
        shutil.copytree(als_bundle, bundle_copy)
        client.post("/admin/reload", params={"wait": True}, headers=ADMIN)
        assert client.get("/ready").status_code == 200
        assert client.get("/v1/popular", headers=HEADERS).status_code == 200


def test_unwritable_event_store_leaves_the_server_unready(make_client: MakeClient,
                                                          tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    with make_client(events_url=f"sqlite:///{blocker / 'events.db'}") as client:
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert "cannot open the event store" in ready.json()["problems"]["events"]
        response = client.post("/v1/events", headers=HEADERS, json={"events": [
            {"event_id": "e", "customer_id": "c", "event_type": "view", "product_id": "p"}]})
        assert response.status_code == 503
        assert client.get("/v1/popular", headers=HEADERS).status_code == 200


def test_ab_routing_is_stable_and_attributed(make_client: MakeClient,
                                             hybrid_bundle: Path, als_bundle: Path) -> None:
    customers = [f"ab-{i}" for i in range(60)]
    with make_client(challenger_bundle_path=hybrid_bundle, challenger_share=0.5) as client:
        seen = {}
        for customer in customers:
            body = client.get(f"/v1/customers/{customer}/recommendations",
                              headers=HEADERS).json()
            seen[customer] = (body["variant"], body["model_version"])
            assert body["variant"] == variant_of(customer, 0.5, "loyalty-recsys")
        assert {v for v, _ in seen.values()} == {"champion", "challenger"}
        assert dict(seen.values()) == {"champion": version_of(als_bundle),
                                                    "challenger": version_of(hybrid_bundle)}
        again = client.get(f"/v1/customers/{customers[0]}/recommendations", headers=HEADERS)
        assert again.json()["variant"] == seen[customers[0]][0]
        metrics = client.get("/metrics").text
        assert 'variant="challenger"' in metrics and 'recsys_model_info{variant="challenger"' \
            in metrics
        assert len(client.get("/ready").json()["models"]) == 2


def test_broken_challenger_at_start_up_leaves_champion_only_traffic(
        make_client: MakeClient, tmp_path: Path) -> None:
    with make_client(challenger_bundle_path=tmp_path / "missing", challenger_share=0.5) as client:
        ready = client.get("/ready").json()
        assert ready["ready"] is True and len(ready["models"]) == 1
        assert "manifest.json is missing" in ready["problems"]["challenger"]
        variants = {client.get(f"/v1/customers/x{i}/recommendations", headers=HEADERS).json()[
            "variant"] for i in range(20)}
        assert variants == {"champion"}


def test_bucket_is_uniform_and_salted() -> None:
    values = [bucket(f"c{i}", "s") for i in range(4000)]
    assert 0.45 < sum(v < 0.5 for v in values) / len(values) < 0.55
    assert 0.08 < sum(v < 0.1 for v in values) / len(values) < 0.12
    assert bucket("c1", "s") == bucket("c1", "s") != bucket("c1", "t")
    assert variant_of(None, 1.0, "s") == "champion" and variant_of("c1", 0.0, "s") == "champion"
    assert variant_of("c1", 1.0, "s") == "challenger"


def test_docs_pages_use_the_apps_own_assets_and_have_route_labels(client: TestClient) -> None:
    import re

    for page in ("/docs", "/redoc"):
        html = client.get(page).text
        assets = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert assets and all(a.startswith("/docs-assets/") for a in assets), assets
        assert "cdn" not in html.lower() and "https://" not in html
        for asset in assets:
            response = client.get(asset)
            assert response.status_code == 200 and len(response.content) > 100, asset
    assert client.get("/openapi.json").status_code == 200
    metrics = client.get("/metrics").text
    for label in ("/docs", "/redoc", "/openapi.json", "/docs-assets/{path}"):
        assert f'route="{label}"' in metrics, label
    assert 'route="unmatched",status="200"' not in metrics
