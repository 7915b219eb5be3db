"""`recsys train | promote | retrain | mlflow-ui`: tracked training and safe promotion."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from training.commands.common import fail_cleanly

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", help="Training config YAML (configs/*.yaml); defaults run on synthetic data.",
    exists=True, dir_okay=False)]


UntilOpt = Annotated[datetime | None, typer.Option(
    help="Use only history before this time (dataset and API events), e.g. 2017-11-07 or "
         "2017-11-07T12:00:00; overrides the config's `until`.")]


def _config(config: Path | None, until: datetime | None):  # type: ignore[no-untyped-def]
    from training.config import load_config

    cfg = load_config(config)
    return cfg if until is None else cfg.model_copy(update={"until": until})


def train_cmd(config: ConfigOpt = None, until: UntilOpt = None) -> None:
    """Train, evaluate against baselines and register a new model version in MLflow."""
    from training.jobs.train import train

    with fail_cleanly():
        result = train(_config(config, until), config)
    _print_scores(result.scores)
    typer.echo(f"registered version {result.version} (run {result.run_id}); "
               "promote it with `recsys promote`")


def promote_cmd(
    config: ConfigOpt = None,
    version: Annotated[str | None, typer.Option(help="Version to promote (default: newest).")]
    = None,
    force: Annotated[bool, typer.Option("--force", help="Promote even if the gate fails "
                                        "(recorded on the version).")] = False,
    from_experiment: Annotated[Path | None, typer.Option(
        "--from-experiment", help="experiment.json of `recsys experiments report`: promote the "
        "`challenger` alias's version only if it wins online.", exists=True, dir_okay=False)]
    = None,
    metric: Annotated[str, typer.Option(help="With --from-experiment: the metric to win on.")]
    = "revenue_per_customer",
) -> None:
    """Move the `champion` alias to a version only if it beats the champion on the same split
    (or, with --from-experiment, if the challenger won the online experiment)."""
    from training.config import load_config
    from training.jobs.promote import promote, promote_from_experiment
    from training.tracking import setup

    if from_experiment is not None and (force or version):
        raise typer.BadParameter("--from-experiment promotes the challenger alias's version as "
                                 "measured; it takes no --version or --force")
    cfg = load_config(config)
    with fail_cleanly():
        setup(cfg.experiment)
        if from_experiment is not None:
            decision = promote_from_experiment(cfg.registered_model,
                                               _read_json(from_experiment), metric)
        else:
            decision = promote(cfg.registered_model, version, metric=cfg.promotion.metric,
                               margin=cfg.promotion.margin,
                               must_beat=tuple(cfg.promotion.must_beat), force=force)
    verdict = "promoted" if decision.promoted else "not promoted"
    typer.echo(f"v{decision.version} {verdict}: {decision.reason}")


def _read_json(path: Path) -> dict:
    import json

    from recsys.errors import RecsysError

    try:
        return json.loads(path.read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError) as exc:
        raise RecsysError(f"cannot read {path}: {exc}") from exc


def retrain_cmd(
    config: ConfigOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Promote even if the gate fails.")]
    = False,
    until: UntilOpt = None,
) -> None:
    """Train + evaluate + promote in one idempotent step (safe to run from cron)."""
    from training.jobs.train import retrain

    with fail_cleanly():
        result, decision = retrain(_config(config, until), config, force=force)
    _print_scores(result.scores)
    verdict = "promoted to champion" if decision.promoted else "champion unchanged"
    typer.echo(f"v{result.version}: {verdict} ({decision.reason})")


def mlflow_ui_cmd(
    port: Annotated[int, typer.Option(help="Port of the UI.")] = 5000,
) -> None:
    """Open the MLflow UI on the local store (or MLFLOW_TRACKING_URI)."""
    from training.tracking import data_dir

    uri = os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{data_dir() / 'mlflow.db'}"
    typer.echo(f"MLflow UI for {uri} on http://127.0.0.1:{port}")
    subprocess.run([sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri,
                    "--host", "127.0.0.1", "--port", str(port)], check=False)


def _print_scores(scores: dict[str, dict[str, float]]) -> None:
    """The headline columns per model; the full table is in the run's artifacts."""
    import pandas as pd

    table = pd.DataFrame(scores).T
    headline = [c for c in table.columns
                if c.split("@")[0] in ("ndcg", "recall", "hit_rate", "coverage") or c == "fit_s"]
    typer.echo(table[headline].round(4).to_string())
    typer.echo("(all metrics and slices: the run's evaluation/ artifacts in the MLflow UI)")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.command("train")(train_cmd)
    app.command("promote")(promote_cmd)
    app.command("retrain")(retrain_cmd)
    app.command("mlflow-ui")(mlflow_ui_cmd)
