"""Training configuration: ``configs/*.yaml`` -> frozen pydantic models (unknown keys refused)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SplitConfig(_Strict):
    test_days: int = Field(28, ge=1)
    validation_days: int = Field(28, ge=1)  # tuning period, just before the test period


class InteractionConfig(_Strict):
    weighting: Literal["binary", "count", "log", "monetary"] = "log"
    half_life_days: float | None = Field(None, gt=0)


class ModelConfig(_Strict):
    name: str = "hybrid"
    params: dict[str, Any] = Field(default_factory=dict)


class PromotionConfig(_Strict):
    metric: str = "ndcg@10"
    margin: float = Field(0.0, ge=0)  # absolute improvement required over the champion
    must_beat: list[str] = Field(default_factory=lambda: ["popularity"])


class TrainConfig(_Strict):
    """Everything one training run needs; every key has a default that runs on synthetic data."""

    dataset: str = "synthetic"
    split: SplitConfig = SplitConfig()
    interactions: InteractionConfig = InteractionConfig()
    model: ModelConfig = ModelConfig()
    baselines: list[str] = Field(default_factory=lambda: ["popularity", "buyagain", "tifuknn",
                                                          "als"])
    k: int = Field(10, ge=1, le=100)
    refit_on_all_data: bool = True  # the bundle's model also learns from the test period
    promotion: PromotionConfig = PromotionConfig()
    registered_model: str = "loyalty-recsys"
    experiment: str = "loyalty-recsys"
    customers_config: str | None = "configs/customers.yaml"
    coupons: str | None = "configs/coupons.yaml"
    policy: str | None = "configs/policy.yaml"
    tune_trials: int = Field(0, ge=0)  # >0: tune the model first, each trial a nested run
    # only history strictly before this moment (dataset and API events): split, model and
    # bundle alike, so anyone can score the run's lists against what came after
    until: datetime | None = None


def load_config(path: str | Path | None) -> TrainConfig:
    """Read a YAML config (``None``: all defaults); errors name the file and the field."""
    if path is None:
        return TrainConfig()
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist.") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from exc
