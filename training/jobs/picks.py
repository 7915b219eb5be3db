"""Batch picks for campaigns: top-N products (and coupons) for a whole audience, to a file.

Runs the same ``recsys.policy.Engine`` as the API, chunk by chunk on ``workers`` threads
(numpy and BLAS release the GIL). Each chunk's coupons spend its pro-rata share of the
campaign budget, so chunks do not depend on each other. Each finished chunk is written to
``<out>.parts/``, so a killed job resumes where it stopped and ends with the same file; the
final file is streamed from the parts to a temporary name and renamed, so readers never see
a half-written file. Memory is bounded by the chunk size, not the audience size.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import shutil
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recsys.coupons.assign import BudgetState
from recsys.errors import DataError
from recsys.events import EventStore
from recsys.heap import settle_heap
from recsys.policy.pipeline import BatchAnswers, Engine

FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "jsonl"}
LIST_COLUMNS = ("product_ids", "scores", "reasons", "reason_codes", "coupon_ids",
                "coupon_reasons")
SCHEMA = pa.schema([
    ("customer_id", pa.string()), ("product_ids", pa.list_(pa.string())),
    ("scores", pa.list_(pa.float32())), ("reasons", pa.list_(pa.string())),
    ("reason_codes", pa.list_(pa.string())), ("personalized", pa.bool_()),
    ("coupon_ids", pa.list_(pa.string())), ("coupon_reasons", pa.list_(pa.string())),
    ("model_version", pa.string()), ("run_id", pa.string()),
])
ATTRIBUTES = ("segment", "stage", "tier")


@dataclass(frozen=True)
class PicksSummary:
    """What a batch run produced (logged to MLflow)."""

    audience: int  # customers selected
    written: int
    skipped_no_consent: int  # opted out of personalization
    skipped_erased: int  # erased through the API (and not back since)
    skipped_no_marketing: int  # no consent to marketing: no campaign email at all
    coverage: float  # distinct products picked / catalog size
    coupons_issued: int
    coupon_budget: float  # the campaign's expected-cost budget (0 without a catalog)
    coupon_budget_used: float
    chunks_resumed: int


# -- the API's journal ----------------------------------------------------------------------
def replay_journal(engine: Engine, store: EventStore) -> int:
    """Apply the journal to ``engine`` with the API's rules (``Engine.apply_changes``;
    events the bundle was trained on are skipped); returns the journal's last ``seq`` (part
    of the job's identity)."""
    until = store.last_seq()
    engine.apply_changes(store.replay(engine.bundle.events_until, until=until),
                         store.erased_subjects(), store.subject)
    return until


# -- audiences ------------------------------------------------------------------------------
def select_audience(engine: Engine, audience: str) -> np.ndarray:
    """Customer ids matching ``audience`` (object array, no duplicates).

    Terms joined by ``&`` must all hold: ``all``; ``segment=A[,B]``, ``stage=…``,
    ``tier=…``; ``recency<=DAYS`` / ``recency>=DAYS`` (days since the last purchase);
    one explicit list, ``ids=a,b`` or ``@file.txt`` (one id per line), kept in its order.
    Customers unknown to the bundle can only come from an explicit list.
    """
    terms = [t.strip() for t in audience.split("&") if t.strip()]
    lists = [t for t in terms if t.startswith(("@", "ids="))]
    if not terms or len(lists) > 1:
        raise DataError(f"audience {audience!r}: give at least one term and at most one id "
                        "list (ids= or @file)")
    frame = engine.bundle.customers
    if lists:
        ids = _id_list(lists[0])
        rows = engine.customers.to_index(ids, missing="mark")
    else:
        ids = frame["customer_id"].astype(str).to_numpy(dtype=object)
        rows = np.arange(len(ids))
    keep = np.ones(len(ids), bool)
    for term in terms:
        if term != "all" and term not in lists:
            keep &= (rows >= 0) & _matches(frame, term)[np.clip(rows, 0, None)]
    return ids[keep]


def _id_list(term: str) -> np.ndarray:
    if term.startswith("@"):
        path = Path(term[1:])
        if not path.is_file():
            raise DataError(f"audience file {path} does not exist")
        values = path.read_text().splitlines()
    else:
        values = term[4:].split(",")
    ids = [v.strip() for v in values if v.strip()]
    return np.array(list(dict.fromkeys(ids)), dtype=object)  # one email per customer


