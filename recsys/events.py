"""The event store: customer events, consent records and erasures in one SQLAlchemy table.

One append-only journal with a single increasing ``seq`` gives every reader (several API
workers, batch picks, training) the same total order of what happened: behavioural events
(``view``, ``add_to_cart``, ``purchase``, ``coupon_redeemed``), consent changes and erasures.
SQLite in WAL mode is the default (``sqlite:///<data dir>/events.db``); any SQLAlchemy URL
(e.g. ``postgresql+psycopg://...``) works. Writes are committed before they return, so a
caller may acknowledge them; ``event_id`` makes writes idempotent. The tables are kept by
Alembic migrations (``recsys/migrations``): opening a store runs ``upgrade head``.

Erasure deletes the customer's events and consent records (SQLite overwrites the freed
pages, ``secure_delete``, and the WAL is checkpointed and truncated, so the id's bytes leave
the files) and keeps no raw id: a suppression record holds a keyed hash (HMAC-SHA256,
``subject``) of the customer id, tombstones the keyed hashes of the erased event ids, and the
journal's erasure record carries the hash. Later events of a suppressed customer are refused
until a new explicit consent; a pre-erasure event id sent again stays a duplicate. The key
lives in ``privacy.key`` next to a SQLite file, or is passed in (``RECSYS_PRIVACY_KEY``).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from recsys.data.schema import EVENT_TYPES
from recsys.errors import ConfigError

log = logging.getLogger(__name__)
CONSENT, ERASURE = "consent", "erasure"
ID_LENGTH = 128
_metadata = sa.MetaData()
journal = sa.Table(
    "recsys_events", _metadata,
    # AUTOINCREMENT: SQLite must never reuse the seq of a deleted (erased) row, or a reader's
    # cursor would skip the new row that got it.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(ID_LENGTH), unique=True, nullable=True),
    sa.Column("customer_id", sa.String(ID_LENGTH), nullable=False, index=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("product_id", sa.String(ID_LENGTH), nullable=True),
    sa.Column("coupon_id", sa.String(ID_LENGTH), nullable=True),
    sa.Column("quantity", sa.Float, nullable=False, default=1.0),
    sa.Column("amount", sa.Float, nullable=False, default=0.0),
    sa.Column("personalization", sa.Boolean, nullable=True),
    sa.Column("timestamp", sa.DateTime, nullable=False),
    sa.Column("received_at", sa.DateTime, nullable=False),
    sqlite_autoincrement=True,
)
# One row per customer ever erased, by keyed hash; ``active`` until a new explicit consent.
suppressions = sa.Table(
    "recsys_suppressions", _metadata,
    sa.Column("subject", sa.String(64), primary_key=True),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("erased_at", sa.DateTime, nullable=False),
)
# Keyed hashes of erased event ids: the same id sent again is a duplicate, not new.
tombstones = sa.Table(
    "recsys_tombstones", _metadata,
    sa.Column("event_hash", sa.String(64), primary_key=True),
)
KEY_FILE = "privacy.key"
TRAINED = ("purchase",)  # event kinds training reads (``purchase_rows``); replay skips them
ERASED_REASON = "customer erased: events are refused until a new consent (PUT .../consent)"


@dataclass(frozen=True)
class Event:
    """One behavioural event. ``timestamp`` is naive UTC; ``seq`` is set once stored."""

    event_id: str
    customer_id: str
    event_type: str
    timestamp: datetime
    product_id: str | None = None
    coupon_id: str | None = None
    quantity: float = 1.0
    amount: float = 0.0
    seq: int | None = None


@dataclass(frozen=True)
class Consent:
    """The customer's consent to personalization changed to ``personalization``."""

    customer_id: str
    personalization: bool
    seq: int


@dataclass(frozen=True)
class Erasure:
    """A customer asked to be forgotten; ``subject`` is the keyed hash of their id (the
    journal never keeps the raw id: compare with ``EventStore.subject``)."""

    subject: str
    seq: int


Change = Event | Consent | Erasure


