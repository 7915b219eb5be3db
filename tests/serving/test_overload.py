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

from serving.main import create_app
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
    found = re.search(r"^recsys_shed_requests_total (\S+)$", text, re.M)
    assert found, "the shed counter is missing from /metrics"
    return float(found.group(1))


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
