"""A throw-away PostgreSQL server for the tests: ``initdb`` + ``pg_ctl`` in a temp dir.

The binaries come from PATH, else Debian's ``/usr/lib/postgresql/<version>/bin`` (CI installs
the ``postgresql`` package in ``.ci/run``). Without them the tests skip with the reason, except
in CI (``CI=true``), where a missing server is a failure: a skipped test proves nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa


def bin_dir() -> Path | None:
    """The directory of ``initdb`` and ``pg_ctl``, newest Debian version first."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                    key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return debian[-1].parent if debian else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """One server process; ``url`` is its ``postgres`` database (user ``postgres``, trust)."""

    def __init__(self, bins: Path) -> None:
        self.bins, self.port = bins, free_port()
        self.root = Path(tempfile.mkdtemp(prefix="recsys-pg-"))
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.root, "nobody")
            self._as = ["su", "-s", "/bin/sh", "nobody", "-c"]

    def _run(self, cmd: str) -> None:
        args = [*self._as, cmd] if self._as else ["sh", "-c", cmd]
        subprocess.run(args, check=True, capture_output=True, timeout=120)

    def init(self) -> PostgresServer:
        self._run(f"{self.bins}/initdb -D {self.root}/data -U postgres --auth=trust -E UTF8"
                  " --no-sync")
        return self.start()

    def start(self) -> PostgresServer:
        # fsync stays on: durability tests count acknowledged rows across kills.
        self._run(f"{self.bins}/pg_ctl -D {self.root}/data -l {self.root}/log -w -o "
                  f"'-k {self.root} -h 127.0.0.1 -p {self.port} -c max_connections=200' start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._run(f"{self.bins}/pg_ctl -D {self.root}/data -m {mode} -w stop")

    def new_database(self) -> str:
        """A fresh, empty database on this server (its URL): one per test, no leftovers."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A started server, removed at the end; skips (fails in CI) without binaries."""
    bins = bin_dir()
    if bins is None:
        reason = ("PostgreSQL server binaries (initdb, pg_ctl) are not installed: "
                  "apt-get install postgresql")
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    server = PostgresServer(bins).init()
    try:
        yield server
    finally:
        server.remove()
