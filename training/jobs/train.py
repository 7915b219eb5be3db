"""`recsys train` / `recsys retrain`: load, clean, split, evaluate against baselines, build the
bundle, and log it all as one MLflow run with a registered model version."""

from __future__ import annotations

import hashlib
import logging
import platform
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from recsys.data.schema import RetailData
from recsys.data.split import TemporalSplit, temporal_split
from recsys.errors import DataError
from training.config import TrainConfig
from training.jobs import evaluate as evaluate_job
from training.jobs.bundle import build_bundle
from training.jobs.promote import Decision, mlflow_key, promote
from training.tracking import champion_version, event_store, log_bundle_model, setup

log = logging.getLogger(__name__)
LIBRARIES = ("numpy", "scipy", "pandas", "implicit", "faiss-cpu", "mlflow", "scikit-learn",
             "loyalty-recsys")


@dataclass(frozen=True)
class TrainResult:
    """What one training run produced."""

    run_id: str
    version: str
    scores: dict[str, dict[str, float]]  # model name -> metric -> value
    bundle_dir: Path


def load_clean(source: str) -> RetailData:
    """The dataset after cleaning, minus customers erased through the API."""
    data = evaluate_job.load_clean(source)
    erased = event_store().erased_among(data.transactions["customer_id"].astype(str).unique())
    if erased:
        keep = ~data.transactions["customer_id"].isin(erased)
        data.transactions = data.transactions[keep]
        data.customers = data.customers[~data.customers["customer_id"].isin(erased)]
        log.info("excluded %d erased customers from training", len(erased))
    return data


def before(data: RetailData, until: datetime | None) -> RetailData:
    """``data`` with only the purchases and redemptions strictly before ``until``."""
    if until is None:
        return data
    stamp = pd.Timestamp(until)
    if stamp.tzinfo is not None:  # the data's timestamps are naive UTC
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    tx = data.transactions[data.transactions["timestamp"] < stamp]
    if tx.empty:
        raise DataError(f"until {stamp} leaves no transactions; the data starts at "
                        f"{data.transactions['timestamp'].min()}.")
    redemptions = data.redemptions[data.redemptions["timestamp"] < stamp] \
        if "timestamp" in data.redemptions else data.redemptions
    log.info("history before %s: %d of %d lines", stamp, len(tx), len(data.transactions))
    return RetailData(**{**data.__dict__, "transactions": tx, "redemptions": redemptions})


def with_api_events(data: RetailData, since: pd.Timestamp, until: datetime | None = None
                    ) -> tuple[RetailData, int, dict[str, object]]:
    """``data`` plus the purchases and redemptions posted to the API after ``since`` (the
    dataset's end; erased and opted-out customers left out: ``EventStore.purchase_rows``).
    Returns the data, how many event rows were added and the bundle manifest's entries:
    ``events_until`` (the server replays only purchases received after it) and
    ``journal_seq`` (erasures after it happened after this training)."""
    cut, store = until.astimezone(UTC) if until else datetime.now(UTC), event_store()
    seq = store.last_seq()
    tx, redemptions = store.purchase_rows(since.to_pydatetime(), cut)
    if len(tx) + len(redemptions):
        data = RetailData(**{**data.__dict__,
                             "transactions": pd.concat([data.transactions, tx],
                                                       ignore_index=True),
                             "redemptions": pd.concat([data.redemptions, redemptions],
                                                      ignore_index=True)})
    return data, len(tx) + len(redemptions), {
        "events_until": cut.replace(tzinfo=None).isoformat(), "journal_seq": seq}


def fingerprint(data: RetailData, split: TemporalSplit) -> dict[str, str]:
    """Dataset identity for the run: source, sizes, date range, content hash, split cut."""
    tx = data.transactions
    digest = hashlib.sha256(pd.util.hash_pandas_object(
        tx[["customer_id", "product_id", "timestamp", "quantity"]], index=False
    ).to_numpy().tobytes()).hexdigest()[:16]
    return {
        "dataset.source": data.name,
        "dataset.rows": str(len(tx)),
        "dataset.customers": str(tx["customer_id"].nunique()),
        "dataset.products": str(tx["product_id"].nunique()),
        "dataset.start": str(tx["timestamp"].min()),
        "dataset.end": str(tx["timestamp"].max()),
        "dataset.hash": digest,
        "split_fingerprint": f"{digest}:{split.cut.date()}",
    }


