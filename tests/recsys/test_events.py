"""The event store: durable, idempotent, ordered, erasable; shared by several processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from recsys.errors import ConfigError
from recsys.events import (
    Consent,
    Erasure,
    Event,
    EventStore,
    default_url,
    fold_in_weight,
    journal,
)

T0 = datetime(2024, 5, 1, 12, 0)


def ev(event_id: str, customer: str = "c1", kind: str = "purchase", product: str = "p1",
       **kw: object) -> Event:
    return Event(event_id, customer, kind, T0, product, **kw)  # type: ignore[arg-type]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventStore]:
    """The store on a SQLite file, or on a fresh database of a real PostgreSQL server."""
    if request.param == "sqlite":
        store = EventStore(default_url(tmp_path))
    else:
        store = EventStore(request.getfixturevalue("postgres_url"), key="test-key")
    yield store
    store.close()


def test_add_stores_new_events_and_reports_duplicates(store: EventStore) -> None:
    first = store.add([ev("a"), ev("b", product="p2"), ev("a")])
    assert [e.event_id for e in first.stored] == ["a", "b"]
    assert first.duplicates == ["a"]
    assert all(e.seq is not None for e in first.stored)
    again = store.add([ev("b"), ev("c")])
    assert [e.event_id for e in again.stored] == ["c"] and again.duplicates == ["b"]
    assert store.count() == 3
    assert [e.product_id for e in store.events("c1")] == ["p1", "p2", "p1"]


def test_add_rejects_unknown_event_type(store: EventStore) -> None:
    with pytest.raises(ValueError, match="event_type must be one of"):
        store.add([ev("x", kind="click")])
    assert store.count() == 0


def test_timezone_aware_timestamps_are_stored_as_naive_utc(store: EventStore) -> None:
    aware = datetime(2024, 5, 1, 16, 0, tzinfo=timezone(timedelta(hours=2)))
    store.add([Event("t", "c1", "view", aware, "p1")])
    assert store.events("c1")[0].timestamp == datetime(2024, 5, 1, 14, 0)


def test_sqlite_store_uses_wal_and_full_sync(tmp_path: Path) -> None:
    store = EventStore(default_url(tmp_path))
    store.add([ev("a")])
    with store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_erase_deletes_events_and_consent_and_lists_the_customer(store: EventStore) -> None:
    store.add([ev("a"), ev("b", customer="c2")])
    store.set_consent("c1", False)
    deleted, seq = store.erase("c1")
    assert deleted == 2  # one event, one consent record
    assert store.events("c1") == [] and len(store.events("c2")) == 1
    assert store.erased_subjects() == {store.subject("c1")}
    assert store.erased_among(["c1", "c2"]) == {"c1"}
    assert "c1" not in store.consents()
    assert seq == store.last_seq()
    erasure = list(store.changes())[-1]
    assert isinstance(erasure, Erasure) and erasure.subject == store.subject("c1") != "c1"


def test_an_erased_customer_stays_erased_until_a_new_consent(store: EventStore) -> None:
    store.add([ev("old-1"), ev("old-2")])
    store.erase("c1")
    resent = store.add([ev("old-1"), ev("new-1")])  # a producer retries, then sends more
    assert resent.stored == [] and resent.duplicates == ["old-1"]
    assert list(resent.refused) == ["new-1"] and "erased" in resent.refused["new-1"]
    assert store.add([ev("x", customer="c2")]).stored  # others are not affected
    store.set_consent("c1", False)  # not a consent to personalization: still refused
    assert store.add([ev("new-2")]).refused
    store.set_consent("c1", True)
    again = store.add([ev("old-2"), ev("new-3")])
    assert [e.event_id for e in again.stored] == ["new-3"] and again.duplicates == ["old-2"]
    assert store.erased_among(["c1"]) == {"c1"}  # its dataset history stays out of training


def test_erased_ids_leave_no_bytes_in_the_sqlite_files(tmp_path: Path) -> None:
    store = EventStore(default_url(tmp_path))
    secret_customer, secret_event = "cust-1025-zq", "evt-1025-zq"
    store.add([ev(secret_event, customer=secret_customer, product="prod-1025-zq")]
              + [ev(f"o{i}", customer=f"other{i}") for i in range(50)])
    store.set_consent(secret_customer, False)
    store.erase(secret_customer)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("events.db")]
    assert any(p.name.endswith("-wal") for p in files) and files
    for path in files:
        raw = path.read_bytes()
        for needle in (secret_customer, secret_event, "prod-1025-zq"):
            assert needle.encode() not in raw, (path.name, needle)
    assert b"other7" in (tmp_path / "events.db").read_bytes()  # the check can see ids


def test_the_key_is_kept_next_to_the_database_and_shared(tmp_path: Path) -> None:
    one, two = EventStore(default_url(tmp_path)), EventStore(default_url(tmp_path))
    assert one.subject("c1") == two.subject("c1")
    assert (tmp_path / "privacy.key").stat().st_mode & 0o077 == 0
    other = EventStore(default_url(tmp_path / "elsewhere"))
    assert other.subject("c1") != one.subject("c1")
    assert EventStore("sqlite://", key="k").subject("c1") == \
        EventStore("sqlite://", key=b"k").subject("c1")


def test_a_server_database_needs_the_key() -> None:
    with pytest.raises(ConfigError, match="RECSYS_PRIVACY_KEY"):
        EventStore("postgresql+psycopg://u@localhost:1/none")


def test_purchase_rows_are_canonical_and_leave_out_opted_out_and_erased(
        store: EventStore) -> None:
    late = datetime(2030, 1, 2)
    store.add([Event("p1", "c1", "purchase", late, "p9", quantity=2, amount=5.0),
               Event("p0", "c1", "purchase", datetime(2001, 1, 1), "p9"),
               Event("v1", "c1", "view", late, "p8"),
               Event("r1", "c1", "coupon_redeemed", late, coupon_id="k1"),
               Event("p2", "c2", "purchase", late, "p9"), Event("p3", "c3", "purchase", late,
                                                               "p7")])
    store.set_consent("c2", False)
    store.erase("c3")
    tx, redemptions = store.purchase_rows(datetime(2030, 1, 1))
    assert tx.to_dict("records") == [{
        "order_id": "api-p1", "customer_id": "c1", "product_id": "p9", "quantity": 2.0,
        "amount": 5.0, "timestamp": pd.Timestamp(late), "store_id": "api"}]
    assert redemptions[["customer_id", "coupon_id"]].values.tolist() == [["c1", "k1"]]
    assert len(store.purchase_rows(datetime(2030, 1, 1), drop_opted_out=False)[0]) == 2


def test_journal_is_one_ordered_stream_and_seqs_are_never_reused(store: EventStore) -> None:
    store.add([ev("a")])
    store.set_consent("c1", False)
    store.erase("c1")  # deletes the two highest rows but the erasure row
    top = store.last_seq()
    new = store.add([ev("b", customer="c2")]).stored[0]
    assert new.seq is not None and new.seq > top
    kinds = [type(c).__name__ for c in store.changes()]
    assert kinds == ["Erasure", "Event"]
    assert [c.seq for c in store.changes(after=top)] == [new.seq]


def test_replay_skips_events_the_model_was_trained_on(store: EventStore) -> None:
    store.add([ev("old")])
    cut = datetime.now(UTC)
    store.set_consent("c9", False)
    store.add([ev("new")])
    replayed = list(store.replay(since=cut))
    assert [getattr(c, "event_id", None) for c in replayed] == [None, "new"]
    assert isinstance(replayed[0], Consent) and not replayed[0].personalization
    until = store.last_seq() - 1
    assert all((c.seq or 0) <= until for c in store.replay(until=until))


def test_consents_keep_the_latest_choice(store: EventStore) -> None:
    store.set_consent("c1", False)
    store.set_consent("c1", True)
    store.set_consent("c2", False)
    assert store.consents() == {"c1": True, "c2": False}


def test_a_second_process_sees_committed_writes(store: EventStore) -> None:
    code = ("import sys; from datetime import datetime; from recsys.events import *; "
            "s = EventStore(sys.argv[1], key=sys.argv[2] or None); "
            "r = s.add([Event('x', 'c7', 'view', datetime(2024, 1, 1), 'p3')]); "
            "s.erase('c8'); print(len(r.stored))")
    key = "" if store.url.startswith("sqlite") else "test-key"
    out = subprocess.run([sys.executable, "-c", code, store.url, key], check=True,
                         capture_output=True, text=True)
    assert out.stdout.strip() == "1"
    assert [e.event_id for e in store.events("c7")] == ["x"]
    assert isinstance(list(store.changes())[-1], Erasure)
    assert store.add([ev("x", customer="c7")]).duplicates == ["x"]


def test_unwritable_location_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="cannot open the event store"):
        EventStore(f"sqlite:///{blocker / 'sub' / 'events.db'}")


def test_bad_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="event store URL is not usable"):
        EventStore("nosuchdialect://x")


def test_file_is_a_plain_sqlite_database(tmp_path: Path) -> None:
    store = EventStore(default_url(tmp_path))
    store.add([ev("a")])
    with sqlite3.connect(tmp_path / "events.db") as conn:
        assert conn.execute("select count(*) from recsys_events").fetchone()[0] == 1


@pytest.mark.parametrize(("kind", "weight"), [("purchase", 1.5), ("view", 0.25),
                                              ("add_to_cart", 0.25), ("coupon_redeemed", 0.0)])
def test_fold_in_weight_by_event_type(kind: str, weight: float) -> None:
    assert fold_in_weight(ev("a", kind=kind), purchase_weight=1.5, view_weight=0.25) == weight


def test_a_reader_never_skips_a_seq_committed_late(postgres_url: str) -> None:
    """PostgreSQL hands out seqs before commit: a writer that got seq n+1 must not commit
    before the one holding seq n, or a replica's cursor passes n and never sees it."""
    store = EventStore(postgres_url, key="k")
    with store.engine.connect() as held:
        tx = held.begin()
        store.lock_journal(held)  # what every writer's transaction does first
        held.execute(journal.insert().values(event_id="first", customer_id="c1",
                                             kind="view", product_id="p1", quantity=1.0,
                                             amount=0.0, timestamp=T0, received_at=T0))
        later = threading.Thread(target=store.add, args=([ev("second", kind="view")],))
        later.start()
        later.join(0.5)
        seen = [c.event_id for c in store.changes()]  # type: ignore[union-attr]
        cursor = store.last_seq()
        tx.commit()
    later.join(10)
    seen += [c.event_id for c in store.changes(after=cursor)]  # type: ignore[union-attr]
    assert seen == ["first", "second"]
    assert [e.event_id for e in store.events()] == ["first", "second"]
    with store.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(journal)) == 2
    store.close()
