"""Loading: faiss index (exact and HNSW) over item vectors, and bundles from MLflow aliases."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from recsys.bundle import read_bundle
from serving.loader import ItemIndex, item_vectors, load_served
from serving.main import create_app
from tests.serving.conftest import HEADERS, known_customers, settings_for


def clustered_vectors(n: int = 2000, d: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, d))
    return (centres[rng.integers(0, 40, n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)


def test_exact_index_matches_numpy_cosine_ranking() -> None:
    vectors = clustered_vectors(500)
    index = ItemIndex(vectors, "flat")
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for item in (0, 17, 499):
        scores = unit[item] @ unit.T
        scores[item] = -np.inf
        ids, got = index.search(item, 10)
        assert ids.tolist() == np.argsort(-scores)[:10].tolist()
        assert got == pytest.approx(np.sort(scores)[::-1][:10], abs=1e-5)
    assert index.measure_recall(100) == pytest.approx(1.0)


def test_search_filters_inside_the_index() -> None:
    index = ItemIndex(clustered_vectors(300), "flat")
    allowed = np.zeros(300, bool)
    allowed[::7] = True
    ids, _ = index.search(7, 20, allowed)
    assert len(ids) == 20 and allowed[ids].all() and 7 not in ids
    only_self = np.zeros(300, bool)
    only_self[3] = True
    assert len(index.search(3, 5, only_self)[0]) == 0


def test_hnsw_recall_is_measured_against_exact_search() -> None:
    vectors = clustered_vectors()
    hnsw = ItemIndex(vectors, "hnsw", m=16, ef_search=64)
    recall = hnsw.measure_recall(200)
    assert 0.9 <= recall <= 1.0 and hnsw.recall == recall
    weak = ItemIndex(vectors, "hnsw", m=4, ef_construction=8, ef_search=8)
    assert weak.measure_recall(200) < recall


def test_hnsw_index_is_used_when_configured(als_bundle: Path, tmp_path: Path) -> None:
    settings = settings_for(als_bundle, tmp_path, index="hnsw")
    served = load_served(settings, "champion", als_bundle)
    assert served.index is not None and served.index.kind == "hnsw"
    assert served.index.recall is not None and served.index.recall > 0.9
    product = str(served.engine.products.ids[0])
    assert len(served.similar(product, 5)) == 5


def test_models_without_item_vectors_answer_similar_themselves(hybrid_bundle: Path,
                                                               tmp_path: Path) -> None:
    bundle = read_bundle(hybrid_bundle)
    assert item_vectors(bundle.model) is None
    served = load_served(settings_for(hybrid_bundle, tmp_path), "champion", hybrid_bundle)
    product = str(bundle.products["product_id"].iloc[0])
    assert served.index is None
    assert served.similar(product, 5) == served.engine.similar(product, 5)


@pytest.mark.slow
def test_champion_is_loaded_from_the_mlflow_registry(als_bundle: Path, tmp_path: Path) -> None:
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking)
    experiment = MlflowClient().create_experiment(
        "serving-test", artifact_location=(tmp_path / "artifacts").as_uri())
    with mlflow.start_run(experiment_id=experiment):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(Path("training/pyfunc_model.py").resolve()),
            artifacts={"bundle": str(als_bundle)}, registered_model_name="serving-test",
            pip_requirements=["loyalty-recsys"])  # skips MLflow's slow requirement inference
    version = str(info.registered_model_version)
    uri = "models:/serving-test@champion"
    settings = settings_for(None, tmp_path / "data", bundle_path=None, model_uri=uri,  # type: ignore[arg-type]
                            mlflow_tracking_uri=tracking)
    with TestClient(create_app(settings)) as client:  # no alias yet: unready, one clear line
        ready = client.get("/ready").json()
        assert ready["ready"] is False and "recsys retrain" in ready["problems"]["model"]
    MlflowClient().set_registered_model_alias("serving-test", "champion", version)
    with TestClient(create_app(settings)) as client:
        assert client.get("/ready").status_code == 200
        customer = known_customers(als_bundle)[0]
        body = client.get(f"/v1/customers/{customer}/recommendations", headers=HEADERS).json()
        assert body["model_version"] == version and body["personalized"] is True
    assert not any((tmp_path / "data" / "serving-cache").iterdir())  # downloads cleaned up
