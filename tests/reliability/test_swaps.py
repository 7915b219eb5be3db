"""Model swaps under traffic: bad bundles and an unreachable MLflow never replace the live
model, good ones replace it without a failed request.

The server (2 workers) serves ``RECSYS_BUNDLE_PATH``, a symlink the test points at bundle
after bundle before each ``POST /admin/reload``. Client threads keep sending a request mix
all along; every answer must be a 2xx and every acknowledged event must be stored once.
Run with ``-s`` to see the request counts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from recsys.bundle import read_manifest
from recsys.data.schema import RetailData
from tests.reliability.conftest import (
    ADMIN,
    CLIENT,
    REPO,
    Server,
    free_port,
    server_env,
    train_config,
)
from training.jobs.bundle import build_bundle

pytestmark = pytest.mark.slow


def ids(bundle: Path, table: str, column: str) -> list[str]:
    return pd.read_parquet(bundle / f"{table}.parquet")[column].astype(str).tolist()


def version(bundle: Path) -> str:
    return str(read_manifest(bundle)["bundle_id"])


def point(link: Path, target: Path) -> None:
    """Re-point the symlink ``link`` at ``target`` atomically."""
    tmp = link.with_name(link.name + ".new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, link)


def corrupted(bundle: Path, out: Path) -> Path:
    """A copy of ``bundle`` whose model file was cut short (a half-finished copy)."""
    shutil.copytree(bundle, out)
    with (out / "model.npz").open("r+b") as fh:
        fh.truncate(200)
    return out


def mismatched(bundle: Path, other: Path, out: Path) -> Path:
    """The model of ``bundle`` with the catalog of ``other``; its checksums are right, so
    only the check that model and catalog agree can catch it."""
    shutil.copytree(bundle, out)
    shutil.copy(other / "products.parquet", out / "products.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    data = (out / "products.parquet").read_bytes()
    manifest["files"]["products.parquet"] = {"sha256": hashlib.sha256(data).hexdigest(),
                                             "bytes": len(data)}
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


class Traffic:
    """Client threads sending a request mix (recommendations, popular, cart, coupons,
    events with unique ids) until stopped; every answer is kept."""

    def __init__(self, base: str, customers: list[str], products: list[str],
                 threads: int = 3) -> None:
        self.base, self.customers, self.products = base, customers, products
        self.statuses: Counter[tuple[str, int]] = Counter()
        self.versions: Counter[str] = Counter()
        self.acked: list[str] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(t,)) for t in range(threads)]

    def __enter__(self) -> Traffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join()

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + len(self.failures)

    def _request(self, worker: int, i: int) -> tuple[str, str, str, dict[str, Any] | None]:
        """(kind, method, path, json body) of the ``i``-th request of ``worker``."""
        customer = self.customers[(worker * 7 + i) % len(self.customers)]
        product = self.products[(worker * 5 + i) % len(self.products)]
        kind = ("recommend", "popular", "cart", "coupons", "events")[i % 5]
        if kind == "recommend":
            return kind, "GET", f"/v1/customers/{customer}/recommendations", None
        if kind == "popular":
            return kind, "GET", "/v1/popular?n=5", None
        if kind == "cart":
            return kind, "POST", "/v1/cart/recommendations", {"product_ids": [product]}
        if kind == "coupons":
            return kind, "GET", f"/v1/customers/{customer}/coupons", None
        return kind, "POST", "/v1/events", {"events": [{
            "event_id": f"swap-{worker}-{i}", "customer_id": customer,
            "event_type": "purchase", "product_id": product}]}

    def _run(self, worker: int) -> None:
        i = 0
        with httpx.Client(base_url=self.base, headers=CLIENT, timeout=30) as http:
            while not self._stop.is_set():
                kind, method, path, body = self._request(worker, i)
                i += 1
                try:
                    response = http.request(method, path, json=body)
                except httpx.TransportError as exc:
                    self.failures.append(f"{kind}: {exc!r}")
                    continue
                self.statuses[kind, response.status_code] += 1
                if not response.is_success:
                    self.failures.append(f"{kind}: {response.status_code} {response.text}")
                elif body and "events" in body:
                    self.acked.append(body["events"][0]["event_id"])
                elif "model_version" in response.json():
                    self.versions[response.json()["model_version"]] += 1


def reload(base: str) -> dict[str, Any]:
    response = httpx.post(f"{base}/admin/reload", params={"wait": True}, headers=ADMIN,
                          timeout=120)
    assert response.status_code == 200, response.text
    return dict(response.json())


def settle(base: str, state: str, model: str, timeout: float = 60) -> dict[str, Any]:
    """Poll /ready until 10 answers in a row (so both workers) show the last reload's
    ``state`` and ``model`` serving."""
    deadline, streak, body = time.monotonic() + timeout, 0, {}
    while streak < 10:
        assert time.monotonic() < deadline, f"workers did not settle: {body}"
        body = httpx.get(f"{base}/ready", timeout=10).json()
        ok = body["reload"] == state and body["models"][0]["model_version"] == model
        streak = streak + 1 if ok else 0
        time.sleep(0.05)
    return dict(body)


def metric(base: str, name: str) -> float:
    """The value of one unlabelled-or-labelled sample line ``name`` in /metrics (0 if absent)."""
    for line in httpx.get(f"{base}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture(scope="module")
def retrained(retail: RetailData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A retrain on the same retailer: same catalog, another model version."""
    out = tmp_path_factory.mktemp("bundles") / "retrained"
    build_bundle(retail, train_config(factors=12), out)
    return out


