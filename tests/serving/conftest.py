"""API fixtures: tiny bundles built from the synthetic retailer by training's own
``build_bundle`` (one way to build bundles), and app factories.

``client`` is one app per test module over the ALS bundle (read-only tests use distinct
customers); ``make_client`` builds an app with its own data dir for tests that need one.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recsys.data.schema import RetailData
from recsys.data.synthetic import generate
from serving.main import create_app
from serving.settings import Settings
from tests.configs import repo_config
from training.config import TrainConfig
from training.jobs.bundle import build_bundle

CLIENT_KEY, ADMIN_KEY = "client-test-key", "admin-test-key"
PRIVACY_KEY = "privacy-test-key"
HEADERS = {"X-API-Key": CLIENT_KEY}  # a storefront: read and events
PRIVACY = {"X-API-Key": PRIVACY_KEY}  # consent and erasure
ADMIN = {"X-API-Key": ADMIN_KEY}
MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "als": {"factors": 16, "iterations": 5, "random_state": 0, "num_threads": 1},
    "hybrid": {"cf_params": {"factors": 16, "iterations": 5, "num_threads": 1}},
}


@pytest.fixture(scope="session")
def retail() -> RetailData:
    return generate(n_customers=300, n_products=120, seed=0)


def train_config(model: str) -> TrainConfig:
    """The production training config with a small ``model`` (configs by absolute path, so
    the tests do not depend on the working directory)."""
    return repo_config(model, **MODEL_PARAMS[model])


@pytest.fixture(scope="session")
def als_bundle(retail: RetailData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "als"
    build_bundle(retail, train_config("als"), out)
    return out


@pytest.fixture(scope="session")
def hybrid_bundle(retail: RetailData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundles") / "hybrid"
    build_bundle(retail, train_config("hybrid"), out)
    return out


def settings_for(bundle: Path, data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a test app: keys set, one warm-up request, fast journal polling."""
    values: dict[str, Any] = {
        "bundle_path": bundle, "data_dir": data_dir, "api_keys": CLIENT_KEY,
        "privacy_keys": PRIVACY_KEY, "admin_key": ADMIN_KEY, "warmup_requests": 2,
        "events_poll_seconds": 0.05, "recall_queries": 50, **overrides}
    return Settings(**values)


MakeClient = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture
def make_client(tmp_path: Path, als_bundle: Path) -> MakeClient:
    """``with make_client(**settings) as client``: an app with this test's data dir."""

    @contextmanager
    def factory(bundle: Path | None = None, **overrides: Any) -> Iterator[TestClient]:
        settings = settings_for(bundle or als_bundle, tmp_path / "data", **overrides)
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            yield client

    return factory


@pytest.fixture(scope="module")
def client(als_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = settings_for(als_bundle, tmp_path_factory.mktemp("data"))
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def bundle_copy(als_bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the ALS bundle that a test may overwrite (reload tests)."""
    return Path(shutil.copytree(als_bundle, tmp_path / "bundle"))


def known_customers(bundle_dir: Path, k: int = 5) -> list[str]:
    """Customers with training history and consent, from the bundle itself."""
    frame = pd.read_parquet(bundle_dir / "customers.parquet")
    return frame.loc[frame["consent_personalization"], "customer_id"].astype(str).tolist()[:k]


def product_ids(bundle_dir: Path) -> list[str]:
    return pd.read_parquet(bundle_dir / "products.parquet")["product_id"].astype(str).tolist()
