"""``recsys serve --workers 2`` loads the bundle once, in the supervisor, and forks the workers
from it (serving/preload.py): both answer, neither loaded the bundle again."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.reliability.conftest import CLIENT, Server, server_env

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("preload", ["true", "false"])
def test_workers_serve_the_bundle_loaded_once(bundle: Path, tmp_path: Path,
                                              preload: str) -> None:
    env = server_env(tmp_path / "data", bundle, RECSYS_PRELOAD_MODELS=preload)
    server = Server(env, tmp_path / "server.log", workers=2).start()
    try:
        server.wait()
        for _ in range(20):  # new connections: both workers answer some
            with httpx.Client(base_url=server.base, headers=CLIENT) as client:
                answer = client.get("/v1/customers/anyone/recommendations?n=3")
                assert answer.status_code == 200 and answer.json()["items"]
    finally:
        server.stop()
    loads = server.text().count("loaded champion model version")
    assert loads == (1 if preload == "true" else 2), server.text()
