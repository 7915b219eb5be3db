"""Train on synthetic data, register, promote, and load the champion in a fresh process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml

from recsys.bundle import read_bundle
from recsys.policy.pipeline import Engine
from training.config import load_config
from training.jobs.promote import promote
from training.jobs.train import retrain, train
from training.tracking import fetch_bundle

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def local_store(tmp_path_factory):
    """A private embedded MLflow store (and data dir) shared by this module's tests."""
    tmp_path = tmp_path_factory.mktemp("store")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))
        mp.chdir(REPO)
        yield tmp_path
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def champion(local_store):
    """The first retrain on an empty registry: promoted as the first champion."""
    path = _config(local_store)
    result, decision = retrain(load_config(path), path)
    return path, result, decision


def _config(tmp_path: Path, **overrides) -> Path:
    raw = {"dataset": "synthetic:customers=400,products=150,seed=3",
           "model": {"name": "als", "params": {"factors": 16, "iterations": 5}},
           "baselines": ["popularity"], "registered_model": "rs-test",
           "experiment": "rs-test", **overrides}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_first_retrain_promotes_and_a_fresh_process_gets_identical_recommendations(champion):
    _, result, decision = champion
    assert decision.promoted, decision.reason
    assert decision.reason.endswith("first champion")
    in_memory = Engine(read_bundle(result.bundle_dir))
    customers = in_memory.customers.ids[:25].tolist()
    expected = [[p.product_id for p in r.picks] for r in in_memory.recommend_many(customers)]

    script = (
        "import json, sys, tempfile; from pathlib import Path\n"
        "from training.tracking import setup, fetch_bundle\n"
        "from recsys.bundle import read_bundle\nfrom recsys.policy.pipeline import Engine\n"
        "setup('rs-test'); d, _ = fetch_bundle('rs-test', None, Path(tempfile.mkdtemp()))\n"
        "e = Engine(read_bundle(d))\n"
        "ids = json.loads(sys.argv[1])\n"
        "print(json.dumps([[p.product_id for p in r.picks] for r in e.recommend_many(ids)]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, json.dumps(customers)],
                         capture_output=True, text=True, env=os.environ.copy(), check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == expected


def test_the_registered_pyfunc_answers_like_the_engine(champion):
    import pandas as pd

    _, result, _ = champion
    engine = Engine(read_bundle(result.bundle_dir))
    customers = engine.customers.ids[:10].tolist() + ["never-seen"]
    model = mlflow.pyfunc.load_model("models:/rs-test@champion")
    frame = model.predict(pd.DataFrame({"customer_id": customers}), params={"n": 5})
    assert frame["product_ids"].tolist() == [[p.product_id for p in r.picks]
                                             for r in engine.recommend_many(customers, 5)]


def test_run_logs_metrics_baselines_and_split(champion, local_store):
    _, result, _ = champion
    run = mlflow.tracking.MlflowClient().get_run(result.run_id)
    assert run.data.metrics["ndcg_at_10"] == pytest.approx(result.scores["als"]["ndcg@10"])
    assert "baseline.popularity.ndcg_at_10" in run.data.metrics
    ours, base = (result.scores[m]["returning/ndcg@10"] for m in ("als", "popularity"))
    assert run.data.metrics["margin.returning/ndcg_at_10"] == pytest.approx(ours / base)
    assert np.isfinite(run.data.metrics["fit_seconds"])
    assert run.data.tags["split_fingerprint"].count(":") == 1
    assert int(run.data.params["test_rows"]) > 0
    logged = {a.path for a in mlflow.tracking.MlflowClient().list_artifacts(
        result.run_id, "evaluation")}
    assert {"evaluation/bars.png", "evaluation/popularity.png",
            "evaluation/comparison.md"} <= logged
    assert mlflow.get_experiment(run.info.experiment_id).artifact_location.startswith(
        (local_store / "data").as_uri())  # the embedded store keeps artifacts in the data dir


def test_retrain_on_unchanged_data_keeps_the_champion_and_force_is_recorded(champion):
    path, first, _ = champion
    second, again = retrain(load_config(path), path)
    assert not again.promoted
    assert "does not beat the champion" in again.reason and "on the same split" in again.reason
    client = mlflow.tracking.MlflowClient()
    assert str(client.get_model_version_by_alias("rs-test", "champion").version) == first.version
    forced = promote("rs-test", second.version, force=True)
    assert forced.promoted and forced.reason.startswith("forced despite")
    assert client.get_model_version("rs-test", second.version).tags["promotion_forced"] == "true"
    assert str(client.get_model_version_by_alias("rs-test", "champion").version) == \
        second.version


def test_gate_rejects_a_model_that_does_not_beat_popularity(champion, local_store):
    # Popularity against itself ties, and a tie is not a win.
    path = _config(local_store, model={"name": "popularity", "params": {}})
    result = train(load_config(path), path)
    decision = promote("rs-test", result.version)
    assert not decision.promoted
    assert "popularity baseline" in decision.reason


def test_missing_alias_is_a_clear_error(local_store, tmp_path):
    from recsys.errors import BundleError
    from training.tracking import setup

    setup("rs-test")
    with pytest.raises(BundleError, match="alias 'champion'"):
        fetch_bundle("no-such-model", None, tmp_path / "dl")


def test_tuning_logs_each_trial_as_a_nested_run(local_store):
    (local_store / "tuned").mkdir()
    path = _config(local_store / "tuned", tune_trials=3, registered_model="rs-tuned")
    result = train(load_config(path), path)
    client = mlflow.tracking.MlflowClient()
    parent = client.get_run(result.run_id)
    children = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'")
    assert len(children) == 3
    assert all("ndcg_at_10" in c.data.metrics for c in children)
    best = max(children, key=lambda c: c.data.metrics["ndcg_at_10"])
    for key, value in best.data.params.items():
        assert parent.data.params[key] == value  # the final model uses the best trial


def test_until_keeps_the_whole_run_before_the_cut(local_store):
    """``until``: split, model and bundle see only history before it; the learned ranker
    trains and bundles on it."""
    path = _config(local_store, model={"name": "ranker", "params": {
        "windows": 2, "per_source": 20, "ease_items": 100, "trees": 30, "min_child": 10}},
        until="2025-03-01T00:00:00")
    cfg = load_config(path)
    result = train(cfg, path)
    bundle = read_bundle(result.bundle_dir)
    _, end = bundle.manifest["data_window"]
    assert np.datetime64(end) < np.datetime64("2025-03-01")
    run = mlflow.get_run(result.run_id)
    assert run.data.params["until"] == "2025-03-01 00:00:00"
    assert run.data.params["cut"] < "2025-03-01"
    assert result.scores["ranker"]["ndcg@10"] > 0


def test_retrain_on_changed_data_says_the_champion_was_re_scored(champion, local_store):
    path = _config(local_store, until="2024-12-01T00:00:00")  # the data ends 2024-12-30
    _, decision = retrain(load_config(path), path)
    assert "re-scored on this run's split" in decision.reason