def _matches(frame: Any, term: str) -> np.ndarray:
    """Bundle rows matching one attribute or recency term."""
    for op in ("<=", ">="):
        key, sep, value = term.partition(op)
        if sep and key.strip() == "recency":
            if "recency_days" not in frame:
                raise DataError("this bundle has no recency_days column; train with a "
                                "customers config to target by last purchase")
            try:
                days = float(value)
            except ValueError:
                raise DataError(f"audience term {term!r}: {value!r} is not a number of "
                                "days") from None
            recency = frame["recency_days"].to_numpy(dtype=float)
            return (recency <= days) if op == "<=" else (recency >= days)
    key, sep, value = term.partition("=")
    if not sep or key not in ATTRIBUTES:
        raise DataError(f"audience term {term!r} is not understood; use all, segment=, "
                        "stage=, tier=, recency<=DAYS, recency>=DAYS, ids=a,b or @file.txt, "
                        "joined by &")
    if key not in frame:
        raise DataError(f"this bundle has no {key} column; train with a customers config")
    column = frame[key].astype(str)
    wanted = {v.strip() for v in value.split(",") if v.strip()}
    unknown = wanted - set(column.unique())
    if unknown:
        raise DataError(f"no customer has {key} {sorted(unknown)}; known: "
                        f"{sorted(column.unique())}")
    return column.isin(wanted).to_numpy()


