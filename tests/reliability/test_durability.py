"""Events survive a SIGKILL: what the server acknowledged is stored exactly once, whole.

Several clients post batches of events with unique ids to ``recsys serve`` (2 workers, one
SQLite store). Mid-stream the whole process group gets SIGKILL. The store is then read
directly with sqlite3: every acknowledged event is there once with the fields sent, no batch
is half there, and the database passes its integrity check. After a restart every batch is
sent again: the server stores only what was missing. Run with ``-s`` to see the figures.
"""

from __future__ import annotations

import random
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from recsys.events import EventStore
from tests.reliability.conftest import CLIENT, Server, server_env
from tests.stores import open_together

CLIENTS = 6
KILL_AFTER = 600  # acknowledged events before the kill
TYPES = ("view", "add_to_cart", "purchase")


@dataclass
class Stream:
    """What one client sent and what the server acknowledged."""

    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    acked: list[int] = field(default_factory=list)  # indices into batches
    failed: int = 0


def make_batch(client: int, number: int, rng: random.Random, customers: list[str],
               products: list[str]) -> list[dict[str, Any]]:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    return [{"event_id": f"c{client}-b{number}-e{i}", "customer_id": rng.choice(customers),
             "event_type": rng.choice(TYPES), "product_id": rng.choice(products),
             "quantity": float(rng.randint(1, 5)), "amount": round(rng.uniform(0, 50), 2),
             "timestamp": (start + timedelta(seconds=rng.randint(0, 10**6))).isoformat()}
            for i in range(rng.randint(1, 12))]


def post_until(base: str, stream: Stream, client: int, stop: threading.Event,
               customers: list[str], products: list[str]) -> None:
    """Post new batches until ``stop``; a batch counts as acknowledged only on a 2xx."""
    rng = random.Random(client)
    with httpx.Client(base_url=base, headers=CLIENT, timeout=10) as http:
        while not stop.is_set():
            batch = make_batch(client, len(stream.batches), rng, customers, products)
            stream.batches.append(batch)
            try:
                response = http.post("/v1/events", json={"events": batch})
            except httpx.TransportError:
                stream.failed += 1
                continue
            if response.is_success:
                assert response.json()["stored"] == len(batch), response.text
                stream.acked.append(len(stream.batches) - 1)
            else:
                stream.failed += 1


def stored_rows(db: Path) -> pd.DataFrame:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return pd.read_sql_query(
            "SELECT event_id, customer_id, kind, product_id, quantity, amount, timestamp "
            "FROM recsys_events WHERE kind != 'consent' AND kind != 'erasure'", conn)


def sent_rows(batches: list[list[dict[str, Any]]]) -> pd.DataFrame:
    rows = [{**e, "kind": e["event_type"], "timestamp": datetime.fromisoformat(
        e["timestamp"]).astimezone(UTC).replace(tzinfo=None)} for b in batches for e in b]
    return pd.DataFrame(rows)[["event_id", "customer_id", "kind", "product_id", "quantity",
                               "amount", "timestamp"]]


@pytest.fixture
def population(bundle: Path) -> Iterator[tuple[list[str], list[str]]]:
    customers = pd.read_parquet(bundle / "customers.parquet")["customer_id"].astype(str)
    products = pd.read_parquet(bundle / "products.parquet")["product_id"].astype(str)
    yield [*customers[:50], *(f"new-{i}" for i in range(10))], products.tolist()


@pytest.mark.slow
def test_acknowledged_events_survive_sigkill_exactly_once(
        bundle: Path, tmp_path: Path, make_server: Any,
        population: tuple[list[str], list[str]]) -> None:
    data = tmp_path / "data"
    env = server_env(data, bundle)
    server: Server = make_server(env, workers=2)
    server.wait()
    streams = [Stream() for _ in range(CLIENTS)]
    stop = threading.Event()
    threads = [threading.Thread(target=post_until, args=(server.base, s, c, stop, *population))
               for c, s in enumerate(streams)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while sum(len(s.batches[i]) for s in streams for i in s.acked) < KILL_AFTER:
        assert time.monotonic() < deadline, "the server acknowledged too few events"
        time.sleep(0.01)
    server.signal(signal.SIGKILL)  # mid-stream: every client has a request in flight
    stop.set()
    for t in threads:
        t.join()

    acked = [s.batches[i] for s in streams for i in s.acked]
    unacked = [b for s in streams for i, b in enumerate(s.batches) if i not in s.acked]
    stored = stored_rows(data / "events.db")
    assert stored["event_id"].is_unique
    expected = sent_rows(acked)
    merged = expected.merge(stored, on="event_id", how="left", suffixes=("", "_stored"),
                            indicator=True)
    assert (merged["_merge"] == "both").all(), "acknowledged events are missing"
    for col in ("customer_id", "kind", "product_id", "quantity", "amount"):
        assert (merged[col] == merged[f"{col}_stored"]).all(), col
    assert (pd.to_datetime(merged["timestamp_stored"]) == merged["timestamp"]).all()
    stored_ids = set(stored["event_id"])
    for batch in unacked:  # in flight at the kill: all of the batch or none of it
        present = {e["event_id"] in stored_ids for e in batch}
        assert len(present) == 1, f"half a batch stored: {batch[0]['event_id']}"
    recovered = len(stored)
    sent = sum(len(b) for s in streams for b in s.batches)

    restarted: Server = make_server(env, workers=2, name="restarted")
    restarted.wait()
    resent = stored_again = duplicates = 0
    with httpx.Client(base_url=restarted.base, headers=CLIENT, timeout=30) as http:
        for batch in [b for s in streams for b in s.batches]:
            body = http.post("/v1/events", json={"events": batch})
            assert body.status_code == 200, body.text
            resent += len(batch)
            stored_again += body.json()["stored"]
            duplicates += len(body.json()["duplicates"])
    final = stored_rows(data / "events.db")
    assert final["event_id"].is_unique and len(final) == sent
    assert stored_again == sent - recovered and duplicates == recovered
    restarted.stop()
    print(f"\ndurability: {sent} events posted in {sum(len(s.batches) for s in streams)} "
          f"batches by {CLIENTS} clients; {len(expected)} acknowledged before SIGKILL, "
          f"{sum(s.failed for s in streams)} batches without an answer; {recovered} "
          f"recovered ({recovered - len(expected)} from unanswered batches, none "
          f"half-written); resend: {stored_again} stored, {duplicates} duplicates")


def test_workers_creating_a_fresh_store_together_all_open_it(tmp_path: Path) -> None:
    """`recsys serve --workers N` on a new data dir: every worker creates the journal at the
    same moment, and every one must end up with an open store."""
    for attempt in range(3):
        results = open_together(f"sqlite:///{tmp_path / f'events-{attempt}.db'}")
        assert results == ["ok"] * 6, results


def test_a_store_opens_while_another_process_writes_the_fresh_file(tmp_path: Path) -> None:
    """SQLite refuses the switch to WAL mode at once, busy timeout or not, while another
    connection holds a write lock on a file still in rollback mode: the race two workers
    opening a fresh store run into. The store waits for the lock instead of failing."""
    path = tmp_path / "events.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("CREATE TABLE other_tool (x)")
    release = threading.Timer(0.5, writer.execute, args=("COMMIT",))
    release.start()
    try:
        EventStore(f"sqlite:///{path}").close()
    finally:
        release.join()
        writer.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)
