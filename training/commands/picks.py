"""`recsys picks`: top-N products and coupons for a campaign audience, as a file."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from training.commands.common import fail_cleanly


def picks_cmd(
    out: Annotated[Path, typer.Option(help="Output file: .parquet, .csv or .jsonl.")],
    audience: Annotated[str, typer.Option(
        help="all | segment=NAME[,NAME] | stage=NAME | tier=NAME | recency<=DAYS | "
             "ids=a,b | @ids.txt")] = "all",
    n: Annotated[int, typer.Option(min=1, max=100, help="Products per customer.")] = 10,
    coupons: Annotated[int, typer.Option(min=0, max=10, help="Coupons per customer.")] = 1,
    model: Annotated[str, typer.Option(help="Registered model name.")] = "loyalty-recsys",
    version: Annotated[str | None, typer.Option(help="Model version (default: champion).")]
    = None,
    bundle: Annotated[Path | None, typer.Option(help="Use a bundle directory instead of "
                                                "MLflow.", exists=True, file_okay=False)] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Customers per chunk (bounds memory; "
                                            "unit of resumption).")] = 5000,
) -> None:
    """Write picks for every customer of an audience; resumable, honours consent/erasure."""
    import mlflow
    from tqdm import tqdm

    from recsys.bundle import read_bundle
    from recsys.policy.pipeline import Engine
    from training.jobs.picks import apply_changes, select_audience, write_picks
    from training.tracking import event_store, fetch_bundle, setup

    with fail_cleanly():
        setup("loyalty-recsys-picks")
        with tempfile.TemporaryDirectory() as tmp:
            if bundle is None:
                bundle, source_run = fetch_bundle(model, version, Path(tmp))
            else:
                source_run = ""
            engine = Engine(read_bundle(bundle))
        apply_changes(engine, event_store().replay())  # erasures, consent, fresh events
        with mlflow.start_run(run_name=f"picks-{audience}") as run:
            total = len(select_audience(engine, audience))
            with tqdm(total=total, unit="customer", desc="picks") as bar:
                summary = write_picks(engine, audience, out, n=n, coupons=coupons,
                                      chunk_size=chunk_size, run_id=run.info.run_id,
                                      progress=bar.update)
            mlflow.set_tags({"audience": audience, "model_version": engine.version,
                             "model_run_id": source_run})
            mlflow.log_metrics({"audience_size": summary.audience,
                                "rows_written": summary.written,
                                "skipped_no_consent": summary.skipped_no_consent,
                                "catalog_coverage": summary.coverage})
    typer.echo(f"wrote {summary.written} rows to {out} ({summary.skipped_no_consent} customers "
               f"without consent skipped, coverage {summary.coverage:.1%})")


def register(app: typer.Typer) -> None:
    """Add `picks` to the top-level app."""
    app.command("picks")(picks_cmd)
