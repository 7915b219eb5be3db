"""`recsys evaluate` / `recsys tune` end to end on a small seeded interactions file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recsys.data.split import temporal_split
from recsys.evaluation.evaluate import prepare
from recsys.models import make_model
from training.cli import app
from training.jobs.tune import (
    SCORE_TIME_PARAMS,
    SEARCH_SPACES,
    START_POINTS,
    tune,
    validation_split,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """90 customers in 3 taste groups of 12 products each, ~5 months of weekly baskets."""
    rng = np.random.default_rng(7)
    rows = []
    start = pd.Timestamp("2024-01-01")
    for c in range(90):
        group = c % 3
        first_week = rng.integers(0, 18)  # some customers appear only late (cold)
        for week in range(first_week, 22):
            if rng.random() < 0.5:
                continue
            day = start + pd.Timedelta(days=7 * week + int(rng.integers(0, 7)))
            for p in rng.choice(12, size=3, replace=False) + 12 * group:
                rows.append((f"c{c}", f"p{p}", day, 1.0, 2.5))
    frame = pd.DataFrame(rows, columns=["customer_id", "product_id", "timestamp", "quantity",
                                        "amount"])
    path = tmp_path_factory.mktemp("data") / "interactions.csv"
    frame.to_csv(path, index=False)
    return path


def test_evaluate_prints_one_table_and_writes_files(dataset: Path, tmp_path: Path) -> None:
    out, plot = tmp_path / "table.md", tmp_path / "bars.png"
    result = runner.invoke(app, ["evaluate", "--dataset", str(dataset), "--models",
                                 "popularity,buyagain", "--test-days", "21", "--k", "5",
                                 "--out", str(out), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("| ")]
    assert lines[0].startswith("| model | returning/ndcg@5 | returning/recall@5")  # headline
    assert [ln.split(" | ")[0] for ln in lines[1:]] == ["| popularity", "| buyagain"]
    assert out.read_text().startswith("| model | returning/ndcg@5")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_writes_csv(dataset: Path, tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    result = runner.invoke(app, ["evaluate", "-d", str(dataset), "--models", "popularity",
                                 "--test-days", "21", "--out", str(path)])
    assert result.exit_code == 0, result.output
    csv = pd.read_csv(path, index_col="model")
    assert list(csv.index) == ["popularity"]
    assert 0 < csv.loc["popularity", "ndcg@10"] <= 1


@pytest.mark.parametrize(("args", "message"), [
    (["--models", "popularity,nosuchmodel"], "unknown model(s) nosuchmodel"),
    (["--models", "popularity", "--test-days", "9999"], "cannot split"),
    (["--models", "popularity", "--out", "table.txt"], "--out must end in .md or .csv"),
])
def test_evaluate_bad_input_exits_2_with_one_line(dataset: Path, args: list[str],
                                                  message: str) -> None:
    result = runner.invoke(app, ["evaluate", "--dataset", str(dataset), *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_tune_cli_prints_trials_and_config_snippet(dataset: Path) -> None:
    result = runner.invoke(app, ["tune", "--dataset", str(dataset), "--model", "buyagain",
                                 "--trials", "3", "--test-days", "21",
                                 "--validation-days", "21", "--k", "5"])
    assert result.exit_code == 0, result.output
    assert result.output.count("trial ") == 3
    assert "best ndcg@5 = " in result.output
    assert "name: buyagain" in result.output and "horizon_days:" in result.output


def test_tune_uses_validation_period_before_the_test_cut(dataset: Path) -> None:
    split = _split(dataset)
    val = validation_split(split, 21)
    assert val.test["timestamp"].max() < split.cut
    assert val.train["timestamp"].max() < val.cut
    seen: list[tuple[int, dict, dict]] = []
    result = tune("buyagain", split, 4, lambda n, p, m: seen.append((n, p, m)),
                  validation_days=21, k=5, seed=3)
    assert [n for n, _, _ in seen] == [0, 1, 2, 3]
    defaults = make_model("buyagain").get_params()
    assert seen[0][1] == {p: defaults[p] for p in SEARCH_SPACES["buyagain"]}  # trial 0
    assert seen[1][1] == START_POINTS["buyagain"][0]  # trial 1: frequency alone
    assert set(seen[2][1]) == set(SEARCH_SPACES["buyagain"])
    assert pd.Timestamp(result.validation["cut"]) < split.cut
    assert result.best_value == max(t["value"] for t in result.trials)
    assert result.best_value == max(m["ndcg@5"] for _, _, m in seen)
    again = tune("buyagain", split, 4, validation_days=21, k=5, seed=3)
    assert again.best_params == result.best_params  # seeded search is reproducible


def _split(dataset: Path):  # type: ignore[no-untyped-def]
    tx = pd.read_csv(dataset, parse_dates=["timestamp"])
    for col in ("customer_id", "product_id"):
        tx[col] = tx[col].astype(str)
    return temporal_split(tx, test_days=21)


def test_score_time_params_equal_a_refit(dataset: Path) -> None:
    # Guards SCORE_TIME_PARAMS: changing these after fit must equal fitting with them.
    data = prepare(_split(dataset))
    weights = {"cf_weight": 0.3, "buyagain_weight": 2.0, "popularity_weight": 0.4,
               "trending_weight": 0.0, "category_weight": 0.7}
    assert set(weights) <= SCORE_TIME_PARAMS["hybrid"]
    fresh = make_model("hybrid", cf="itemknn", **weights).fit(data.train.matrix)
    reused = make_model("hybrid", cf="itemknn").fit(data.train.matrix)
    for name, value in weights.items():
        setattr(reused, name, value)
    a = fresh.recommend(data.history, 10, users=data.users)
    b = reused.recommend(data.history, 10, users=data.users)
    np.testing.assert_array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)


def test_tune_fits_hybrid_once_when_only_blend_weights_move(dataset: Path) -> None:
    fit_times: list[float] = []
    result = tune("hybrid", _split(dataset), 3, lambda n, p, m: fit_times.append(m["fit_s"]),
                  validation_days=21, k=5, base_params={"cf": "itemknn"})
    assert fit_times[0] > 0 and fit_times[1:] == [0.0, 0.0]
    assert result.best_params["cf"] == "itemknn"
    assert set(result.best_params) == {"cf"} | set(SEARCH_SPACES["hybrid"])
