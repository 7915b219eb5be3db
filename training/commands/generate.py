"""`recsys data generate`: the synthetic retailer."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

GENERATE_HELP = (
    "Generate a seeded synthetic retailer (catalog with categories and text, customer segments, "
    "baskets with repeat purchases and seasonality, product launches, campaigns, coupons, offers "
    "and redemptions) and write its canonical tables to OUT as <table>.parquet or <table>.csv. "
    "The same arguments and seed give identical files.")


class Format(StrEnum):
    parquet = "parquet"
    csv = "csv"


Out = Annotated[Path, typer.Option("--out", help="Directory to write the tables into (created if "
                                   "missing; existing table files are replaced).")]
Customers = Annotated[int, typer.Option("--customers", help="Registered customers.")]
Products = Annotated[int, typer.Option("--products", help="Catalog size (at least 10).")]
Lines = Annotated[int | None, typer.Option(
    "--lines", help="Target transaction lines (default: 30 per customer-year).")]
Days = Annotated[int, typer.Option("--days", help="Length of the period in days.")]
Start = Annotated[str, typer.Option("--start", help="First day of the period.")]
Seed = Annotated[int, typer.Option("--seed", help="Random seed.")]
Fmt = Annotated[Format, typer.Option("--format", help="File format.")]


def register(data_app: typer.Typer) -> None:
    """Add `generate` to the `recsys data` group."""

    @data_app.command("generate", help=GENERATE_HELP)
    def generate(out: Out, customers: Customers = 2000, products: Products = 500,
                 lines: Lines = None, days: Days = 365, start: Start = "2024-01-01",
                 seed: Seed = 0, fmt: Fmt = Format.parquet) -> None:
        """Generate a synthetic dataset and write it to OUT."""
        import time

        from recsys.data.load import write_dataset
        from recsys.data.synthetic import CHUNK
        from recsys.data.synthetic import generate as generate_data
        from training.commands.common import fail_cleanly

        t0 = time.perf_counter()
        with fail_cleanly():
            try:
                data = generate_data(customers, products, n_lines=lines, days=days, start=start,
                                     seed=seed, show_progress=customers > CHUNK)
            except ValueError as exc:
                typer.echo(f"error: {exc}", err=True)
                raise typer.Exit(2) from None
            t1 = time.perf_counter()
            typer.echo(f"generated {len(data.transactions):,} lines, "
                       f"{data.transactions['order_id'].nunique():,} orders in {t1 - t0:.1f}s; "
                       f"writing {fmt.value} to {out}")
            try:
                files = write_dataset(data, out, fmt.value)
            except OSError as exc:
                typer.echo(f"error: cannot write to {out}: {exc}", err=True)
                raise typer.Exit(2) from None
        for path in files:
            rows = len(getattr(data, path.name.split(".")[0]))
            size = path.stat().st_size / 2**20
            typer.echo(f"  {path.name:<22} {rows:>12,} rows {size:>9.1f} MiB")
        typer.echo(f"done in {time.perf_counter() - t0:.1f}s")