@dataclass(frozen=True)
class AddResult:
    """What ``EventStore.add`` did: new events (with their ``seq``), duplicate ids and
    refused ids with the reason (a suppressed customer)."""

    stored: list[Event]
    duplicates: list[str]
    refused: dict[str, str] = field(default_factory=dict)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _naive_utc(ts: datetime) -> datetime:
    try:
        return ts if ts.tzinfo is None else ts.astimezone(UTC).replace(tzinfo=None)
    except OverflowError as exc:  # 9999-12-31T23:00-05:00 is past datetime.max in UTC
        raise ValueError(f"timestamp {ts.isoformat()} is out of range") from exc


def default_url(data_dir: str | Path) -> str:
    """``sqlite:///<data_dir>/events.db``."""
    return f"sqlite:///{Path(data_dir).resolve() / 'events.db'}"


def _distinct(events: Sequence[Event]) -> tuple[dict[str, Event], list[str]]:
    """The batch's events by id, first of each, and the ids repeated in it; a type this
    store does not know is a ``ValueError``."""
    fresh: dict[str, Event] = {}
    duplicates: list[str] = []
    for ev in events:
        if ev.event_type not in EVENT_TYPES:
            raise ValueError(f"event_type must be one of {EVENT_TYPES}, not "
                             f"{ev.event_type!r}.")
        if ev.event_id in fresh:
            duplicates.append(ev.event_id)
        else:
            fresh[ev.event_id] = ev
    return fresh, duplicates


def _journal_row(e: Event, received: datetime) -> dict[str, object]:
    return {"event_id": e.event_id, "customer_id": e.customer_id, "kind": e.event_type,
            "product_id": e.product_id, "coupon_id": e.coupon_id, "quantity": float(e.quantity),
            "amount": float(e.amount), "timestamp": _naive_utc(e.timestamp),
            "received_at": received}


