"""Reasons say what the customer did: bought for purchases, looked at for views and carts,
and a product is never recommended because of itself."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recsys.bundle import read_bundle
from recsys.data.synthetic import generate
from recsys.events import Event
from recsys.policy.pipeline import ANCHORED, Engine
from tests.bundles import repo_bundle

BOUGHT = ("because you bought", "you buy this regularly", "you bought this before")


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = generate(n_customers=300, n_products=120, seed=5)
    out = tmp_path_factory.mktemp("truthful") / "bundle"
    repo_bundle(data, out, "hybrid", cf_params={"factors": 8, "iterations": 3})
    return out


@pytest.fixture()
def engine(bundle_dir: Path) -> Engine:
    return Engine(read_bundle(bundle_dir))


def event(customer: str, kind: str, product: str, k: int) -> Event:
    return Event(f"{customer}-{kind}-{k}", customer, kind, datetime(2030, 1, 1),
                 product_id=product)


@pytest.mark.parametrize("kind", ["view", "add_to_cart"])
@pytest.mark.parametrize("mode", ["mixed", "buy_again", "discover"])
def test_a_product_only_looked_at_is_never_bought(engine: Engine, kind: str, mode: str
                                                   ) -> None:
    products = engine.product_ids[:3].tolist()
    engine.apply_changes([event("web-1", kind, p, k) for k, p in enumerate(products)], set())
    result = engine.recommend("web-1", 20, mode=mode, exclude_purchased=False)
    assert result.personalized
    for pick in result.picks:
        assert not pick.reason.startswith(BOUGHT), (pick, mode)
    looked = [p for p in result.picks if p.product_id in products]
    if mode != "discover":
        assert looked and all(p.reason_code in ("looked_at", "because_you_looked")
                              for p in looked), looked
    if mode == "buy_again":
        assert all(p.reason == "you looked at this recently" for p in looked)


def test_views_name_what_was_looked_at_and_purchases_stay_bought(engine: Engine) -> None:
    products = engine.product_ids[10:13].tolist()
    changes = [event("web-2", "view", products[0], 0), event("web-2", "purchase", products[1], 1)]
    engine.apply_changes(changes, set())
    result = engine.recommend("web-2", 30, mode="mixed", exclude_purchased=False)
    titles = dict(zip(engine.bundle.products["product_id"], engine.bundle.products["title"],
                      strict=True))
    for pick in result.picks:
        if pick.reason_code == "because_you_looked":
            assert pick.reason == f"because you looked at {titles[products[0]]}"
        if pick.reason_code == "because_you_bought":
            assert pick.reason == f"because you bought {titles[products[1]]}"
    codes = {p.product_id: p.reason_code for p in result.picks}
    assert codes.get(products[0]) in (None, "looked_at", "because_you_looked")
    assert codes.get(products[1]) in (None, "bought_before", "buy_again")


def test_no_pick_is_explained_by_itself(engine: Engine) -> None:
    ids = engine.customers.ids[:200].tolist()
    anchored = 0
    for mode in ("mixed", "discover"):
        ranking = engine.rank_many(ids, 10, mode=mode, exclude_purchased=False)
        for r, c in zip(*np.nonzero(np.isin(ranking.codes, ANCHORED)), strict=True):
            anchored += 1
            title = engine.bundle.products["title"].iloc[ranking.ids[r, c]]
            assert not ranking.reasons[r, c].endswith(f" {title}"), ranking.reasons[r, c]
        assert "bought_before" in ranking.codes  # mixed keeps history items: said so
    assert anchored > 0


def test_cart_says_personalized_only_when_the_customer_data_took_part(engine: Engine) -> None:
    basket = engine.product_ids[:2].tolist()
    customer = engine.customers.ids[0]
    assert engine.cart(basket, 5, customer_id=customer).personalized
    assert not engine.cart(basket, 5).personalized  # anonymous: the basket only
    engine.set_consent(customer, False)
    opted_out = engine.cart(basket, 5, customer_id=customer)
    assert not opted_out.personalized and opted_out.fallback == "not_personalized"
    assert [p.product_id for p in opted_out.picks] == \
        [p.product_id for p in engine.cart(basket, 5).picks]


def test_a_steady_pace_reads_in_days_then_weeks() -> None:
    from recsys.policy.reason_text import ReasonWriter

    writer = ReasonWriter(pd.DataFrame({"title": ["Milk"], "category": ["DAIRY > MILK"]}))
    said = [writer.text("repeats_every", 0, days) for days in (1, 3, 6, 10, 30)]
    assert said == ["you buy this about every day", "you buy this about every 3 days",
                    "you buy this about every week", "you buy this about every week",
                    "you buy this about every 4 weeks"]
