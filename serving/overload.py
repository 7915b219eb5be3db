"""Load shedding: a bounded number of requests in flight per worker, the rest refused at once,
and one request started per turn of the event loop.

The ranking routes compute on the event loop, so a worker runs one request at a time. A
request is counted when its task first runs; it then waits for its turn, and turns are given
one per pass of the loop, in arrival order. That does two things:

- every request already read from the sockets counts itself before the first of them
  computes, so the count is the worker's queue. A request gets a 503 with ``Retry-After``
  at once (no ranking, no body read) when it finds ``limit`` others in flight, or when it
  would wait over half of ``max_wait``: the request first in line has waited that long, or
  the requests ahead times the recent time per turn come to that (the CPU the limit was
  sized for is not there, taken by other processes or by refusals). One whose turn still
  comes more than ``max_wait`` seconds after it arrived gets the 503 then, when the requests
  started before it account for over half of that wait at the recent time per turn; a wait
  made long by a stall of the loop itself (a reload's full garbage collection) is served.
  All are counted in ``recsys_shed_requests_total`` by reason;
- the loop polls its sockets between two requests, not once per batch of them. uvloop (libuv
  since 1.45) accepts one new connection per poll; with a whole batch ranked per pass, a busy
  worker accepted a few dozen connections a second and the rest waited in the listen queue,
  unread and so neither counted nor shed, for seconds (docs/benchmarks/serving.md).

Health, readiness and metrics are never shed nor queued, so an overloaded worker stays
observable. A request that awaits (a thread, the database) lets the next one start meanwhile.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque

from prometheus_client import Counter
from starlette.types import ASGIApp, Receive, Scope, Send

EXEMPT = frozenset({"/health", "/ready", "/metrics"})


class InFlightLimitMiddleware:
    """Pure ASGI middleware: at most ``limit`` requests in flight (0: no limit), started one
    per pass of the event loop, each within ``max_wait`` seconds of its arrival (0: no
    bound)."""

    def __init__(self, app: ASGIApp, limit: int, retry_after: int, shed: Counter,
                 max_wait: float = 0.0) -> None:
        self.app, self.limit, self.shed, self.max_wait = app, limit, shed, max_wait
        self.retry_after = str(retry_after).encode()
        self.in_flight = 0
        self.waiting: deque[tuple[float, asyncio.Future[None]]] = deque()  # arrived, turn
        self.granting = False
        self.started = 0  # requests given their turn
        self.turn_seconds = 0.0  # moving average of the time between turns while busy
        self.last_turn: float | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limit or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            await self._refuse(send, "in_flight",
                               f"at its limit of {self.limit} requests in flight")
            return
        if self.max_wait and self.waiting and self._expected_wait() > self.max_wait / 2:
            await self._refuse(send, "queue", "overloaded: requests wait over "
                                              f"{self.max_wait * 500:.0f} ms for their turn")
            return
        self.in_flight += 1
        try:
            waited, behind = await self._turn()
            if not self._late(waited, behind):
                await self.app(scope, receive, send)
                return
        finally:
            self.in_flight -= 1
        await self._refuse(send, "wait", f"overloaded: this request waited {waited * 1e3:.0f} "
                                         f"ms, over the {self.max_wait * 1e3:.0f} ms allowed")

    def _expected_wait(self) -> float:
        """What a request arriving now would wait: at least what the first in line has, and
        about one turn per request ahead."""
        waited = asyncio.get_running_loop().time() - self.waiting[0][0]
        return max(waited, len(self.waiting) * self.turn_seconds)

    def _late(self, waited: float, behind: int) -> bool:
        """Over the bound, and mostly for the requests that went first: a wait that the
        loop's own stall made long (a reload's garbage collection, a busy machine) is not
        shortened by refusing the request once its turn has come."""
        return bool(self.max_wait) and waited > self.max_wait and \
            behind * self.turn_seconds > self.max_wait / 2

    async def _turn(self) -> tuple[float, int]:
        """Wait until the loop has passed once for each request that came before; returns
        the seconds waited and how many requests were started meanwhile."""
        loop = asyncio.get_running_loop()
        arrived, started = loop.time(), self.started
        turn = loop.create_future()
        self.waiting.append((arrived, turn))
        if not self.granting:
            self.granting = True
            loop.call_soon(self._grant, loop)
        await turn  # cancelled (server shutdown): _grant skips it
        return loop.time() - arrived, self.started - started - 1

    def _grant(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the next waiting request, and come back on the loop's next pass."""
        now = loop.time()
        if self.last_turn is not None:  # busy since the last turn
            interval = now - self.last_turn
            self.turn_seconds += (interval - self.turn_seconds) * (0.05 if self.turn_seconds
                                                                   else 1.0)
        while self.waiting and self.waiting[0][1].done():
            self.waiting.popleft()
        if self.waiting:
            self.waiting.popleft()[1].set_result(None)
            self.started += 1
        if self.waiting:
            self.last_turn = now
            loop.call_soon(self._grant, loop)
        else:
            self.granting, self.last_turn = False, None

    async def _refuse(self, send: Send, reason: str, why: str) -> None:
        self.shed.labels(reason).inc()
        body = json.dumps({"detail": f"the server is {why}; retry shortly"}).encode()
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"retry-after", self.retry_after),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


__all__ = ["InFlightLimitMiddleware", "EXEMPT"]
