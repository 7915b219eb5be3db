"""The per-worker in-flight limit: requests beyond it get 503 + Retry-After at once, and
/metrics counts them (serving/overload.py)."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Counter

from serving.main import create_app
from serving.overload import InFlightLimitMiddleware
from tests.serving.conftest import HEADERS, settings_for


@contextmanager
def app_with_slow_routes(bundle: Path, data_dir: Path, **overrides: Any
                         ) -> Iterator[TestClient]:
    """The real app plus ``/slow`` (awaits 0.5 s) and ``/busy`` (holds the event loop for
    0.2 s, as ranking on the loop does)."""
    app = create_app(settings_for(bundle, data_dir, **overrides))

    async def slow() -> dict[str, str]:
        await asyncio.sleep(0.5)
        return {"status": "ok"}

    async def busy() -> dict[str, str]:
        time.sleep(0.2)
        return {"status": "ok"}

    app.add_api_route("/slow", slow)
    app.add_api_route("/busy", busy)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def at_once(call: Callable[[], httpx.Response], n: int) -> list[httpx.Response]:
    """``n`` concurrent calls, released together."""
    start = threading.Barrier(n)

    def one() -> httpx.Response:
        start.wait()
        return call()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: one(), range(n)))


def shed_total(client: TestClient) -> float:
    text = client.get("/metrics").text
    found = re.findall(r'^recsys_shed_requests_total\{reason="(\w+)"\} (\S+)$', text, re.M)
    return sum(float(value) for _, value in found)


def test_requests_beyond_the_limit_get_503_with_retry_after_and_are_counted(
        als_bundle: Path, tmp_path: Path) -> None:
    with app_with_slow_routes(als_bundle, tmp_path, max_in_flight=2,
                              retry_after_seconds=3) as client:
        before = shed_total(client)
        responses = at_once(lambda: client.get("/slow"), 6)
        codes = sorted(r.status_code for r in responses)
        assert codes == [200, 200, 503, 503, 503, 503]
        for refused in (r for r in responses if r.status_code == 503):
            assert refused.headers["retry-after"] == "3"
            assert "limit of 2 requests in flight" in refused.json()["detail"]
            assert refused.elapsed.total_seconds() < 0.4  # refused at once, not after a wait
        assert shed_total(client) - before == 4
        assert client.get("/slow").status_code == 200  # the limit frees up afterwards


def test_requests_queued_behind_a_computing_one_are_counted(als_bundle: Path,
                                                            tmp_path: Path) -> None:
    # /busy blocks the loop as ranking does: the others wait unread by the app meanwhile, and
    # must still count against the limit once the loop is free.
    with app_with_slow_routes(als_bundle, tmp_path, max_in_flight=1) as client:
        before = shed_total(client)
        responses = at_once(lambda: client.get("/busy"), 5)
        shed = sum(r.status_code == 503 for r in responses)
        assert {r.status_code for r in responses} == {200, 503}
        assert shed_total(client) - before == shed


def test_health_ready_and_metrics_are_never_shed(als_bundle: Path, tmp_path: Path) -> None:
    with app_with_slow_routes(als_bundle, tmp_path, max_in_flight=1) as client:
        start = threading.Barrier(2)

        def hold() -> int:
            start.wait()
            return client.get("/slow").status_code

        with ThreadPoolExecutor(1) as pool:
            held = pool.submit(hold)
            start.wait()
            time.sleep(0.1)  # /slow is in flight now
            assert client.get("/v1/popular", headers=HEADERS).status_code == 503
            for path in ("/health", "/ready", "/metrics"):
                assert client.get(path).status_code == 200, path
            assert held.result() == 200


def test_no_limit_sheds_nothing(als_bundle: Path, tmp_path: Path) -> None:
    with app_with_slow_routes(als_bundle, tmp_path, max_in_flight=0) as client:
        responses = at_once(lambda: client.get("/slow"), 6)
        assert [r.status_code for r in responses] == [200] * 6
        assert shed_total(client) == 0


async def call(app: Any, path: str = "/rank") -> tuple[int, bytes]:
    """One GET through a bare ASGI app: its status and body."""
    scope = {"type": "http", "method": "GET", "path": path, "headers": []}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def limited(inner: Any, limit: int, max_wait: float) -> InFlightLimitMiddleware:
    return InFlightLimitMiddleware(inner, limit=limit, retry_after=1, max_wait=max_wait,
                                   shed=Counter("shed", "test", ["reason"],
                                                registry=CollectorRegistry()))


def test_requests_start_one_per_pass_of_the_loop() -> None:
    # libuv accepts one connection per poll: a worker that ranked a whole batch per pass
    # left new connections unaccepted for seconds under load.
    passes = 0
    started: list[int] = []

    async def rank(scope: Any, receive: Any, send: Any) -> None:
        started.append(passes)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def five() -> list[tuple[int, bytes]]:
        loop = asyncio.get_running_loop()

        def tick() -> None:  # counts the loop's passes
            nonlocal passes
            passes += 1
            loop.call_soon(tick)

        loop.call_soon(tick)
        middleware = limited(rank, 10, 0.0)
        return await asyncio.gather(*(call(middleware) for _ in range(5)))

    assert [status for status, _ in asyncio.run(five())] == [200] * 5
    assert len(set(started)) == 5  # each request started on a pass of its own


def test_a_request_that_waited_too_long_for_its_turn_gets_503() -> None:
    async def busy(scope: Any, receive: Any, send: Any) -> None:
        time.sleep(0.1)  # holds the loop, as ranking does
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def three(max_wait: float) -> list[tuple[int, bytes]]:
        middleware = limited(busy, 10, max_wait)
        return await asyncio.gather(*(call(middleware) for _ in range(3)))

    answers = asyncio.run(three(0.05))
    assert [status for status, _ in answers] == [200, 503, 503]
    assert all(b"waited" in body and b"over the 50 ms allowed" in body
               for _, body in answers[1:])
    assert [status for status, _ in asyncio.run(three(0.0))] == [200] * 3  # no bound


def test_a_wait_the_loop_itself_made_long_is_served() -> None:
    # Nobody went first: the wait is the loop's own stall (a reload's full garbage collection
    # holds it), and refusing the request now would shorten no one's wait.
    async def rank(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def stall() -> None:
        time.sleep(0.1)  # runs after the request arrived, before its turn

    async def run() -> tuple[int, bytes]:
        middleware = limited(rank, 10, 0.05)
        answer, _ = await asyncio.gather(call(middleware), stall())
        return answer

    assert asyncio.run(run())[0] == 200


def test_a_newcomer_is_refused_at_once_when_the_queue_is_slow() -> None:
    async def busy(scope: Any, receive: Any, send: Any) -> None:
        time.sleep(0.1)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def run() -> tuple[list[tuple[int, bytes]], tuple[int, bytes], float]:
        middleware = limited(busy, 10, 0.05)
        loop = asyncio.get_running_loop()
        late: asyncio.Future[tuple[int, bytes, float]] = loop.create_future()

        async def newcomer() -> None:  # arrives after the first held the loop for 0.1 s
            started = time.perf_counter()
            status, body = await call(middleware)
            late.set_result((status, body, time.perf_counter() - started))

        loop.call_later(0.01, lambda: loop.create_task(newcomer()))
        queued = await asyncio.gather(*(call(middleware) for _ in range(5)))
        status, body, seconds = await late
        return queued, (status, body), seconds

    queued, (status, body), seconds = asyncio.run(run())
    assert [s for s, _ in queued] == [200] + [503] * 4  # the others waited over 50 ms
    assert status == 503 and b"requests wait over 25 ms" in body  # some are still queued
    assert seconds < 0.05  # refused as it came, not after its own wait


def test_a_newcomer_is_refused_at_once_when_the_requests_ahead_would_take_too_long() -> None:
    async def busy(scope: Any, receive: Any, send: Any) -> None:
        time.sleep(0.04)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def run() -> tuple[list[int], list[tuple[int, bytes]]]:
        middleware = limited(busy, 10, 0.15)
        first = await asyncio.gather(*(call(middleware) for _ in range(3)))  # 40 ms a turn
        return [s for s, _ in first], await asyncio.gather(*(call(middleware)
                                                             for _ in range(6)))

    first, batch = asyncio.run(run())
    assert first == [200] * 3
    # Read together, nobody has waited yet; but two ahead take about 80 ms, over half of
    # the 150 ms allowed: the third and later are refused as they come, not after waiting.
    assert [s for s, _ in batch] == [200, 200, 503, 503, 503, 503]
    assert all(b"requests wait over 75 ms" in body for _, body in batch[2:])
