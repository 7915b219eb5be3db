"""MLFLOW_TRACKING_URI pointing at a real `mlflow server` works unchanged (issue 4)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
import yaml

from recsys.bundle import read_bundle
from training.config import load_config
from training.jobs.train import retrain
from training.tracking import fetch_bundle

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}",
         "--artifacts-destination", str(root / "artifacts"), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        # No background job runners: this test needs tracking, registry and artifacts only.
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            break
        except OSError:
            if proc.poll() is not None:
                pytest.fail("mlflow server exited during start-up")
            time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("mlflow server did not answer /health within 120 s")
    yield url, root
    os.killpg(proc.pid, signal.SIGTERM)  # the server and its gunicorn/uvicorn workers
    proc.wait(timeout=30)


def test_train_register_promote_and_load_through_a_real_server(server, tmp_path, monkeypatch):
    url, root = server
    monkeypatch.setenv("MLFLOW_TRACKING_URI", url)
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(REPO)
    mlflow.set_tracking_uri(url)
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({
        "dataset": "synthetic:customers=300,products=100,seed=5",
        "model": {"name": "als", "params": {"factors": 8, "iterations": 3}},
        "baselines": ["popularity"], "registered_model": "rs-server",
        "experiment": "rs-server"}))
    try:
        result, decision = retrain(load_config(config), config)
        assert decision.promoted, decision.reason
        bundle_dir, run_id = fetch_bundle("rs-server", None, tmp_path / "dl")
        assert run_id == result.run_id
        bundle = read_bundle(bundle_dir)
        assert bundle.manifest["bundle_id"] == read_bundle(result.bundle_dir).manifest[
            "bundle_id"]
        assert any((root / "artifacts").rglob("manifest.json"))  # stored by the server
    finally:
        mlflow.set_tracking_uri(None)
