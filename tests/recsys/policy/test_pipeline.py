"""``Engine``'s own rules, the same for the API and batch picks: the policy's ``max_n`` and a
non-empty price range are checked once, by the engine, for every kind of question (batch picks:
``tests/training/test_picks.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recsys.bundle import read_bundle
from recsys.data.synthetic import generate
from recsys.errors import DataError
from recsys.policy.pipeline import Engine
from tests.bundles import repo_bundle


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = generate(n_customers=200, n_products=80, seed=7)
    out = tmp_path_factory.mktemp("pipeline") / "bundle"
    repo_bundle(data, out, "als", factors=4, iterations=2)
    return out


@pytest.fixture()
def engine(bundle_dir: Path) -> Engine:
    engine = Engine(read_bundle(bundle_dir))
    engine.policy = engine.policy.model_copy(update={"max_n": 3})
    return engine


def test_n_above_the_policy_limit_is_refused_for_every_question(engine: Engine) -> None:
    customer, product = str(engine.customers.ids[0]), str(engine.product_ids[0])
    for ask in (lambda: engine.recommend(customer, 4), lambda: engine.similar(product, 4),
                lambda: engine.popular(4), lambda: engine.cart([product], 4)):
        with pytest.raises(DataError, match="n must be at most 3"):
            ask()
    assert len(engine.recommend(customer, 3).picks) == 3


def test_an_empty_price_range_is_refused_and_a_range_filters(engine: Engine) -> None:
    customer = str(engine.customers.ids[0])
    with pytest.raises(DataError, match=r"min_price \(5.0\) is above max_price \(1.0\)"):
        engine.recommend(customer, 3, min_price=5.0, max_price=1.0)
    low, high = np.nanpercentile(engine.bundle.products["price"], [25, 75])
    picks = engine.recommend(customer, 3, min_price=low, max_price=high).picks
    price = engine.bundle.products.set_index("product_id")["price"]
    assert picks and all(low <= price[p.product_id] <= high for p in picks)


def test_popular_fill_follows_popularity_without_ties(engine: Engine) -> None:
    """A stranger's cold-start list: best sellers, scores falling with popularity."""
    result = engine.recommend("never-seen-customer", 3)
    assert result.fallback == "cold_start"
    scores = [p.score for p in result.picks]
    assert len(scores) == 3 and scores[0] > scores[1] > scores[2] > 0
    popularity = engine.bundle.popularity["all"]
    best = [str(engine.product_ids[i]) for i in np.argsort(-popularity, kind="stable")[:3]]
    assert [p.product_id for p in result.picks] == best
