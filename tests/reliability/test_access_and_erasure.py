"""Keys on every protected route of a live server, and erasure that reaches everything.

The protected routes are read from ``create_app(...).routes``: a route added tomorrow is
checked tomorrow, unless it is added to ``PUBLIC`` on purpose. Erasure is checked where the
customer's data lives: the API's answers in every worker, the SQLite event store, the next
batch picks (the ``recsys picks`` command) and the next training set
(``training.jobs.train.load_clean``).
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from fastapi.routing import iter_route_contexts

from serving.main import create_app
from serving.settings import Settings
from tests.reliability.conftest import (
    ADMIN,
    CLIENT,
    DATASET,
    PRIVACY,
    REPO,
    Server,
    server_env,
)
from training.jobs.train import load_clean

pytestmark = pytest.mark.slow
PUBLIC = {"/health", "/ready", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect",
          "/redoc"}
WRONG = {"X-API-Key": "not-a-key"}
KEYS = {"storefront": (CLIENT, {"read", "events"}), "privacy": (PRIVACY, {"privacy"}),
        "admin": (ADMIN, {"admin"})}


def route_table() -> list[tuple[str, str, str]]:
    """(method, concrete path, key scope) for every non-public route of the app
    (``iter_route_contexts`` flattens ``app.routes`` the way FastAPI's own OpenAPI does)."""
    app = create_app(Settings(api_keys="k", admin_key="a"))
    table = []
    for route in iter_route_contexts(app.routes):
        path = str(route.path)
        if path in PUBLIC or path.startswith("/docs-assets") or path.startswith("/console"):
            continue  # the console logs in with a session cookie (tests/console)
        assert route.methods and route.dependant, f"{path}: not an HTTP route, not checked"
        scopes = [d.call.scope for d in route.dependant.dependencies
                  if hasattr(d.call, "scope")]
        assert len(scopes) == 1, f"{path} has no key check (or several)"
        concrete = re.sub(r"\{[^}]+\}", "x1", path)
        table += [(method, concrete, scopes[0]) for method in sorted(route.methods)]
    return table


ROUTES = route_table()


@pytest.fixture(scope="module")
def live(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("access")
    server = Server(server_env(root / "data", bundle), root / "server.log", workers=2).start()
    server.wait()
    yield server
    server.stop()


def test_the_route_table_is_what_the_server_runs(live: Server) -> None:
    served = httpx.get(f"{live.base}/openapi.json").json()["paths"]
    listed = {(m, re.sub(r"\{[^}]+\}", "x1", p)) for p, ops in served.items()
              for m in (o.upper() for o in ops) if p not in PUBLIC}
    assert listed == {(m, p) for m, p, _ in ROUTES}
    assert len(ROUTES) >= 10
    assert {k for *_, k in ROUTES} == {"read", "events", "privacy", "admin"}


@pytest.mark.parametrize(("method", "path", "kind"), ROUTES,
                         ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_protected_route_refuses_missing_wrong_and_other_keys(
        live: Server, method: str, path: str, kind: str) -> None:
    with httpx.Client(base_url=live.base, timeout=30) as http:
        missing = http.request(method, path)
        assert missing.status_code == 401 and "X-API-Key" in missing.json()["detail"]
        assert http.request(method, path, headers=WRONG).status_code == 403
        if method in ("POST", "PUT"):  # auth comes before the body is read
            garbled = http.request(method, path, content=b"{not json",
                                   headers={"Content-Type": "application/json"})
            assert garbled.status_code == 401, garbled.text
        for name, (key, scopes) in KEYS.items():
            status = http.request(method, path, headers=key).status_code
            assert (status not in (401, 403)) if kind in scopes else status == 403, name


def personalized(base: str, customer: str) -> bool:
    body = httpx.get(f"{base}/v1/customers/{customer}/recommendations", headers=CLIENT,
                     timeout=30).json()
    return bool(body["personalized"])


def test_erasure_reaches_the_store_the_workers_batch_picks_and_training(
        live: Server, bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    customers = pd.read_parquet(bundle / "customers.parquet")
    consenting = customers.loc[customers["consent_personalization"], "customer_id"]
    erased, kept = str(consenting.iloc[0]), str(consenting.iloc[1])
    products = pd.read_parquet(bundle / "products.parquet")["product_id"].astype(str)
    events = [{"event_id": f"erase-{c}-{i}", "customer_id": c, "event_type": "purchase",
               "product_id": products.iloc[i]} for c in (erased, kept) for i in range(3)]
    assert httpx.post(f"{live.base}/v1/events", json={"events": events}, headers=CLIENT
                      ).json()["stored"] == 6
    assert httpx.put(f"{live.base}/v1/customers/{erased}/consent", headers=PRIVACY,
                     json={"personalization": True}).status_code == 200
    assert personalized(live.base, erased)

    assert httpx.delete(f"{live.base}/v1/customers/{erased}", headers=CLIENT
                        ).status_code == 403  # a storefront key cannot erase anyone
    gone = httpx.delete(f"{live.base}/v1/customers/{erased}", headers=PRIVACY)
    assert gone.status_code == 200 and gone.json()["records_deleted"] == 4  # 3 events + consent

    # Every worker (the journal reaches the one that did not answer the DELETE).
    deadline, streak = time.monotonic() + 30, 0
    while streak < 10:
        assert time.monotonic() < deadline, "a worker still personalizes the erased customer"
        streak = 0 if personalized(live.base, erased) else streak + 1
    assert personalized(live.base, kept)

    # The store: nothing of the customer; the erasure record holds a keyed hash.
    data_dir = Path(live.env["RECSYS_DATA_DIR"])
    with sqlite3.connect(data_dir / "events.db") as db:
        rows = db.execute("SELECT count(*) FROM recsys_events WHERE customer_id = ?",
                          (erased,)).fetchone()[0]
        kept_rows = db.execute("SELECT count(*) FROM recsys_events WHERE customer_id = ?",
                               (kept,)).fetchone()[0]
        erasures = db.execute("SELECT count(*) FROM recsys_events WHERE kind = 'erasure'"
                              ).fetchone()[0]
    assert rows == 0 and kept_rows == 3 and erasures >= 1  # (the route checks erase x1)

    # The next batch picks: `recsys picks` reads the same store (RECSYS_DATA_DIR).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "MLFLOW_"))}
    out = tmp_path / "picks.parquet"
    done = subprocess.run(
        [sys.executable, "-m", "training.cli", "picks", "--bundle", str(bundle), "--out",
         str(out), "--audience", f"ids={erased},{kept}", "--n", "5", "--coupons", "0"],
        cwd=REPO, env={**env, "RECSYS_DATA_DIR": str(data_dir), "PYTHONPATH": str(REPO)},
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert set(pd.read_parquet(out)["customer_id"].astype(str)) == {kept}

    # The next training set.
    monkeypatch.setenv("RECSYS_DATA_DIR", str(data_dir))
    monkeypatch.delenv("RECSYS_EVENTS_URL", raising=False)
    source = "synthetic:customers={n_customers},products={n_products},seed={seed}".format(
        **DATASET)
    training = load_clean(source)
    assert erased not in set(training.transactions["customer_id"].astype(str))
    assert erased not in set(training.customers["customer_id"].astype(str))
    assert kept in set(training.transactions["customer_id"].astype(str))
