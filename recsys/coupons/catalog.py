"""The coupon catalog: what can be offered, to whom, at what cost (``configs/coupons.yaml``).

Every coupon says *who may get it* (segments, lifecycle stages, tiers, validity window, caps),
*what it is worth to the customer* (kind and value) and *what it costs and earns the retailer*
(cost model and margin assumptions), so :mod:`recsys.coupons.scoring` can turn a redemption
probability into an expected value. Targets are category-path prefixes (``"GROCERY > DAIRY"``
matches every category below it) or product ids.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from recsys.data.schema import CATEGORY_SEP
from recsys.errors import ConfigError

Kind = Literal["percent_off", "amount_off", "free_shipping", "points_multiplier", "buy_x_get_y"]
# Why the coupon exists; drives the eligibility sentence and anti-abuse (one welcome per person).
Purpose = Literal["welcome", "second_purchase", "tier_nudge", "retention", "win_back", "birthday",
                  "cross_sell", "perk"]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class Target(BaseModel):
    """What the coupon applies to; both empty means the whole basket (sitewide)."""

    model_config = _FROZEN
    products: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # category-path prefixes, levels joined by " > "

    @property
    def sitewide(self) -> bool:
        return not self.products and not self.categories

    def label(self) -> str:
        """Short text for reasons: the last level of each category prefix."""
        if self.categories:
            return ", ".join(c.split(CATEGORY_SEP)[-1] for c in self.categories)
        return "the featured products" if self.products else "everything"


class Eligible(BaseModel):
    """Who may receive the coupon; ``None`` means no restriction on that attribute."""

    model_config = _FROZEN
    segments: tuple[str, ...] | None = None
    stages: tuple[str, ...] | None = None
    tiers: tuple[str, ...] | None = None


class CostModel(BaseModel):
    """What one redemption costs the retailer.

    ``discount_share``: the face value applied to the expected spend on target
    (``Margin.basket_value x Margin.target_share``), see ``scoring.redemption_cost``.
    ``fixed``: ``per_redemption`` (e.g. a negotiated vendor-funded cost).
    ``per_issue`` is paid for every coupon given, redeemed or not (printing, messaging).
    """

    model_config = _FROZEN
    model: Literal["discount_share", "fixed"] = "discount_share"
    per_redemption: float = Field(0.0, ge=0)
    per_issue: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _fixed_needs_amount(self) -> CostModel:
        if self.model == "fixed" and self.per_redemption <= 0:
            raise ValueError("per_redemption must be > 0 when model is 'fixed'")
        return self


class Margin(BaseModel):
    """Margin assumptions of a redeeming basket."""

    model_config = _FROZEN
    basket_value: float = Field(50.0, gt=0)  # expected basket of a redeemer (currency)
    target_share: float = Field(0.3, gt=0, le=1)  # expected share of it on the coupon's target
    gross_margin: float = Field(0.3, ge=0, le=1)
    incrementality: float = Field(0.3, ge=0, le=1)  # share of redeeming baskets caused by it
    # Expected future margin a redemption adds beyond its basket (a converted prospect's or a
    # won-back customer's next orders; e.g. the CLV uplift), in currency.
    future_margin: float = Field(0.0, ge=0)


class Coupon(BaseModel):
    """One coupon of the catalog (see ``configs/coupons.yaml`` for every field in use)."""

    model_config = _FROZEN
    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    kind: Kind
    purpose: Purpose = "cross_sell"
    # percent (0-100], currency, or points multiplier (> 1); buy_x_get_y uses buy/get instead
    value: float | None = Field(None, gt=0)
    buy: int | None = Field(None, ge=1)  # buy_x_get_y only
    get: int | None = Field(None, ge=1)
    target: Target = Target()
    min_basket: float = Field(0.0, ge=0)
    valid_from: dt.date
    valid_to: dt.date
    eligible: Eligible = Eligible()
    per_customer_cap: int = Field(1, ge=1)  # issues per customer over the coupon's life
    max_issues: int | None = Field(None, ge=1)  # issues in one assignment run
    budget: float = Field(gt=0)  # expected cost this coupon may spend (currency)
    # Share of eligible customers (hashed, stable) held out: not given it, logged as held
    # out, the control group of its uplift (recsys.experiments, docs/experiments.md).
    holdout_share: float = Field(0.0, ge=0, lt=1)
    cost: CostModel = CostModel()
    margin: Margin | None = None  # None: the catalog's default margin

    @model_validator(mode="after")
    def _check(self) -> Coupon:
        if self.valid_to < self.valid_from:
            raise ValueError(f"valid_to {self.valid_to} is before valid_from {self.valid_from}")
        if self.value is None and self.kind != "buy_x_get_y":
            raise ValueError(f"value is required for a {self.kind} coupon")
        if self.kind == "percent_off" and (self.value or 0) > 100:
            raise ValueError("value of a percent_off coupon must be in (0, 100]")
        if self.kind == "points_multiplier" and (self.value or 0) <= 1:
            raise ValueError("value of a points_multiplier coupon must be > 1")
        if (self.kind == "buy_x_get_y") != (self.buy is not None and self.get is not None):
            raise ValueError("buy and get are required for buy_x_get_y and only allowed there")
        return self


class Prior(BaseModel):
    """Redemption prior where no history exists (``propensity.prior_propensity``).

    ``logit P = intercept + affinity_slope * affinity + stage_offsets[stage]
    - basket_slope * max(0, min_basket / avg_basket - 1)``.
    """

    model_config = _FROZEN
    intercept: float = -4.0
    affinity_slope: float = 4.0
    stage_offsets: dict[str, float] = Field(default_factory=dict)
    basket_slope: float = Field(1.0, ge=0)


class Catalog(BaseModel):
    """The whole catalog plus the knobs of assignment."""

    model_config = _FROZEN
    currency: str = "USD"
    budget: float = Field(gt=0)  # global expected-cost budget of one assignment run
    max_per_customer: int = Field(3, ge=1)
    points_value: float = Field(0.01, ge=0)  # currency value of one loyalty point
    points_per_currency: float = Field(1.0, ge=0)
    margin: Margin = Margin()
    prior: Prior = Prior()
    coupons: tuple[Coupon, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Catalog:
        ids = [c.id for c in self.coupons]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"coupon ids must be unique; repeated: {dup}")
        return self

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.coupons]

    def margin_of(self, coupon: Coupon) -> Margin:
        return coupon.margin or self.margin


def _where(loc: tuple[Any, ...], raw: Any) -> str:
    """``("coupons", 2, "kind")`` -> ``"coupons[2] (id=x).kind"``."""
    parts: list[str] = []
    for i, p in enumerate(loc):
        if isinstance(p, int):
            cid = ""
            if loc[:i] == ("coupons",) and isinstance(raw, dict):
                items = raw.get("coupons") or []
                if p < len(items) and isinstance(items[p], dict) and "id" in items[p]:
                    cid = f" (id={items[p]['id']})"
            parts[-1] += f"[{p}]{cid}"
        else:
            parts.append(str(p))
    return ".".join(parts) or "catalog"


def _check_known(cat: Catalog, known_products: Iterable[str] | None,
                 known_categories: Iterable[str] | None, today: dt.date) -> None:
    products = None if known_products is None else {str(p) for p in known_products}
    prefixes = None if known_categories is None else _category_prefixes(known_categories)
    for i, c in enumerate(cat.coupons):
        where = f"coupons[{i}] (id={c.id})"
        if c.valid_to < today:
            raise ConfigError(f"{where}.valid_to: window ended {c.valid_to}, before {today}")
        bad = [] if products is None else [p for p in c.target.products if p not in products]
        if bad:
            raise ConfigError(f"{where}.target.products: unknown product(s) {bad[:3]}")
        bad = [] if prefixes is None else [p for p in c.target.categories if p not in prefixes]
        if bad:
            raise ConfigError(f"{where}.target.categories: unknown category {bad[:3]}")


def _category_prefixes(categories: Iterable[str]) -> set[str]:
    """Every prefix of every category path ("MEAT", "MEAT > BEEF", ...)."""
    prefixes: set[str] = set()
    for path in {str(c) for c in categories}:
        levels = path.split(CATEGORY_SEP)
        prefixes.update(CATEGORY_SEP.join(levels[:k]) for k in range(1, len(levels) + 1))
    return prefixes


def parse_catalog(raw: Any, *, known_products: Iterable[str] | None = None,
                  known_categories: Iterable[str] | None = None, today: dt.date | None = None,
                  source: str = "coupons.yaml") -> Catalog:
    """Validate a parsed YAML mapping; see :func:`load_catalog`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping with 'budget' and 'coupons'")
    try:
        cat = Catalog.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"{source}: {_where(first['loc'], raw)}: {first['msg']}") from exc
    try:
        _check_known(cat, known_products, known_categories, today or dt.date.today())
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    return cat


