"""`recsys data ...` commands: describe and validate a data source (generate lives in generate.py).

Heavy imports happen inside the commands so `recsys --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from training.commands.common import command_group
from training.spark import JobEngine

app = command_group("Load, check and describe retail data (The Complete Journey, Online Retail, "
                    "interactions files, canonical table directories, synthetic).")

SOURCE_HELP = ("'completejourney' (default dataset), 'synthetic[:customers=N,products=M,seed=S]', "
               "a directory of canonical tables, or an Online Retail / Online Retail II / "
               "interactions file (.csv, .csv.gz, .parquet).")


def _fail(message: str, details: list[str] | None = None) -> None:
    typer.echo(f"error: {message}", err=True)
    for line in details or []:
        typer.echo(f"  {line}", err=True)
    raise typer.Exit(code=2)


def _summary_line(label: str, s: dict[str, object]) -> str:
    first, last = s["first"], s["last"]
    dates = f"{first:%Y-%m-%d} .. {last:%Y-%m-%d}" if first is not None else "no dates"
    return (f"{label:<8} {s['customers']:>10,} customers x {s['products']:>8,} products, "
            f"{s['lines']:>11,} lines, {s['orders']:>9,} orders, density {s['density']:.5f}, "
            f"{dates}")


DESCRIBE_HELP = (
    "Load SOURCE, clean it, and print the rows removed by each cleaning rule, then customers, "
    "products, lines, orders, density (distinct customer-product pairs / customers x products) "
    "and date range before and after cleaning.")
VALIDATE_HELP = (
    "Check that SOURCE loads into the canonical schema. Exits 0 with a one-line OK, or 2 with "
    "the file, row and column of each problem (missing columns, bad dates, wrong types, empty "
    "required cells; the first 20 listed, the rest counted).")


@app.command(help=DESCRIBE_HELP)
def describe(
    source: str = typer.Argument("completejourney", help=SOURCE_HELP),
) -> None:
    """Print the cleaning report and the raw/cleaned summaries of SOURCE."""
    from recsys.data.clean import clean, summarize
    from recsys.data.load import load_dataset
    from recsys.errors import RecsysError

    try:
        raw = load_dataset(source)
        cleaned, report = clean(raw)
    except RecsysError as exc:
        _fail(str(exc))
        return
    typer.echo(f"source: {source} ({raw.name})")
    typer.echo(report.render())
    typer.echo(_summary_line("raw", summarize(raw.transactions)))
    typer.echo(_summary_line("cleaned", summarize(cleaned.transactions)))
    others = [f"{t} {len(getattr(cleaned, t)):,}" for t in
              ("products", "customers", "campaigns", "coupons", "offers", "redemptions")]
    typer.echo("tables:  " + ", ".join(others))


@app.command(help=VALIDATE_HELP)
def validate(
    source: str = typer.Argument(..., help=SOURCE_HELP),
) -> None:
    """Load SOURCE and report row-level problems (exit 2) or one OK line (exit 0)."""
    from recsys.data.load import load_dataset
    from recsys.errors import DataError, RecsysError

    try:
        data = load_dataset(source)
    except DataError as exc:
        details = [f"{file}: row {row if row is not None else '-'}, column "
                   f"{col if col is not None else '-'}: {why}"
                   for file, row, col, why in exc.problems]
        _fail(str(exc), details)
        return
    except RecsysError as exc:
        _fail(str(exc))
        return
    tx = data.transactions
    typer.echo(f"OK: {source}: {len(tx):,} transaction lines, {len(data.products):,} products, "
               f"{len(data.customers):,} customers in the canonical schema")


PREPARE_HELP = (
    "Load SOURCE, clean it and write OUT: the cleaned canonical tables (transactions, products, "
    "customers, ...), interactions.parquet (one row per customer and product: orders, lines, "
    "quantity, amount, first, last) and cleaning_report.csv; `recsys train` reads OUT as its "
    "dataset. --engine spark does the same on Spark for data larger than memory: SOURCE is a "
    "file or a directory (e.g. partitioned by date) of .csv[.gz] or .parquet transaction lines, "
    "and each table is a directory of Parquet parts.")


@app.command(help=PREPARE_HELP)
def prepare(
    source: str = typer.Argument(..., help=SOURCE_HELP),
    out: Annotated[Path, typer.Option("--out", help="Directory to write (created if "
                                      "missing).")] = Path("prepared"),
    engine: Annotated[JobEngine, typer.Option("--engine", help="local: this process; spark: "
                                              "Spark tasks.")] = JobEngine.local,
    master: Annotated[str, typer.Option(help="Spark master with --engine spark: local[N], "
                                        "spark://HOST:7077, yarn, k8s://...")] = "local[2]",
) -> None:
    """Write the prepared dataset of SOURCE to OUT and print its cleaning report."""
    import time

    from recsys.errors import RecsysError

    started = time.perf_counter()
    try:
        if engine == JobEngine.spark:
            from recsys.data.spark_prepare import prepare as spark_prepare
            from training.spark import spark_session

            report = spark_prepare(spark_session(master, "recsys-data-prepare"), source, out)
        else:
            from recsys.data.prepare import prepare as local_prepare

            report = local_prepare(source, out)
    except RecsysError as exc:
        _fail(str(exc), [f"{f}: row {r if r is not None else '-'}, column "
                         f"{c if c is not None else '-'}: {why}"
                         for f, r, c, why in getattr(exc, "problems", [])])
        return
    typer.echo(report.render())
    typer.echo(f"wrote {out} in {time.perf_counter() - started:.1f}s ({engine.value})")
