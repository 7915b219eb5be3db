"""A checkerboard catalog with known right answers, shared by the model tests.

As in implicit's recommender tests: customer ``u`` bought every item of its own parity except
item ``u`` (so with purchases excluded, item ``u`` is the one right discovery answer), bought
item ``(u + 2) % N`` three times as often (the right buy-again answer), and everyone bought the
staple item ``N`` (the right popularity answer). Even items are dairy, odd items cleaning
products, in text and category, so the content model sees the same two groups.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from recsys.data.baskets import Baskets
from recsys.data.features import ItemFeatures
from recsys.models import REGISTRY, RecommenderBase

N = 24  # customers; items are 0..N-1 (the board) and N (the staple)
STAPLE = N
WORDS = {0: ["milk", "yoghurt", "cheese", "butter", "cream", "kefir"],
         1: ["soap", "bleach", "detergent", "sponge", "polish", "scrub"]}
TRIPLES = list(itertools.combinations(range(6), 3))  # distinct text per item of a parity
FAST = {  # small settings so the whole contract suite stays fast
    "als": {"factors": 8, "iterations": 10, "alpha": 1.0, "num_threads": 1},
    "bpr": {"factors": 8, "iterations": 200, "learning_rate": 0.05, "num_threads": 1},
    "itemknn": {"num_threads": 1},
    "tifuknn": {"k": 5},
    "hybrid": {"cf_params": {"factors": 8, "iterations": 10, "alpha": 1.0, "num_threads": 1}},
    "ranker": {"windows": 2, "window_days": 14, "per_source": 10, "ease_items": 30,
               "min_child": 2, "trees": 20},
}


@dataclass
class Board:
    matrix: sparse.csr_matrix
    items: ItemFeatures
    baskets: Baskets | None = None

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]


def make_board() -> Board:
    dense = np.zeros((N, N + 1), np.float32)
    for u in range(N):
        dense[u, u % 2:N:2] = 1.0
        dense[u, u] = 0.0
        dense[u, (u + 2) % N] = 3.0
    dense[:, STAPLE] = 1.0
    texts, cats = [], []
    for i in range(N):
        words = WORDS[i % 2]
        texts.append(" ".join(words[k] for k in TRIPLES[i // 2]))
        cats.append("Food > Dairy" if i % 2 == 0 else "Home > Cleaning")
    texts.append("paper shopping bag")
    cats.append("Store > Bags")
    items = ItemFeatures(text=texts, category=np.array(cats, dtype=object),
                         price=np.ones(N + 1, np.float32),
                         first_sold_days=np.full(N + 1, 200.0, np.float32),
                         repurchase_days=np.full(N + 1, 14.0, np.float32))
    return Board(sparse.csr_matrix(dense), items, board_baskets(dense))


def board_baskets(dense: np.ndarray) -> Baskets:
    """Twelve weekly orders per customer over the 84 days before ``as_of``: the item bought
    three times as often in every order, each other item in every third, the staple in every
    second."""
    n_users, n_items = dense.shape
    cells, users, ages = [], [], []
    for u, week in itertools.product(range(n_users), range(12)):
        basket = [i for i in np.flatnonzero(dense[u] > 0)
                  if dense[u, i] >= 3 or (i == STAPLE and week % 2 == 0)
                  or (i != STAPLE and (week + i) % 3 == 0)]
        cells.append(basket)
        users.append(u)
        ages.append(84.0 - 7 * week)
    order = np.lexsort((-np.array(ages), users))
    rows = [cells[o] for o in order]
    items = sparse.csr_matrix(
        (np.ones(sum(map(len, rows)), np.float32),
         (np.repeat(np.arange(len(rows)), [len(r) for r in rows]), np.concatenate(rows))),
        shape=(len(rows), n_items))
    return Baskets(items, np.array(users, np.int32)[order], np.array(ages)[order],
                   pd.Timestamp("2024-06-01"), n_users)


def build(name: str) -> RecommenderBase:
    """An unfitted registry model with the suite's small settings."""
    return REGISTRY[name](**FAST.get(name, {}))


def with_new_product(board: Board) -> tuple[Board, int]:
    """The board plus a dairy product nobody bought yet (launch: no sales, no first sale)."""
    new = board.n_items
    matrix = sparse.hstack([board.matrix, sparse.csr_matrix((N, 1), dtype=np.float32)]).tocsr()
    it = board.items
    items = ItemFeatures(
        text=[*it.text, "kefir cream milk"],
        category=np.append(it.category, "Food > Dairy").astype(object),
        price=np.append(it.price, 1.0).astype(np.float32),
        first_sold_days=np.append(it.first_sold_days, np.nan).astype(np.float32),
        repurchase_days=np.append(it.repurchase_days, np.nan).astype(np.float32))
    return Board(matrix, items), new
