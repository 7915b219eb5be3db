"""Customer-intelligence settings, read from ``configs/customers.yaml``.

Every threshold of RFM segments, lifecycle stages, tiers, lifetime value, the churn classifier
and the KPI report lives here (DOMAIN.md: thresholds are calibrated on data and kept in config,
never as literals in code). The defaults equal the shipped YAML file, and a test keeps them so.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any, Literal

import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from recsys.errors import ConfigError


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SegmentRule(_Frozen):
    """A named RFM segment: inclusive score ranges ``[lo, hi]`` on R, F and M (first match wins)."""

    name: str = Field(min_length=1)
    r: tuple[int, int] | None = None
    f: tuple[int, int] | None = None
    m: tuple[int, int] | None = None


def _default_segments() -> tuple[SegmentRule, ...]:
    rows = [("champions", (4, 5), (4, 5), (4, 5)), ("cant_lose", (1, 2), (4, 5), (4, 5)),
            ("loyal", (3, 5), (3, 5), None), ("at_risk", (1, 2), (3, 5), None),
            ("new", (5, 5), (1, 1), None), ("promising", (4, 4), (1, 1), None),
            ("potential_loyalists", (4, 5), (2, 2), None), ("need_attention", (3, 3), (2, 2), None),
            ("about_to_sleep", (3, 3), (1, 1), None), ("hibernating", (2, 2), (1, 2), None),
            ("lost", (1, 1), (1, 2), None)]
    return tuple(SegmentRule(name=n, r=r, f=f, m=m) for n, r, f, m in rows)


class RFMConfig(_Frozen):
    """Quantile scoring and named segments.

    ``quantiles`` are the cut points of each customer's percentile rank (ties share the mean
    rank), so ``len(quantiles) + 1`` scores; score 1 is worst (oldest, fewest, least spend).
    """

    window_days: int | None = Field(None, ge=1)  # F and M over this look-back; None = all history
    quantiles: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8)
    segments: tuple[SegmentRule, ...] = Field(default_factory=_default_segments)
    default_segment: str = "other"  # customers no rule matches

    @property
    def n_scores(self) -> int:
        """Number of score levels (scores run 1..n_scores)."""
        return len(self.quantiles) + 1

    @model_validator(mode="after")
    def _check(self) -> RFMConfig:
        q = self.quantiles
        if not q or any(not 0 < v < 1 for v in q) or any(b <= a for a, b in pairwise(q)):
            raise ValueError("quantiles must be strictly increasing values in (0, 1)")
        names = [s.name for s in self.segments]
        if len(set(names)) != len(names):
            raise ValueError(f"segment names must be unique, got {names}")
        for s in self.segments:
            for key in ("r", "f", "m"):
                rng = getattr(s, key)
                if rng is not None and not 1 <= rng[0] <= rng[1] <= self.n_scores:
                    raise ValueError(f"segment {s.name!r}: {key}={list(rng)} must satisfy "
                                     f"1 <= lo <= hi <= {self.n_scores}")
        return self


class LifecycleConfig(_Frozen):
    """Stage thresholds, relative to each customer's own mean gap between purchase days.

    A customer's gap is their mean inter-purchase gap in days (one-day customers use the
    median gap of repeat customers, or ``default_gap_days`` when there are none), floored at
    ``min_gap_days``. See ``recsys.customers.lifecycle`` for the rule order.
    """

    new_days: int = Field(30, ge=0)  # first purchase at most this many days ago -> new
    min_gap_days: float = Field(7.0, gt=0)
    default_gap_days: float = Field(30.0, gt=0)
    at_risk_gap_multiple: float = Field(2.0, gt=0)
    churn_gap_multiple: float = Field(4.0, gt=0)
    churn_horizon_days: int = Field(180, ge=1)  # nobody stays un-churned longer than this
    at_risk_churn_risk: float = Field(0.8, ge=0, le=1)  # churn_risk at or above -> at_risk
    loyal_min_orders: int = Field(4, ge=1)
    loyal_min_score: int = Field(4, ge=1)  # on both F and M

    @model_validator(mode="after")
    def _check(self) -> LifecycleConfig:
        if self.churn_gap_multiple <= self.at_risk_gap_multiple:
            raise ValueError("churn_gap_multiple must exceed at_risk_gap_multiple")
        return self


class TierLevel(_Frozen):
    """A membership tier reached at ``min_spend`` of trailing spend."""

    name: str = Field(min_length=1)
    min_spend: float = Field(ge=0)


class TierConfig(_Frozen):
    """Tiers from trailing spend over ``window_days``; the highest level reached applies."""

    window_days: int = Field(365, ge=1)
    levels: tuple[TierLevel, ...] = (TierLevel(name="basic", min_spend=0),
                                     TierLevel(name="silver", min_spend=1000),
                                     TierLevel(name="gold", min_spend=3000))

    @model_validator(mode="after")
    def _check(self) -> TierConfig:
        spends = [lv.min_spend for lv in self.levels]
        if not spends or spends[0] != 0:
            raise ValueError("levels must start with a tier at min_spend 0")
        if any(b <= a for a, b in pairwise(spends)):
            raise ValueError(f"tier min_spend must be strictly increasing, got {spends}")
        if len({lv.name for lv in self.levels}) != len(spends):
            raise ValueError("tier names must be unique")
        return self


class CLVConfig(_Frozen):
    """BG/NBD + Gamma-Gamma settings and the lifetime-value horizon."""

    time_unit_days: float = Field(7.0, gt=0)  # models count time in weeks (Fader-Hardie-Lee)
    prediction_days: int = Field(90, ge=1)  # horizon of expected_purchases
    horizon_days: int = Field(365, ge=1)  # horizon of clv
    step_days: int = Field(30, ge=1)  # cash flows are discounted per step
    annual_discount_rate: float = Field(0.10, ge=0)
    margin: float = Field(1.0, gt=0, le=1)  # profit share of revenue; 1.0 = revenue CLV
    min_repeat_customers: int = Field(10, ge=1)  # fewer -> models not fitted, columns NaN


class ChurnConfig(_Frozen):
    """Churn classifier: label = no purchase in the ``horizon_days`` after a cut date."""

    horizon_days: int = Field(90, ge=1)
    n_windows: int = Field(3, ge=2)  # newest window calibrates, older ones train
    window_step_days: int = Field(30, ge=1)
    trend_days: int = Field(90, ge=1)  # spend trend: last trend_days vs the ones before
    calibration: Literal["isotonic", "sigmoid"] = "isotonic"
    min_window_customers: int = Field(50, ge=2)
    max_train_rows: int = Field(200_000, ge=100)  # rows sampled for fitting (speed)
    random_state: int = 0
    n_threads: int | None = Field(None, ge=1)  # OpenMP threads of the classifier; None = all
    # Shallow trees: windows hold a few thousand customers on real datasets. 60 trees at 0.1
    # score as 300 at 0.02 on The Complete Journey and Online Retail (docs/benchmarks/
    # customers.md) and predict faster.
    params: dict[str, Any] = Field(default_factory=lambda: {
        "max_iter": 60, "learning_rate": 0.1, "max_depth": 3, "min_samples_leaf": 100,
        "l2_regularization": 1.0})


def check_period(freq: str) -> str:
    """``freq`` when pandas knows it as a period alias (W, M, Q, Y, ...).

    Raises
    ------
    ConfigError
        Naming the bad alias.
    """
    try:
        pd.Period("2000-01-01", freq=freq)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"period {freq!r} is not a pandas period alias (W, M, Q, Y)") from exc
    return freq


class KPIConfig(_Frozen):
    """Loyalty KPI report settings."""

    period: str = "M"  # pandas period alias: M, W, Q, Y
    cohort_months: int = Field(12, ge=1)  # retention columns 0..cohort_months

    @field_validator("period")
    @classmethod
    def _alias(cls, value: str) -> str:
        try:
            return check_period(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


class CustomersConfig(_Frozen):
    """All customer-intelligence settings (``configs/customers.yaml``)."""

    rfm: RFMConfig = Field(default_factory=RFMConfig)
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    tiers: TierConfig = Field(default_factory=TierConfig)
    clv: CLVConfig = Field(default_factory=CLVConfig)
    churn: ChurnConfig = Field(default_factory=ChurnConfig)
    kpis: KPIConfig = Field(default_factory=KPIConfig)


def parse_customers_config(text: str | None, source: str = "customers.yaml") -> CustomersConfig:
    """Parse customer-config YAML (``None`` or empty gives the defaults).

    Raises
    ------
    ConfigError
        Invalid YAML, unknown keys or bad values; the message names the field.
    """
    try:
        raw = yaml.safe_load(text) if text else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML: {exc}") from exc
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a mapping of sections, got {type(raw).__name__}")
    try:
        return CustomersConfig.model_validate(raw or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "(top level)"
        raise ConfigError(f"{source}: {where}: {first['msg']}") from exc


__all__ = ["check_period", "SegmentRule", "RFMConfig", "LifecycleConfig", "TierLevel",
           "TierConfig", "CLVConfig", "ChurnConfig", "KPIConfig", "CustomersConfig",
           "parse_customers_config"]
