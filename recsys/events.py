"""The event store: customer events, consent records and erasures in one SQLAlchemy table.

One append-only journal with a single increasing ``seq`` gives every reader (several API
workers, batch picks, training) the same total order of what happened: behavioural events
(``view``, ``add_to_cart``, ``purchase``, ``coupon_redeemed``), consent changes and erasures.
SQLite in WAL mode is the default (``sqlite:///<data dir>/events.db``); any SQLAlchemy URL
(e.g. ``postgresql+psycopg://...``) works. Writes are committed before they return, so a
caller may acknowledge them; ``event_id`` makes writes idempotent.

Erasure deletes the customer's events and consent records and appends an erasure record
that stays: ``erased_customers()`` is the list training reads to leave them out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

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
    """The customer asked to be forgotten."""

    customer_id: str
    seq: int


Change = Event | Consent | Erasure


@dataclass(frozen=True)
class AddResult:
    """What ``EventStore.add`` did: new events (with their ``seq``) and duplicate ids."""

    stored: list[Event]
    duplicates: list[str]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _naive_utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo is None else ts.astimezone(UTC).replace(tzinfo=None)


def default_url(data_dir: str | Path) -> str:
    """``sqlite:///<data_dir>/events.db``."""
    return f"sqlite:///{Path(data_dir).resolve() / 'events.db'}"


class EventStore:
    """Durable, idempotent storage of events, consents and erasures.

    Parameters
    ----------
    url : str
        SQLAlchemy URL. SQLite files are opened in WAL mode with ``synchronous=FULL`` (an
        acknowledged write survives a process kill and a power cut) and a busy timeout, so
        several server processes can share one file.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        try:
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
            _create_tables(self.engine)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise ConfigError(f"cannot open the event store at "
                              f"{self.engine.url.render_as_string(hide_password=True)}: "
                              f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}") from exc

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    # -- writes -----------------------------------------------------------------------------
    def add(self, events: Sequence[Event]) -> AddResult:
        """Store new events in one transaction; ids already stored (or repeated in the batch)
        are reported as duplicates and not stored again."""
        fresh: dict[str, Event] = {}
        duplicates: list[str] = []
        for ev in events:
            if ev.event_type not in EVENT_TYPES:
                raise ValueError(f"event_type must be one of {EVENT_TYPES}, not "
                                 f"{ev.event_type!r}.")
            (duplicates.append(ev.event_id) if ev.event_id in fresh
             else fresh.__setitem__(ev.event_id, ev))
        if not fresh:
            return AddResult([], duplicates)
        received = _now()
        rows = [{"event_id": e.event_id, "customer_id": e.customer_id, "kind": e.event_type,
                 "product_id": e.product_id, "coupon_id": e.coupon_id,
                 "quantity": float(e.quantity), "amount": float(e.amount),
                 "timestamp": _naive_utc(e.timestamp), "received_at": received}
                for e in fresh.values()]
        with self.engine.begin() as conn:
            seqs = self._insert_ignoring_duplicates(conn, rows)
        stored = [replace(e, seq=seqs[i]) for i, e in fresh.items() if i in seqs]
        duplicates += [i for i in fresh if i not in seqs]
        return AddResult(sorted(stored, key=lambda e: e.seq or 0), duplicates)

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
        """Delete the customer's events and consent records, then record the erasure.
        Returns ``(rows deleted, seq of the erasure record)``."""
        now = _now()
        with self.engine.begin() as conn:
            deleted = conn.execute(journal.delete().where(
                journal.c.customer_id == customer_id, journal.c.kind != ERASURE)).rowcount
            seq = conn.execute(journal.insert().values(
                customer_id=customer_id, kind=ERASURE, timestamp=now, received_at=now,
            )).inserted_primary_key[0]
        return int(deleted or 0), int(seq)

    def set_consent(self, customer_id: str, personalization: bool) -> int:
        """Record a consent change; returns its ``seq``."""
        now = _now()
        with self.engine.begin() as conn:
            return int(conn.execute(journal.insert().values(
                customer_id=customer_id, kind=CONSENT, personalization=bool(personalization),
                timestamp=now, received_at=now)).inserted_primary_key[0])

    # -- reads ------------------------------------------------------------------------------
    def changes(self, after: int = 0, until: int | None = None, *,
                received_after: datetime | None = None, chunk: int = 5000) -> Iterator[Change]:
        """Every record with ``after < seq <= until`` in ``seq`` order (events received at or
        before ``received_after`` are skipped: the model was trained on them)."""
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
                if received_after is not None and isinstance(change, Event) \
                        and row["received_at"] <= received_after:
                    continue
                yield change
            if len(rows) < chunk:
                return
            cursor = rows[-1]["seq"]

    def replay(self, since: datetime | None = None, until: int | None = None
               ) -> Iterator[Change]:
        """The journal in order up to ``seq <= until``, to rebuild fold-in state at start-up;
        events received at or before ``since`` (already in the model's training data) are
        left out."""
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

    def erased_customers(self) -> set[str]:
        """Every customer who asked to be forgotten (training leaves them out)."""
        with self.engine.connect() as conn:
            return set(conn.scalars(sa.select(journal.c.customer_id).where(
                journal.c.kind == ERASURE)))

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
        return Erasure(row["customer_id"], row["seq"])
    return Event(row["event_id"], row["customer_id"], row["kind"], row["timestamp"],
                 row["product_id"], row["coupon_id"], row["quantity"], row["amount"],
                 row["seq"])


def _create_tables(engine: sa.Engine) -> None:
    """Create the journal if missing. Server workers start together on a fresh store: when
    another process creates it between the check and the create, check again."""
    try:
        _metadata.create_all(engine)
    except (sa.exc.OperationalError, sa.exc.ProgrammingError, sa.exc.IntegrityError):
        _metadata.create_all(engine)


def _engine_options(url: str) -> dict[str, object]:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return {"pool_pre_ping": True}
    if parsed.database in (None, "", ":memory:"):
        return {"poolclass": sa.pool.StaticPool, "connect_args": {"check_same_thread": False}}
    return {"connect_args": {"timeout": 30, "check_same_thread": False}}


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


__all__ = ["Event", "Consent", "Erasure", "Change", "AddResult", "EventStore", "default_url",
           "fold_in_weight", "CONSENT", "ERASURE"]