# -- the job --------------------------------------------------------------------------------
@dataclass
class PicksJob:
    """One batch run: its audience after consent, its options and where its parts live."""

    engine: Engine
    out: Path
    ids: np.ndarray  # customers who get a row, in output order
    selected: int
    skipped_no_consent: int
    skipped_erased: int
    skipped_no_marketing: int
    n: int
    coupons: int
    chunk_size: int
    filters: dict[str, Any]
    key: str
    fmt: str = field(init=False)

    def __post_init__(self) -> None:
        self.fmt = FORMATS[self.out.suffix]

    @classmethod
    def prepare(cls, engine: Engine, audience: str, out: Path, *, n: int = 10,
                coupons: int = 0, chunk_size: int = 5000, fingerprint: str = "",
                **filters: Any) -> PicksJob:
        """Select the audience and drop customers without consent; ``fingerprint`` names
        outside state (e.g. the journal position) that must match for a run to resume."""
        if out.suffix not in FORMATS:
            raise DataError(f"output {out} must end in .parquet, .csv or .jsonl")
        if n < 1 or coupons < 0 or chunk_size < 1:
            raise DataError("n and chunk_size must be at least 1 and coupons at least 0")
        engine.check_question(n, filters.get("min_price"), filters.get("max_price"))
        ids = select_audience(engine, audience)
        rows = engine.customers.to_index(ids, missing="mark")
        personal = engine.personalizable(ids, rows)
        frame = engine.bundle.customers
        marketing = np.ones(len(ids), bool)
        if "consent_marketing" in frame:
            allowed = frame["consent_marketing"].fillna(True).to_numpy(dtype=bool)
            marketing = (rows < 0) | allowed[np.clip(rows, 0, None)]
        digest = hashlib.sha256()
        digest.update(json.dumps([engine.bundle.manifest.get("bundle_id"), engine.version, n,
                                  coupons, chunk_size, filters, fingerprint,
                                  dt.date.today().isoformat() if coupons else ""],
                                 sort_keys=True, default=str).encode())
        keep = personal & marketing
        digest.update("\n".join(ids[keep]).encode())
        erased = np.fromiter((engine.is_erased(c) for c in ids[~personal]), bool)
        return cls(engine, out, ids[keep], len(ids), int((~erased).sum()), int(erased.sum()),
                   int((personal & ~marketing).sum()), n, coupons, chunk_size, filters,
                   digest.hexdigest()[:16])

    @property
    def parts(self) -> Path:
        return self.out.with_name(self.out.name + ".parts")

    @property
    def chunks(self) -> int:
        return -(-len(self.ids) // self.chunk_size)

    def _part(self, c: int) -> Path:
        return self.parts / f"part-{c:06d}.parquet"

    def _resumable(self) -> bool:
        key = self.parts / "KEY"
        return key.is_file() and key.read_text() == self.key

    def resumable_run_id(self) -> str | None:
        """The run id of an unfinished run of this same job, to continue it."""
        run = self.parts / "RUN"
        if not (self._resumable() and run.is_file()):
            return None
        return run.read_text() or None

    def done_chunks(self) -> int:
        """Finished chunks of an unfinished run of this job (a prefix: they are written in
        order)."""
        if not self._resumable():
            return 0
        c = 0
        while c < self.chunks and self._part(c).is_file():
            c += 1
        return c

    def done_customers(self) -> int:
        return min(self.done_chunks() * self.chunk_size, len(self.ids))

    def run(self, run_id: str = "", *, workers: int = 2,
            progress: Callable[[int], None] | None = None) -> PicksSummary:
        """Compute the missing chunks, then write the output file; ``progress`` is called
        with the customers of each newly finished chunk. Rows carry the ``run_id`` of the
        run that started the job, also when it is resumed."""
        resumed = self.done_chunks()
        if resumed:
            run_id = (self.parts / "RUN").read_text()
        else:
            shutil.rmtree(self.parts, ignore_errors=True)  # another job's leftovers
            self.parts.mkdir(parents=True)
            (self.parts / "RUN").write_text(run_id)
            (self.parts / "KEY").write_text(self.key)
        budget = self.engine.coupon_budget() if self.coupons else None
        self._compute(range(resumed, self.chunks), budget, run_id, workers, progress)
        stats = self._assemble()
        shutil.rmtree(self.parts)
        return PicksSummary(
            self.selected, stats.rows, self.skipped_no_consent, self.skipped_erased,
            self.skipped_no_marketing,
            len(stats.products) / max(self.engine.n_items, 1), stats.coupons,
            0.0 if budget is None else budget.budget, stats.budget_used, resumed)

    def _compute(self, todo: range, budget: BudgetState | None, run_id: str, workers: int,
                 progress: Callable[[int], None] | None) -> None:
        """Compute chunks on ``workers`` threads (at most ``workers + 1`` in flight) and
        write each part, in chunk order, as soon as it is ready."""
        pending = deque[tuple[int, Future[pa.Table]]]()
        with ThreadPoolExecutor(max(workers, 1)) as pool:
            try:
                for c in todo:
                    pending.append((c, pool.submit(self._chunk, c, budget, run_id)))
                    while len(pending) > workers:
                        self._write(*pending.popleft(), progress)
                while pending:
                    self._write(*pending.popleft(), progress)
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise

    def _chunk(self, c: int, budget: BudgetState | None, run_id: str) -> pa.Table:
        """Rows of chunk ``c``; its coupons spend the chunk's share of the campaign budget,
        so every chunk can be computed alone, in any order (threads, resumption)."""
        start, stop = c * self.chunk_size, min((c + 1) * self.chunk_size, len(self.ids))
        return audience_slice(self.engine, self.ids[start:stop], start, len(self.ids),
                              n=self.n, coupons=self.coupons, budget=budget, run_id=run_id,
                              filters=self.filters)

    def _write(self, c: int, table: Future[pa.Table],
               progress: Callable[[int], None] | None) -> None:
        part = self._part(c)
        tmp = part.with_name(part.name + ".tmp")
        pq.write_table(table.result(), tmp)
        tmp.replace(part)
        if progress:
            progress(table.result().num_rows)

    def _assemble(self) -> _Stats:
        """Stream the parts into the output file (temp name, then rename), counting."""
        tmp = self.out.with_name(f".{self.out.name}.tmp")
        stats = _Stats()
        tables = (stats.add(pq.read_table(self._part(c))) for c in range(self.chunks))
        if self.fmt == "parquet":
            with pq.ParquetWriter(tmp, SCHEMA) as writer:
                for table in tables:
                    writer.write_table(table)
        else:
            with tmp.open("w", encoding="utf-8", newline="") as text:
                if self.fmt == "csv":
                    rows = csv.writer(text, lineterminator="\n")
                    rows.writerow(SCHEMA.names)
                    for table in tables:
                        rows.writerows(_csv_rows(table))
                else:
                    for table in tables:
                        text.writelines(_json_lines(table))
        tmp.replace(self.out)
        return stats


@dataclass
class _Stats:
    rows: int = 0
    coupons: int = 0
    budget_used: float = 0.0
    products: set[str] = field(default_factory=set)

    def add(self, table: pa.Table) -> pa.Table:
        """Count one part; returns it without its metadata."""
        self.rows += table.num_rows
        self.products.update(pc.unique(pc.list_flatten(table["product_ids"])).to_pylist())
        self.coupons += int(pc.sum(pc.list_value_length(table["coupon_ids"])).as_py() or 0)
        self.budget_used += float((table.schema.metadata or {}).get(b"budget_used", b"0"))
        return table.replace_schema_metadata(None)


def audience_slice(engine: Engine, ids: np.ndarray, start: int, total: int, *, n: int,
                   coupons: int, budget: BudgetState | None, run_id: str,
                   filters: dict[str, Any]) -> pa.Table:
    """Rows of ``ids``, positions ``start:start + len(ids)`` of an audience of ``total``;
    their coupons spend the slice's share of ``budget`` (``budget_used`` in the table's
    metadata), so any slice can be computed alone (threads, resumption, Spark tasks)."""
    ranking = engine.rank_many(list(ids), n, **filters)
    share = None if budget is None else budget_share(budget, start, start + len(ids), total)
    allotted = 0.0 if share is None else share.budget
    table = chunk_table(engine, ids, ranking, coupons, share, run_id)
    spent = 0.0 if share is None else allotted - share.budget
    return table.replace_schema_metadata({b"budget_used": repr(spent).encode()})


def budget_share(budget: BudgetState, start: int, stop: int, total: int) -> BudgetState:
    """The part of ``budget`` for customers ``start:stop`` of ``total``: money pro rata,
    issue caps apportioned so the parts add up to the whole."""
    issues = [i * stop // total - i * start // total for i in budget.coupon_issues.tolist()]
    part = (stop - start) / total
    return BudgetState(budget.coupon_budget * part, np.array(issues, np.int64),
                       budget.budget * part)


def chunk_table(engine: Engine, ids: np.ndarray, ranking: BatchAnswers, coupons: int,
                budget: BudgetState | None, run_id: str) -> pa.Table:
    """One chunk's rows: the ranking's picks and, with ``coupons``, the coupons chosen
    against ``budget`` (spent in place)."""
    valid = ranking.ids >= 0
    offsets = pa.array(np.concatenate([[0], np.cumsum(valid.sum(axis=1))]), pa.int32())

    def lists(values: np.ndarray, kind: pa.DataType) -> pa.ListArray:
        return pa.ListArray.from_arrays(offsets, pa.array(values[valid], kind))

    offers = engine.coupons_many(list(ids), coupons, budget=budget) if coupons else \
        [[] for _ in ids]
    return pa.table({
        "customer_id": pa.array(ids, pa.string()),
        "product_ids": lists(engine.product_ids[np.where(valid, ranking.ids, 0)], pa.string()),
        "scores": lists(ranking.scores, pa.float32()),
        "reasons": lists(ranking.reasons, pa.string()),
        "reason_codes": lists(ranking.codes, pa.string()),
        "personalized": pa.array([f is None for f in ranking.fallback], pa.bool_()),
        "coupon_ids": pa.array([[o.coupon_id for o in row] for row in offers],
                               pa.list_(pa.string())),
        "coupon_reasons": pa.array([[o.reason for o in row] for row in offers],
                                   pa.list_(pa.string())),
        "model_version": pa.array(np.full(len(ids), engine.version, object), pa.string()),
        "run_id": pa.array(np.full(len(ids), run_id, object), pa.string()),
    }, schema=SCHEMA)


def write_picks(engine: Engine, audience: str, out: Path, *, n: int = 10, coupons: int = 0,
                chunk_size: int = 5000, run_id: str = "", workers: int = 2,
                progress: Callable[[int], None] | None = None, **filters: Any
                ) -> PicksSummary:
    """Write picks for ``audience`` to ``out`` (.parquet, .csv or .jsonl), resumably."""
    settle_heap()
    job = PicksJob.prepare(engine, audience, out, n=n, coupons=coupons,
                           chunk_size=chunk_size, **filters)
    return job.run(run_id, workers=workers, progress=progress)


def _json_lines(table: pa.Table) -> Iterable[str]:
    """One JSON object per row; floats written exactly."""
    columns = table.to_pydict()
    for r in range(table.num_rows):
        yield json.dumps({name: columns[name][r] for name in SCHEMA.names}) + "\n"


def _csv_rows(table: pa.Table) -> Iterable[list[object]]:
    """CSV rows (list cells as JSON), text cells made safe for spreadsheets."""
    columns = table.to_pydict()
    for r in range(table.num_rows):
        yield [safe_cell(json.dumps(columns[k][r]) if k in LIST_COLUMNS else columns[k][r])
               for k in SCHEMA.names]


def safe_cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula (starts with ``=``, ``+``, ``-``,
    ``@``, tab or carriage return) gets a leading ``'`` (OWASP CSV injection); numbers stay
    numbers."""
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return value


__all__ = ["FORMATS", "SCHEMA", "PicksJob", "PicksSummary", "audience_slice", "budget_share",
           "chunk_table", "replay_journal", "safe_cell", "select_audience", "write_picks"]
