"""Serving policy: what each lifecycle stage gets, read from ``configs/policy.yaml``.

The policy travels inside the bundle (``policy.yaml``) so the API and batch picks apply the
same rules as the run that produced the model.
"""

from __future__ import annotations

from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from recsys.errors import ConfigError

Mode = Literal["discover", "buy_again", "mixed", "new_arrivals"]


class StagePolicy(BaseModel):
    """The default recommendation mode for one lifecycle stage."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Mode = "mixed"


class PolicyConfig(BaseModel):
    """Rules shared by the API and batch picks."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    default_mode: Mode = "mixed"
    stages: dict[str, StagePolicy] = Field(default_factory=dict)
    new_product_days: int = Field(28, ge=0)  # new_arrivals: first sold this recently, or never
    popular_windows: tuple[str, ...] = ("all", "28d", "7d")
    fold_in_weight: float = Field(1.0, gt=0)  # history weight of one purchase event
    view_weight: float = Field(0.25, ge=0)  # views and add-to-cart count less than purchases
    max_n: int = Field(100, ge=1)

    def mode_for(self, stage: str | None) -> Mode:
        """The stage's mode, or the default for unknown/missing stages."""
        policy = self.stages.get(stage or "")
        return policy.mode if policy else self.default_mode


def parse_policy(text: str | None, source: str = "policy.yaml") -> PolicyConfig:
    """Parse policy YAML (``None`` gives the defaults); errors name the field."""
    if text is None:
        return PolicyConfig()
    try:
        return PolicyConfig.model_validate(yaml.safe_load(text) or {})
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{source}: {'.'.join(map(str, first['loc']))}: {first['msg']}"
                          ) from exc


__all__ = ["Mode", "StagePolicy", "PolicyConfig", "parse_policy"]