def evaluate_models(data: RetailData, split: TemporalSplit, cfg: TrainConfig,
                    models: dict[str, dict], keep: tuple[str, ...] = ()
                    ) -> tuple[dict[str, dict[str, float]], Any]:
    """Score each ``name -> params`` on the split; returns metrics and the report object
    (holding the fitted models named in ``keep``)."""
    from recsys.evaluation import evaluate_many

    report = evaluate_many(models, split, data, k=cfg.k,
                           weighting=cfg.interactions.weighting,
                           half_life_days=cfg.interactions.half_life_days, keep=keep)
    return report.metrics(), report


def train(cfg: TrainConfig, config_path: str | Path | None = None) -> TrainResult:
    """One tracked training run; registers a new model version (not yet champion)."""
    setup(cfg.experiment)
    data = before(load_clean(cfg.dataset), cfg.until)
    split = temporal_split(data.transactions, test_days=cfg.split.test_days)
    log.info("split: train before %s, test from it on", split.cut)
    tags = fingerprint(data, split)
    with mlflow.start_run(run_name=f"{cfg.model.name}-{data.name}") as run:
        if cfg.until:
            mlflow.log_param("until", str(cfg.until))
        mlflow.set_tags({**tags, "model": cfg.model.name})
        params = dict(cfg.model.params)
        if cfg.tune_trials:
            params = _tune_in_nested_runs(cfg, split, data, params)
        mlflow.log_params({f"model.{k}": v for k, v in params.items()})
        mlflow.log_params({"k": cfg.k, "test_days": cfg.split.test_days,
                           "weighting": cfg.interactions.weighting, **split.summary()})
        mlflow.log_params({f"lib.{lib}": _version(lib) for lib in LIBRARIES}
                          | {"lib.python": platform.python_version()})
        if config_path:
            mlflow.log_artifact(str(config_path), artifact_path="config")
        models = {cfg.model.name: params} | {b: {} for b in cfg.baselines
                                             if b != cfg.model.name}
        scores, report = evaluate_models(data, split, cfg, models, keep=(cfg.model.name,))
        for metric, value in scores[cfg.model.name].items():
            mlflow.log_metric(mlflow_key(metric), value)
        baselines = [b for b in cfg.baselines if b != cfg.model.name]
        for name in cfg.baselines:
            for metric, value in scores.get(name, {}).items():
                mlflow.log_metric(f"baseline.{name}.{mlflow_key(metric)}", value)
        with tempfile.TemporaryDirectory() as tmp:
            report.write(Path(tmp), baselines=baselines)  # table (md, csv), margins, plots
            mlflow.log_artifacts(tmp, artifact_path="evaluation")
        log_margins(report.table(), cfg.model.name, baselines, cfg.k)
        final = cfg.model.model_copy(update={"params": params})
        bundle_root = Path(tempfile.mkdtemp(prefix="recsys-bundle-"))
        bundle_dir = bundle_root / "bundle"
        train_data = data if cfg.refit_on_all_data else _train_part(data, split)
        train_data, api_rows, journal = with_api_events(
            train_data, data.transactions["timestamp"].max(), cfg.until)
        mlflow.log_param("api_event_rows", api_rows)
        # the evaluated model refits on the bundle's data (the ranker keeps its boosters)
        bundle = build_bundle(train_data, cfg.model_copy(update={"model": final}), bundle_dir,
                              manifest=journal, model=report.models[cfg.model.name])
        mlflow.log_metric("fit_seconds", bundle.manifest["fit_seconds"])
        version = log_bundle_model(bundle_dir, cfg.registered_model)
        log.info("registered %s v%s (run %s)", cfg.registered_model, version, run.info.run_id)
    return TrainResult(run.info.run_id, version, scores, bundle_dir)