def load_catalog(path: str | Path, known_products: Iterable[str] | None = None,
                 known_categories: Iterable[str] | None = None,
                 today: dt.date | None = None) -> Catalog:
    """Read and validate a coupon catalog.

    Parameters
    ----------
    path : str or Path
        YAML file (``configs/coupons.yaml`` shows every field).
    known_products : iterable of str, optional
        Product ids of the catalog in use; target products outside it are rejected.
    known_categories : iterable of str, optional
        Category paths in use; each target category must be a prefix of one (at level
        boundaries: ``"GROCERY > DAIRY"`` matches ``"GROCERY > DAIRY > MILK"``).
    today : date, optional
        Coupons whose window ended before it are rejected (default: the current date).

    Returns
    -------
    Catalog

    Raises
    ------
    ConfigError
        Naming the file, the coupon and the field, e.g.
        ``coupons.yaml: coupons[2] (id=winback10).value: Input should be greater than 0``.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read coupon catalog {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name} is not valid YAML: {exc}") from exc
    return parse_catalog(raw, known_products=known_products, known_categories=known_categories,
                         today=today, source=path.name)


__all__ = ["KINDS", "Kind", "Purpose", "Target", "Eligible", "CostModel", "Margin", "Coupon",
           "Prior", "Catalog", "parse_catalog", "load_catalog"]
