"""configs/customers.yaml -> frozen pydantic models; bad config is a clear ConfigError."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from recsys.customers.config import CustomersConfig, parse_customers_config
from recsys.errors import ConfigError

YAML = Path(__file__).resolve().parents[3] / "configs" / "customers.yaml"


def test_shipped_yaml_equals_the_defaults() -> None:
    assert parse_customers_config(YAML.read_text(), str(YAML)) == CustomersConfig()
    assert parse_customers_config(None) == parse_customers_config("") == CustomersConfig()


def test_partial_yaml_overrides_only_its_keys() -> None:
    cfg = parse_customers_config("churn: {horizon_days: 30}\n"
                                 "rfm: {quantiles: [0.5], segments: [{name: recent, r: [2, 2]}]}")
    assert cfg.churn.horizon_days == 30 and cfg.rfm.n_scores == 2
    assert cfg.lifecycle == CustomersConfig().lifecycle


@pytest.mark.parametrize(("text", "message"), [
    ("rfm: {bins: 5}", "rfm.bins: Extra inputs are not permitted"),
    ("rfm: {quantiles: [0.6, 0.3]}", "strictly increasing"),
    ("rfm: {quantiles: [0.5, 1.0]}", "strictly increasing"),
    ("rfm: {segments: [{name: x, r: [0, 9]}]}", "segment 'x': r=[0, 9]"),
    ("rfm: {quantiles: [0.5]}", "segment 'champions': r=[4, 5] must satisfy"),
    ("rfm: {segments: [{name: x}, {name: x}]}", "unique"),
    ("tiers: {levels: [{name: a, min_spend: 10}]}", "min_spend 0"),
    ("tiers: {levels: [{name: a, min_spend: 0}, {name: b, min_spend: 0}]}", "increasing"),
    ("lifecycle: {at_risk_gap_multiple: 5, churn_gap_multiple: 3}", "must exceed"),
    ("churn: {calibration: platt}", "churn.calibration"),
    ("churn: {n_windows: 1}", "churn.n_windows"),
    ("clv: {margin: 0}", "clv.margin"),
    ("rfm: [1, 2", "not valid YAML"),
    ("- a\n- b", "must be a mapping"),
])
def test_bad_config_raises_config_error_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="customers.yaml") as info:
        parse_customers_config(text)
    assert message in str(info.value)


def test_config_is_frozen() -> None:
    cfg = CustomersConfig()
    with pytest.raises(ValidationError):
        cfg.churn.horizon_days = 5  # type: ignore[misc]
