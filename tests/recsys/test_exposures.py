"""The exposure log on both event-store backends (SQLite, and a real PostgreSQL server:
``postgres_url`` in tests/conftest.py) and its background writer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from recsys.events import EventStore
from recsys.exposures import Exposure, ExposureLog, ExposureWriter

T0 = datetime(2026, 12, 1, 9, 0)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """The event store's engine (SQLite), or an engine on the PostgreSQL server."""
    if request.param == "sqlite":
        store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")
        yield store.engine
        store.close()
        return
    store = EventStore(request.getfixturevalue("postgres_url"), key="k")  # a fresh database
    yield store.engine
    store.close()


def _exposure(customer: str, k: int = 0, **kw: object) -> Exposure:
    values = {"request_id": f"r{k}", "customer_id": customer, "variant": "champion",
              "model_version": "3", "mode": "recommendations", "product_ids": ("p2", "p1"),
              "coupon_ids": ("c1",), "held_out": (), "shown_at": T0 + timedelta(minutes=k)}
    return Exposure(**(values | kw))  # type: ignore[arg-type]


def test_rows_round_trip_in_order(engine: sa.Engine) -> None:
    log = ExposureLog(engine)
    log.add([_exposure("a", 0), _exposure("b", 1, held_out=("c9",), coupon_ids=(),
                                          variant="challenger")])
    frame = log.frame()
    assert frame["customer_id"].tolist() == ["a", "b"]
    assert frame["product_ids"].tolist() == [["p2", "p1"], ["p2", "p1"]]
    assert frame["coupon_ids"].tolist() == [["c1"], []]
    assert frame["held_out"].tolist() == [[], ["c9"]]
    assert frame["shown_at"].tolist() == [T0, T0 + timedelta(minutes=1)]
    assert log.frame(since=T0 + timedelta(seconds=30))["customer_id"].tolist() == ["b"]
    assert log.frame(until=T0 + timedelta(seconds=30))["customer_id"].tolist() == ["a"]


def test_writer_stores_in_batches_off_the_caller_and_erasure_forgets(engine: sa.Engine
                                                                     ) -> None:
    log = ExposureLog(engine)
    writer = ExposureWriter(log, interval=0.05, batch=7)
    for k in range(30):
        writer.log(_exposure("a" if k % 3 else "b", k))
    deadline = time.monotonic() + 10
    while log.count() < 30 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (log.count("a"), log.count("b")) == (20, 10)
    writer.log(_exposure("b", 99))  # queued, not yet written: must not come back
    assert writer.forget(["b"]) == 10
    writer.close()
    assert (log.count("a"), log.count("b")) == (20, 0)
    assert writer.dropped == 0


def test_a_full_queue_drops_rows_instead_of_blocking(tmp_path: Path) -> None:
    log = ExposureLog(EventStore(f"sqlite:///{tmp_path / 'e.db'}").engine)
    writer = ExposureWriter(log, interval=60, batch=10_000, capacity=5)
    started = time.perf_counter()
    for k in range(8):
        writer.log(_exposure("a", k))
    assert time.perf_counter() - started < 0.5
    writer.close()
    assert (log.count(), writer.dropped) == (5, 3)


def test_close_writes_every_queued_row_across_insert_chunks(engine: sa.Engine) -> None:
    # More rows than one multi-row INSERT holds, still queued at shutdown: all stored, in
    # order, with their timestamps to the microsecond.
    from recsys.exposures import CHUNK

    log = ExposureLog(engine)
    writer = ExposureWriter(log, interval=60, batch=10_000)
    n = 2 * CHUNK + 3
    shown = [T0 + timedelta(seconds=k, microseconds=k) for k in range(n)]
    for k in range(n):
        writer.log(_exposure(f"c{k}", k, shown_at=shown[k], product_ids=(f"p{k}",)))
    writer.close()
    frame = log.frame()
    assert frame["customer_id"].tolist() == [f"c{k}" for k in range(n)]
    assert frame["product_ids"].tolist() == [[f"p{k}"] for k in range(n)]
    assert frame["shown_at"].tolist() == shown
    assert log.frame(since=shown[CHUNK])["customer_id"].tolist()[0] == f"c{CHUNK}"
    assert writer.dropped == 0
