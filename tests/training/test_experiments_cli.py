"""`recsys experiments size | simulate | report` and `recsys promote --from-experiment`."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from training.cli import app
from training.tracking import champion_version

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_size_matches_the_textbook_and_refuses_incomplete_input() -> None:
    code, out = run("experiments", "size", "--sd", "20", "--effect", "2")
    assert code == 0 and "1,571 control + 1,571 treatment = 3,142 customers" in out, out
    code, out = run("experiments", "size", "--rate", "0.3", "--points", "0.02", "--share", "0.8")
    assert code == 0 and "treatment" in out
    code, out = run("experiments", "size", "--sd", "20")
    assert code == 2 and "--effect" in out


def test_simulate_then_report_recovers_the_effect(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    code, out = run("experiments", "simulate", "--customers", "3000", "--seed", "4",
                    "--events-url", url)
    assert code == 0, out
    coupons = tmp_path / "coupons.yaml"
    coupons.write_text(yaml.safe_dump({"budget": 10, "coupons": [{
        "id": "sim-coupon-4", "kind": "amount_off", "value": 5, "budget": 5,
        "valid_from": "2026-01-01", "valid_to": "2027-01-01", "holdout_share": 0.2}]}))
    code, out = run("experiments", "report", "--events-url", url, "--out", str(tmp_path / "r"),
                    "--format", "html", "--coupons", str(coupons))
    assert code == 0, out
    result = json.loads((tmp_path / "r" / "experiment.json").read_text())
    assert set(result["variants"]) == {"champion", "challenger"}
    assert result["customers"] == 3000 and not result["srm"]["mismatch"]
    (coupon,) = result["coupons"]
    assert coupon["coupon_id"] == "sim-coupon-4" and "srm" in coupon
    assert (tmp_path / "r" / "experiment.html").is_file()
    code, out = run("experiments", "report", "--events-url", url, "--since", "2030-01-01",
                    "--out", str(tmp_path / "none"))
    assert code == 2 and "no exposures logged" in out
    code, out = run("experiments", "report", "--events-url", url, "--interval", "bayes")
    assert code == 2 and "--interval" in out


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private MLflow registry with v1 as champion and v2 as challenger."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"registered_model": "rs-exp", "experiment": "rs-exp"}))
    from training.tracking import setup

    setup("rs-exp")
    client = MlflowClient()
    client.create_registered_model("rs-exp")
    for v in ("1", "2"):
        (tmp_path / v).mkdir()
        client.create_model_version("rs-exp", str(tmp_path / v))
    client.set_registered_model_alias("rs-exp", "champion", "1")
    client.set_registered_model_alias("rs-exp", "challenger", "2")
    yield config
    mlflow.set_tracking_uri(None)


def _report(tmp_path: Path, lift: float, seed: int) -> Path:
    """experiment.json of a simulated experiment (champion serves v1, challenger v2)."""
    from recsys.experiments.analysis import analyze
    from recsys.experiments.report import write
    from recsys.experiments.simulate import Scenario, frames

    out = tmp_path / f"report-{seed}"
    write(analyze(*frames(Scenario(customers=20_000, spend_lift=lift), seed)), out)
    return out / "experiment.json"


def test_promote_from_experiment_only_on_a_win(registry: Path, tmp_path: Path) -> None:
    loses = _report(tmp_path, lift=-0.08, seed=1)
    code, out = run("promote", "--config", str(registry), "--from-experiment", str(loses))
    assert code == 0 and "v2 not promoted" in out and "does not show a win" in out, out
    assert str(champion_version("rs-exp").version) == "1"
    wins = _report(tmp_path, lift=0.08, seed=2)
    code, out = run("promote", "--config", str(registry), "--from-experiment", str(wins))
    assert code == 0 and "v2 promoted" in out, out
    assert str(champion_version("rs-exp").version) == "2"
    tag = MlflowClient().get_model_version("rs-exp", "2").tags["promotion"]
    assert tag.startswith("promoted: online experiment")
    # Now the experiment no longer matches the aliases (v2 is champion): refused.
    code, out = run("promote", "--config", str(registry), "--from-experiment", str(wins))
    assert code == 2 and "measured" in out
