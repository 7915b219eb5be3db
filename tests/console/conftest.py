"""Console fixtures: a small synthetic retailer, its champion bundle and a challenger trained a
month earlier (so lifecycle stages moved), apps over them, and a logged-in client.

The KPI dataset is the same synthetic spec the bundles were trained on, so the console's KPIs
and ``recsys customers kpis --dataset <spec>`` read the same data.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from recsys.data.clean import clean
from recsys.data.load import load_dataset
from recsys.data.schema import RetailData
from serving.main import create_app
from serving.settings import Settings
from tests.configs import repo_config
from training.jobs.bundle import build_bundle

DATASET = "synthetic:customers=300,products=120,seed=0"
CLIENT_KEY, PRIVACY_KEY = "console-client-key", "console-privacy-key"
ADMIN_KEY, ANALYST_KEY = "console-admin-key", "console-analyst-key"
ALS = {"factors": 16, "iterations": 5, "random_state": 0, "num_threads": 1}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="session")
def retail() -> RetailData:
    return clean(load_dataset(DATASET))[0]


@pytest.fixture(scope="session")
def champion(retail: RetailData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("console-bundles") / "champion"
    build_bundle(retail, repo_config("als", **ALS), out)
    return out


@pytest.fixture(scope="session")
def challenger(retail: RetailData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle of the same config on the history up to 30 days before the end."""
    tx = retail.transactions
    earlier = tx[tx["timestamp"] < tx["timestamp"].max() - pd.Timedelta(days=30)]
    out = tmp_path_factory.mktemp("console-bundles") / "challenger"
    build_bundle(dataclasses.replace(retail, transactions=earlier),
                 repo_config("als", **ALS), out)
    return out


def console_settings(bundle: Path, data_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "bundle_path": bundle, "data_dir": data_dir, "api_keys": CLIENT_KEY,
        "privacy_keys": PRIVACY_KEY, "admin_key": ADMIN_KEY, "analyst_keys": ANALYST_KEY,
        "console_dataset": DATASET, "warmup_requests": 1, "events_poll_seconds": 0.05,
        "recall_queries": 20, **overrides}
    return Settings(**values)


MakeClient = Callable[..., AbstractContextManager[TestClient]]


@pytest.fixture
def make_client(tmp_path: Path, champion: Path) -> MakeClient:
    """``with make_client(**settings) as client``: an app with this test's data dir."""

    @contextmanager
    def factory(**overrides: Any) -> Iterator[TestClient]:
        settings = console_settings(champion, tmp_path / "data", **overrides)
        with TestClient(create_app(settings), raise_server_exceptions=False,
                        follow_redirects=False) as client:
            yield client

    return factory


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def log_in(client: TestClient, key: str, name: str = "Test Operator") -> Any:
    """Fill in the login form as a browser would; returns the POST's response."""
    form = client.get("/console/login")
    return client.post("/console/login", data={"csrf": csrf_of(form.text), "name": name,
                                               "key": key})


def known_customers(bundle: Path, k: int = 5) -> list[str]:
    """Customers with history and consent in the bundle."""
    frame = pd.read_parquet(bundle / "customers.parquet")
    return frame.loc[frame["consent_personalization"], "customer_id"].astype(str).tolist()[:k]
