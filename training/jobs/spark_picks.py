"""Batch picks on Apache Spark (`recsys picks --engine spark`): the in-process job's chunks as
Spark tasks, for audiences and clusters larger than one process.

The driver does what ``training/jobs/picks.py`` does before computing anything: it loads the
bundle, replays the event journal and selects the audience minus the customers without
consent (``PicksJob.prepare``). The journal it replays is a snapshot (one SQLite file) that
every executor replays too, so all of them see the same consents, erasures and fresh events.
The bundle and the snapshot, staged in one directory named for the job, are shipped once per
executor (``SparkContext.addFile``); the audience and the options are broadcast. Each Python
worker loads the bundle once and keeps the engine for the tasks that follow. One task
computes one chunk with ``audience_slice``, the function the in-process job's threads call,
so the rows are the same.

The output is a directory of Parquet files, one per chunk (``part-000042.parquet``, in
audience order), which Spark, pyarrow and pandas read as one table. Each part is written under
a hidden temporary name and renamed, so a failed run leaves only whole parts; running the same
job again (same ``_KEY``) computes only the missing ones. Paths may be local or any URI that
``pyarrow.fs`` opens (``s3://``, ``gs://``, ``hdfs://``).
"""

from __future__ import annotations

import shutil
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import sqlalchemy as sa

from recsys.bundle import read_bundle
from recsys.coupons.assign import BudgetState
from recsys.events import EventStore
from recsys.heap import settle_heap
from recsys.policy.pipeline import Engine
from training.jobs.picks import PicksJob, PicksSummary, audience_slice, replay_journal

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

STATS = pa.schema([("chunk", pa.int64()), ("rows", pa.int64()), ("coupons", pa.int64()),
                   ("budget_used", pa.float64()), ("products", pa.list_(pa.string())),
                   ("resumed", pa.bool_())])
STATS_DDL = ("chunk long, rows long, coupons long, budget_used double, products array<string>, "
             "resumed boolean")
_WORKER: dict[str, Engine] = {}  # this Python worker's engine, by job key


