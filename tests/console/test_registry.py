"""The console over registered versions: offline metrics from the training runs, and the
challenger promoted through `recsys promote`'s own gate, in a child process."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import pytest
import yaml
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from serving.main import create_app
from tests.console.conftest import ADMIN_KEY, console_settings, csrf_of, log_in
from training.config import load_config
from training.jobs.train import retrain, train

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
NAME = "loyalty-recsys"  # the default config's name: what `recsys promote` reads


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """v1 retrained and promoted (champion), v2 trained with other factors (challenger)."""
    root = tmp_path_factory.mktemp("console-registry")
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.setenv("RECSYS_DATA_DIR", str(root / "data"))
        mp.chdir(REPO)
        configs = []
        for factors in (8, 24):
            raw = {"dataset": "synthetic:customers=300,products=120,seed=4",
                   "model": {"name": "als", "params": {"factors": factors, "iterations": 5,
                                                       "random_state": 0, "num_threads": 1}},
                   "baselines": ["popularity"], "registered_model": NAME, "experiment": NAME}
            path = root / f"train-{factors}.yaml"
            path.write_text(yaml.safe_dump(raw))
            configs.append(path)
        first, decision = retrain(load_config(configs[0]), configs[0])
        assert decision.promoted, decision.reason
        second = train(load_config(configs[1]), configs[1])
        MlflowClient().set_registered_model_alias(NAME, "challenger", second.version)
        yield {"root": root, "config": configs[1], "champion": first.version,
               "challenger": second.version, "run": second.run_id}
    mlflow.set_tracking_uri(None)


def test_offline_metrics_and_promotion_through_the_gate(registry: dict[str, object]) -> None:
    root = Path(str(registry["root"]))
    settings = console_settings(Path("unused"), root / "data", bundle_path=None,
                                challenger_share=0.5, console_train_config=registry["config"],
                                mlflow_tracking_uri=f"sqlite:///{root / 'data' / 'mlflow.db'}")
    with TestClient(create_app(settings), follow_redirects=False) as client:
        log_in(client, ADMIN_KEY)
        run = MlflowClient().get_run(str(registry["run"]))
        ndcg = run.data.metrics["ndcg_at_10"]
        baseline = run.data.metrics["baseline.popularity.ndcg_at_10"]
        for _ in range(100):  # the runs are read in the background
            page = client.get("/console").text
            if "reading the training run" not in page:
                break
            time.sleep(0.1)
        assert f"{ndcg:.4f}" in page and f"{baseline:.4f}" in page
        token = csrf_of(client.get("/console/actions").text)
        answer = client.post("/console/actions/promote", data={"csrf": token})
        client_ = MlflowClient()
        tag = client_.get_model_version(NAME, str(registry["challenger"])).tags["promotion"]
        champion = client_.get_model_version_by_alias(NAME, "champion").version
    verdict, _, reason = tag.partition(": ")
    assert f"v{registry['challenger']} {'promoted' if verdict == 'promoted' else 'not promoted'}" \
        f": {reason}" in answer.text.replace("&#39;", "'")
    assert (str(champion) == str(registry["challenger"])) == (verdict == "promoted")
