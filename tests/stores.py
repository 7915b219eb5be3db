"""Event-store helpers shared by the store tests on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

from recsys.errors import ConfigError
from recsys.events import EventStore


def _open(url: str, key: str | None, barrier: Any, out: Any) -> None:
    barrier.wait()
    try:
        EventStore(url, key=key).close()
        out.put("ok")
    except ConfigError as exc:
        out.put(str(exc))


def open_together(url: str, key: str | None = None, processes: int = 6) -> list[str]:
    """Open one store from ``processes`` forked processes at the same moment (as the workers
    of `recsys serve --workers N` do); each reports "ok" or its ConfigError."""
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_open, args=(url, key, barrier, out))
             for _ in range(processes)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return results
