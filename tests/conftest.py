"""Shared fixtures. Real public datasets live in ../shared/data (never in this repository)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # faiss bundles an OpenBLAS that reads this one

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RECSYS_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real public datasets; skips the test with a reason where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA} (CI has ../shared/data; "
                    "set RECSYS_SHARED_DATA to run these tests elsewhere)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """One throw-away PostgreSQL server per test process (``tests/postgres.py``)."""
    from tests.postgres import postgres_server as start

    with start() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: Any) -> str:
    """A fresh, empty database on the session's PostgreSQL server."""
    return str(postgres_server.new_database())
