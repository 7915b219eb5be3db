"""The training config tests build bundles with: the repository's customers, coupons and policy
files (by absolute path, so tests do not depend on the working directory) and a small model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import ModelConfig, TrainConfig

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def repo_config(model: str = "als", **params: Any) -> TrainConfig:
    """``TrainConfig`` of ``model`` with ``params`` and the shipped customer/coupon/policy files."""
    return TrainConfig(model=ModelConfig(name=model, params=params),
                       customers_config=str(CONFIGS / "customers.yaml"),
                       coupons=str(CONFIGS / "coupons.yaml"),
                       policy=str(CONFIGS / "policy.yaml"))