class EventStore:
    """Durable, idempotent storage of events, consents and erasures.

    Parameters
    ----------
    url : str
        SQLAlchemy URL. SQLite files are opened in WAL mode with ``synchronous=FULL`` (an
        acknowledged write survives a process kill and a power cut) and a busy timeout, so
        several server processes can share one file.
    key : bytes or str, optional
        The secret of erasure records' keyed hashes; required outside SQLite (default:
        ``privacy.key`` next to the database file, created on first use).
    """

    def __init__(self, url: str, key: bytes | str | None = None) -> None:
        self.url = url
        try:
            parsed = sa.engine.make_url(url)
            parsed.get_dialect()  # an unknown database says so first
            if not key and parsed.get_backend_name() != "sqlite":
                raise ConfigError("an event store outside SQLite needs the erasure key: set "
                                  "RECSYS_PRIVACY_KEY (a long random secret, kept like a "
                                  "password).")
            self.engine = sa.create_engine(url, **_engine_options(url))
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise ConfigError(f"event store URL is not usable ({exc}); pass an SQLAlchemy URL "
                              "such as sqlite:///data/events.db.") from exc
        try:
            if self.engine.dialect.name == "sqlite":
                sa.event.listen(self.engine, "connect", _sqlite_pragmas)
                database = self.engine.url.database
                if database and database != ":memory:":
                    Path(database).parent.mkdir(parents=True, exist_ok=True)
            _upgrade(self.engine)
            self._key = _resolve_key(self.engine.url, key)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise ConfigError(f"cannot open the event store at "
                              f"{self.engine.url.render_as_string(hide_password=True)}: "
                              f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}") from exc

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def subject(self, customer_id: str) -> str:
        """The keyed hash (HMAC-SHA256, hex) that stands for ``customer_id`` in erasure
        records: not reversible, nor linkable without the key."""
        return hmac.new(self._key, customer_id.encode("utf-8", "surrogateescape"),
                        hashlib.sha256).hexdigest()

    # -- writes -----------------------------------------------------------------------------
    def lock_journal(self, conn: sa.Connection) -> None:
        """Take the journal's write lock until ``conn``'s transaction ends (PostgreSQL; a
        SQLite write transaction holds the database's). Without it, two PostgreSQL writers
        could commit seqs out of order, and a reader whose cursor passed the later seq would
        never see the earlier one (another replica would miss an event or an erasure)."""
        if self.engine.dialect.name == "postgresql":
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_JOURNAL_LOCK)))

    def add(self, events: Sequence[Event]) -> AddResult:
        """Store new events in one transaction; ids already stored (or repeated in the batch)
        are reported as duplicates and not stored again."""
        fresh, duplicates = _distinct(events)
        buried = self._buried(fresh)
        duplicates += [i for i in fresh if i in buried]
        refused = self._refused([e for i, e in fresh.items() if i not in buried])
        fresh = {i: e for i, e in fresh.items() if i not in buried and i not in refused}
        if not fresh:
            return AddResult([], duplicates, refused)
        received = _now()
        rows = [_journal_row(e, received) for e in fresh.values()]
        with self.engine.begin() as conn:
            self.lock_journal(conn)
            seqs = self._insert_ignoring_duplicates(conn, rows)
        stored = [replace(e, seq=seqs[i]) for i, e in fresh.items() if i in seqs]
        duplicates += [i for i in fresh if i not in seqs]
        return AddResult(sorted(stored, key=lambda e: e.seq or 0), duplicates, refused)

    def _refused(self, events: Iterable[Event]) -> dict[str, str]:
        """Events of customers whose suppression is active, with the reason."""
        with self.engine.connect() as conn:
            if conn.scalar(sa.select(suppressions.c.subject).where(
                    suppressions.c.active).limit(1)) is None:
                return {}
            by_subject = {self.subject(e.customer_id): e for e in events}
            active = set(conn.scalars(sa.select(suppressions.c.subject).where(
                suppressions.c.active, suppressions.c.subject.in_(list(by_subject)))))
        return {e.event_id: ERASED_REASON for e in events
                if self.subject(e.customer_id) in active}

    def _buried(self, events: dict[str, Event]) -> set[str]:
        """Ids among ``events`` that were erased before (their tombstones)."""
        with self.engine.connect() as conn:
            if conn.scalar(sa.select(tombstones.c.event_hash).limit(1)) is None:
                return set()
            hashes = {self.subject(i): i for i in events}
            found = conn.scalars(sa.select(tombstones.c.event_hash).where(
                tombstones.c.event_hash.in_(list(hashes))))
            return {hashes[h] for h in found}

    def _insert_ignoring_duplicates(self, conn: sa.Connection, rows: list[dict[str, object]]
                                    ) -> dict[str, int]:
        dialect = self.engine.dialect.name
        if dialect in ("sqlite", "postgresql"):
            insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
            stmt = insert(journal).on_conflict_do_nothing(index_elements=["event_id"]) \
                .returning(journal.c.event_id, journal.c.seq)
            return {str(eid): int(seq) for eid, seq in conn.execute(stmt, rows)}
        # Other databases: skip ids already present; a concurrent writer of the same id makes
        # the transaction fail with IntegrityError, which the caller may retry.
        ids = [r["event_id"] for r in rows]
        known = set(conn.scalars(sa.select(journal.c.event_id).where(
            journal.c.event_id.in_(ids))))
        out: dict[str, int] = {}
        for row in rows:
            if row["event_id"] not in known:
                out[str(row["event_id"])] = int(conn.execute(
                    journal.insert().values(**row)).inserted_primary_key[0])
        return out

    def erase(self, customer_id: str) -> tuple[int, int]:
        """Delete the customer's events and consent records, keep tombstones of the event
        ids and an active suppression record (hashes only), record the erasure, then purge
        the freed bytes from the files. Returns ``(rows deleted, seq of the erasure)``."""
        now, subject = _now(), self.subject(customer_id)
        mine = journal.c.customer_id == customer_id
        with self.engine.begin() as conn:
            self.lock_journal(conn)
            ids = list(conn.scalars(sa.select(journal.c.event_id).where(
                mine, journal.c.event_id.is_not(None))))
            for chunk in range(0, len(ids), 500):
                self._insert_ignoring(conn, tombstones, "event_hash", [
                    {"event_hash": self.subject(i)} for i in ids[chunk:chunk + 500]])
            deleted = conn.execute(journal.delete().where(mine)).rowcount
            conn.execute(suppressions.delete().where(suppressions.c.subject == subject))
            conn.execute(suppressions.insert().values(subject=subject, active=True,
                                                      erased_at=now))
            seq = conn.execute(journal.insert().values(
                customer_id=subject, kind=ERASURE, timestamp=now, received_at=now,
            )).inserted_primary_key[0]
        self._purge()
        return int(deleted or 0), int(seq)

    def _insert_ignoring(self, conn: sa.Connection, table: sa.Table, key: str,
                         rows: list[dict[str, object]]) -> None:
        if not rows:
            return
        dialect = self.engine.dialect.name
        if dialect in ("sqlite", "postgresql"):
            insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
            conn.execute(insert(table).on_conflict_do_nothing(index_elements=[key]), rows)
            return
        known = set(conn.scalars(sa.select(table.c[key]).where(
            table.c[key].in_([r[key] for r in rows]))))
        fresh = [r for r in rows if r[key] not in known]
        if fresh:
            conn.execute(table.insert(), fresh)

    def _purge(self) -> None:
        """SQLite: move the WAL into the database and truncate it, so deleted rows (already
        zeroed by ``secure_delete``) leave no copy in the ``-wal`` file."""
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def set_consent(self, customer_id: str, personalization: bool) -> int:
        """Record a consent change (a consent to personalization lifts an erasure's
        suppression: the customer came back on purpose); returns its ``seq``."""
        now = _now()
        with self.engine.begin() as conn:
            self.lock_journal(conn)
            if personalization:
                conn.execute(suppressions.update().where(
                    suppressions.c.subject == self.subject(customer_id)).values(active=False))
            return int(conn.execute(journal.insert().values(
                customer_id=customer_id, kind=CONSENT, personalization=bool(personalization),
                timestamp=now, received_at=now)).inserted_primary_key[0])

    # -- reads ------------------------------------------------------------------------------
    def changes(self, after: int = 0, until: int | None = None, *,
                received_after: datetime | None = None, chunk: int = 5000) -> Iterator[Change]:
        """Every record with ``after < seq <= until`` in ``seq`` order (purchases received at
        or before ``received_after`` are skipped: the model was trained on them)."""
        cursor = after
        while True:
            query = sa.select(journal).where(journal.c.seq > cursor).order_by(
                journal.c.seq).limit(chunk)
            if until is not None:
                query = query.where(journal.c.seq <= until)
            with self.engine.connect() as conn:
                rows = conn.execute(query).mappings().all()
            for row in rows:
                change = _to_change(row)
                if received_after is not None and row["kind"] in TRAINED \
                        and row["received_at"] <= received_after:
                    continue
                yield change
            if len(rows) < chunk:
                return
            cursor = rows[-1]["seq"]

    def replay(self, since: datetime | None = None, until: int | None = None
               ) -> Iterator[Change]:
        """The journal in order up to ``seq <= until``, to rebuild fold-in state at start-up;
        purchases received at or before ``since`` (already in the model's training data,
        the bundle's ``events_until``) are left out."""
        return self.changes(0, until,
                            received_after=None if since is None else _naive_utc(since))

    def last_seq(self) -> int:
        """The highest ``seq`` written so far (0 when empty)."""
        with self.engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.max(journal.c.seq))) or 0)

    def events(self, customer_id: str | None = None) -> list[Event]:
        """Stored behavioural events, oldest first (all customers, or one)."""
        query = sa.select(journal).where(journal.c.kind.in_(EVENT_TYPES)).order_by(
            journal.c.seq)
        if customer_id is not None:
            query = query.where(journal.c.customer_id == customer_id)
        with self.engine.connect() as conn:
            return [_to_change(r) for r in conn.execute(query).mappings()]  # type: ignore[misc]

    def event_rows(self, customer_ids: Iterable[str], kinds: Sequence[str],
                   start: datetime | None = None, end: datetime | None = None, *,
                   chunk: int = 500) -> list[tuple[object, ...]]:
        """``(event_id, customer_id, kind, product_id, coupon_id, amount, timestamp)`` of
        these customers' events of these kinds with ``start <= timestamp < end`` (naive UTC),
        oldest first (``seq`` order). Only those rows and columns are read, ``chunk``
        customers per query (found by the customer index; SQLite allows 999 parameters)."""
        ids = list(dict.fromkeys(customer_ids))
        columns = (journal.c.seq, journal.c.event_id, journal.c.customer_id, journal.c.kind,
                   journal.c.product_id, journal.c.coupon_id, journal.c.amount,
                   journal.c.timestamp)
        found: list[tuple[object, ...]] = []
        with self.engine.connect() as conn:
            for k in range(0, len(ids), chunk):
                query = sa.select(*columns).where(journal.c.customer_id.in_(ids[k:k + chunk]),
                                                  journal.c.kind.in_(list(kinds)))
                if start is not None:
                    query = query.where(journal.c.timestamp >= _naive_utc(start))
                if end is not None:
                    query = query.where(journal.c.timestamp < _naive_utc(end))
                found += [tuple(r) for r in conn.execute(query)]
        found.sort(key=lambda r: r[0])  # chunks are by customer: back to the journal's order
        return [r[1:] for r in found]

    def erased_subjects(self) -> set[str]:
        """The keyed hashes of every customer ever erased (their older data stays out)."""
        with self.engine.connect() as conn:
            return set(conn.scalars(sa.select(suppressions.c.subject)))

    def erased_among(self, customer_ids: Iterable[str]) -> set[str]:
        """The ids among ``customer_ids`` that were ever erased."""
        erased = self.erased_subjects()
        return {c for c in set(customer_ids) if self.subject(c) in erased} if erased else set()

    def purchase_rows(self, since: datetime | None = None, until: datetime | None = None, *,
                      drop_opted_out: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Stored purchases and coupon redemptions with a timestamp after ``since`` (the
        dataset's end), received at or before ``until``, as canonical ``transactions`` and
        ``redemptions`` rows for training: an erased customer's events are gone already,
        and customers whose latest consent withdrew personalization are left out when
        ``drop_opted_out``."""
        query = sa.select(journal).where(journal.c.kind.in_(("purchase", "coupon_redeemed")))
        if since is not None:
            query = query.where(journal.c.timestamp > _naive_utc(since))
        if until is not None:
            query = query.where(journal.c.received_at <= _naive_utc(until))
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query.order_by(journal.c.seq)).mappings().all(),
                                 columns=[c.name for c in journal.columns])
        if drop_opted_out:
            out = {c for c, ok in self.consents().items() if not ok}
            frame = frame[~frame["customer_id"].isin(out)]
        buys = frame[(frame["kind"] == "purchase") & frame["product_id"].notna()]
        transactions = pd.DataFrame({
            "order_id": "api-" + buys["event_id"].astype(str),
            "customer_id": buys["customer_id"].astype(str),
            "product_id": buys["product_id"].astype(str),
            "quantity": buys["quantity"].astype("float64"),
            "amount": buys["amount"].astype("float64"),
            "timestamp": pd.to_datetime(buys["timestamp"]).astype("datetime64[ns]"),
            "store_id": "api"})
        used = frame[(frame["kind"] == "coupon_redeemed") & frame["coupon_id"].notna()]
        redemptions = pd.DataFrame({
            "customer_id": used["customer_id"].astype(str),
            "coupon_id": used["coupon_id"].astype(str), "campaign_id": "",
            "timestamp": pd.to_datetime(used["timestamp"]).astype("datetime64[ns]")})
        return transactions.reset_index(drop=True), redemptions.reset_index(drop=True)

    def consents(self) -> dict[str, bool]:
        """The latest recorded consent to personalization per customer."""
        query = sa.select(journal.c.customer_id, journal.c.personalization).where(
            journal.c.kind == CONSENT).order_by(journal.c.seq)
        with self.engine.connect() as conn:
            return {c: bool(p) for c, p in conn.execute(query)}

    def count(self) -> int:
        """Number of stored behavioural events."""
        with self.engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(journal).where(
                journal.c.kind.in_(EVENT_TYPES))) or 0)


def fold_in_weight(event: Event, *, purchase_weight: float, view_weight: float) -> float:
    """History weight of one event: purchases count ``purchase_weight``, views and
    add-to-cart ``view_weight``; coupon redemptions carry no product signal (0)."""
    if event.event_type == "purchase":
        return purchase_weight
    if event.event_type in ("view", "add_to_cart"):
        return view_weight
    return 0.0


def _to_change(row: sa.RowMapping) -> Change:
    if row["kind"] == CONSENT:
        return Consent(row["customer_id"], bool(row["personalization"]), row["seq"])
    if row["kind"] == ERASURE:
        return Erasure(row["customer_id"], row["seq"])  # the subject hash
    return Event(row["event_id"], row["customer_id"], row["kind"], row["timestamp"],
                 row["product_id"], row["coupon_id"], row["quantity"], row["amount"],
                 row["seq"])


def _resolve_key(url: sa.engine.URL, key: bytes | str | None) -> bytes:
    """The erasure key: given (required outside SQLite), else ``privacy.key`` next to a
    SQLite file (created once, owner-only), else a random one for an in-memory database."""
    if key:
        return key.encode() if isinstance(key, str) else key
    if url.database in (None, "", ":memory:"):
        return secrets.token_bytes(32)
    path = Path(url.database).parent / KEY_FILE
    if not path.exists():  # written whole, then linked: concurrent workers agree on one key
        tmp = path.with_name(f"{KEY_FILE}.{secrets.token_hex(8)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip().encode()


MIGRATIONS = Path(__file__).with_name("migrations")
_LOCK_ID = 0x7265637379735F31  # pg_advisory_xact_lock key of schema upgrades ('recsys_1')
_JOURNAL_LOCK = 0x7265637379735F32  # ... and of journal writes ('recsys_2')


def _upgrade(engine: sa.Engine) -> None:
    """Bring the tables to the newest schema (Alembic ``upgrade head``) in one transaction
    that first takes a lock, so server workers opening a fresh store together migrate one
    after the other (the later ones find the schema at head and do nothing)."""
    from alembic import command
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    migrator = engine
    if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        # pysqlite opens no transaction before DDL; BEGIN IMMEDIATE takes the write lock.
        migrator = sa.create_engine(engine.url, poolclass=sa.pool.NullPool, connect_args={
            "timeout": 30, "isolation_level": None})
        sa.event.listen(migrator, "connect", _sqlite_pragmas)
        sa.event.listen(migrator, "begin",
                        lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    try:
        with migrator.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_ID)))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except CommandError as exc:  # e.g. a store a newer version migrated further
        raise ConfigError(f"the event store's schema is not one this version knows ({exc}); "
                          "run the version that last wrote it, or a newer one.") from exc
    finally:
        if migrator is not engine:
            migrator.dispose()


def _engine_options(url: str) -> dict[str, object]:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return {"pool_pre_ping": True}
    if parsed.database in (None, "", ":memory:"):
        return {"poolclass": sa.pool.StaticPool, "connect_args": {"check_same_thread": False}}
    return {"connect_args": {"timeout": 30, "check_same_thread": False}}


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA busy_timeout=30000")
    _enter_wal(cur)
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA secure_delete=ON")  # erased rows are overwritten, not just unlinked
    cur.close()


def _enter_wal(cur: sqlite3.Cursor, patience: float = 30.0) -> None:
    """Switch the file to WAL mode, waiting out other connections for up to ``patience``
    seconds: SQLite refuses a journal-mode change that races another process's ("database
    is locked") at once, without calling the busy handler, so workers opening a fresh file
    together would otherwise fail."""
    deadline = time.monotonic() + patience
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


__all__ = ["Event", "Consent", "Erasure", "Change", "AddResult", "EventStore", "default_url",
           "fold_in_weight", "CONSENT", "ERASURE"]
