"""Two replicas on one PostgreSQL: what one is told, the other answers by within 1 second.

Two ``recsys serve`` processes (own data dirs and ports, like two machines) share one event
store on a real PostgreSQL server (``RECSYS_EVENTS_URL``, ``tests/postgres.py``). Consent
changes, an erasure and events made through replica A must reach replica B's next answer
within one second, its answer cache included; SIGKILL of A in the middle of an event stream loses no
acknowledged event, and B keeps answering. Run with ``-s`` to see the measured delays.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from tests.reliability.conftest import CLIENT, PRIVACY, REPO, Server, server_env
from tests.reliability.test_durability import Stream, post_until, sent_rows

pytestmark = pytest.mark.slow
POLL = os.environ.get("REPLICA_POLL_SECONDS", "0.5")  # the default RECSYS_EVENTS_POLL_SECONDS
KILL_AFTER = 400  # events acknowledged by A before its SIGKILL


def replicas(make_server: Any, bundle: Path, tmp_path: Path, url: str) -> tuple[Server, Server]:
    servers = []
    for name in ("a", "b"):
        env = server_env(tmp_path / name, bundle, RECSYS_EVENTS_URL=url,
                         RECSYS_PRIVACY_KEY="replica-secret", RECSYS_EVENTS_POLL_SECONDS=POLL)
        servers.append(make_server(env, name=name))
    for server in servers:
        server.wait()
    return servers[0], servers[1]


def personalized(http: httpx.Client, base: str, customer: str) -> bool:
    answer = http.get(f"{base}/v1/customers/{customer}/recommendations", headers=CLIENT)
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["personalized"])


def delay_until(check: Callable[[], bool], limit: float = 10.0) -> float:
    """Seconds until ``check()`` holds (asked again at once after each answer)."""
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < limit, "the other replica never caught up"
    return time.monotonic() - start


def test_consent_erasure_and_events_through_a_reach_b_within_a_second(
        bundle: Path, tmp_path: Path, make_server: Any, postgres_url: str) -> None:
    a, b = replicas(make_server, bundle, tmp_path, postgres_url)
    customers = pd.read_parquet(bundle / "customers.parquet")
    consenting = customers.loc[customers["consent_personalization"], "customer_id"].astype(str)
    who, other = consenting.iloc[0], consenting.iloc[1]
    delays: dict[str, float] = {}
    with httpx.Client(timeout=30) as http:
        assert personalized(http, b.base, who) and personalized(http, b.base, who)  # cached
        assert http.put(f"{a.base}/v1/customers/{who}/consent", headers=PRIVACY,
                        json={"personalization": False}).status_code == 200
        delays["consent withdrawn"] = delay_until(lambda: not personalized(http, b.base, who))
        assert http.put(f"{a.base}/v1/customers/{who}/consent", headers=PRIVACY,
                        json={"personalization": True}).status_code == 200
        delays["consent given"] = delay_until(lambda: personalized(http, b.base, who))
        assert personalized(http, b.base, who)  # B's cache holds a personalized answer

        gone = http.delete(f"{a.base}/v1/customers/{who}", headers=PRIVACY)
        assert gone.status_code == 200, gone.text
        delays["erasure"] = delay_until(lambda: not personalized(http, b.base, who))
        for _ in range(10):  # and it stays so, on both replicas
            assert not personalized(http, b.base, who)
            assert not personalized(http, a.base, who)
        assert personalized(http, b.base, other)

        newcomer = "replica-newcomer"  # no history in the bundle: B answers with popular picks
        assert not personalized(http, b.base, newcomer)
        products = pd.read_parquet(bundle / "products.parquet")["product_id"].astype(str)
        events = [{"event_id": f"new-{i}", "customer_id": newcomer, "event_type": "purchase",
                   "product_id": products.iloc[i]} for i in range(3)]
        assert http.post(f"{a.base}/v1/events", json={"events": events}, headers=CLIENT
                         ).json()["stored"] == 3
        delays["events"] = delay_until(lambda: personalized(http, b.base, newcomer))
    # Batch picks read the same PostgreSQL store: the erased customer gets none.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "MLFLOW_"))}
    out = tmp_path / "picks.parquet"
    done = subprocess.run(
        [sys.executable, "-m", "training.cli", "picks", "--bundle", str(bundle), "--out",
         str(out), "--audience", f"ids={who},{other}", "--n", "5", "--coupons", "0"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**env, "RECSYS_DATA_DIR": str(tmp_path / "picks"), "PYTHONPATH": str(REPO),
             "RECSYS_EVENTS_URL": postgres_url, "RECSYS_PRIVACY_KEY": "replica-secret"})
    assert done.returncode == 0, done.stderr
    assert set(pd.read_parquet(out)["customer_id"].astype(str)) == {other}
    print(f"\nreplicas (poll {POLL} s): " + ", ".join(
        f"{k} reached B in {v * 1000:.0f} ms" for k, v in delays.items()))
    assert max(delays.values()) < 1.0, delays


def test_sigkill_of_one_replica_loses_no_acknowledged_event(
        bundle: Path, tmp_path: Path, make_server: Any, postgres_url: str) -> None:
    a, b = replicas(make_server, bundle, tmp_path, postgres_url)
    customers = pd.read_parquet(bundle / "customers.parquet")["customer_id"].astype(str)
    products = pd.read_parquet(bundle / "products.parquet")["product_id"].astype(str).tolist()
    population = ([*customers[:50], *(f"new-{i}" for i in range(10))], products)
    # clients 0-3 post to A, 4-5 to B (distinct client numbers: distinct event ids)
    streams = [Stream() for _ in range(6)]
    stop_a, stop_b = threading.Event(), threading.Event()
    threads = [threading.Thread(target=post_until, args=(
        (a if c < 4 else b).base, s, c, stop_a if c < 4 else stop_b, *population))
        for c, s in enumerate(streams)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while sum(len(s.batches[i]) for s in streams[:4] for i in s.acked) < KILL_AFTER:
        assert time.monotonic() < deadline, "replica A acknowledged too few events"
        time.sleep(0.01)
    a.signal(signal.SIGKILL)
    stop_a.set()
    b_before = sum(len(s.acked) for s in streams[4:])
    time.sleep(2.0)  # B goes on answering after A died
    stop_b.set()
    for t in threads:
        t.join()
    assert sum(len(s.acked) for s in streams[4:]) > b_before
    assert sum(s.failed for s in streams[4:]) == 0, "replica B failed requests"

    engine = sa.create_engine(postgres_url)
    stored = pd.read_sql_query(sa.text(
        "SELECT event_id, customer_id, kind, product_id, quantity, amount, timestamp "
        "FROM recsys_events WHERE kind NOT IN ('consent', 'erasure')"), engine)
    engine.dispose()
    assert stored["event_id"].is_unique
    acked = [s.batches[i] for s in streams for i in s.acked]
    merged = sent_rows(acked).merge(stored, on="event_id", how="left", indicator=True,
                                    suffixes=("", "_stored"))
    lost = int((merged["_merge"] != "both").sum())
    assert lost == 0, f"{lost} acknowledged events are missing"
    for col in ("customer_id", "kind", "product_id", "quantity", "amount"):
        assert (merged[col] == merged[f"{col}_stored"]).all(), col
    stored_ids = set(stored["event_id"])
    unacked = [bt for s in streams for i, bt in enumerate(s.batches) if i not in s.acked]
    for batch in unacked:  # in flight at the kill: all of the batch or none of it
        assert len({e["event_id"] in stored_ids for e in batch}) == 1, batch[0]["event_id"]
    print(f"\nreplicas: {len(merged)} events acknowledged ({sum(len(s.acked) for s in streams)}"
          f" batches, A killed after {KILL_AFTER}+), {lost} lost; B answered "
          f"{sum(len(s.acked) for s in streams[4:])} batches, 0 failed")
