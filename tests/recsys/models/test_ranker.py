"""The learned two-stage ranker on a shop whose right order is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from recsys.data.baskets import build_baskets
from recsys.data.dataset import IdMap, build_interactions
from recsys.data.features import ItemFeatures
from recsys.models import REGISTRY, Reason
from recsys.models import ranker as ranker_module
from recsys.models.ranker import FEATURES, LearnedRanker

START = pd.Timestamp("2024-01-01")
DAYS = 240


def shop(seed: int = 0) -> pd.DataFrame:
    """Customers who each buy one product every week and one every 3 weeks, and who dropped
    a product they used to buy twice a week (the habit ends 100-150 days before the end);
    plus two random products of another shelf (p20-p39) in every order."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(80):
        weekly, triweekly, dropped = rng.choice(20, 3, replace=False)
        offset = int(rng.integers(0, 7))
        stop = DAYS - int(rng.integers(100, 150))
        for day in range(offset, DAYS, 7):
            basket = {f"p{weekly:02d}"}
            if (day // 7) % 3 == 0:
                basket.add(f"p{triweekly:02d}")
            if day < stop:
                basket.add(f"p{dropped:02d}")
            basket.update(f"p{i:02d}" for i in 20 + rng.choice(20, 2, replace=False))
            rows += [(f"c{c:02d}", p, f"o{c}-{day}", START + pd.Timedelta(days=day))
                     for p in basket]
        for day in range(offset + 3, stop, 7):  # the dropped habit's second weekly order
            rows.append((f"c{c:02d}", f"p{dropped:02d}", f"o{c}-{day}b",
                         START + pd.Timedelta(days=day)))
    tx = pd.DataFrame(rows, columns=["customer_id", "product_id", "order_id", "timestamp"])
    tx["quantity"] = 1.0
    tx["amount"] = 2.0
    return tx


@pytest.fixture(scope="module")
def fitted() -> tuple[LearnedRanker, pd.DataFrame, object]:
    tx = shop()
    customers = IdMap(np.sort(tx["customer_id"].unique()))
    products = IdMap(np.array([f"p{i:02d}" for i in range(40)]))
    inter = build_interactions(tx, customers=customers, products=products)
    baskets = build_baskets(tx, customers, products)
    model = LearnedRanker(windows=4, window_days=14, per_source=10, ease_items=40,
                          min_child=5, trees=60)
    model.fit(inter.matrix, baskets=baskets)
    return model, tx, inter


def test_registered() -> None:
    assert REGISTRY["ranker"] is LearnedRanker


def test_due_product_first_and_dropped_habit_not(fitted) -> None:  # type: ignore[no-untyped-def]
    model, tx, inter = fitted
    users = np.arange(inter.matrix.shape[0], dtype=np.int32)
    ranked, kinds, anchors = model.recommend_with_reasons(inter.matrix, 5, users=users)
    first = inter.products.ids[ranked.ids[:, 0]]
    # the weekly product is the one bought in (nearly) every recent order
    recent = tx[tx["timestamp"] > START + pd.Timedelta(days=DAYS - 30)]
    habit = recent.groupby("customer_id")["product_id"].agg(lambda s: s.value_counts().idxmax())
    assert (first == habit.reindex(inter.customers.ids).to_numpy()).mean() >= 0.95
    # the dropped habit (bought twice a week until 100+ days ago) is not in the first two
    pairs = tx.groupby(["customer_id", "product_id"])["timestamp"].agg(["size", "max"])
    old = pairs[pairs["max"] < START + pd.Timedelta(days=DAYS - 90)]
    dropped = old["size"].groupby(level=0).idxmax().map(lambda k: k[1])
    assert (old["size"].groupby(level=0).max() >= 25).all()  # a habit: 2 orders a week
    dropped_in_top = [dropped[c] in set(inter.products.ids[ranked.ids[r, :2]])
                      for r, c in enumerate(inter.customers.ids)]
    assert np.mean(dropped_in_top) <= 0.05
    # its reason says how often the customer buys it: about every week
    assert (kinds[:, 0] == Reason.REPEATS_EVERY).all()
    assert np.isin(anchors[:, 0], (6, 7, 8)).mean() >= 0.95


def test_reasons_name_only_products_the_customer_bought(fitted) -> None:  # type: ignore[no-untyped-def]
    model, _, inter = fitted
    # a shopper the model never saw, who bought two products of the random shelf
    history = sparse.csr_matrix((np.ones(2, np.float32), ([0, 0], [21, 33])), shape=(1, 40))
    ranked, kinds, anchors = model.recommend_with_reasons(history, 10,
                                                          users=np.array([-1], np.int32))
    anchored = np.isin(kinds, (Reason.BOUGHT_TOGETHER, Reason.BECAUSE_YOU_BOUGHT))
    assert anchored.any()
    assert set(anchors[anchored].tolist()) <= {21, 33}
    assert (anchors[anchored] != ranked.ids[anchored]).all()
    own = np.isin(ranked.ids, (21, 33))
    assert np.isin(kinds[own], (Reason.BOUGHT_BEFORE, Reason.REPEATS_EVERY)).all()
    # a discover list of stored customers holds no own product
    users = np.arange(inter.matrix.shape[0], dtype=np.int32)
    ranked, kinds, anchors = model.recommend_with_reasons(inter.matrix, 10, users=users,
                                                          exclude=inter.matrix)
    picked = ranked.ids.ravel()
    owned = inter.matrix[np.repeat(np.arange(len(users)), 10), np.maximum(picked, 0)].A1 > 0
    assert not owned[picked >= 0].any()
    assert not np.isin(kinds, (Reason.BOUGHT_BEFORE, Reason.REPEATS_EVERY)).any()


def test_state_round_trip_is_exact_and_checked(fitted) -> None:  # type: ignore[no-untyped-def]
    model, _, inter = fitted
    state = model.state()
    again = LearnedRanker.from_state(model.get_params(), state)
    assert again.booster_.model_to_string() == model.booster_.model_to_string()
    users = np.arange(inter.matrix.shape[0], dtype=np.int32)
    a = model.recommend_with_reasons(inter.matrix, 8, users=users)
    b = again.recommend_with_reasons(inter.matrix, 8, users=users)
    np.testing.assert_array_equal(a[0].ids, b[0].ids)
    np.testing.assert_array_equal(a[0].scores, b[0].scores)
    np.testing.assert_array_equal(a[1], b[1])
    broken = dict(state)
    text = bytearray(np.asarray(state["booster"]).tobytes())
    text[100] ^= 1
    broken["booster"] = np.frombuffer(bytes(text), np.uint8)
    with pytest.raises(ValueError, match="checksum"):
        LearnedRanker.from_state(model.get_params(), broken)


def test_a_bundle_of_other_features_is_refused(fitted, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Boosters learnt on another feature list (an older version) would score the wrong
    columns: loading says so instead."""
    model = fitted[0]
    monkeypatch.setattr(ranker_module, "FEATURES", (*FEATURES, "a_new_feature"))
    with pytest.raises(ValueError, match="other features"):
        LearnedRanker.from_state(model.get_params(), model.state())


def test_live_purchase_counts_as_an_order_today(fitted) -> None:  # type: ignore[no-untyped-def]
    model, _, inter = fitted
    row = inter.matrix[[0]].tolil()
    never = int(np.flatnonzero(inter.matrix[0].toarray()[0] == 0)[0])
    row[0, never] = 1.0
    own = model._live(sparse.csr_matrix(row), np.array([0], np.int32))
    assert own.count[0, never] == 1
    assert own.last[0, never] == 1  # stored as days + 1: bought today
    assert own.orders[0] == model.snapshot_.own.orders[0] + 1
    assert own.recency[0] == 0
    assert own.since[0, never] == 1  # stored as orders since + 1: none since
    assert own.by_orders[0, never] == 1  # the latest order weighs 1, each earlier one less
    bought = inter.matrix[0].indices
    np.testing.assert_allclose(own.by_orders[0, bought].toarray(),
                               0.8 * model.snapshot_.own.by_orders[0, bought].toarray())
    bought = inter.matrix[0].indices
    np.testing.assert_array_equal(own.since[0, bought].toarray(),
                                  model.snapshot_.own.since[0, bought].toarray() + 1)
    # the weekly product of each customer was in their latest order: no order since
    tx = shop()
    latest = tx[tx["timestamp"] == tx.groupby("customer_id")["timestamp"].transform("max")]
    rows = inter.customers.to_index(latest["customer_id"].to_numpy())
    cols = inter.products.to_index(latest["product_id"].to_numpy())
    assert (np.asarray(model.snapshot_.own.since[rows, cols]).ravel() == 1).all()
    # an unknown customer with that history: one order, today
    stranger = model._live(sparse.csr_matrix(row), np.array([-1], np.int32))
    assert stranger.orders[0] == 1 and stranger.count.nnz == row.nnz


def test_features_are_finite_or_missing(fitted) -> None:  # type: ignore[no-untyped-def]
    model, _, inter = fitted
    users = np.arange(5, dtype=np.int32)
    own = model._live(inter.matrix[:5], users)
    [(rows, cols, x)] = model._all_pairs(model.snapshot_, own, np.ones(40, bool), [None])
    assert x.shape == (len(rows), len(FEATURES))
    assert not np.isinf(x).any()
    assert (np.diff(rows) >= 0).all()


def test_stored_lists_equal_the_ranking_they_replace(fitted) -> None:  # type: ignore[no-untyped-def]
    """Every customer, every stored list kind: read lists equal computed ones; a customer
    with a live purchase, an unknown row, or a question the lists do not hold is computed."""
    model, _, inter = fitted
    n_users = inter.matrix.shape[0]
    users = np.arange(n_users, dtype=np.int32)
    history = inter.matrix.tolil()
    history[3, int(np.flatnonzero(inter.matrix[3].toarray()[0] == 0)[0])] = 1.0  # live event
    history = sparse.csr_matrix(history)
    users[5] = -1  # e.g. an opted-out row: history without its stored customer
    read = model._unchanged(history, users)
    assert not read[3] and not read[5] and read[np.r_[0:3, 6:n_users]].all()
    every = np.ones(40, bool)
    for kind, exclude, own_only in (("all", None, False), ("new", history, False),
                                    ("own", None, True)):
        got = model.recommend_with_reasons(history, 7, users=users, exclude=exclude,
                                           own_only=own_only)
        [want] = model._rank(history, 7, users, every, [exclude], own_only)
        np.testing.assert_array_equal(got[0].ids, want[0].ids, err_msg=kind)
        np.testing.assert_array_equal(got[0].scores, want[0].scores, err_msg=kind)
        np.testing.assert_array_equal(got[1], want[1], err_msg=kind)
        np.testing.assert_array_equal(got[2], want[2], err_msg=kind)
        stored = model.lists_[kind]["ids"][:, :7]
        np.testing.assert_array_equal(stored[read], got[0].ids[read])
    # longer than the stored lists: computed, and its head is the stored list
    longer = model.recommend_with_reasons(inter.matrix, model.stored + 1,
                                          users=np.arange(n_users, dtype=np.int32))
    np.testing.assert_array_equal(longer[0].ids[:, :7], model.lists_["all"]["ids"][:, :7])


def test_stored_lists_hold_products_in_stock(fitted) -> None:  # type: ignore[no-untyped-def]
    """With products out of stock the lists are ranked among the others at fit; a question
    allowing exactly those is read from them, any other allowed set is computed."""
    model, tx, inter = fitted
    products = IdMap(np.array([f"p{i:02d}" for i in range(40)]))
    customers = IdMap(np.sort(tx["customer_id"].unique()))
    in_stock = np.ones(40, bool)
    in_stock[[int(i) for i in np.bincount(model.lists_["all"]["ids"][:, 0]).argsort()[-3:]]] = False
    items = ItemFeatures(text=[""] * 40, category=np.full(40, "", object), available=in_stock)
    again = LearnedRanker.from_state(model.get_params(), model.state())
    again.refit(inter.matrix, items=items, baskets=build_baskets(tx, customers, products))
    for kind in ("all", "new", "own"):
        listed = again.lists_[kind]["ids"]
        assert not np.isin(listed[listed >= 0], np.flatnonzero(~in_stock)).any(), kind
    users = np.arange(inter.matrix.shape[0], dtype=np.int32)
    read = again.recommend_with_reasons(inter.matrix, 7, users=users, candidates=in_stock)
    np.testing.assert_array_equal(read[0].ids, again.lists_["all"]["ids"][:, :7])
    [computed] = again._rank(inter.matrix, 7, users, in_stock, [None], False)
    np.testing.assert_array_equal(read[0].ids, computed[0].ids)
    np.testing.assert_array_equal(read[1], computed[1])
    everything = again.recommend(inter.matrix, 7, users=users)  # not the stored question
    assert np.isin(everything.ids, np.flatnonzero(~in_stock)).any()


def test_refit_keeps_the_boosters_and_serves_the_longer_history() -> None:
    """The bundle's refit: what was learnt on the earlier history scores the longer one."""
    tx = shop(seed=1)
    early = tx[tx["timestamp"] < START + pd.Timedelta(days=DAYS - 28)]
    products = IdMap(np.array([f"p{i:02d}" for i in range(40)]))
    fits = []
    for part in (early, tx):
        customers = IdMap(np.sort(part["customer_id"].unique()))
        fits.append((build_interactions(part, customers=customers, products=products).matrix,
                     build_baskets(part, customers, products)))
    model = LearnedRanker(windows=3, window_days=14, per_source=10, ease_items=40,
                          min_child=5, trees=30).fit(fits[0][0], baskets=fits[0][1])
    learnt = model.booster_.model_to_string()
    before = model.snapshot_.own.orders.sum()
    model.refit(fits[1][0], baskets=fits[1][1])
    assert model.booster_.model_to_string() == learnt
    assert model.snapshot_.own.orders.sum() > before  # the last 28 days' orders are in
    users = np.arange(fits[1][0].shape[0], dtype=np.int32)
    ranked = model.recommend(fits[1][0], 5, users=users)
    [(want, _, _)] = model._rank(fits[1][0], 5, users, np.ones(40, bool), [None], False)
    np.testing.assert_array_equal(ranked.ids, want.ids)
    fresh = LearnedRanker(windows=3, window_days=14, per_source=10, ease_items=40, min_child=5,
                          trees=30).refit(fits[1][0], baskets=fits[1][1])  # never fitted
    assert fresh.booster_.model_to_string() != learnt


def test_bounded_neighbour_pool_and_training_sample() -> None:
    """At scale the nearest customers come from a pool of the most active ones and each
    training cut samples its customers; lists stay complete and read lists still equal
    computed ones."""
    tx = shop(seed=2)
    customers = IdMap(np.sort(tx["customer_id"].unique()))
    products = IdMap(np.array([f"p{i:02d}" for i in range(40)]))
    matrix = build_interactions(tx, customers=customers, products=products).matrix
    model = LearnedRanker(windows=3, window_days=14, per_source=10, ease_items=40, min_child=5,
                          trees=30, neighbour_pool=20, train_customers=30)
    model.fit(matrix, baskets=build_baskets(tx, customers, products))
    orders = tx.groupby("customer_id")["order_id"].nunique().reindex(customers.ids).to_numpy()
    assert model.snapshot_.people.shape == (20, 40)
    assert orders[model.snapshot_.people_users].min() >= np.sort(orders)[-20]
    users = np.arange(matrix.shape[0], dtype=np.int32)
    ranked = model.recommend(matrix, 10, users=users)
    assert (ranked.ids >= 0).all()
    np.testing.assert_array_equal(
        ranked.ids, model._rank(matrix, 10, users, np.ones(40, bool), [None], False)[0][0].ids)
