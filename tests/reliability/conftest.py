"""Reliability fixtures: bundles built by the training job, and real server processes.

Every test here talks HTTP to ``recsys serve`` (uvicorn) on a loopback port, the way
production runs, so kills, restarts and reloads are real. ``Server`` keeps the process's
output in a file so tests can read what an operator would see.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before sklearn's and faiss's OpenMP load

import httpx  # noqa: E402
import pytest  # noqa: E402

from recsys.data.schema import RetailData  # noqa: E402
from recsys.data.synthetic import generate  # noqa: E402
from tests.configs import repo_config  # noqa: E402
from training.config import TrainConfig  # noqa: E402
from training.jobs.bundle import build_bundle  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
CLIENT_KEY, ADMIN_KEY = "reliability-client-key", "reliability-admin-key"
PRIVACY_KEY = "reliability-privacy-key"
CLIENT = {"X-API-Key": CLIENT_KEY}  # a storefront: read and events
PRIVACY = {"X-API-Key": PRIVACY_KEY}  # consent and erasure
ADMIN = {"X-API-Key": ADMIN_KEY}
DATASET = {"n_customers": 400, "n_products": 150, "seed": 3}


def train_config(**params: Any) -> TrainConfig:
    """A small ALS with the repository's policy, coupons and customer profile."""
    return repo_config("als", **{"factors": 8, "iterations": 3, "num_threads": 1, **params})


@pytest.fixture(scope="session")
def retail() -> RetailData:
    return generate(**DATASET)


@pytest.fixture(scope="session")
def bundle(retail: RetailData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The production bundle format, built by ``training.jobs.bundle.build_bundle``."""
    out = tmp_path_factory.mktemp("bundles") / "main"
    build_bundle(retail, train_config(), out)
    return out


@pytest.fixture(scope="session")
def other_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle of another retailer: a different (smaller) catalog and customer base."""
    out = tmp_path_factory.mktemp("bundles") / "other"
    build_bundle(generate(n_customers=250, n_products=90, seed=11), train_config(), out)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(data_dir: Path, bundle: Path | None = None, **extra: str) -> dict[str, str]:
    """The environment of a test server: this repo's python, keys, fast polling; nothing
    inherited that would point it at another store."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RECSYS_", "MLFLOW_", "PROMETHEUS_"))}
    env.update({"RECSYS_DATA_DIR": str(data_dir), "RECSYS_API_KEYS": CLIENT_KEY,
                "RECSYS_PRIVACY_KEYS": PRIVACY_KEY, "RECSYS_ADMIN_KEY": ADMIN_KEY,
                "RECSYS_WARMUP_REQUESTS": "2", "RECSYS_RECALL_QUERIES": "50",
                "RECSYS_EVENTS_POLL_SECONDS": "0.1", "OPENBLAS_NUM_THREADS": "1",
                "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)})
    if bundle is not None:
        env["RECSYS_BUNDLE_PATH"] = str(bundle)
    env.update(extra)
    return env


class Server:
    """``recsys serve`` in its own session (so a signal reaches uvicorn's workers too)."""

    def __init__(self, env: dict[str, str], output: Path, *, workers: int = 1,
                 port: int | None = None) -> None:
        self.env, self.output, self.workers = env, output, workers
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        cmd = [sys.executable, "-m", "training.cli", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", str(self.workers)]
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait(self, path: str = "/ready", timeout: float = 120.0) -> httpx.Response:
        """Poll ``path`` until it answers 200 (the process's output on failure)."""
        deadline = time.monotonic() + timeout
        last: httpx.Response | None = None
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.text()}")
            try:
                last = httpx.get(self.base + path, timeout=5)
                if last.status_code == 200:
                    return last
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"{path} not 200 after {timeout:.0f}s (last: "
                    f"{last.text if last else 'no answer'}):\n{self.text()}")

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the server and its workers, then reap it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.signal(signal.SIGTERM)

    def text(self) -> str:
        """Everything the process printed (stdout and stderr)."""
        return self.output.read_text(errors="replace") if self.output.exists() else ""


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Any]:
    """``make_server(env, workers=1)``: a started server, stopped at the end of the test."""
    servers: list[Server] = []

    def factory(env: dict[str, str], *, workers: int = 1, port: int | None = None,
                name: str = "server") -> Server:
        server = Server(env, tmp_path / f"{name}-{len(servers)}.log", workers=workers,
                        port=port).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.signal(signal.SIGKILL)
