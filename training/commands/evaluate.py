"""`recsys evaluate` (all models side by side on one split) and `recsys tune` (optuna search)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from recsys.errors import ConfigError
from training.commands.common import fail_cleanly

DatasetOpt = Annotated[str, typer.Option(
    "--dataset", "-d", help="Dataset: 'completejourney', 'synthetic', a file or a directory.")]
TestDaysOpt = Annotated[int, typer.Option("--test-days", min=1,
                                          help="Days at the end of the data held out as test.")]
KOpt = Annotated[int, typer.Option("--k", min=1, max=100, help="Metric cut-off.")]


def evaluate_cmd(
    dataset: DatasetOpt = "completejourney",
    models: Annotated[str, typer.Option(help="Comma-separated registry names, e.g. "
                                        "'popularity,als,ease'; 'all' for every model.")]
    = "all",
    test_days: TestDaysOpt = 28,
    k: KOpt = 10,
    out: Annotated[Path | None, typer.Option(help="Also write the table to a .md or .csv file.",
                                             dir_okay=False)] = None,
    plot: Annotated[Path | None, typer.Option(help="Bar chart PNG of NDCG, recall, coverage.",
                                              dir_okay=False)] = None,
    exclude_seen: Annotated[bool, typer.Option(help="Leave each customer's past purchases out "
                                               "of the lists (a 'discover' list).")] = False,
) -> None:
    """Evaluate several models on the same temporal split and print one comparison table."""
    from recsys.evaluation.report import plot_bars, to_markdown, write_table
    from recsys.models import REGISTRY
    from training.jobs.evaluate import run

    with fail_cleanly():
        if out is not None and out.suffix not in (".md", ".csv"):
            raise ConfigError(f"--out must end in .md or .csv, not {out.name!r}.")
        names = sorted(REGISTRY) if models.strip() == "all" else models
        comparison = run(dataset, names, test_days=test_days, k=k, exclude_seen=exclude_seen)
    table = comparison.table()
    typer.echo(f"split: {comparison.split_summary}")
    typer.echo(to_markdown(table))
    if out is not None:
        typer.echo(f"wrote {write_table(table, out)}")
    if plot is not None:
        typer.echo(f"wrote {plot_bars(comparison.reports, plot)}")


def tune_cmd(
    dataset: DatasetOpt = "completejourney",
    model: Annotated[str, typer.Option("--model", "-m", help="Registry name of the model.")]
    = "als",
    trials: Annotated[int, typer.Option(min=1, help="Trial budget (trial 0 = defaults).")] = 20,
    test_days: TestDaysOpt = 28,
    validation_days: Annotated[int, typer.Option(
        min=1, help="Days just before the test period used to score trials.")] = 28,
    timeout: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
    k: KOpt = 10,
    metric: Annotated[str, typer.Option(help="Objective: ndcg, recall, map, ...")] = "ndcg",
    seed: Annotated[int, typer.Option(help="Seed of the TPE sampler.")] = 0,
) -> None:
    """Search a model's hyper-parameters on the validation period before the test period."""
    import yaml

    from training.jobs.evaluate import load_clean, split_data
    from training.jobs.tune import tune

    def show(number: int, params: dict, metrics: dict[str, float]) -> None:
        typer.echo(f"trial {number:3d}  {metric}@{k}={metrics[f'{metric}@{k}']:.4f}  {params}")

    with fail_cleanly():
        data = load_clean(dataset)
        result = tune(model, split_data(data, test_days), trials, show, products=data.products,
                      validation_days=validation_days, k=k, metric=metric, timeout=timeout,
                      seed=seed)
    typer.echo(f"validation: {result.validation}")
    typer.echo(f"best {result.metric} = {result.best_value:.4f}; config snippet:")
    typer.echo(yaml.safe_dump({"model": {"name": model, "params": result.best_params}},
                              sort_keys=False).rstrip())


def register(app: typer.Typer) -> None:
    """Add `evaluate` and `tune` to the top-level app."""
    app.command("evaluate")(evaluate_cmd)
    app.command("tune")(tune_cmd)
