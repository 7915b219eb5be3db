"""One router per resource; ``answered`` records which model answered a request.

Answers for one customer, product or basket and event batches take a few ms of CPU: their
handlers are ``async def`` and run on the worker's event loop. That saves the thread-pool hop
(about 1 ms of CPU per request), and a handler in a thread no longer waits for the GIL behind
the loop at each SQLite call (events took seconds under load that way,
docs/benchmarks/serving.md). Rare or large requests (erasure, consent, batches, reload,
metrics) stay ``def`` and run in the thread pool.
"""

from __future__ import annotations

from fastapi import Request

from serving.loader import Served
from serving.metrics import Metrics, route_label


def answered(request: Request, served: Served, fallback: str | None = None) -> dict[str, str]:
    """Count the answer per variant (and its fallback) and return the attribution fields
    every recommendation response carries."""
    metrics: Metrics = request.app.state.metrics
    route = route_label(request.scope)
    request.state.variant = served.variant
    metrics.responses.labels(route, served.variant).inc()
    if fallback:
        metrics.fallbacks.labels(served.variant, fallback).inc()
    return {"model_version": served.version, "variant": served.variant,
            "request_id": str(getattr(request.state, "request_id", ""))}


__all__ = ["answered"]