def test_bad_bundles_never_go_live_and_good_ones_swap_without_a_failure(
        bundle: Path, other_bundle: Path, retrained: Path, tmp_path: Path,
        make_server: Any) -> None:
    link = tmp_path / "live"
    link.symlink_to(bundle)
    server: Server = make_server(server_env(tmp_path / "data", link), workers=2)
    server.wait()
    base, old = server.base, version(bundle)
    old_product, new_product = ids(bundle, "products", "product_id")[0], \
        ids(other_bundle, "products", "product_id")[0]
    bad = [(corrupted(bundle, tmp_path / "corrupt"), "model.npz is corrupt or truncated"),
           (mismatched(bundle, other_bundle, tmp_path / "mismatch"),
            f"model scores {len(ids(bundle, 'products', 'product_id'))} items but products "
            f"has {len(ids(other_bundle, 'products', 'product_id'))} rows")]
    customers = ids(bundle, "customers", "customer_id")[:40] + ["cold-1", "cold-2"]
    with Traffic(base, customers, ids(bundle, "products", "product_id")) as traffic:
        time.sleep(1.0)
        before = traffic.sent
        for failed, (target, error) in enumerate(bad, start=1):
            point(link, target)
            answer = reload(base)
            assert answer["reload"] == "failed" and error in answer["reload_error"]
            ready = settle(base, "failed", old)
            assert ready["ready"] is True and error in ready["reload_error"]
            assert metric(base, "recsys_last_reload_failed") == 1.0
            assert metric(base, 'recsys_reloads_total{outcome="failed"}') >= failed
        for target in (retrained, other_bundle):
            point(link, target)
            assert reload(base)["reload"] == "ok"
            settle(base, "ok", version(target))
            assert metric(base, "recsys_last_reload_failed") == 0.0
            time.sleep(0.5)  # traffic on the new model
        during = traffic.sent - before
    assert not traffic.failures, traffic.failures[:5]
    assert {old, version(retrained), version(other_bundle)} <= set(traffic.versions)
    # The catalog changed: an old product is unknown (404 naming the version), a new one works.
    gone = httpx.get(f"{base}/v1/products/{old_product}/similar", headers=CLIENT)
    assert gone.status_code == 404 and version(other_bundle) in gone.json()["detail"]
    assert httpx.get(f"{base}/v1/products/{new_product}/similar",
                     headers=CLIENT).status_code == 200
    server.stop()
    with sqlite3.connect(tmp_path / "data" / "events.db") as db:
        stored = Counter(r[0] for r in db.execute(
            "SELECT event_id FROM recsys_events WHERE event_id LIKE 'swap-%'"))
    assert set(stored) == set(traffic.acked) and set(stored.values()) == {1}
    assert "Traceback" not in server.text()
    print(f"\nswaps: {traffic.sent} requests, {during} during 4 reloads (2 refused, 2 "
          f"swapped), 0 failed; {len(traffic.acked)} events acknowledged and stored once; "
          f"statuses {dict(traffic.statuses)}")


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real ``mlflow server`` on loopback, in its own session so it can be killed."""
    root = tmp_path / "mlflow"
    root.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RECSYS_"))}
    with (root / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port",
             str(port), "--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}",
             "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env={**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, \
                    (root / "server.log").read_text()
                time.sleep(0.3)
        yield url, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def register_champion(url: str, bundle: Path) -> str:
    """Log ``bundle`` the way `recsys train` does and make it the champion (a subprocess,
    so this test process keeps its own MLflow settings)."""
    code = ("import sys, mlflow\n"
            "from pathlib import Path\n"
            "from mlflow.tracking import MlflowClient\n"
            "from training.tracking import log_bundle_model, setup\n"
            "setup('reliability')\n"
            "with mlflow.start_run():\n"
            "    v = log_bundle_model(Path(sys.argv[1]), 'loyalty-recsys')\n"
            "MlflowClient().set_registered_model_alias('loyalty-recsys', 'champion', v)\n"
            "print(v)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RECSYS_"))}
    done = subprocess.run([sys.executable, "-c", code, str(bundle)], cwd=REPO, check=True,
                          capture_output=True, text=True, timeout=300,
                          env={**env, "MLFLOW_TRACKING_URI": url, "PYTHONPATH": str(REPO)})
    return done.stdout.strip().splitlines()[-1]


def test_unreachable_mlflow_keeps_the_loaded_model(
        mlflow_server: tuple[str, subprocess.Popen[bytes]], bundle: Path, tmp_path: Path,
        make_server: Any) -> None:
    url, mlflow_proc = mlflow_server
    registered = register_champion(url, bundle)
    server: Server = make_server(server_env(tmp_path / "data",
                                            RECSYS_MLFLOW_TRACKING_URI=url))
    assert server.wait(timeout=120).json()["models"][0]["model_version"] == registered
    os.killpg(mlflow_proc.pid, signal.SIGKILL)  # MLflow goes away
    mlflow_proc.wait(timeout=30)
    customers = ids(bundle, "customers", "customer_id")[:20]
    with Traffic(server.base, customers, ids(bundle, "products", "product_id")) as traffic:
        started = time.monotonic()
        answer = reload(server.base)
        took = time.monotonic() - started
        time.sleep(0.3)
    assert answer["reload"] == "failed" and "MLflow did not answer" in answer["reload_error"]
    assert took < 60, f"a reload against a dead MLflow hung {took:.0f}s"
    ready = httpx.get(f"{server.base}/ready").json()
    assert ready["ready"] is True and ready["models"][0]["model_version"] == registered
    assert ready["reload"] == "failed" and "MLflow did not answer" in ready["reload_error"]
    assert metric(server.base, "recsys_last_reload_failed") == 1.0
    assert not traffic.failures and traffic.versions.keys() == {registered}
    assert "Traceback" not in server.text()
    print(f"\nmlflow down: reload failed in {took:.1f}s, {traffic.sent} requests meanwhile, "
          "0 failed")
