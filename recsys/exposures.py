"""The exposure log: what each answer showed to whom, for attribution and experiments.

One row per answer that showed products or coupons to a known customer: request id,
customer, variant, model version, mode, the product ids and coupon ids in the order shown,
the coupons withheld because the customer is in their holdout group, and the time. The table
``recsys_exposures`` lives in the event store's database (its own SQLAlchemy table, same
engine), so erasure and backups cover both.

The API never writes it on the request path: :class:`ExposureWriter` turns each exposure
into a tuple of column values (JSON and timestamp text made there, a few microseconds) on a
bounded in-memory deque, and a background thread inserts them with the driver's own SQL, a
multi-row ``INSERT`` per chunk of rows (a full deque drops rows and counts them rather than
slowing answers down). The thread holds the GIL only to bind each chunk's values (the
database's work runs without it), so a flush holds up its worker's requests in short pieces.
:meth:`ExposureWriter.forget` drops a customer's queued rows and deletes the stored ones
(erasure); it deletes once more a few flush intervals later, for rows another server process
had queued before the erasure.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

log = logging.getLogger(__name__)
ID_LENGTH = 128
_metadata = sa.MetaData()
exposures = sa.Table(
    "recsys_exposures", _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False),
    sa.Column("customer_id", sa.String(ID_LENGTH), nullable=False, index=True),
    sa.Column("variant", sa.String(32), nullable=False),
    sa.Column("model_version", sa.String(64), nullable=False),
    sa.Column("mode", sa.String(64), nullable=False),
    sa.Column("product_ids", sa.Text, nullable=False),  # JSON list, in the order shown
    sa.Column("coupon_ids", sa.Text, nullable=False),
    sa.Column("held_out", sa.Text, nullable=False),  # coupons withheld (holdout group)
    sa.Column("shown_at", sa.DateTime, nullable=False, index=True),
)


@dataclass(frozen=True)
class Exposure:
    """One answer as the customer saw it (``shown_at`` naive UTC)."""

    request_id: str
    customer_id: str
    variant: str
    model_version: str
    mode: str
    product_ids: tuple[str, ...]
    coupon_ids: tuple[str, ...]
    held_out: tuple[str, ...]
    shown_at: datetime

    def values(self, stamp: Callable[[datetime], object] = lambda t: t) -> Row:
        """The row's column values in ``COLUMNS`` order (``stamp`` formats ``shown_at``)."""
        return (self.request_id, self.customer_id, self.variant, self.model_version,
                self.mode, _json_list(self.product_ids), _json_list(self.coupon_ids),
                _json_list(self.held_out), stamp(self.shown_at))


def _json_list(ids: tuple[str, ...]) -> str:
    return json.dumps(list(ids)) if ids else "[]"  # most answers hold out no coupon


COLUMNS = ("request_id", "customer_id", "variant", "model_version", "mode", "product_ids",
           "coupon_ids", "held_out", "shown_at")
Row = tuple[object, ...]  # column values in COLUMNS order, ready for the driver
CHUNK = 250  # rows per INSERT (2,250 values): each statement is one GIL hand-off, and
# under CPU contention every hand-off can wait milliseconds for the other thread
_MARKS = {"qmark": "?", "format": "%s", "pyformat": "%s"}  # positional paramstyles


def now() -> datetime:
    """The current time as naive UTC (the store's convention)."""
    return datetime.now(UTC).replace(tzinfo=None)


