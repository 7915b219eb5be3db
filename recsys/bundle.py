"""The model bundle: the one directory format that training writes and serving reads.

```
bundle/
  manifest.json      schema_version, model name + params, created_at, data window, metrics,
                     sha256 and size of every file below
  model.npz          Recommender.state()  (loaded with allow_pickle=False)
  products.parquet   product_id (row = item index), title, category, price, available
  customers.parquet  customer_id (row = user index), segment, stage, tier, consent flags...
  history.npz        CSR customer x product weights (exclusion, fold-in, buy-again)
  popularity.npz     per-item popularity over windows ("all", "28d", "7d")
  coupons.yaml       the coupon catalog (optional);  policy.yaml  serving policy (optional)
  propensity.json    trained redemption model as plain numbers (optional; manifest
                     ``coupon_propensity`` says "trained" with its validation, or "prior")
```
No pickle anywhere; ``read_bundle`` checks version, checksums and shapes and raises
``BundleError`` saying what is wrong, so a half-written bundle is never half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from recsys.data.dataset import IdMap
from recsys.errors import BundleError
from recsys.models.base import RecommenderBase

if TYPE_CHECKING:
    from recsys.coupons.served import ServedPropensity

SCHEMA_VERSION = 1
PRODUCT_COLUMNS = ("product_id", "title", "category", "price", "available", "first_sold")
_ARRAY_FILES = ("model.npz", "history.npz", "popularity.npz")


@dataclass
class Bundle:
    """Everything serving and batch picks need, in memory."""

    model: RecommenderBase
    products: pd.DataFrame
    customers: pd.DataFrame
    history: sparse.csr_matrix
    popularity: dict[str, np.ndarray]
    manifest: dict[str, Any] = field(default_factory=dict)
    coupons_yaml: str | None = None
    policy_yaml: str | None = None
    coupon_propensity: ServedPropensity | None = None  # None: coupons use the prior

    @property
    def product_map(self) -> IdMap:
        return IdMap(self.products["product_id"].to_numpy())

    @property
    def customer_map(self) -> IdMap:
        return IdMap(self.customers["customer_id"].to_numpy())

    @property
    def version(self) -> str:
        """A short label for responses: the registered version when known, else the hash."""
        return str(self.manifest.get("model_version") or self.manifest.get("bundle_id", "dev"))

    @property
    def events_until(self) -> datetime | None:
        """Events received up to this time are already in the model (training wrote it when
        it read the event store); the API and batch picks replay only later ones."""
        value = self.manifest.get("events_until")
        try:
            return datetime.fromisoformat(str(value)) if value else None
        except ValueError as exc:
            raise BundleError(f"manifest events_until {value!r} is not an ISO timestamp."
                              ) from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_shapes(model: RecommenderBase, products: pd.DataFrame, customers: pd.DataFrame,
                  history: sparse.csr_matrix, popularity: dict[str, np.ndarray]) -> None:
    n_items, n_users = len(products), len(customers)
    if getattr(model, "n_items_", n_items) != n_items:
        raise BundleError(f"model scores {model.n_items_} items but products has {n_items} rows.")
    if history.shape != (n_users, n_items):
        raise BundleError(f"history is {history.shape} but customers x products is "
                          f"({n_users}, {n_items}).")
    for name, values in popularity.items():
        if values.shape != (n_items,):
            raise BundleError(f"popularity[{name!r}] has shape {values.shape}, not ({n_items},).")
    for frame, col in ((products, "product_id"), (customers, "customer_id")):
        if col not in frame or not frame[col].is_unique:
            raise BundleError(f"{col} column is missing or not unique.")


def write_bundle(path: str | Path, bundle: Bundle) -> Path:
    """Write ``bundle`` to the directory ``path`` atomically (temp dir, then rename)."""
    path = Path(path)
    _check_shapes(bundle.model, bundle.products, bundle.customers, bundle.history,
                  bundle.popularity)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".bundle-", dir=path.parent))
    try:
        np.savez(tmp / "model.npz", **bundle.model.state())
        sparse.save_npz(tmp / "history.npz", bundle.history.tocsr(), compressed=True)
        np.savez(tmp / "popularity.npz", **bundle.popularity)
        bundle.products.reset_index(drop=True).to_parquet(tmp / "products.parquet", index=False)
        bundle.customers.reset_index(drop=True).to_parquet(tmp / "customers.parquet",
                                                           index=False)
        for name, text in (("coupons.yaml", bundle.coupons_yaml),
                           ("policy.yaml", bundle.policy_yaml)):
            if text is not None:
                (tmp / name).write_text(text)
        if bundle.coupon_propensity is not None:
            (tmp / "propensity.json").write_text(json.dumps(bundle.coupon_propensity.to_json()))
        files = {p.name: {"sha256": _sha256(p), "bytes": p.stat().st_size}
                 for p in sorted(tmp.iterdir())}
        manifest = {
            **bundle.manifest,
            "schema_version": SCHEMA_VERSION,
            "model": {"name": bundle.model.name, "params": bundle.model.resolved_params()},
            "n_items": len(bundle.products),
            "n_customers": len(bundle.customers),
            "created_at": bundle.manifest.get("created_at")
            or datetime.now(UTC).isoformat(timespec="seconds"),
            "files": files,
            "coupon_propensity": bundle.coupon_propensity.info if bundle.coupon_propensity
            else bundle.manifest.get("coupon_propensity", {"source": "prior"}),
        }
        manifest["bundle_id"] = hashlib.sha256(
            json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    bundle.manifest = manifest
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the bundle at ``path``, with its version and file list checked."""
    path = Path(path)
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except FileNotFoundError as exc:
        raise BundleError(f"{path} is not a bundle: manifest.json is missing.") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}/manifest.json is corrupt: {exc}.") from exc
    version = manifest.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise BundleError(f"bundle schema_version {version!r} is not supported by this release "
                          f"(reads up to {SCHEMA_VERSION}); upgrade loyalty-recsys.")
    for name, meta in manifest.get("files", {}).items():
        file = path / name
        if not file.is_file():
            raise BundleError(f"bundle file {name} is missing from {path}.")
        if file.stat().st_size != meta["bytes"] or _sha256(file) != meta["sha256"]:
            raise BundleError(f"bundle file {name} is corrupt or truncated (checksum mismatch).")
    missing = [n for n in (*_ARRAY_FILES, "products.parquet", "customers.parquet")
               if n not in manifest.get("files", {})]
    if missing:
        raise BundleError(f"bundle manifest lists no {missing}.")
    return manifest


