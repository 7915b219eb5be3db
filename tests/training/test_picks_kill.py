"""`recsys picks` killed with SIGKILL halfway and rerun writes the file an uninterrupted run
writes (issue 8)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from recsys.data.synthetic import generate
from tests.configs import repo_config
from training.jobs.bundle import build_bundle

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
CHUNK = 10


def picks(bundle: Path, out: Path, data_dir: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env.update(RECSYS_DATA_DIR=str(data_dir), OPENBLAS_NUM_THREADS="1")
    return subprocess.Popen(
        [sys.executable, "-m", "training.cli", "picks", "--bundle", str(bundle), "--out",
         str(out), "--n", "5", "--coupons", "1", "--chunk-size", str(CHUNK)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process: subprocess.Popen[str]) -> str:
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    return stdout


def test_a_killed_run_resumes_to_the_same_file(tmp_path: Path) -> None:
    cfg = repo_config("als", factors=8, iterations=3)
    bundle = tmp_path / "bundle"
    build_bundle(generate(n_customers=2500, n_products=200, seed=2), cfg, bundle)
    data = tmp_path / "data"

    whole = tmp_path / "whole.parquet"
    finish(picks(bundle, whole, data))
    expected = pd.read_parquet(whole)
    chunks = -(-len(expected) // CHUNK)

    out = tmp_path / "picks.parquet"
    parts = out.with_name(out.name + ".parts")
    process = picks(bundle, out, data)
    deadline = time.monotonic() + 240
    while len(list(parts.glob("part-*.parquet"))) < chunks // 3:
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = len(list(parts.glob("part-*.parquet")))
    assert not out.exists() and done < chunks
    first_run = (parts / "RUN").read_text()

    stdout = finish(picks(bundle, out, data))
    assert f"resumed {done} of {chunks} chunks" in stdout
    resumed = pd.read_parquet(out)
    assert set(resumed["run_id"]) == {first_run}  # the rerun continues the killed run
    pd.testing.assert_frame_equal(resumed.drop(columns="run_id"),
                                  expected.drop(columns="run_id"))
    assert not parts.exists()