class ExposureLog:
    """The exposure table on an SQLAlchemy engine (pass the event store's ``engine``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine  # the table comes from the store's migrations (0003_exposures)
        dialect = engine.dialect
        processor = exposures.c.shown_at.type.dialect_impl(dialect).bind_processor(dialect)
        # shown_at as this database stores it (SQLite: text), made where the row is built
        self.stamp: Callable[[datetime], object] = processor or (lambda t: t)
        self._mark = _MARKS.get(dialect.paramstyle)
        self._sql: dict[int, str] = {}

    def add(self, rows: Sequence[Exposure]) -> None:
        """Insert rows in one transaction."""
        self.add_values([r.values(self.stamp) for r in rows])

    def add_values(self, rows: Sequence[Row]) -> None:
        """Insert rows of column values (``Exposure.values(self.stamp)``) in one transaction,
        a multi-row INSERT per ``CHUNK`` rows in the driver's own SQL."""
        if not rows:
            return
        with self.engine.begin() as conn:
            if self._mark is None:  # a driver with named parameters: SQLAlchemy's insert
                conn.execute(exposures.insert(), [dict(zip(COLUMNS, r, strict=True))
                                                  for r in rows])
                return
            for k in range(0, len(rows), CHUNK):
                chunk = rows[k:k + CHUNK]
                conn.exec_driver_sql(self._insert(len(chunk)),
                                     tuple(v for row in chunk for v in row))

    def _insert(self, n: int) -> str:
        """``INSERT ... VALUES (...), (...)`` for ``n`` rows (kept per size)."""
        if n not in self._sql:
            group = "(" + ", ".join([self._mark or "?"] * len(COLUMNS)) + ")"
            self._sql[n] = (f"INSERT INTO {exposures.name} ({', '.join(COLUMNS)}) VALUES "
                            + ", ".join([group] * n))
        return self._sql[n]

    def erase(self, customer_ids: Iterable[str]) -> int:
        """Delete these customers' exposures; returns the rows deleted."""
        ids = list(customer_ids)
        if not ids:
            return 0
        with self.engine.begin() as conn:
            return int(conn.execute(exposures.delete().where(
                exposures.c.customer_id.in_(ids))).rowcount or 0)

    def count(self, customer_id: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(exposures)
        if customer_id is not None:
            query = query.where(exposures.c.customer_id == customer_id)
        with self.engine.connect() as conn:
            return int(conn.scalar(query) or 0)

    def frame(self, since: datetime | None = None, until: datetime | None = None
              ) -> pd.DataFrame:
        """Exposures (optionally ``since <= shown_at < until``) as the frame
        ``recsys.experiments.analysis.analyze`` reads; id columns hold lists."""
        query = sa.select(exposures).order_by(exposures.c.id)
        if since is not None:
            query = query.where(exposures.c.shown_at >= since)
        if until is not None:
            query = query.where(exposures.c.shown_at < until)
        with self.engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).mappings().all(),
                                 columns=[c.name for c in exposures.columns])
        for column in ("product_ids", "coupon_ids", "held_out"):
            frame[column] = frame[column].map(json.loads)
        frame["shown_at"] = pd.to_datetime(frame["shown_at"])
        return frame.drop(columns="id")


class ExposureWriter:
    """Writes exposures off the request path: ``log`` only builds the row's values and
    appends them; a daemon thread inserts what waits every ``interval`` seconds (or sooner
    when ``batch`` rows wait)."""

    def __init__(self, target: ExposureLog, *, interval: float = 0.5, batch: int = 500,
                 capacity: int = 100_000) -> None:
        self.target, self.interval, self.batch = target, interval, batch
        self.capacity = capacity
        self.dropped = 0  # rows lost to a full deque or a failed write
        # Erasures to repeat once every process has flushed what it queued before them.
        self.recheck = 2 * interval + 1.0
        self._pending: list[tuple[float, frozenset[str]]] = []
        # deque.append and popleft are atomic: the request side takes no lock
        self._rows: deque[Row] = deque()
        self._lock = threading.Lock()  # one flush at a time (the thread, forget, close)
        self._stop = threading.Event()  # wakes the thread early
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="recsys-exposures", daemon=True)
        self._thread.start()

    def log(self, exposure: Exposure) -> None:
        """Queue one row (never blocks)."""
        waiting = len(self._rows)
        if waiting >= self.capacity:
            self.dropped += 1
            return
        self._rows.append(exposure.values(self.target.stamp))
        if waiting + 1 == self.batch:
            self._stop.set()  # wake the writer early; it clears the flag

    def flush(self, skip: frozenset[str] = frozenset()) -> int:
        """Write everything queued now (except ``skip`` customers' rows); returns rows written."""
        with self._lock:
            rows: list[Row] = []
            for _ in range(len(self._rows)):
                rows.append(self._rows.popleft())
            if skip:
                rows = [r for r in rows if r[1] not in skip]  # r[1]: customer_id
            for k in range(0, len(rows), self.batch):
                try:
                    self.target.add_values(rows[k:k + self.batch])
                except Exception as exc:  # keep serving through a database hiccup
                    self.dropped += len(rows) - k
                    log.warning("exposure write failed, %d rows lost: %s: %s", len(rows) - k,
                                type(exc).__name__, exc)
                    break
            return len(rows)

    def forget(self, customer_ids: Iterable[str]) -> int:
        """Erasure: drop the customers' queued rows and delete their stored ones."""
        ids = frozenset(customer_ids)
        self.flush(skip=ids)
        with self._lock:
            self._pending.append((time.monotonic() + self.recheck, ids))
        return self.target.erase(ids)

    def close(self) -> None:
        """Stop the thread and write what is left."""
        self._closing = True
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()
        with self._lock:
            pending, self._pending = self._pending, []
        for _, ids in pending:
            self.target.erase(ids)

    def _run(self) -> None:
        while not self._closing:
            self._stop.wait(self.interval)
            self._stop.clear()
            self.flush()
            self._erase_again()

    def _erase_again(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [ids for at, ids in self._pending if at <= now]
            self._pending = [(at, ids) for at, ids in self._pending if at > now]
        for ids in due:
            try:
                self.target.erase(ids)
            except Exception as exc:
                log.warning("exposure erasure re-check failed: %s: %s", type(exc).__name__,
                            exc)


__all__ = ["Exposure", "ExposureLog", "ExposureWriter", "exposures", "now", "COLUMNS",
           "Row"]
