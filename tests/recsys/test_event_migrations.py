"""Alembic migrations of the event store: an old store upgrades in place, on SQLite and on
a real PostgreSQL server, and workers opening a fresh store together all open it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from recsys.errors import ConfigError
from recsys.events import Erasure, Event, EventStore
from recsys.exposures import Exposure, ExposureLog, exposures
from tests.stores import open_together

T0 = datetime(2024, 5, 1, 12, 0)
HEAD = "0003"  # the newest revision in recsys/migrations/versions


def old_journal(metadata: sa.MetaData) -> sa.Table:
    """``recsys_events`` as commit 2a2d943 created it (``create_all``, no version table)."""
    return sa.Table(
        "recsys_events", metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(128), unique=True, nullable=True),
        sa.Column("customer_id", sa.String(128), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("product_id", sa.String(128), nullable=True),
        sa.Column("coupon_id", sa.String(128), nullable=True),
        sa.Column("quantity", sa.Float, nullable=False, default=1.0),
        sa.Column("amount", sa.Float, nullable=False, default=0.0),
        sa.Column("personalization", sa.Boolean, nullable=True),
        sa.Column("timestamp", sa.DateTime, nullable=False),
        sa.Column("received_at", sa.DateTime, nullable=False),
        sqlite_autoincrement=True,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    return str(request.getfixturevalue("postgres_url"))


def test_a_store_of_the_previous_schema_upgrades_in_place(url: str) -> None:
    metadata = sa.MetaData()
    table = old_journal(metadata)
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [
            {"event_id": f"e{i}", "customer_id": f"c{i % 3}", "kind": "purchase",
             "product_id": f"p{i}", "timestamp": T0, "received_at": T0} for i in range(6)])
        conn.execute(table.insert().values(customer_id="c1", kind="consent",
                                           personalization=False, timestamp=T0,
                                           received_at=T0))
    engine.dispose()

    store = EventStore(url, key="k")
    assert [e.event_id for e in store.events("c0")] == ["e0", "e3"]
    assert store.consents() == {"c1": False} and store.last_seq() == 7
    with store.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version_num FROM recsys_schema_version")) == HEAD
    # the new tables work: erasure leaves a suppression and tombstones, seqs go on
    deleted, seq = store.erase("c0")
    assert deleted == 2 and seq == 8
    assert store.add([Event("e0", "c0", "view", T0, "p1")]).duplicates == ["e0"]
    assert store.add([Event("n1", "c0", "view", T0, "p1")]).refused
    assert isinstance(list(store.changes(after=7))[0], Erasure)
    store.close()
    again = EventStore(url, key="k")  # opening a store at head changes nothing
    assert again.last_seq() == 8 and again.erased_among(["c0", "c1"]) == {"c0"}
    again.close()


def test_a_store_made_by_create_all_with_every_table_is_stamped(url: str) -> None:
    """A store of the version just before migrations (all three tables, no version table)."""
    first = EventStore(url, key="k")
    first.add([Event("a", "c1", "view", T0, "p1")])
    with first.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE recsys_schema_version"))
    first.close()
    store = EventStore(url, key="k")
    assert [e.event_id for e in store.events()] == ["a"]
    with store.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version_num FROM recsys_schema_version")) == HEAD
    store.close()


def old_exposures(metadata: sa.MetaData) -> sa.Table:
    """``recsys_exposures`` as commit 808d036 created it (``create_all``, mode 32 chars)."""
    return sa.Table(
        "recsys_exposures", metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False, index=True),
        sa.Column("variant", sa.String(32), nullable=False),
        sa.Column("model_version", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("product_ids", sa.Text, nullable=False),
        sa.Column("coupon_ids", sa.Text, nullable=False),
        sa.Column("held_out", sa.Text, nullable=False),
        sa.Column("shown_at", sa.DateTime, nullable=False, index=True),
    )


def _exposure(k: int, mode: str = "recommendations") -> Exposure:
    return Exposure(f"r{k}", f"c{k}", "champion", "3", mode, ("p1",), (), (), T0)


def _schema(engine: sa.Engine) -> tuple[object, object]:
    """The exposure table as the database has it: columns and indexes."""
    have = sa.inspect(engine)
    columns = {(c["name"], type(c["type"]).__name__, getattr(c["type"], "length", None),
                c["nullable"]) for c in have.get_columns("recsys_exposures")}
    indexes = {(i["name"], tuple(i["column_names"])) for i in have.get_indexes("recsys_exposures")}
    return columns, indexes


def test_the_exposure_table_comes_from_the_migrations(url: str, tmp_path: Path) -> None:
    store = EventStore(url, key="k")  # no ExposureLog yet: the store's migrations made it
    assert sa.inspect(store.engine).has_table("recsys_exposures")
    # the same table as the one the code reads and writes (recsys.exposures.exposures)
    reference = sa.create_engine(f"sqlite:///{tmp_path / 'reference.db'}") \
        if store.engine.dialect.name == "sqlite" else None
    if reference is None:  # PostgreSQL: create_all into a second database of the server
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE SCHEMA reference")
            conn.commit()
        engine.dispose()
        reference = sa.create_engine(url, connect_args={"options": "-csearch_path=reference"})
    exposures.metadata.create_all(reference)
    assert _schema(store.engine) == _schema(reference)
    reference.dispose()
    log = ExposureLog(store.engine)
    log.add([_exposure(0, mode="x" * 64)])
    assert log.frame()["mode"].tolist() == ["x" * 64]
    store.close()


def test_a_store_whose_exposure_table_create_all_made_upgrades_in_place(url: str) -> None:
    """A store at revision 0002 with the exposure table of the first exposure log."""
    EventStore(url, key="k").close()
    engine = sa.create_engine(url)
    metadata = sa.MetaData()
    table = old_exposures(metadata)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE recsys_exposures"))
        conn.execute(sa.text("UPDATE recsys_schema_version SET version_num = '0002'"))
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert().values(**dict(zip(
            [c.name for c in table.columns][1:], _exposure(1).values(), strict=True))))
    engine.dispose()

    store = EventStore(url, key="k")
    with store.engine.connect() as conn:
        assert conn.scalar(sa.text("SELECT version_num FROM recsys_schema_version")) == HEAD
    log = ExposureLog(store.engine)
    assert log.frame()["customer_id"].tolist() == ["c1"]  # its rows are kept
    log.add([_exposure(2, mode="recommendations:" + "m" * 40)])  # 56 chars: too long before
    assert log.count() == 2
    store.close()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_workers_migrating_a_fresh_postgres_store_together_all_open_it(
        backend: str, postgres_server: Any) -> None:
    """Six processes open one fresh PostgreSQL database at once (the SQLite version of this
    test is in tests/reliability/test_durability.py); each attempt is a new database."""
    for _ in range(3):
        url = postgres_server.new_database()
        results = open_together(url, key="k")
        assert results == ["ok"] * 6, results
        store = EventStore(url, key="k")
        with store.engine.connect() as conn:
            assert conn.scalar(sa.text("SELECT count(*) FROM recsys_schema_version")) == 1
        store.close()


def test_a_store_from_a_newer_version_is_a_config_error(url: str) -> None:
    EventStore(url, key="k").close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE recsys_schema_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(ConfigError, match="schema is not one this version knows"):
        EventStore(url, key="k")
