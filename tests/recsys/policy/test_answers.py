"""The engine's answer cache: reused answers equal fresh ones, and no change is ever missed."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from recsys.bundle import read_bundle
from recsys.data.synthetic import generate
from recsys.events import Consent, Erasure, Event
from recsys.policy.answers import AnswerCache
from recsys.policy.pipeline import Engine, Result
from tests.bundles import repo_bundle


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = generate(n_customers=300, n_products=120, seed=5)
    out = tmp_path_factory.mktemp("answers") / "bundle"
    repo_bundle(data, out, "hybrid", cf_params={"factors": 8, "iterations": 3})
    return out


@pytest.fixture()
def pair(bundle_dir: Path) -> tuple[Engine, Engine]:
    """The same bundle with and without the cache."""
    bundle = read_bundle(bundle_dir)
    return Engine(bundle, answer_cache=50), Engine(bundle)


def same(a: Result, b: Result) -> bool:
    return (a.picks, a.personalized, a.fallback) == (b.picks, b.personalized, b.fallback)


def purchase(customer: str, product: str, seq: int) -> Event:
    return Event(event_id=f"e{seq}", customer_id=customer, event_type="purchase",
                 timestamp=datetime(2026, 1, 1), product_id=product, seq=seq)


def test_a_repeated_question_is_reused_and_equals_a_fresh_answer(pair: tuple[Engine, Engine]
                                                                  ) -> None:
    cached, plain = pair
    customers = cached.customers.ids[:6].tolist() + ["stranger"]
    first = cached.recommend_many(customers[:3], 5)
    assert not any(r.cached for r in first)
    again = cached.recommend_many(customers, 5)  # three hits between four misses, in order
    assert [r.cached for r in again] == [True] * 3 + [False] * 4
    for a, b in zip(again, plain.recommend_many(customers, 5), strict=True):
        assert same(a, b)
    assert not cached.recommend_many(customers[:1], 6)[0].cached  # another question
    assert not cached.recommend_many(customers[:1], 5, mode="buy_again")[0].cached


def test_events_consent_and_erasure_show_in_the_next_answer(pair: tuple[Engine, Engine]
                                                             ) -> None:
    cached, plain = pair
    customer = cached.customers.ids[0]
    cached.recommend(customer, 5, mode="discover")
    bought = cached.recommend(customer, 5, mode="discover").picks[0].product_id
    changes = [[purchase(customer, bought, 1), purchase(customer, bought, 2)],
               [Consent(customer, False, 3)], [Consent(customer, True, 4)],
               [Erasure(customer, 5)]]
    answers = []
    for change in changes:
        for engine in pair:
            engine.apply_changes(change, set())
        answer = cached.recommend(customer, 5, mode="discover")
        assert not answer.cached
        assert same(answer, plain.recommend(customer, 5, mode="discover"))
        assert cached.recommend(customer, 5, mode="discover").cached
        answers.append(answer)
    assert answers[1].fallback == "not_personalized" and answers[2].personalized
    assert answers[3].fallback == "not_personalized"
    assert bought not in [p.product_id for p in answers[0].picks]  # discover excludes it


def test_an_answer_ranked_while_a_change_lands_is_not_kept(pair: tuple[Engine, Engine],
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    cached, _ = pair
    customer, other = cached.customers.ids[:2].tolist()
    rank = cached.rank_many

    def rank_then_change(*args: object, **kwargs: object) -> object:
        ranking = rank(*args, **kwargs)  # read the state before the change below
        cached.set_consent(other, False)
        return ranking

    monkeypatch.setattr(cached, "rank_many", rank_then_change)
    cached.recommend(customer, 5)
    monkeypatch.undo()
    assert not cached.recommend(customer, 5).cached


def test_the_cache_keeps_the_most_recent_customers() -> None:
    cache: AnswerCache[str] = AnswerCache(max_customers=2)
    for c in "abc":
        cache.put(c, 1, c.upper(), cache.stamp())
    assert len(cache) == 2 and cache.get("a", 1) is None and cache.get("c", 1) == "C"
    cache.get("b", 1)
    cache.put("d", 1, "D", cache.stamp())  # "c" is now the least recently used
    assert cache.get("c", 1) is None and cache.get("b", 1) == "B"
    stale = cache.stamp()
    cache.forget("b")
    cache.put("b", 1, "old", stale)
    assert cache.get("b", 1) is None


def test_no_cache_keeps_nothing(pair: tuple[Engine, Engine]) -> None:
    _, plain = pair
    customer = plain.customers.ids[0]
    plain.recommend(customer, 5)
    assert not plain.recommend(customer, 5).cached and len(plain.answers) == 0


def test_similar_answers_are_reused_as_copies(pair: tuple[Engine, Engine]) -> None:
    cached, _ = pair
    product = cached.product_ids[0]
    first = cached.similar(product, 5)
    first.clear()  # a caller's change does not reach the kept answer
    again = cached.similar(product, 5)
    assert len(again) == 5 and cached._similar_answers.cache_info().hits == 1
    assert again == list(cached._similar(product, 5, None))  # computed afresh


def test_strangers_share_one_answer_until_they_have_state(pair: tuple[Engine, Engine]) -> None:
    cached, plain = pair
    first = cached.recommend("stranger-1", 5)
    second = cached.recommend("stranger-2", 5)
    assert first.fallback == "cold_start" and second.cached and same(first, second)
    product = first.picks[-1].product_id
    for engine in pair:
        engine.apply_changes([purchase("stranger-3", product, 1)], set())
    own = cached.recommend("stranger-3", 5)  # now has a history: its own answer
    assert own.personalized and not own.cached and same(own, plain.recommend("stranger-3", 5))
    assert cached.recommend("stranger-4", 5).cached and len(cached.answers) == 2
