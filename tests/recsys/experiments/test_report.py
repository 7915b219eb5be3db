"""The decision rule, the report files and the guardrails read from Prometheus text."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from recsys.experiments.analysis import Setup, analyze
from recsys.experiments.decision import decide
from recsys.experiments.guardrails import from_prometheus
from recsys.experiments.report import write
from recsys.experiments.simulate import Scenario, coupon_of, frames


@pytest.fixture(scope="module")
def winning() -> dict:
    """A large simulated experiment where the challenger truly adds 8 % spend."""
    exposures, events = frames(Scenario(customers=20_000, spend_lift=0.08), seed=2)
    return analyze(exposures, events, Setup(holdout_shares={coupon_of(2): 0.2}))


def test_a_clear_win_with_no_worse_guardrail_promotes(winning: dict) -> None:
    verdict = decide(winning)
    assert verdict.promote, verdict
    assert "welch+cuped" in str(verdict)


def test_no_promotion_without_a_win_on_the_metric(winning: dict) -> None:
    verdict = decide(winning, "bought_shown_rate")  # no true effect on it
    assert not verdict.promote and "does not show a win" in str(verdict)
    with pytest.raises(ValueError, match="metric must be one of"):
        decide(winning, "clicks")


def test_a_broken_split_or_a_worse_guardrail_blocks_promotion(winning: dict) -> None:
    broken = copy.deepcopy(winning)
    broken["srm"]["mismatch"] = True
    assert "sample-ratio mismatch" in str(decide(broken))
    costly = copy.deepcopy(winning)
    for row in costly["comparisons"]:
        if row["metric"] == "coupon_cost_per_customer":
            row["low"], row["high"] = 0.1, 0.5
    assert "guardrail coupon_cost_per_customer is worse" in str(decide(costly))
    slow = copy.deepcopy(winning)
    slow["guardrails"] = {"champion": {"error_rate": 0.0, "latency_p99_ms": 10.0},
                          "challenger": {"error_rate": 0.0, "latency_p99_ms": 25.0}}
    assert "latency_p99_ms is worse" in str(decide(slow))
    failing = copy.deepcopy(slow)
    failing["guardrails"]["challenger"] = {"error_rate": 0.02, "latency_p99_ms": 10.0}
    verdict = decide(failing)
    assert not verdict.promote and "error_rate is worse" in str(verdict)


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_report_files(winning: dict, tmp_path: Path, fmt: str) -> None:
    paths = write(winning, tmp_path, fmt)
    names = sorted(p.name for p in paths)
    assert names == sorted(["experiment.json", f"experiment.{fmt}", "differences.png",
                            "coupons.png"])
    assert json.loads((tmp_path / "experiment.json").read_text()) == winning
    for png in ("differences.png", "coupons.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (tmp_path / f"experiment.{fmt}").read_text()
    assert "Welch's t interval" in text and "Promote the challenger" in text
    assert coupon_of(2) in text
    if fmt == "html":
        assert "<table>" in text and '<img src="differences.png"' in text


def test_guardrails_from_the_servers_metrics() -> None:
    registry = CollectorRegistry()
    latency = Histogram("recsys_request_duration_seconds", "", ["route", "method", "variant"],
                        buckets=(0.005, 0.01, 0.05), registry=registry)
    answers = Counter("recsys_variant_answers", "", ["variant", "outcome"], registry=registry)
    for _ in range(990):
        latency.labels("/r", "GET", "champion").observe(0.004)
    for _ in range(10):
        latency.labels("/r", "GET", "champion").observe(0.04)
    for _ in range(980):
        latency.labels("/r", "GET", "challenger").observe(0.004)
    for _ in range(20):
        latency.labels("/r", "GET", "challenger").observe(0.04)
    answers.labels("champion", "ok").inc(1000)
    answers.labels("challenger", "ok").inc(990)
    answers.labels("challenger", "error").inc(10)
    latency.labels("/r", "GET", "none").observe(1.0)  # unrouted requests are left out
    got = from_prometheus(generate_latest(registry).decode())
    assert got == {"champion": {"requests": 1000, "error_rate": 0.0, "latency_p99_ms": 5.0},
                   "challenger": {"requests": 1000, "error_rate": 0.01,
                                  "latency_p99_ms": 50.0}}
