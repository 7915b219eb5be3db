"""Which registered model versions still hold erased customers, and retiring them.

A bundle lists its customers (``customers.parquet``) and holds their purchase history, so a
version trained before an erasure keeps the customer until it is retired. The event store's
suppression records are keyed hashes: a version holds an erased customer when one of its
customer ids hashes to one of them.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from recsys.errors import DataError
from recsys.events import EventStore
from training.tracking import fetch_bundle


@dataclass(frozen=True)
class VersionAudit:
    """One registered version: its aliases and how many erased customers its bundle holds."""

    version: str
    aliases: tuple[str, ...]
    erased_customers: int
    created: str


def audit(registered_model: str, store: EventStore) -> list[VersionAudit]:
    """Every version of ``registered_model``, newest first."""
    erased = store.erased_subjects()
    client = MlflowClient()
    rows = []
    for mv in client.search_model_versions(f"name = '{registered_model}'"):
        held = 0
        if erased:
            with tempfile.TemporaryDirectory() as tmp:
                bundle, _ = fetch_bundle(registered_model, str(mv.version), Path(tmp),
                                         only="customers.parquet")
                ids = pd.read_parquet(bundle / "customers.parquet", columns=["customer_id"])
            held = sum(store.subject(c) in erased
                       for c in ids["customer_id"].astype(str).unique())
        created = pd.Timestamp(mv.creation_timestamp, unit="ms").isoformat(timespec="seconds")
        rows.append(VersionAudit(str(mv.version), tuple(mv.aliases or ()), held, created))
    return sorted(rows, key=lambda r: -int(r.version))


def retire(registered_model: str, version: str) -> None:
    """Delete ``version``'s model files and its registry entry. A version behind an alias
    (champion, challenger) is refused: promote another one first."""
    client = MlflowClient()
    mv = client.get_model_version(registered_model, version)
    if mv.aliases:
        raise DataError(f"{registered_model} version {version} is the {', '.join(mv.aliases)}: "
                        "promote another version before retiring it")
    location = client.get_model_version_download_uri(registered_model, version)
    get_artifact_repository(location).delete_artifacts()
    client.delete_model_version(registered_model, version)


__all__ = ["VersionAudit", "audit", "retire"]
