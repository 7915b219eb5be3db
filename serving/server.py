"""Run the API under uvicorn: what ``recsys serve`` and ``benchmarks/serving.py`` call."""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.supervisors import Multiprocess

STARTUP_FAILURE = 3  # uvicorn's exit status when the app cannot start


def listening_socket(config: uvicorn.Config) -> socket.socket:
    """The socket that worker processes share, with TCP_NODELAY.

    uvicorn binds it without, and connections accepted on it inherit its options (Linux), so
    Nagle's algorithm held each response's body until the client's delayed ACK: about 40 ms
    per request on a keep-alive connection. A single worker binds its own socket through
    the event loop, which sets TCP_NODELAY itself.
    """
    sock = config.bind_socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def run(app: str, *, host: str, port: int, workers: int = 1, log_level: str = "info",
        log_config: dict[str, Any] | None = None, loop: str = "uvloop") -> None:
    """Serve the app factory at import string ``app`` with ``workers`` processes (no access
    log: its lines carry customer ids in paths). ``loop="asyncio"`` is for comparisons
    (docs/benchmarks/serving.md, overload)."""
    limit, backlog = _connection_limits()
    config = uvicorn.Config(app, factory=True, host=host, port=port, workers=workers,
                            http="httptools", loop=loop,  # C parser and loop: less CPU
                            limit_concurrency=limit, backlog=backlog,
                            access_log=False, log_level=log_level,
                            log_config=log_config or LOGGING_CONFIG,
                            timeout_graceful_shutdown=10,
                            # uvicorn kills a worker whose ping thread misses 5 s; a worker
                            # loading or warming a bundle on a busy machine can, and its
                            # replacement would lose the model it was serving.
                            timeout_worker_healthcheck=30)
    if workers > 1:
        _preload()
        Multiprocess(config, sockets=[listening_socket(config)]).run()
        return
    server = uvicorn.Server(config)
    server.run()
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)


def _connection_limits() -> tuple[int | None, int]:
    """``RECSYS_LIMIT_CONCURRENCY`` (None: off) and ``RECSYS_LISTEN_BACKLOG``; uvicorn's
    defaults when the settings are invalid (each worker then reports why as it starts)."""
    from pydantic import ValidationError

    from serving.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError:
        return None, 2048
    return settings.limit_concurrency or None, settings.listen_backlog


def _preload() -> None:
    """Load the models here and fork the workers from this process (serving/preload.py),
    unless ``RECSYS_PRELOAD_MODELS=false``."""
    from pydantic import ValidationError

    from serving.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError:
        return  # each worker reports it in one line as it starts
    if settings.preload_models:
        from serving import preload

        preload.fork_workers()
        preload.preload(settings)


__all__ = ["listening_socket", "run"]
