"""Bundle validation on load: a damaged or foreign bundle is refused whole, with a clear error."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from recsys.assembly import assemble_bundle
from recsys.bundle import SCHEMA_VERSION, read_bundle
from recsys.data.synthetic import generate
from recsys.errors import BundleError
from recsys.models import make_model


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "bundle"
    assemble_bundle(generate(n_customers=200, n_products=80, seed=2), out,
                    make_model("als", factors=8, iterations=2))
    return out


@pytest.fixture()
def bundle(original: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(original, tmp_path / "copy"))


def test_an_intact_bundle_round_trips(bundle: Path) -> None:
    loaded = read_bundle(bundle)
    assert loaded.model.n_items_ == len(loaded.products)
    assert loaded.history.shape == (len(loaded.customers), len(loaded.products))


def test_a_truncated_array_file_is_refused(bundle: Path) -> None:
    data = (bundle / "model.npz").read_bytes()
    (bundle / "model.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="model.npz is corrupt or truncated"):
        read_bundle(bundle)


def test_a_flipped_byte_is_refused(bundle: Path) -> None:
    data = bytearray((bundle / "products.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle / "products.parquet").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="products.parquet is corrupt"):
        read_bundle(bundle)


def test_a_missing_file_is_named(bundle: Path) -> None:
    (bundle / "history.npz").unlink()
    with pytest.raises(BundleError, match="history.npz is missing"):
        read_bundle(bundle)


def test_a_newer_schema_is_refused(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["schema_version"] = SCHEMA_VERSION + 1
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="schema_version"):
        read_bundle(bundle)


def test_a_corrupt_manifest_and_a_plain_folder_are_refused(bundle: Path, tmp_path: Path) -> None:
    (bundle / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match="manifest.json is corrupt"):
        read_bundle(bundle)
    with pytest.raises(BundleError, match="not a bundle"):
        read_bundle(tmp_path)


def test_arrays_that_disagree_with_the_catalog_are_refused(bundle: Path) -> None:
    """Consistent checksums but a popularity vector of the wrong length (a foreign file)."""
    from recsys.bundle import _sha256

    np.savez(bundle / "popularity.npz", all=np.ones(3, np.float32))
    manifest = json.loads((bundle / "manifest.json").read_text())
    file = bundle / "popularity.npz"
    manifest["files"]["popularity.npz"] = {"sha256": _sha256(file), "bytes": file.stat().st_size}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="popularity"):
        read_bundle(bundle)


def test_a_hybrid_bundle_keeps_its_parts_parameters_when_defaults_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The manifest stores every part's parameters, not None: a later change of a part's
    defaults (here ALS regularization, which moves fold-in) leaves old bundles as trained."""
    from recsys.models import ALS

    out = tmp_path / "hybrid"
    assemble_bundle(generate(n_customers=150, n_products=60, seed=4), out, make_model(
        "hybrid", cf_params={"factors": 8, "iterations": 2, "num_threads": 1}))
    stored = json.loads((out / "manifest.json").read_text())["model"]["params"]
    trained = ALS().regularization
    assert stored["cf_params"]["regularization"] == trained
    assert stored["buyagain_params"] and stored["trending_params"]
    monkeypatch.setitem(ALS.__init__.__kwdefaults__, "regularization", trained * 10)
    assert ALS().regularization == trained * 10
    model = read_bundle(out).model
    assert model.cf_.regularization == trained and model.cf_.factors == 8


def test_events_until_is_read_from_the_manifest_and_a_bad_one_named(bundle: Path) -> None:
    loaded = read_bundle(bundle)
    loaded.manifest["events_until"] = "2024-12-30T19:13:12"
    assert loaded.events_until == datetime(2024, 12, 30, 19, 13, 12)
    loaded.manifest["events_until"] = None
    assert loaded.events_until is None
    loaded.manifest["events_until"] = "last Tuesday"
    with pytest.raises(BundleError, match="events_until 'last Tuesday'"):
        _ = loaded.events_until
