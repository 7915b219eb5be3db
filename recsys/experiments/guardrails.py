"""Operational guardrails per variant from the server's Prometheus metrics text (``/metrics``):
answered requests, error rate and an upper bound of the p99 latency."""

from __future__ import annotations

import math
from collections import defaultdict

LATENCY = "recsys_request_duration_seconds"
OUTCOMES = "recsys_variant_answers"


def from_prometheus(text: str) -> dict[str, dict[str, float]]:
    """``{variant: {requests, error_rate, latency_p99_ms}}``; the p99 is the upper bound of
    the histogram bucket it falls in, summed over the routes that answered for the variant."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    outcomes: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            variant = s.labels.get("variant")
            if variant in (None, "none", "mixed"):
                continue
            if s.name == LATENCY + "_bucket":
                buckets[variant][float(s.labels["le"])] += s.value
            elif s.name == OUTCOMES + "_total":
                outcomes[variant][s.labels["outcome"]] += s.value
    out: dict[str, dict[str, float]] = {}
    for variant in sorted(set(buckets) | set(outcomes)):
        row: dict[str, float] = {}
        counts = outcomes.get(variant)
        if counts:
            total = sum(counts.values())
            row["requests"] = total
            row["error_rate"] = counts.get("error", 0.0) / total if total else 0.0
        cumulative = sorted(buckets.get(variant, {}).items())
        if cumulative and cumulative[-1][1] > 0:
            need = 0.99 * cumulative[-1][1]
            le = next(le for le, c in cumulative if c >= need)
            row["latency_p99_ms"] = le * 1000 if math.isfinite(le) else math.inf
        out[variant] = row
    return out


__all__ = ["from_prometheus"]