def snapshot_journal(store: EventStore, directory: Path) -> str:
    """Copy ``store`` as it is now into ``directory/journal.db`` (every table, whatever the
    store's schema version), with its erasure key when it has one; returns the copy's URL.
    One consistent copy: SQLite's backup API, or one REPEATABLE READ transaction on other
    databases."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "journal.db"
    key = getattr(store, "_key", None)  # erasures are keyed hashes: the copy needs the key
    if key is not None:
        from recsys.events import KEY_FILE  # the file a SQLite store reads its key from

        (directory / KEY_FILE).write_bytes(key)
    source = store.engine
    if source.dialect.name == "sqlite":
        raw = source.raw_connection()
        try:
            with sqlite3.connect(path) as target:
                raw.driver_connection.backup(target)  # type: ignore[union-attr]
        finally:
            raw.close()
    else:
        tables = sa.MetaData()
        tables.reflect(bind=source)
        target_engine = sa.create_engine(f"sqlite:///{path}")
        tables.create_all(target_engine)
        with source.connect().execution_options(isolation_level="REPEATABLE READ") as src, \
                target_engine.begin() as dst:
            for table in tables.sorted_tables:
                for rows in src.execute(sa.select(table)).mappings().partitions(10_000):
                    dst.execute(table.insert(), [dict(r) for r in rows])
        target_engine.dispose()
    return f"sqlite:///{path}"


def load_engine(bundle_dir: Path, journal_url: str, manifest: dict[str, Any]
                ) -> tuple[Engine, int]:
    """The engine a batch run ranks with, and the journal's last ``seq``: the bundle
    (``manifest`` entries overriding its own, e.g. the registry's version label) brought up
    to date with the journal."""
    bundle = read_bundle(bundle_dir)
    bundle.manifest.update(manifest)
    engine = Engine(bundle)
    store = EventStore(journal_url)
    try:
        seq = replay_journal(engine, store)
    finally:
        store.close()
    settle_heap()
    return engine, seq


def filesystem(out: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and path of a local path or a URI (``s3://``, ``hdfs://`` ...)."""
    if "://" in out:
        return pafs.FileSystem.from_uri(out)
    return pafs.LocalFileSystem(), str(Path(out).resolve())


@dataclass(frozen=True)
class _Plan:
    """What every task needs besides the shipped files (broadcast once per executor)."""

    stage: str  # SparkFiles name of the staged bundle and journal
    manifest: dict[str, Any]
    ids: np.ndarray
    chunk_size: int
    n: int
    coupons: int
    filters: dict[str, Any]
    budget: BudgetState | None
    run_id: str
    out: str  # URI of the output directory
    key: str


@dataclass
class SparkPicks:
    """A picks job prepared on the driver, to run on Spark."""

    job: PicksJob
    out: str  # the output directory: a path or a URI
    stage: Path  # bundle/ and the journal snapshot, shipped to the executors
    manifest: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def prepare(cls, bundle_dir: Path, store: EventStore, audience: str, out: str, *,
                manifest: dict[str, Any] | None = None, n: int = 10, coupons: int = 0,
                chunk_size: int = 5000, workdir: Path, **filters: Any) -> SparkPicks:
        """Stage the bundle and a journal snapshot in ``workdir``, replay the snapshot on the
        driver's engine and select the audience as the in-process job does; ``out`` is a
        directory (``.parquet``)."""
        out = out if "://" in out else str(Path(out).resolve())  # executors share no cwd
        # A name of its own: a Spark session ships each file name once.
        stage = workdir / f"recsys-picks-{uuid.uuid4().hex[:12]}"
        shutil.copytree(bundle_dir, stage / "bundle")
        url = snapshot_journal(store, stage)
        engine, seq = load_engine(stage / "bundle", url, manifest or {})
        job = PicksJob.prepare(engine, audience, Path(out), n=n, coupons=coupons,
                               chunk_size=chunk_size, fingerprint=f"journal:{seq}", **filters)
        return cls(job, out, stage, dict(manifest or {}))

    def _read(self, name: str) -> str | None:
        fs, root = filesystem(self.out)
        try:
            with fs.open_input_stream(f"{root}/{name}") as f:
                return f.read().decode()
        except (FileNotFoundError, OSError):
            return None

    def resumable_run_id(self) -> str | None:
        """The run id of an unfinished run of this same job, to continue it."""
        if self._read("_KEY") != self.job.key:
            return None
        return self._read("_RUN") or None

    def run(self, spark: SparkSession, run_id: str = "") -> PicksSummary:
        """Compute the missing parts on ``spark``; rows carry the run id of the run that
        started the job, also when it is resumed."""
        fs, root = filesystem(self.out)
        if self.resumable_run_id() is not None:
            run_id = self._read("_RUN") or run_id
        else:
            fs.create_dir(root, recursive=True)
            fs.delete_dir_contents(root, missing_dir_ok=True)  # another job's leftovers
            for name, text in (("_RUN", run_id), ("_KEY", self.job.key)):
                with fs.open_output_stream(f"{root}/{name}") as f:
                    f.write(text.encode())
        context = spark.sparkContext
        context.addFile(str(self.stage), recursive=True)
        engine = self.job.engine
        budget = engine.coupon_budget() if self.job.coupons else None
        plan = context.broadcast(_Plan(
            self.stage.name, self.manifest, self.job.ids,
            self.job.chunk_size, self.job.n, self.job.coupons, self.job.filters, budget,
            run_id, self.out, self.job.key))
        chunks = self.job.chunks
        stats = (spark.range(0, chunks, 1, numPartitions=max(chunks, 1))
                 .mapInArrow(_compute(plan), STATS_DDL).collect())
        plan.unpersist()
        with fs.open_output_stream(f"{root}/_SUCCESS") as f:
            f.write(b"")
        products = {p for row in stats for p in row["products"]}
        return PicksSummary(
            self.job.selected, sum(r["rows"] for r in stats), self.job.skipped_no_consent,
            self.job.skipped_erased, self.job.skipped_no_marketing,
            len(products) / max(engine.n_items, 1),
            sum(r["coupons"] for r in stats), 0.0 if budget is None else budget.budget,
            sum(r["budget_used"] for r in stats), sum(r["resumed"] for r in stats))


def _compute(plan: Any) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The task: for each chunk number it is given, the chunk's part (computed and written,
    or read back when a previous run wrote it) and one row of its statistics."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        p: _Plan = plan.value
        for batch in batches:
            for c in batch.column(0).to_pylist():
                yield _chunk(p, c)

    return run


def _worker_engine(p: _Plan) -> Engine:
    """This Python worker's engine for the job, loaded on its first task."""
    from pyspark import SparkFiles

    if p.key not in _WORKER:
        _WORKER.clear()
        stage = Path(SparkFiles.get(p.stage))
        _WORKER[p.key], _seq = load_engine(stage / "bundle", f"sqlite:///{stage / 'journal.db'}",
                                           p.manifest)
    return _WORKER[p.key]


def _chunk(p: _Plan, c: int) -> pa.RecordBatch:
    fs, root = filesystem(p.out)
    part = f"{root}/part-{c:06d}.parquet"
    resumed = fs.get_file_info(part).type == pafs.FileType.File
    if resumed:
        table = pq.read_table(part, filesystem=fs)
    else:
        start, stop = c * p.chunk_size, min((c + 1) * p.chunk_size, len(p.ids))
        table = audience_slice(_worker_engine(p), p.ids[start:stop], start, len(p.ids), n=p.n,
                               coupons=p.coupons, budget=p.budget, run_id=p.run_id,
                               filters=p.filters)
        from pyspark import TaskContext

        attempt = TaskContext.get().taskAttemptId() if TaskContext.get() else 0
        tmp = f"{root}/.part-{c:06d}.{attempt}.tmp"  # hidden: readers skip it
        pq.write_table(table, tmp, filesystem=fs)
        fs.move(tmp, part)
    products = pc.unique(pc.list_flatten(table["product_ids"]))
    coupons = int(pc.sum(pc.list_value_length(table["coupon_ids"])).as_py() or 0)
    spent = float((table.schema.metadata or {}).get(b"budget_used", b"0"))
    return pa.RecordBatch.from_pylist([{
        "chunk": c, "rows": table.num_rows, "coupons": coupons, "budget_used": spent,
        "products": products.to_pylist(), "resumed": resumed}], schema=STATS)


__all__ = ["SparkPicks", "load_engine", "snapshot_journal"]
