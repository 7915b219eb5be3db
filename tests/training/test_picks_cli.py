"""`recsys picks` against the MLflow registry: champion or a given version, the run logged."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from recsys.data.synthetic import generate
from tests.configs import repo_config
from training.cli import app
from training.jobs.bundle import build_bundle
from training.tracking import CHAMPION, log_bundle_model, setup

pytestmark = pytest.mark.slow
MODEL = "picks-cli-test"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An embedded MLflow store with two registered versions; version 1 is the champion."""
    tmp_path = tmp_path_factory.mktemp("registry")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))
        setup("picks-cli-test")
        for seed in (1, 2):
            cfg = repo_config("als", factors=8, iterations=2)
            bundle = tmp_path / f"v{seed}" / "bundle"  # the folder name `recsys train` logs
            build_bundle(generate(n_customers=200, n_products=80, seed=seed), cfg, bundle)
            with mlflow.start_run():
                log_bundle_model(bundle, MODEL)
        MlflowClient().set_registered_model_alias(MODEL, CHAMPION, "1")
        yield tmp_path
    mlflow.set_tracking_uri(None)


def run(registry: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["picks", "--model", MODEL, *args],
                                env={"RECSYS_DATA_DIR": str(registry / "data")})
    return result.exit_code, result.output


@pytest.mark.parametrize(("version", "expected"), [(None, "1"), ("2", "2")])
def test_picks_load_the_champion_or_a_version_and_log_the_run(
        registry: Path, tmp_path: Path, version: str | None, expected: str) -> None:
    out = tmp_path / "picks.parquet"
    code, output = run(registry, "--out", str(out), "--audience", "stage=active",
                       *(["--version", version] if version else []))
    assert code == 0, output
    frame = pd.read_parquet(out)
    assert len(frame) > 0 and set(frame["model_version"]) == {expected}
    run_id = frame["run_id"].iloc[0]
    logged = MlflowClient().get_run(run_id).data
    assert logged.metrics["audience_size"] >= len(frame)
    assert logged.metrics["rows_written"] == len(frame)
    assert 0 < logged.metrics["catalog_coverage"] <= 1
    assert 0 < logged.metrics["coupon_budget_used"] <= logged.metrics["coupon_budget"]
    assert logged.params["audience"] == "stage=active"
    assert logged.tags["model_version"] == expected


@pytest.mark.parametrize(("args", "message"), [
    (["--audience", "stage=nope"], "no customer has stage"),
    (["--version", "9"], "cannot load"),
    (["--min-price", "5", "--max-price", "1"], "is above max_price")])
def test_bad_input_is_one_line_and_exit_2(registry: Path, tmp_path: Path, args: list[str],
                                          message: str) -> None:
    code, output = run(registry, "--out", str(tmp_path / "p.csv"), *args)
    last = output.strip().splitlines()[-1]  # after MLflow's download bar, if any
    assert code == 2 and last.startswith("error: ") and message in last
