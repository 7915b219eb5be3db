"""Bundles for tests, built with the library alone (``recsys.assembly``): a small model and
the repository's customer, coupon and policy files (by absolute path, so tests do not depend
on the working directory)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recsys.assembly import assemble_bundle
from recsys.bundle import Bundle
from recsys.data.schema import RetailData
from recsys.models import make_model

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def repo_bundle(data: RetailData, out: Path, model: str = "als", **params: Any) -> Bundle:
    """``model`` with ``params`` fitted on ``data``, written to ``out`` with the shipped
    customer, coupon and policy files."""
    return assemble_bundle(data, out, make_model(model, **params),
                           customers_config=str(CONFIGS / "customers.yaml"),
                           coupons=str(CONFIGS / "coupons.yaml"),
                           policy=str(CONFIGS / "policy.yaml"))
