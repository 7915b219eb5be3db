"""Models preloaded in the supervisor (serving/preload.py): a forked worker takes them once,
and only while its bundle directory still holds them."""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from serving import preload
from tests.serving.conftest import settings_for


@pytest.fixture(autouse=True)
def _unfreeze() -> Iterator[None]:
    yield
    gc.unfreeze()  # preload froze this test process's objects out of the collector


def test_a_worker_takes_the_preloaded_models_once(bundle_copy: Path, tmp_path: Path) -> None:
    settings = settings_for(bundle_copy, tmp_path / "data")
    assert preload.preload(settings)
    models = preload.take(settings)
    assert models is not None
    bundle_id = json.loads((bundle_copy / "manifest.json").read_text())["bundle_id"]
    assert models.champion.version == bundle_id
    assert models.champion.engine.recommend_many(["anyone"], 3)[0].picks
    assert preload.take(settings) is None  # a reload loads afresh


def test_a_replaced_bundle_is_not_taken(bundle_copy: Path, tmp_path: Path) -> None:
    settings = settings_for(bundle_copy, tmp_path / "data")
    assert preload.preload(settings)
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest | {"bundle_id": "newer"}))
    assert preload.take(settings) is None


def test_a_bundle_that_cannot_load_is_left_to_the_workers(tmp_path: Path) -> None:
    settings = settings_for(tmp_path / "missing", tmp_path / "data")
    assert not preload.preload(settings)
    assert preload.take(settings) is None
