"""`recsys customers profile | kpis` end to end on a small synthetic retailer."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from recsys.customers.history import FutureRowsWarning
from recsys.customers.profile import PROFILE_COLUMNS
from training.cli import app

DATASET = "synthetic:customers=400,products=60,seed=2"
runner = CliRunner()


@pytest.mark.slow
def test_profile_writes_parquet_summary_and_plots(tmp_path) -> None:
    out, plots = tmp_path / "profile.parquet", tmp_path / "plots"
    with pytest.warns(FutureRowsWarning, match="after as_of=2024-12-01"):
        result = runner.invoke(app, ["customers", "profile", "--dataset", DATASET, "--out",
                                     str(out), "--plot-dir", str(plots), "--as-of", "2024-12-01"])
    assert result.exit_code == 0, result.output
    profile = pd.read_parquet(out)
    assert list(profile.columns) == list(PROFILE_COLUMNS) and len(profile) == 400
    assert "as of 2024-12-01" in result.output and "revenue_share" in result.output
    assert {p.name for p in plots.iterdir()} == {"segments.png", "stages.png", "tiers.png",
                                                 "clv.png"}


@pytest.mark.slow
def test_kpis_write_tables_and_heatmap(tmp_path) -> None:
    out, heatmap = tmp_path / "kpis.csv", tmp_path / "cohort.png"
    result = runner.invoke(app, ["customers", "kpis", "--dataset", DATASET, "--period", "Q",
                                 "--out", str(out), "--heatmap", str(heatmap)])
    assert result.exit_code == 0, result.output
    periods = pd.read_csv(out)
    assert periods["period"].tolist() == ["2024Q1", "2024Q2", "2024Q3", "2024Q4"]
    assert {"churn_rate", "repeat_purchase_rate", "coupon_redemption_rate"} <= set(periods)
    assert (tmp_path / "kpis_cohorts.csv").is_file() and heatmap.stat().st_size > 1000


def test_domain_errors_exit_2_with_one_line(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rfm: {bins: 3}\n")
    result = runner.invoke(app, ["customers", "profile", "--dataset", DATASET, "--out",
                                 str(tmp_path / "p.parquet"), "--config", str(bad)])
    assert result.exit_code == 2
    assert "error: " in result.output and "rfm.bins" in result.output
    result = runner.invoke(app, ["customers", "kpis", "--dataset", "no-such-dataset"])
    assert result.exit_code == 2 and "error: " in result.output
    result = runner.invoke(app, ["customers", "kpis", "--dataset", DATASET, "--period", "Z"])
    assert result.exit_code == 2
    assert result.output.strip() == "error: period 'Z' is not a pandas period alias (W, M, Q, Y)"
    result = runner.invoke(app, ["customers", "profile", "--dataset", DATASET, "--out",
                                 str(tmp_path / "p.csv")])
    assert result.exit_code == 2 and ".parquet" in result.output
