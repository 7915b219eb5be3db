"""Load shedding: a bounded number of requests in flight per worker, the rest refused at once.

The ranking routes compute on the event loop, so a worker runs one request at a time and a
request that arrived during another's ranking only starts when it ends. Counting requests
at the middleware's entry alone would therefore always see one. Each request yields once to
the loop right after it is counted, so every request already read from the sockets is
counted before the first of them computes: the count is the worker's queue. A request that
finds ``limit`` others in flight gets a 503 with ``Retry-After`` at once (no ranking, no
body read) and is counted in ``recsys_shed_requests_total``; health, readiness and metrics
are never shed, so an overloaded worker stays observable.
"""

from __future__ import annotations

import asyncio
import json

from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

EXEMPT = frozenset({"/health", "/ready", "/metrics"})


class InFlightLimitMiddleware:
    """Pure ASGI middleware: at most ``limit`` requests in flight (0: no limit)."""

    def __init__(self, app: ASGIApp, limit: int, retry_after: int, shed: Counter) -> None:
        self.app, self.limit, self.shed = app, limit, shed
        self.retry_after = str(retry_after).encode()
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limit or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            self.shed.inc()
            await self._refuse(send)
            return
        self.in_flight += 1
        try:
            await asyncio.sleep(0)  # let requests already read count themselves (see above)
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1

    async def _refuse(self, send: Send) -> None:
        body = json.dumps({"detail": f"the server is at its limit of {self.limit} requests "
                                     "in flight; retry shortly"}).encode()
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"retry-after", self.retry_after),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


__all__ = ["InFlightLimitMiddleware", "EXEMPT"]
