"""``RECSYS_LIMIT_CONCURRENCY``: a real server answers a flood of connections beyond it with
uvicorn's own 503 at once, and serves normally when the flood is gone."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.conftest import CLIENT_KEY, server_env

pytestmark = pytest.mark.slow
FLOOD = 40


async def flood(port: int, path: str) -> list[tuple[int, float]]:
    """``FLOOD`` connections opened first, then one request on each at once: each answer's
    status and seconds from the moment the requests were sent."""
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(FLOOD)]
    request = (f"GET {path} HTTP/1.1\r\nHost: test\r\nX-API-Key: {CLIENT_KEY}\r\n\r\n"
               ).encode()
    started = time.perf_counter()
    for _, writer in conns:
        writer.write(request)

    async def answer(reader: asyncio.StreamReader) -> tuple[int, float]:
        status = int((await reader.readline()).split()[1])
        return status, time.perf_counter() - started

    try:
        return await asyncio.wait_for(asyncio.gather(*(answer(r) for r, _ in conns)), 30)
    finally:
        for _, writer in conns:
            writer.close()


def test_a_flood_beyond_the_connection_limit_gets_503_at_once(bundle: Path, tmp_path: Path,
                                                               make_server: Any) -> None:
    server = make_server(server_env(tmp_path / "data", bundle,
                                    RECSYS_LIMIT_CONCURRENCY="4",
                                    RECSYS_LISTEN_BACKLOG="64"))
    server.wait()
    path = "/v1/customers/c0001/recommendations?n=5"
    answers = asyncio.run(flood(server.port, path))
    refused = [seconds for status, seconds in answers if status == 503]
    assert {status for status, _ in answers} <= {200, 503}
    assert len(refused) >= FLOOD - 4  # 40 open connections: over the limit of 4
    assert max(refused) < 2.0  # refused as they come, not after queueing
    calm = httpx.get(server.base + path, headers={"X-API-Key": CLIENT_KEY}, timeout=10)
    assert calm.status_code == 200  # the flood's connections are gone: served again
    assert "Exceeded concurrency limit" in server.text()