def log_margins(table: pd.DataFrame, model: str, baselines: list[str], k: int) -> None:
    """Log and print the trained model's margin against the strongest baseline of each
    headline column (``margin.<metric>`` = model / baseline)."""
    from recsys.evaluation.report import headline_columns, margins

    if not baselines or model not in table.index:
        return
    margin = margins(table, baselines, headline_columns(k))
    for metric, ratio in margin.loc[model].items():
        if isinstance(ratio, float) and ratio == ratio:  # not nan
            mlflow.log_metric(f"margin.{mlflow_key(metric)}", ratio)
            log.info("%s %s: %.3fx the strongest baseline (%s)", model, metric, ratio,
                     margin.loc["(which)", metric])


def _tune_in_nested_runs(cfg: TrainConfig, split: TemporalSplit, data: RetailData,
                         fixed: dict) -> dict:
    """Search the model's parameters on the validation period before the test cut; each trial
    is a nested MLflow run. Returns the best parameters."""
    import math

    from training.jobs.tune import tune

    def log_trial(number: int, params: dict, metrics: dict[str, float]) -> None:
        with mlflow.start_run(run_name=f"trial-{number}", nested=True):
            mlflow.log_params({f"model.{k}": v for k, v in params.items()})
            mlflow.log_metrics({mlflow_key(k): float(v) for k, v in metrics.items()
                                if isinstance(v, int | float) and math.isfinite(v)})

    result = tune(cfg.model.name, split, cfg.tune_trials, log_trial, products=data.products,
                  validation_days=cfg.split.validation_days, k=cfg.k,
                  metric=cfg.promotion.metric.split("@")[0], base_params=fixed,
                  weighting=cfg.interactions.weighting,
                  half_life_days=cfg.interactions.half_life_days)
    mlflow.log_metric(f"tuning.validation.{mlflow_key(result.metric)}", result.best_value)
    return dict(result.best_params)


def retrain(cfg: TrainConfig, config_path: str | Path | None = None, force: bool = False
            ) -> tuple[TrainResult, Decision]:
    """Train, then promote if the new version beats the champion on the same split.

    The champion's configuration is re-evaluated on the new split when its own run used a
    different one, so the comparison is always like for like. Safe to run from cron: with
    unchanged data the new version ties the champion and is not promoted.
    """
    result = train(cfg, config_path)
    champion_score = _champion_on_new_split(cfg, result)
    decision = promote(cfg.registered_model, result.version, metric=cfg.promotion.metric,
                       margin=cfg.promotion.margin, must_beat=tuple(cfg.promotion.must_beat),
                       force=force, champion_score=champion_score)
    return result, decision


def _champion_on_new_split(cfg: TrainConfig, result: TrainResult) -> float | None:
    """Re-score the champion's model and params on the new run's split, if it differs."""
    current = champion_version(cfg.registered_model)
    if current is None:
        return None
    client = mlflow.tracking.MlflowClient()
    champ_run = client.get_run(current.run_id)
    new_run = client.get_run(result.run_id)
    if champ_run.data.tags.get("split_fingerprint") == new_run.data.tags.get(
            "split_fingerprint"):
        return None  # same split: the logged scores are comparable as they are
    name = champ_run.data.tags.get("model", cfg.model.name)
    params = {k.removeprefix("model."): _parse(v) for k, v in champ_run.data.params.items()
              if k.startswith("model.")}
    data = before(load_clean(cfg.dataset), cfg.until)
    split = temporal_split(data.transactions, test_days=cfg.split.test_days)
    scores, _ = evaluate_models(data, split, cfg, {name: params})
    return scores[name][cfg.promotion.metric]


def _train_part(data: RetailData, split: TemporalSplit) -> RetailData:
    return RetailData(**{**data.__dict__, "transactions": split.train})


def _parse(value: str) -> object:
    """MLflow stores params as strings; recover numbers and booleans."""
    import yaml

    return yaml.safe_load(value)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"