def read_bundle(path: str | Path) -> Bundle:
    """Load and validate the bundle at ``path``; raises ``BundleError`` on any defect."""
    from recsys.models import REGISTRY  # models import this module's neighbours, not this

    path = Path(path)
    manifest = read_manifest(path)
    name = manifest["model"]["name"]
    if name not in REGISTRY:
        raise BundleError(f"bundle model {name!r} is unknown; known: {sorted(REGISTRY)}.")
    try:
        with np.load(path / "model.npz", allow_pickle=False) as npz:
            state = {k: npz[k] for k in npz.files}
        with np.load(path / "popularity.npz", allow_pickle=False) as npz:
            popularity = {k: npz[k] for k in npz.files}
        history = sparse.load_npz(path / "history.npz").tocsr()
        products = pd.read_parquet(path / "products.parquet")
        customers = pd.read_parquet(path / "customers.parquet")
        model = REGISTRY[name].from_state(manifest["model"]["params"], state)
    except BundleError:
        raise
    except Exception as exc:  # any decoding failure means the bundle cannot be trusted
        raise BundleError(f"bundle at {path} cannot be loaded: {type(exc).__name__}: {exc}"
                          ) from exc
    _check_shapes(model, products, customers, history, popularity)

    def optional(name: str) -> str | None:
        file = path / name
        return file.read_text() if file.is_file() else None

    return Bundle(model, products, customers, history, popularity, manifest,
                  optional("coupons.yaml"), optional("policy.yaml"),
                  _read_propensity(path, manifest))


def _read_propensity(path: Path, manifest: dict[str, Any]) -> ServedPropensity | None:
    """The trained redemption model when the manifest lists one (checksum already checked)."""
    from recsys.coupons.served import ServedPropensity

    listed = "propensity.json" in manifest.get("files", {})
    source = (manifest.get("coupon_propensity") or {}).get("source", "prior")
    if not listed:
        if source == "trained":
            raise BundleError("bundle manifest says the coupon propensity is trained but lists "
                              "no propensity.json.")
        return None
    try:
        return ServedPropensity.from_json(json.loads((path / "propensity.json").read_text()))
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise BundleError(f"bundle file propensity.json is invalid: {exc}.") from exc


__all__ = ["Bundle", "SCHEMA_VERSION", "write_bundle", "read_bundle", "read_manifest"]
