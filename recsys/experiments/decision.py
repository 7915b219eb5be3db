"""Should the challenger become the champion? The rule ``recsys promote --from-experiment``
applies to an experiment's results (``analysis.analyze``).

The challenger wins when the split is sound (no sample-ratio mismatch), its difference on the
chosen metric has an interval entirely above zero, and no guardrail is worse: the coupon cost
per customer must not be higher with an interval above zero, and the server's error rate and
p99 latency per variant (when the results carry them) must not exceed the champion's by more
than the tolerances.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recsys.experiments.analysis import GUARDRAILS, METRICS

ERROR_TOLERANCE = 0.001  # absolute: 0.1 point of error rate
LATENCY_TOLERANCE = 0.10  # relative: 10 % of the champion's p99


@dataclass(frozen=True)
class Verdict:
    """The decision and the sentences behind it."""

    promote: bool
    reasons: list[str]

    def __str__(self) -> str:
        return "; ".join(self.reasons)


def comparison(result: Mapping[str, Any], metric: str) -> Mapping[str, Any] | None:
    """The row of ``metric`` (the CUPED-adjusted one when there is one)."""
    rows = [r for r in result.get("comparisons", []) if r["metric"] == metric]
    adjusted = [r for r in rows if r["method"].endswith("+cuped")]
    return (adjusted or rows or [None])[0]


def decide(result: Mapping[str, Any], metric: str = "revenue_per_customer", *,
           error_tolerance: float = ERROR_TOLERANCE,
           latency_tolerance: float = LATENCY_TOLERANCE) -> Verdict:
    """Whether the treatment (challenger) should replace the control, and why."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {sorted(METRICS)}, not {metric!r}")
    fails: list[str] = []
    if result["srm"]["mismatch"]:
        fails.append(f"sample-ratio mismatch (p = {result['srm']['p_value']:.2g}, counts "
                     f"{result['srm']['counts']}): the split is broken, nothing can be read")
    row = comparison(result, metric)
    if row is None or row["low"] is None:
        return Verdict(False, fails + [f"no interval for {metric} (too few customers or no "
                                       "variance)"])
    higher = METRICS[metric][1]
    wins = row["low"] > 0 if higher else row["high"] < 0
    said = (f"{metric} {row['diff']:+.4g} ({row['method']} "
            f"{100 * (1 - result['alpha']):.0f}% CI {row['low']:+.4g} to {row['high']:+.4g})")
    if not wins:
        fails.append(f"{said} does not show a win")
    fails += _metric_guardrails(result) + _ops_guardrails(result, error_tolerance,
                                                         latency_tolerance)
    if fails:
        return Verdict(False, fails)
    return Verdict(True, [f"{said} is above zero", "no guardrail is worse"])


def _metric_guardrails(result: Mapping[str, Any]) -> list[str]:
    """Guardrail metrics whose interval says the treatment is worse."""
    fails = []
    for guard in GUARDRAILS:
        g = comparison(result, guard)
        if g is None or g["low"] is None:
            continue
        if g["low"] > 0 if not METRICS[guard][1] else g["high"] < 0:
            fails.append(f"guardrail {guard} is worse: {g['diff']:+.4g} "
                         f"(CI {g['low']:+.4g} to {g['high']:+.4g})")
    return fails


def _ops_guardrails(result: Mapping[str, Any], error_tolerance: float,
                    latency_tolerance: float) -> list[str]:
    """The serving error rate and p99 latency, treatment against control, beyond tolerance."""
    ops = result.get("guardrails") or {}
    control, treatment = ops.get(result["control"]), ops.get(result["treatment"])
    if not (control and treatment):
        return []
    fails = []
    if treatment.get("error_rate", 0) > control.get("error_rate", 0) + error_tolerance:
        fails.append(f"guardrail error_rate is worse: {treatment['error_rate']:.4f} vs "
                     f"{control['error_rate']:.4f}")
    lt, lc = treatment.get("latency_p99_ms"), control.get("latency_p99_ms")
    if lt is not None and lc is not None and lt > lc * (1 + latency_tolerance):
        fails.append(f"guardrail latency_p99_ms is worse: {lt:.1f} vs {lc:.1f}")
    return fails


__all__ = ["Verdict", "decide", "comparison", "ERROR_TOLERANCE", "LATENCY_TOLERANCE"]
