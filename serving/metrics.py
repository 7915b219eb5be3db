"""Prometheus metrics and the request middleware that records them.

Each app owns its registry (tests build many apps). With several worker processes set
``PROMETHEUS_MULTIPROC_DIR`` (``recsys serve --workers N`` does) and ``/metrics`` aggregates
all workers. Labels carry route templates and variants, never customer or product ids.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,
                   0.25, 0.5, 1.0, 2.5)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class Metrics:
    """The server's metrics, registered in a private registry."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.latency = Histogram("recsys_request_duration_seconds", "Request latency by route",
                                 ["route", "method", "variant"], buckets=LATENCY_BUCKETS,
                                 registry=r)
        self.requests = Counter("recsys_requests", "Requests by route and status",
                                ["route", "method", "status"], registry=r)
        self.responses = Counter("recsys_variant_responses", "Answers per model variant",
                                 ["route", "variant"], registry=r)
        self.fallbacks = Counter("recsys_fallbacks", "Non-personalized answers by reason",
                                 ["variant", "reason"], registry=r)
        self.answer_cache = Counter("recsys_answer_cache",
                                    "Recommendation answers reused (hit) or ranked (miss)",
                                    ["variant", "result"], registry=r)
        self.model_info = Gauge("recsys_model_info", "1 for the live version of each variant",
                                ["variant", "version"], registry=r,
                                multiprocess_mode="mostrecent")
        self.index_recall = Gauge("recsys_index_recall", "faiss recall@10 vs exact search",
                                  ["variant", "kind"], registry=r,
                                  multiprocess_mode="mostrecent")
        self.reloads = Counter("recsys_reloads", "Model reloads by outcome", ["outcome"],
                               registry=r)
        self.reload_failed = Gauge("recsys_last_reload_failed",
                                   "1 when the last reload failed (the old model serves)",
                                   registry=r, multiprocess_mode="mostrecent")
        self.events = Counter("recsys_events", "Posted events by type and outcome",
                              ["event_type", "outcome"], registry=r)
        # Experiment guardrails (recsys/experiments/guardrails.py): answers per variant.
        self.variant_answers = Counter("recsys_variant_answers",
                                       "Requests routed to a variant, by outcome (error: 5xx)",
                                       ["variant", "outcome"], registry=r)
        self.shed = Counter("recsys_shed_requests",
                            "Requests refused with 503 by load shedding, by reason (in_flight: "
                            "at the limit; queue: the queue is slow; wait: waited too long)",
                            ["reason"], registry=r)
        self._live: dict[str, str] = {}

    def set_models(self, versions: dict[str, tuple[str, str | None, float | None]]) -> None:
        """Publish ``{variant: (version, index kind, recall)}`` as the live models."""
        for variant, old in list(self._live.items()):
            if versions.get(variant, (None,))[0] != old:
                self.model_info.labels(variant, old).set(0)
                del self._live[variant]
        for variant, (version, kind, recall) in versions.items():
            self.model_info.labels(variant, version).set(1)
            self._live[variant] = version
            if kind is not None and recall is not None:
                self.index_recall.labels(variant, kind).set(recall)

    def render(self) -> bytes:
        """The exposition text (all workers' values in multi-process mode)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)


class ObserveMiddleware:
    """Pure ASGI middleware: request id (``X-Request-ID``), latency and status per route.

    The route label is the matched template (``/v1/customers/{customer_id}/...``), so ids
    never reach metrics or INFO logs.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_label(scope)
            method = scope["method"]
            variant = state.get("variant", "none")
            self.metrics.latency.labels(route, method, variant).observe(elapsed)
            if variant not in ("none", "mixed"):
                self.metrics.variant_answers.labels(
                    variant, "error" if status >= 500 else "ok").inc()
            self.metrics.requests.labels(route, method, str(status)).inc()
            log.debug("%s %s %s %.1fms %s", method, route, status, elapsed * 1e3, request_id)


def route_label(scope: Scope) -> str:
    """The matched route's full template, e.g. ``/v1/products/{product_id}/similar``.

    Routers included with a prefix report their own template without it; the prefix is the
    request path's leading segments that the template does not cover (prefixes are literal).
    A mount (the docs assets) is ``<mount>/{path}``; FastAPI's own plain routes
    (``/openapi.json``) have literal paths and report them.
    """
    template = getattr(scope.get("route"), "path", None)
    if not template:
        if "app_root_path" in scope:  # matched a mount
            return f"{scope['root_path']}/{{path}}"
        return scope["path"] if "endpoint" in scope else "unmatched"
    parts = scope["path"].rstrip("/").split("/")
    covered = template.rstrip("/").split("/")
    return "/".join(parts[: max(len(parts) - len(covered) + 1, 1)]) + template


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


__all__ = ["Metrics", "ObserveMiddleware", "LATENCY_BUCKETS", "route_label"]
