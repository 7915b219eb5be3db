"""`recsys picks`: top-N products and coupons for a campaign audience, as a file."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from recsys.policy.config import Mode
from training.commands.common import fail_cleanly
from training.spark import JobEngine


def picks_cmd(
    out: Annotated[Path, typer.Option(help="Output file: .parquet, .csv or .jsonl.")],
    audience: Annotated[str, typer.Option(
        help="Terms joined by '&': all | segment=NAME[,NAME] | stage=NAME | tier=NAME | "
             "recency<=DAYS | recency>=DAYS | ids=a,b | @ids.txt")] = "all",
    n: Annotated[int, typer.Option(min=1, max=100, help="Products per customer.")] = 10,
    coupons: Annotated[int, typer.Option(min=0, max=10, help="Coupons per customer.")] = 1,
    model: Annotated[str, typer.Option(help="Registered model name.")] = "loyalty-recsys",
    version: Annotated[str | None, typer.Option(help="Model version (default: champion).")]
    = None,
    bundle: Annotated[Path | None, typer.Option(help="Use a bundle directory instead of "
                                                "MLflow.", exists=True, file_okay=False)] = None,
    category: Annotated[str | None, typer.Option(help="Only this category path prefix.")]
    = None,
    min_price: Annotated[float | None, typer.Option(min=0)] = None,
    max_price: Annotated[float | None, typer.Option(min=0)] = None,
    exclude_purchased: Annotated[bool | None, typer.Option(
        "--exclude-purchased/--include-purchased",
        help="Override the policy (by lifecycle stage) on products already bought.")] = None,
    mode: Annotated[Mode | None, typer.Option(help="Override the stage's mode: discover, "
                                              "mixed, buy_again or new_arrivals.")] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Customers per chunk (bounds memory; "
                                            "unit of resumption).")] = 5000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Ranking threads.")] = 2,
    engine_name: Annotated[JobEngine, typer.Option(
        "--engine", help="local: one process, ranking threads; spark: chunks as Spark "
        "tasks, OUT a directory of Parquet parts (docs/scale.md).")] = JobEngine.local,
    master: Annotated[str, typer.Option(help="Spark master with --engine spark: local[N], "
                                        "spark://HOST:7077, yarn, k8s://...")] = "local[2]",
) -> None:
    """Write picks for every customer of an audience; resumable, honours consent/erasure."""
    import mlflow
    from tqdm import tqdm

    from recsys.bundle import read_bundle
    from recsys.errors import DataError
    from recsys.policy.pipeline import Engine
    from training.jobs.picks import PicksJob, replay_journal
    from training.tracking import champion_version, event_store, fetch_bundle, setup

    filters = {k: v for k, v in {"category": category, "min_price": min_price,
                                 "max_price": max_price, "exclude_purchased": exclude_purchased,
                                 "mode": mode}.items() if v is not None}
    if engine_name == JobEngine.spark and out.suffix != ".parquet":
        typer.echo(f"error: with --engine spark, --out is a directory of Parquet parts and "
                   f"must end in .parquet, not {out.name!r}", err=True)
        raise typer.Exit(2)
    with fail_cleanly(), tempfile.TemporaryDirectory() as tmp:
        setup("loyalty-recsys-picks")
        source_run, manifest, path = "", {}, bundle
        if path is None:
            if version is None:  # resolve the alias once: the version reported is the one
                champion = champion_version(model)  # loaded
                if champion is None:
                    raise DataError(f"{model} has no champion yet; promote a model or "
                                    "pass --version or --bundle")
                version = str(champion.version)
            path, source_run = fetch_bundle(model, version, Path(tmp))
            manifest = {"model_version": version}  # as the API labels it
        if engine_name == JobEngine.spark:
            from training.jobs.spark_picks import SparkPicks
            from training.spark import spark_session

            spark_job = SparkPicks.prepare(  # the same journal, audience and consent rules
                path, event_store(), audience, str(out), manifest=manifest, n=n,
                coupons=coupons, chunk_size=chunk_size, workdir=Path(tmp), **filters)
            job, resume = spark_job.job, spark_job.resumable_run_id()
        else:
            loaded = read_bundle(path)
            loaded.manifest.update(manifest)
            engine = Engine(loaded)
            seq = replay_journal(engine, event_store())  # erasures, consent, fresh events
            job = PicksJob.prepare(engine, audience, out, n=n, coupons=coupons,
                                   chunk_size=chunk_size, fingerprint=f"journal:{seq}",
                                   **filters)
            resume = job.resumable_run_id()
        with mlflow.start_run(run_id=resume, run_name=None if resume else "picks") as run:
            mlflow.log_params({"audience": audience, "n": n, "coupons": coupons,
                               "chunk_size": chunk_size, "format": job.fmt, "out": str(out),
                               "engine": engine_name.value,
                               **{f"filter_{k}": v for k, v in filters.items()}})
            mlflow.set_tags({"model_version": job.engine.version, "model_run_id": source_run,
                             "registered_model": "" if bundle else model})
            started = time.perf_counter()
            if engine_name == JobEngine.spark:
                summary = spark_job.run(spark_session(master, "recsys-picks"),
                                        run.info.run_id)
            else:
                with tqdm(total=len(job.ids), initial=job.done_customers(), unit="customer",
                          desc="picks", disable=None, smoothing=0.1) as bar:
                    summary = job.run(run.info.run_id, workers=workers, progress=bar.update)
            seconds = time.perf_counter() - started
            mlflow.log_metrics({
                "audience_size": summary.audience, "rows_written": summary.written,
                "skipped_no_consent": summary.skipped_no_consent,
                "skipped_erased": summary.skipped_erased,
                "skipped_no_marketing": summary.skipped_no_marketing,
                "catalog_coverage": summary.coverage, "coupons_issued": summary.coupons_issued,
                "coupon_budget": summary.coupon_budget,
                "coupon_budget_used": summary.coupon_budget_used,
                "chunks_resumed": summary.chunks_resumed, "seconds": seconds})
    used = f", coupon budget used {summary.coupon_budget_used:,.2f} of " \
           f"{summary.coupon_budget:,.2f}" if coupons else ""
    resumed = f"resumed {summary.chunks_resumed} of {job.chunks} chunks; " \
        if summary.chunks_resumed else ""
    typer.echo(f"wrote {summary.written} rows to {out} ({resumed}audience {summary.audience}; "
               f"skipped {summary.skipped_no_consent} without personalization consent, "
               f"{summary.skipped_erased} erased, "
               f"{summary.skipped_no_marketing} without marketing consent; coverage "
               f"{summary.coverage:.1%}{used}; run {run.info.run_id})")


def register(app: typer.Typer) -> None:
    """Add `picks` to the top-level app."""
    app.command("picks")(picks_cmd)
