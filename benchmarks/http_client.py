"""A cheap HTTP/1.1 load generator for the serving benchmark (benchmarks/serving.py).

Requests are encoded once, up front, and sent on raw asyncio connections (uvloop's loop when
it is installed), one request at a time per keep-alive connection; a response is read by its
``content-length``. A request that finds no idle connection opens a new one, so the client
never queues requests behind its own pool (aiohttp's pool of 512 did: under overload its
wait looked like the server's). That costs a fraction of aiohttp's CPU per request, which
matters when the generator and the server share two cores.

``open_loop`` sends request ``i`` at ``times[i]`` whatever the answers; ``closed_loop`` keeps
``concurrency`` requests outstanding. Latency counts from the scheduled time (open loop) or
the send (closed loop); status 0 is a timeout or a connection error.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

import numpy as np


def encode(urls: list[str], offset: int, count: int, key: str
           ) -> tuple[str, int, list[bytes]]:
    """Host, port and the GET request bytes of ``count`` of ``urls`` (all on one server) from
    ``offset`` on, wrapping around (request ``i`` of a run sends ``requests[i % count]``)."""
    first = urlsplit(urls[0])
    requests = []
    for i in range(offset, offset + min(count, len(urls))):
        parts = urlsplit(urls[i % len(urls)])
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        # aiohttp's default headers, which the earlier runs sent: the same parsing work
        requests.append(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                        f"X-API-Key: {key}\r\nAccept: */*\r\n"
                        "Accept-Encoding: gzip, deflate\r\n"
                        "User-Agent: Python/3.11 aiohttp/3\r\n\r\n".encode())
    return first.hostname or "127.0.0.1", first.port or 80, requests


class _Connection(asyncio.Protocol):
    """One keep-alive connection; tells the client about each whole response."""

    def __init__(self, client: _Client) -> None:
        self.client, self.buffer, self.current = client, b"", -1
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.client.connected(self)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer + data
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            self.buffer = buffer
            return
        head = buffer[:end].lower()
        at = head.find(b"\ncontent-length:")
        stop = head.find(b"\r", at + 16)
        length = int(head[at + 16:stop if stop > 0 else None]) if at > 0 else 0
        if len(buffer) < end + 4 + length:
            self.buffer = buffer
            return
        self.buffer = buffer[end + 4 + length:]
        self.client.answered(self, int(buffer[9:12]), b"\nconnection: close" in head)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.lost(self)


class _Client:
    """The requests of one run, their outcomes, and the connections that carry them."""

    def __init__(self, host: str, port: int, requests: list[bytes], n: int, timeout: float,
                 then: Callable[[int], None] | None = None, most: int = 2000) -> None:
        self.host, self.port, self.requests, self.timeout = host, port, requests, timeout
        self.then = then  # called with each finished request's index (closed loop)
        self.most = most  # connections at most (the server's listen backlog is 2048)
        self.latencies, self.statuses = np.full(n, np.nan), np.zeros(n, np.int16)
        self.started = [0.0] * n  # latency counts from here
        self.written = np.zeros(n)  # when the request left (after waiting for a connection)
        self.idle: list[_Connection] = []
        self.connections: set[_Connection] = set()
        self.waiting: deque[int] = deque()
        self.opening = self.outstanding = 0
        self.tasks: set[asyncio.Task[None]] = set()  # the loop keeps only weak references
        self.done = asyncio.Event()
        self.loop = asyncio.get_running_loop()

    def send(self, i: int) -> None:
        self.outstanding += 1
        if self.idle:
            self._write(self.idle.pop(), i)
            return
        self.waiting.append(i)
        if self.opening < len(self.waiting) and self.opening + len(self.connections) < self.most:
            self.opening += 1
            task = self.loop.create_task(self._open())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _open(self) -> None:
        try:
            await self.loop.create_connection(lambda: _Connection(self), self.host, self.port)
        except OSError:
            self.opening -= 1
            if self.waiting:
                self._finish(self.waiting.popleft(), 0)

    def _write(self, connection: _Connection, i: int) -> None:
        connection.current = i
        self.written[i] = time.perf_counter()
        assert connection.transport is not None
        connection.transport.write(self.requests[i % len(self.requests)])

    def _next(self, connection: _Connection) -> None:
        if self.waiting:
            self._write(connection, self.waiting.popleft())
        else:
            connection.current = -1
            self.idle.append(connection)

    def connected(self, connection: _Connection) -> None:
        self.opening -= 1
        self.connections.add(connection)
        self._next(connection)

    def answered(self, connection: _Connection, status: int, close: bool) -> None:
        i, connection.current = connection.current, -1
        if close:
            assert connection.transport is not None
            connection.transport.close()
        else:
            self._next(connection)
        self._finish(i, status)

    def lost(self, connection: _Connection) -> None:
        self.connections.discard(connection)
        if connection in self.idle:
            self.idle.remove(connection)
        if connection.current >= 0:
            i, connection.current = connection.current, -1
            self._finish(i, 0)

    def _finish(self, i: int, status: int) -> None:
        if status:
            self.statuses[i] = status
            self.latencies[i] = time.perf_counter() - self.started[i]
        self.outstanding -= 1
        if self.then is not None:
            self.then(i)
        if not self.outstanding:
            self.done.set()

    async def expire(self) -> None:
        """Every 0.1 s, fail the requests older than the timeout: those still waiting for a
        connection, and those sent (their connections are dropped)."""
        while True:
            await asyncio.sleep(0.1)
            old = time.perf_counter() - self.timeout
            while self.waiting and self.started[self.waiting[0]] < old:
                self._finish(self.waiting.popleft(), 0)
            for connection in list(self.connections):
                if connection.current >= 0 and self.started[connection.current] < old:
                    assert connection.transport is not None
                    connection.transport.abort()

    async def drain(self) -> None:
        """Wait for every request sent to finish, then close the connections."""
        expiry = asyncio.create_task(self.expire())
        if self.outstanding:
            self.done.clear()
            await self.done.wait()
        expiry.cancel()
        for connection in list(self.connections):
            assert connection.transport is not None
            connection.transport.close()


def _run(main: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def open_loop(urls: list[str], offset: int, key: str, times: np.ndarray, timeout: float = 5.0,
              connections: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Send request ``i`` (``urls[offset + i]``) at ``times[i]`` s from now whatever the
    answers: each one's latency from its scheduled time (s, NaN when it failed), status,
    and how late it left the generator (s: its own lag, and the wait for a connection when
    ``connections`` are busy; NaN when it never left)."""
    n = len(times)
    host, port, requests = encode(urls, offset, n, key)

    async def main() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        client = _Client(host, port, requests, n, timeout, most=connections)
        start = time.perf_counter() + 0.2
        scheduled = (start + times).tolist()
        client.started = scheduled
        expiry = asyncio.create_task(client.expire())
        i = 0
        while i < n:
            now = time.perf_counter()
            while i < n and scheduled[i] <= now:
                client.send(i)
                i += 1
            if i < n:  # loops wake to the millisecond: lags under 1 ms are the timer's
                await asyncio.sleep(scheduled[i] - time.perf_counter())
        expiry.cancel()
        await client.drain()
        lags = np.where(client.written > 0, client.written - start - times, np.nan)
        return client.latencies, client.statuses, lags

    return _run(main())  # type: ignore[no-any-return]


def closed_loop(urls: list[str], offset: int, key: str, concurrency: int, duration: float,
                timeout: float = 5.0) -> tuple[np.ndarray, np.ndarray, float]:
    """``concurrency`` requests outstanding for ``duration`` s, each sent as another one
    finishes: latencies (s, NaN when failed) and statuses of the requests sent, in order,
    and the seconds it took."""
    most = int(duration * 20_000) + concurrency  # more than the server answers in that time
    host, port, requests = encode(urls, offset, most, key)

    async def main() -> tuple[np.ndarray, np.ndarray, float]:
        sent = 0
        stop = time.perf_counter() + duration

        def then(_: int) -> None:
            nonlocal sent
            if sent < most and time.perf_counter() < stop:
                client.started[sent] = time.perf_counter()
                client.send(sent)
                sent += 1

        client = _Client(host, port, requests, most, timeout, then)
        began = time.perf_counter()
        for _ in range(min(concurrency, most)):
            then(-1)
        await client.drain()
        return client.latencies[:sent], client.statuses[:sent], time.perf_counter() - began

    return _run(main())  # type: ignore[no-any-return]


__all__ = ["encode", "open_loop", "closed_loop"]
