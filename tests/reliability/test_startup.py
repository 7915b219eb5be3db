"""Start-up failures: the process exits, or stays up but unready, with one line that says
what to do; never a traceback.

Every scenario is a real ``recsys serve`` process; all start at once, then each is judged
from its /ready answer and everything it printed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.reliability.conftest import Server, server_env

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Scenario:
    """A broken set-up and what the operator must be told."""

    env: dict[str, str]
    exits: bool  # True: exit code 2; False: stays up, /ready 503 naming the problem
    problem: str  # the key in /ready's problems ("" when the process exits)
    says: tuple[str, ...]  # phrases of the one line


def scenarios(root: Path, bundle: Path) -> dict[str, Scenario]:
    (root / "a-file").write_text("a file where a folder should be")
    return {
        "no champion registered": Scenario(
            server_env(root / "empty"), False, "model",
            ("models:/loyalty-recsys@champion", "recsys retrain", "RECSYS_BUNDLE_PATH")),
        "missing data dir": Scenario(  # a typo: the line names the store it looked in
            server_env(root / "no" / "such" / "dir"), False, "model",
            (str(root / "no" / "such" / "dir" / "mlflow.db"), "recsys retrain")),
        "missing bundle": Scenario(
            server_env(root / "data-b", root / "no-bundle"), False, "model",
            (str(root / "no-bundle"), "manifest.json is missing")),
        "unwritable event store": Scenario(
            server_env(root / "a-file" / "data", bundle), False, "events",
            ("cannot open the event store", "RECSYS_EVENTS_URL or RECSYS_DATA_DIR")),
        "no API key": Scenario(
            {**server_env(root / "data-k", bundle), "RECSYS_API_KEYS": ""}, True, "",
            ("no API key configured", "RECSYS_API_KEYS")),
        "bad setting": Scenario(
            {**server_env(root / "data-s", bundle), "RECSYS_CHALLENGER_SHARE": "2"}, True, "",
            ("RECSYS_CHALLENGER_SHARE", "less than or equal to 1")),
    }


def settle(server: Server, timeout: float = 120) -> httpx.Response | None:
    """The /ready answer once the first model load is over, or None if the process exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.proc is not None
        if server.proc.poll() is not None:
            return None
        try:
            ready = httpx.get(f"{server.base}/ready", timeout=5)
            if ready.json()["reload"] != "loading":
                return ready
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"no verdict after {timeout:.0f}s:\n{server.text()}")


@pytest.fixture(scope="module")
def started(bundle: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[dict[str, tuple[Scenario, Server]]]:
    root = tmp_path_factory.mktemp("startup")
    runs = {name: (s, Server(s.env, root / f"{name.replace(' ', '-')}.log").start())
            for name, s in scenarios(root, bundle).items()}
    yield runs
    for _, server in runs.values():
        server.stop()


@pytest.mark.parametrize("name", ["no champion registered", "missing data dir",
                                  "missing bundle", "unwritable event store", "no API key",
                                  "bad setting"])
def test_start_up_failure_is_one_clear_line(
        name: str, started: dict[str, tuple[Scenario, Server]]) -> None:
    scenario, server = started[name]
    ready = settle(server)
    assert server.proc is not None
    if scenario.exits:
        assert ready is None and server.proc.returncode == 2
        lines = [line for line in server.text().splitlines() if line.startswith("error:")]
    else:
        assert ready is not None and ready.status_code == 503, server.text()
        assert ready.json()["ready"] is False
        problem = ready.json()["problems"][scenario.problem]
        assert all(phrase in problem for phrase in scenario.says), problem
        lines = [line for line in server.text().splitlines() if "not ready:" in line]
    assert len(lines) == 1, server.text()
    assert all(phrase in lines[0] for phrase in scenario.says), lines[0]
    assert "Traceback" not in server.text(), server.text()
