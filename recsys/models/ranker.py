"""Two-stage recommender: candidates from several sources, ordered by a learned LambdaRank model.

Stage 1 gathers a few hundred candidates per customer, each source with its own score: the
customer's own products (time-decayed frequency), EASE, "bought in the same order as"
(basket co-occurrence), best sellers and fast risers. Stage 2 orders them with LightGBM
(LambdaRank) over features of the (customer, product) pair: purchase count, days since the
last purchase, the customer's usual interval for the product and how far along it they are,
share of baskets, each source's score and rank, popularity and trend, product age, the
customer's share of the product's category, price against the customer's usual price, basket
count and recency.

Training uses only the baskets it is given: features are computed at earlier cuts inside the
history (``windows`` cuts, ``window_days`` apart) and labelled with what each customer bought
in the ``window_days`` after the cut; the most recent cut validates (early stopping), then the
model is refitted on every cut with the number of trees found. Serving features come from all
the baskets, seen from their ``as_of``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, ClassVar, Self

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import sparse

from recsys._typing import BoolArray, IntArray
from recsys.data.baskets import Baskets
from recsys.data.csr import as_csr, cell_rows, row_cells
from recsys.data.features import ItemFeatures
from recsys.models._common import (
    Model,
    check_interactions,
    check_items,
    encode_categories,
    feature,
    first_permitted,
)
from recsys.models._reasons import Reason, because_you_bought
from recsys.models.base import Ranked, top_n

log = logging.getLogger(__name__)
BLOCK_CELLS = 1 << 21  # customers x EASE products scored at once (8 MB)
NEW_DAYS = 28  # a product first sold this recently (or never) is "new"
ORDER_DECAY = 0.8  # weight of a purchase per later order of the customer (TIFU-KNN's r_b)
SHORTLIST = 5000  # allowed products up to this many are all candidates of the category source
STORE_BLOCK = 1024  # customers ranked at once when storing every customer's lists
LIST_KINDS = ("all", "new", "own")  # stored lists: nothing excluded, purchases excluded, own
PairSet = tuple[np.ndarray, np.ndarray, np.ndarray]  # (customer row, features, bought) per pair

FEATURES = (
    "count", "days_since", "first_days", "interval", "due", "decayed", "recent", "by_orders",
    "orders_since", "basket_share",
    "own_rank", "ease", "ease_rank", "cooc", "cooc_rank", "knn", "knn_rank", "twin",
    "twin_rank", "pop_rank",
    "category_rank", "pop_all", "pop_28", "pop_7", "trend", "item_age", "item_interval",
    "item_repeat", "price", "orders", "recency", "gap", "distinct", "category_share", "price_ratio",
)


@dataclass
class Personal:
    """Customers' own history as features need it, one row per customer.

    Per (customer, product) cells (CSR, one pattern for all, columns sorted in each row):
    ``count`` orders holding it, ``last`` and ``first`` days since the latest/earliest of
    them plus one (so that "today" is a stored cell), ``decayed`` the time-decayed count
    (``recent``: with a quarter of the half-life), ``by_orders`` the count decayed by orders
    instead (``ORDER_DECAY`` per later order of the customer), ``since`` the customer's
    orders after the latest one holding it, plus one. Per customer: ``orders``, ``recency``
    (days since the last order), ``span`` (days since the first), ``user`` (stored customer
    row, -1: not stored).
    """

    count: sparse.csr_matrix
    last: sparse.csr_matrix
    first: sparse.csr_matrix
    decayed: sparse.csr_matrix
    recent: sparse.csr_matrix
    by_orders: sparse.csr_matrix
    since: sparse.csr_matrix
    orders: np.ndarray
    recency: np.ndarray
    span: np.ndarray
    user: np.ndarray

    def rows(self, which: slice | np.ndarray) -> Personal:
        return Personal(*(getattr(self, f.name)[which] for f in fields(self)))


@dataclass
class Snapshot:
    """What the candidate sources know at one moment (fitted on the baskets before it).

    ``own``: every customer's history (``Personal``). Per product: distinct buyers overall and
    in the last 28/7 days, days since its first sale (``nan`` never), median repurchase
    interval, share of buyers who bought again; then the sources' fitted parts.
    """

    own: Personal
    pop_all: np.ndarray
    pop_28: np.ndarray
    pop_7: np.ndarray
    item_age: np.ndarray
    item_interval: np.ndarray
    item_repeat: np.ndarray
    ease_items: np.ndarray
    ease_weights: np.ndarray
    cooc: sparse.csr_matrix
    people: sparse.csr_matrix
    people_users: np.ndarray
    twins: sparse.csr_matrix

    @cached_property
    def people_t(self) -> sparse.csr_matrix:
        """``people`` transposed, as CSR once (a product with CSC converts it every call)."""
        return as_csr(self.people.T)

    @cached_property
    def twins_t(self) -> sparse.csr_matrix:
        """``twins`` transposed: each new product's row holds the product it shares text with."""
        return as_csr(self.twins.T)

    @cached_property
    def ease_position(self) -> np.ndarray:
        """Each product's column in ``ease_weights``, -1 for products EASE does not model."""
        position = np.full(len(self.pop_all), -1, np.int64)
        position[self.ease_items] = np.arange(len(self.ease_items))
        return position

    @cached_property
    def pop_score(self) -> np.ndarray:
        """Best sellers of the last 28 days, fast risers a little ahead."""
        trend = (self.pop_7 + 1) / (self.pop_28 / 4 + 1) * np.log1p(self.pop_28)
        return (np.log1p(self.pop_28) + 0.1 * trend).astype(np.float32)

    @cached_property
    def pop_order(self) -> np.ndarray:
        """Products by ``pop_score``, best first."""
        return np.argsort(-self.pop_score, kind="stable")

    @staticmethod
    def stored_fields() -> tuple[list[str], list[str]]:
        """Names of what ``arrays`` stores: ``own``'s fields (but ``user``, the row itself),
        then the snapshot's other fields."""
        return ([f.name for f in fields(Personal) if f.name != "user"],
                [f.name for f in fields(Snapshot) if f.name != "own"])

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """Plain arrays for ``state()`` (CSR matrices as their three arrays; ``own``'s fields
        by their own names)."""
        mine, rest = self.stored_fields()
        parts = [(name, getattr(self.own, name)) for name in mine] + \
            [(name, getattr(self, name)) for name in rest]
        out: dict[str, np.ndarray] = {}
        for name, value in parts:
            if sparse.issparse(value):
                for part in ("data", "indices", "indptr"):
                    out[f"{prefix}{name}.{part}"] = getattr(value, part)
                out[f"{prefix}{name}.shape"] = np.asarray(value.shape, np.int64)
            else:
                out[f"{prefix}{name}"] = value
        return out

    @classmethod
    def from_arrays(cls, state: Mapping[str, np.ndarray], prefix: str) -> Snapshot:
        def read(name: str) -> Any:
            key = f"{prefix}{name}"
            if f"{key}.shape" in state:
                return sparse.csr_matrix(
                    (state[f"{key}.data"], state[f"{key}.indices"], state[f"{key}.indptr"]),
                    shape=tuple(state[f"{key}.shape"]))
            return np.asarray(state[key])

        mine, rest = cls.stored_fields()
        own = {name: read(name) for name in mine}
        return cls(own=Personal(**own, user=np.arange(len(own["orders"]), dtype=np.int64)),
                   **{name: read(name) for name in rest})


@dataclass
class SourceScores:
    """The sources' scores for a block of customers, before anything is excluded: EASE
    (rows x ``Snapshot.ease_items``), co-purchase, nearest customers, text twins (rows x
    products) and each row's spend share per category (``_category_spend``)."""

    ease: np.ndarray
    cooc: sparse.csr_matrix
    knn: sparse.csr_matrix
    twin: sparse.csr_matrix
    spend: np.ndarray


def snapshot(baskets: Baskets, *, half_life_days: float, ease_items: int,
             ease_regularization: float, cooc_neighbours: int, neighbour_pool: int,
             text_group: np.ndarray) -> Snapshot:
    """Fit every candidate source on ``baskets`` (seen from their ``as_of``);
    ``text_group``: products with the same text share a code (-1: no text);
    ``neighbour_pool``: the customers with the most orders who can be nearest customers."""
    n_users, n_items = baskets.n_users, baskets.n_items
    cells = baskets.items.tocoo()
    user = baskets.user[cells.row].astype(np.int64)
    age = baskets.age[cells.row]
    back = (baskets.user_ptr[user + 1] - 1 - cells.row)  # the customer's orders after it
    key = user * n_items + cells.col
    order = np.lexsort((age, key))
    key, age, back = key[order], age[order], back[order]
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    count = np.diff(np.r_[starts, len(key)]).astype(np.float32)
    last = age[starts].astype(np.float32)  # ages ascend within a key: the first is the latest
    first = np.maximum.reduceat(age, starts).astype(np.float32)
    decayed = np.add.reduceat(np.exp2(-age / half_life_days), starts).astype(np.float32)
    recent = np.add.reduceat(np.exp2(-4 * age / half_life_days), starts).astype(np.float32)
    by_orders = np.add.reduceat(ORDER_DECAY ** back, starts).astype(np.float32)
    u, i = np.divmod(key[starts], n_items)
    # orders of the customer after the latest one with the product: baskets are sorted by
    # (customer, time), so one sorted key per basket answers each cell by bisection
    horizon = float(baskets.age.max(initial=0)) + 1
    basket_key = baskets.user.astype(np.float64) * (2 * horizon) + (horizon - baskets.age)
    at = np.searchsorted(basket_key, u * (2 * horizon) + (horizon - last), side="right")
    since = (baskets.user_ptr[u + 1] - at + 1).astype(np.float32)

    def cells_of(values: np.ndarray) -> sparse.csr_matrix:
        return sparse.csr_matrix((values, (u, i)), shape=(n_users, n_items))

    orders = np.bincount(baskets.user, minlength=n_users).astype(np.float32)
    recency = np.full(n_users, np.nan, np.float32)
    span = np.full(n_users, np.nan, np.float32)
    has = orders > 0
    ptr = baskets.user_ptr
    if len(baskets):
        recency[has] = np.minimum.reduceat(baskets.age, ptr[:-1][has])
        span[has] = np.maximum.reduceat(baskets.age, ptr[:-1][has])
    pop_all = np.bincount(i, minlength=n_items).astype(np.float32)
    pop_28 = np.bincount(i[last < 28], minlength=n_items).astype(np.float32)
    pop_7 = np.bincount(i[last < 7], minlength=n_items).astype(np.float32)
    item_age = np.full(n_items, -np.inf, np.float32)
    np.maximum.at(item_age, i, first)
    item_age[~np.isfinite(item_age)] = np.nan
    again = count > 1
    interval = (first[again] - last[again]) / (count[again] - 1)
    item_interval = _median_by(i[again], interval, n_items)
    item_repeat = np.bincount(i[again], minlength=n_items) / np.maximum(pop_all, 1)
    count_m = cells_of(count)
    weights = count_m.copy()
    weights.data = np.log1p(weights.data)
    ease_index, ease_w = _ease(weights, ease_items, ease_regularization)
    pool = np.sort(np.argsort(-orders, kind="stable")[:neighbour_pool])
    own = Personal(count_m, cells_of(last + 1), cells_of(first + 1), cells_of(decayed),
                   cells_of(recent), cells_of(by_orders), cells_of(since), orders, recency, span,
                   np.arange(n_users, dtype=np.int64))
    return Snapshot(own, pop_all, pop_28, pop_7, item_age, item_interval,
                    item_repeat.astype(np.float32), ease_index, ease_w,
                    _cooccurrence(baskets.items, cooc_neighbours),
                    _unit_rows(cells_of(decayed)[pool]), pool, _twins(text_group, pop_all))


def _twins(text_group: np.ndarray, sold: np.ndarray) -> sparse.csr_matrix:
    """Products x products: 1 from the best-selling product of a text to each unsold product
    with the same text (a new barcode or size of something customers already buy)."""
    n = len(text_group)
    if not len(text_group) or (text_group < 0).all():
        return sparse.csr_matrix((n, n), dtype=np.float32)
    frame = pd.DataFrame({"group": text_group, "sold": sold})
    selling = frame[(frame["group"] >= 0) & (frame["sold"] > 0)]
    best = selling.sort_values("sold", ascending=False, kind="stable").groupby("group").head(1)
    leader = pd.Series(best.index.to_numpy(), index=best["group"].to_numpy())
    new = frame[(frame["group"] >= 0) & (frame["sold"] == 0)]
    source = leader.reindex(new["group"].to_numpy()).to_numpy()
    found = ~np.isnan(source)
    return sparse.csr_matrix((np.ones(found.sum(), np.float32),
                              (source[found].astype(np.int64), new.index.to_numpy()[found])),
                             shape=(n, n))


def _unit_rows(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    """Rows scaled to unit length (empty rows stay empty)."""
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    return as_csr(sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ matrix)


def _median_by(groups: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    out = np.full(size, np.nan, np.float32)
    if len(values):
        order = np.lexsort((values, groups))
        g, v = groups[order], values[order]
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        ends = np.r_[starts[1:], len(g)]
        out[g[starts]] = (v[(starts + ends - 1) // 2] + v[(starts + ends) // 2]) / 2
    return out


def _ease(weights: sparse.csr_matrix, max_items: int, regularization: float
          ) -> tuple[np.ndarray, np.ndarray]:
    """EASE (Steck 2019) over the ``max_items`` products bought by the most customers."""
    buyers = np.bincount(weights.indices, minlength=weights.shape[1])
    keep = np.argsort(-buyers, kind="stable")[: min(max_items, int((buyers > 0).sum()))]
    if not len(keep):
        return np.zeros(0, np.int32), np.zeros((0, 0), np.float32)
    x = weights[:, keep]
    gram = (x.T @ x).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += regularization
    inverse = np.linalg.inv(gram)
    b = inverse / -np.diag(inverse)[None, :]
    np.fill_diagonal(b, 0.0)
    return keep.astype(np.int32), b.astype(np.float32)


def _cooccurrence(items: sparse.csr_matrix, neighbours: int) -> sparse.csr_matrix:
    """P(product j in an order | product i in it), the ``neighbours`` largest per row."""
    binary = as_csr(items)
    together = sparse.csr_matrix(binary.T @ binary, dtype=np.float32)
    together.setdiag(0)
    together.eliminate_zeros()
    sold = np.asarray(binary.sum(axis=0)).ravel()
    together = sparse.diags(1.0 / np.maximum(sold, 1)).astype(np.float32) @ together
    together = as_csr(together)
    lengths = np.diff(together.indptr)
    keep = np.ones(together.nnz, bool)
    for r in np.flatnonzero(lengths > neighbours):
        lo, hi = together.indptr[r], together.indptr[r + 1]
        cut = np.argpartition(-together.data[lo:hi], neighbours - 1)[neighbours:]
        keep[lo + cut] = False
    rows = cell_rows(together.indptr)[keep]
    return sparse.csr_matrix((together.data[keep], (rows, together.indices[keep])),
                             shape=together.shape)


def lookup(matrix: sparse.csr_matrix, rows: np.ndarray, cols: np.ndarray,
           fill: float = np.nan) -> np.ndarray:
    """``matrix[rows, cols]`` for many pairs, ``fill`` where no cell is stored."""
    matrix = as_csr(matrix)
    if not matrix.has_sorted_indices:
        matrix.sort_indices()
    return _at_keys(_cell_keys(matrix), matrix.data,
                    rows.astype(np.int64) * matrix.shape[1] + cols, fill)


def _cell_keys(matrix: sparse.csr_matrix) -> np.ndarray:
    """Each stored cell as ``row * columns + column`` (sorted if the indices are)."""
    return cell_rows(matrix.indptr) * matrix.shape[1] + matrix.indices


def _find(keys: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Where each ``wanted`` key sits in the sorted ``keys``, -1 where it is absent."""
    if not len(keys):
        return np.full(len(wanted), -1, np.int64)
    at = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    return np.where(keys[at] == wanted, at, -1)


def _at_keys(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray,
             fill: float) -> np.ndarray:
    """``values`` where the sorted ``keys`` equal each ``wanted`` key, ``fill`` elsewhere."""
    out = np.full(len(wanted), fill, np.float32)
    at = _find(keys, wanted)
    hit = at >= 0
    out[hit] = values[at[hit]]
    return out


def _kept(cells: sparse.csr_matrix, keep: np.ndarray, columns: np.ndarray | None = None,
          width: int | None = None) -> sparse.csr_matrix:
    """The stored cells of ``cells`` where ``keep`` (one flag per cell), the rest dropped;
    ``columns`` (optional): the kept cells' columns in a matrix ``width`` wide instead."""
    rows = cell_rows(cells.indptr)[keep]
    return sparse.csr_matrix(
        (cells.data[keep], cells.indices[keep] if columns is None else columns,
         _indptr(rows, cells.shape[0])),
        shape=(cells.shape[0], cells.shape[1] if width is None else width))


def _indptr(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """The CSR ``indptr`` of cells whose (ascending) rows are ``rows``."""
    return np.r_[0, np.cumsum(np.bincount(rows, minlength=n_rows))]


class LearnedRanker(Model):
    """Candidates from several sources ordered by LightGBM LambdaRank (see the module).

    Parameters
    ----------
    windows, window_days : int
        Training cuts inside the history and the label period after each.
    per_source : int
        Candidates each source contributes per customer (own products: up to 2x this).
    half_life_days : float
        Half-life of the time-decayed purchase count.
    ease_items, ease_regularization : EASE source (products modelled, L2 penalty).
    cooc_neighbours : int
        Co-purchased products kept per product.
    neighbours : int
        Most similar customers whose purchases are candidates.
    neighbour_pool : int
        Customers (those with the most orders) searched for them: memory and time per
        ranked customer follow this, not the customer count.
    train_customers : int
        Customers sampled per training cut (at most).
    trees, learning_rate, leaves, min_child : LightGBM settings (``trees``: the most; early
        stopping on the most recent cut picks the number).
    negatives : int
        Candidates that were not bought kept per customer and cut for learning (a random
        sample; all that were bought are kept).
    workers : int
        Threads for the training cuts, the two boosters and the stored lists.
    stored : int
        Length of the lists ranked at fit for every stored customer (answers up to this
        long are read, not computed, until the customer has live events).
    seed : int
    """

    name: ClassVar[str] = "ranker"
    stores_users: bool = True
    cold_start: ClassVar[bool] = True  # a customer with no history gets best sellers, ranked
    # rows may mix stored customers (with live events on top) and unknown ones
    ranks_live_rows: ClassVar[bool] = True

    def __init__(self, *, windows: int = 6, window_days: int = 28, per_source: int = 50,
                 half_life_days: float = 60.0, ease_items: int = 2000,
                 ease_regularization: float = 50.0, cooc_neighbours: int = 30,
                 neighbours: int = 30, neighbour_pool: int = 20_000,
                 train_customers: int = 20_000,
                 trees: int = 300, learning_rate: float = 0.08, leaves: int = 31,
                 min_child: int = 50, negatives: int = 100, stored: int = 30,
                 workers: int = 2, seed: int = 0) -> None:
        self.windows = windows
        self.window_days = window_days
        self.per_source = per_source
        self.half_life_days = half_life_days
        self.ease_items = ease_items
        self.ease_regularization = ease_regularization
        self.cooc_neighbours = cooc_neighbours
        self.neighbours = neighbours
        self.neighbour_pool = neighbour_pool
        self.train_customers = train_customers
        self.trees = trees
        self.learning_rate = learning_rate
        self.leaves = leaves
        self.min_child = min_child
        self.negatives = negatives
        self.stored = stored
        self.workers = workers
        self.seed = seed

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
            baskets: Baskets | None = None) -> Self:
        """Learn the ranker on earlier cuts of ``baskets``, then fit the sources on all."""
        matrix, baskets = self._inputs(interactions, items, baskets)
        with ThreadPoolExecutor(self.workers) as pool:  # numpy and scipy release the GIL
            cuts = [c for c in pool.map(lambda w: self._cut(baskets, w),
                                        range(1, self.windows + 1)) if c is not None]
            if not cuts:
                raise ValueError("the history is too short to learn a ranker: no customer "
                                 f"bought both before and within {self.window_days} days of "
                                 "any cut.")
            mixed, discover = [c[0] for c in cuts], [c[1] for c in cuts]
            learning = pool.submit(self._learn, mixed)
            # nobody bought a product new to them after any cut: the mixed model ranks those
            learning_new = pool.submit(self._learn, discover) \
                if any(len(d[2]) for d in discover) else learning
            self.booster_, self.trees_used_ = learning.result()
            self.discover_booster_ = learning_new.result()[0]
        return self._serve(matrix, baskets)

    def _cut(self, baskets: Baskets, w: int) -> tuple[PairSet, PairSet] | None:
        """Learning pairs of the ``w``-th cut back: features from the baskets before it,
        labels from the ``window_days`` after; (all candidates, never-bought candidates)."""
        cut = w * self.window_days
        past = baskets.window(cut)
        labels = baskets.window(cut - self.window_days, cut).counts()
        bought = past.counts()
        users = np.flatnonzero((bought.getnnz(axis=1) > 0) & (labels.getnnz(axis=1) > 0))
        if not len(users):
            return None
        rng = np.random.default_rng([self.seed, w])
        if len(users) > self.train_customers:
            users = np.sort(rng.choice(users, self.train_customers, replace=False))
        snap = self._snapshot(past)
        own = snap.own.rows(users)
        sets = []
        for rows, cols, x in self._all_pairs(snap, own, np.ones(self.n_items_, bool),
                                             (None, bought[users])):
            y = (lookup(labels, users[rows], cols, 0.0) > 0).astype(np.float32)
            sets.append(_sampled(*_with_positives(rows, x, y), self.negatives, rng))
        log.info("ranker cut %d days back: %d customers, %d + %d pairs", cut, len(users),
                 len(sets[0][2]), len(sets[1][2]))
        return sets[0], sets[1]

    def refit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
              baskets: Baskets | None = None) -> Self:
        """Sources, features and stored lists from the longer history; the boosters learnt
        by ``fit`` are kept (features are the same whatever the ids), so the served scorer
        is the one that was evaluated."""
        if not hasattr(self, "booster_"):
            return self.fit(interactions, items=items, baskets=baskets)
        return self._serve(*self._inputs(interactions, items, baskets))

    def _inputs(self, interactions: sparse.csr_matrix, items: ItemFeatures | None,
                baskets: Baskets | None) -> tuple[sparse.csr_matrix, Baskets]:
        """The checked training inputs; sets the per-product arrays (price, category code,
        text group)."""
        matrix = check_interactions(interactions)
        n_items = matrix.shape[1]
        items = check_items(items, n_items)
        if baskets is None:
            raise ValueError("the ranker needs baskets=Baskets(...) (orders with their times).")
        if baskets.n_items != n_items or baskets.n_users != matrix.shape[0]:
            raise ValueError("baskets must be aligned with interactions (same customers and "
                             "products).")
        self.n_items_ = n_items
        self.price_ = feature(items, "price", n_items)
        self.available_ = np.ones(n_items, bool) if items is None or not len(items.available) \
            else np.asarray(items.available, bool)
        self.category_, _ = encode_categories(items, n_items)
        texts = pd.Series(items.text if items is not None else [""] * n_items).str.strip()
        self.text_group_ = np.where(texts != "", pd.factorize(texts)[0], -1).astype(np.int32)
        return matrix, baskets

    def _serve(self, matrix: sparse.csr_matrix, baskets: Baskets) -> Self:
        """Sources fitted on every basket, then every stored customer's lists."""
        self.n_users_ = matrix.shape[0]
        self.snapshot_ = self._snapshot(baskets)
        self.seen_ = matrix
        self._store_lists()
        return self

    def _learn(self, sets: list[PairSet]) -> tuple[lgb.Booster, int]:
        """LambdaRank on every cut but the most recent, early-stopped on that one, then
        refitted on all cuts with the number of trees found."""
        params = {"objective": "lambdarank", "metric": "ndcg", "eval_at": [10],
                  "learning_rate": self.learning_rate, "num_leaves": self.leaves,
                  "min_data_in_leaf": self.min_child, "feature_fraction": 0.8, "max_bin": 63,
                  "bagging_fraction": 0.7, "bagging_freq": 1, "lambdarank_truncation_level": 20,
                  # one thread: on a busy machine OpenMP's waiting threads cost 2-3x
                  "seed": self.seed, "deterministic": True, "num_threads": 1, "verbose": -1}
        rounds = self.trees
        sets = [s for s in sets if len(s[2])]
        if len(sets) > 1:
            trial = lgb.train(params, _dataset(sets[1:]), num_boost_round=self.trees,
                              valid_sets=[_dataset(sets[:1])],
                              callbacks=[lgb.early_stopping(20, verbose=False)])
            rounds = max(trial.best_iteration, 10)
        return lgb.train(params, _dataset(sets), num_boost_round=rounds), rounds

    def _snapshot(self, baskets: Baskets) -> Snapshot:
        return snapshot(baskets, half_life_days=self.half_life_days, ease_items=self.ease_items,
                        ease_regularization=self.ease_regularization,
                        cooc_neighbours=self.cooc_neighbours,
                        neighbour_pool=self.neighbour_pool, text_group=self.text_group_)

    def _category_spend(self, own: Personal) -> np.ndarray:
        """Each row's share of its orders' products per category (column 0: unknown)."""
        n_cat = int(self.category_.max(initial=-1)) + 2
        count = own.count
        rows = cell_rows(count.indptr)
        spend = np.zeros((count.shape[0], n_cat), np.float32)
        np.add.at(spend, (rows, self.category_[count.indices] + 1), count.data)
        return spend / np.maximum(spend.sum(axis=1, keepdims=True), 1)

    def _neighbours(self, snap: Snapshot, own: Personal) -> sparse.csr_matrix:
        """What the ``neighbours`` most similar customers buy (cosine of time-decayed
        counts, the customer left out), weighted by similarity: TIFU-KNN's neighbour part.
        Similarities stay sparse: in a large catalog a customer shares products with few of
        the pool."""
        sims = as_csr(_unit_rows(own.decayed) @ snap.people_t)
        pool = snap.people_users
        slot = np.minimum(np.searchsorted(pool, own.user), max(len(pool) - 1, 0))
        mine = np.flatnonzero((own.user >= 0) & (pool[slot] == own.user)) if len(pool) \
            else np.zeros(0, np.int64)
        if len(mine):  # not one's own neighbour
            own_slot = np.full(sims.shape[0], -1, np.int64)
            own_slot[mine] = slot[mine]
            sims.data[sims.indices == own_slot[cell_rows(sims.indptr)]] = 0
        sims.eliminate_zeros()
        rows, at = _best_cells(sims, self.neighbours)
        pick = sparse.csr_matrix((sims.data[at], sims.indices[at],
                                  _indptr(rows, sims.shape[0])), shape=sims.shape)
        # neighbours in pool order, as evaluated: a sum's order changes its last bits, and
        # those reorder ties among candidates (docs/benchmarks/quality.md)
        pick.sort_indices()
        return as_csr(pick @ snap.people)

    # -- ranking ----------------------------------------------------------------------------
    def _all_pairs(self, snap: Snapshot, own: Personal, allowed: np.ndarray,
                   excludes: Sequence[sparse.csr_matrix | None], own_only: bool = False
                   ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``_pairs`` over blocks of rows (the EASE block stays small), once per entry of
        ``excludes``: the sources score each block once, whatever is excluded."""
        step = max(1, BLOCK_CELLS // max(len(snap.ease_items), 1))
        parts: list[list[tuple[np.ndarray, ...]]] = [[] for _ in excludes]
        for start in range(0, len(own.orders), step):
            block = own if step >= len(own.orders) else own.rows(slice(start, start + step))
            scores = self._source_scores(snap, block, own_only)
            for part, exclude in zip(parts, excludes, strict=True):
                rows, cols, x = self._pairs(snap, block, scores, allowed, None if exclude is None
                                            else exclude[start:start + step], own_only)
                part.append((rows + start, cols, x))
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, len(FEATURES))))
        return [tuple(np.concatenate(p) for p in zip(*part, strict=True)) if part else empty
                for part in parts]  # type: ignore[misc]

    def _source_scores(self, snap: Snapshot, own: Personal, own_only: bool) -> SourceScores:
        """What each source scores for these rows (``own_only``: the own source alone)."""
        n_rows = len(own.orders)
        spend = self._category_spend(own)
        if own_only:
            none = sparse.csr_matrix((n_rows, self.n_items_), dtype=np.float32)
            return SourceScores(np.zeros((n_rows, 0), np.float32), none, none, none, spend)
        weights = sparse.csr_matrix((np.log1p(own.count.data), own.count.indices,
                                     own.count.indptr), shape=own.count.shape)
        column = snap.ease_position[weights.indices]  # EASE's products in its own columns
        modelled = _kept(weights, column >= 0, column[column >= 0].astype(np.int32),
                         len(snap.ease_items))
        ease = np.asarray(modelled @ snap.ease_weights, np.float32) \
            if len(snap.ease_items) else np.zeros((n_rows, 0), np.float32)
        return SourceScores(ease, as_csr(weights @ snap.cooc), self._neighbours(snap, own),
                            as_csr(own.decayed @ snap.twins), spend)

    def _pairs(self, snap: Snapshot, own: Personal, scores: SourceScores, allowed: np.ndarray,
               exclude: sparse.csr_matrix | None, own_only: bool = False
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates of each row and their features: ``(row, item, X)`` sorted by row.

        Every source yields scored cells; each keeps its best ``per_source`` per row among
        the allowed, not excluded products; the union is ranked. ``own_only``: the
        customer's own products only (a buy-again list)."""
        n_rows, k = len(own.orders), self.per_source
        blocked = None if exclude is None or not exclude.nnz else \
            sparse.csr_matrix((np.ones(exclude.nnz, np.float32), exclude.indices,
                               exclude.indptr), shape=exclude.shape)
        every = bool(allowed.all())

        def usable(cells: sparse.csr_matrix) -> sparse.csr_matrix:
            """Only the allowed, not excluded, nonzero cells: numpy on the cells (no scipy
            object per step, which a one-customer request would pay), then scipy's merge
            for the exclusions (linear in a large block's cells)."""
            cells = as_csr(cells)
            keep = cells.data != 0
            if not every:
                keep &= allowed[cells.indices]
            cells = _kept(cells, keep)
            if blocked is not None:
                cells = as_csr(cells - cells.multiply(blocked))
                cells.eliminate_zeros()
            return cells

        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32))
        sources = dict.fromkeys(("own", "ease", "cooc", "knn", "twin", "pop", "category"),
                                empty)
        sources["own"] = _top_per_row(usable(own.decayed), self.n_items_ if own_only else 2 * k)
        ease, spend = scores.ease, scores.spend
        if ease.shape[1]:
            block = np.where(allowed[snap.ease_items][None, :], ease, -np.inf)
            if blocked is not None:
                ex = blocked.tocoo()
                column = snap.ease_position[ex.col]
                block[ex.row[column >= 0], column[column >= 0]] = -np.inf
            ids = top_n(block, k).ids
            r, c = np.nonzero(ids >= 0)
            sources["ease"] = (r, snap.ease_items[ids[r, c]], (c + 1).astype(np.float32))
        if not own_only:
            sources["cooc"] = _top_per_row(usable(scores.cooc), k)
            sources["knn"] = _top_per_row(usable(scores.knn), k)
            sources["twin"] = _top_per_row(usable(scores.twin), k)
            pop_score = snap.pop_score
            # a few best sellers; a small filtered set whole
            shortlist = first_permitted(snap.pop_order, allowed, 3 * k) \
                if np.count_nonzero(allowed) > SHORTLIST else np.flatnonzero(allowed)
            width = len(shortlist)
            tiled = sparse.csr_matrix((np.tile(pop_score[shortlist], n_rows),
                                       np.tile(shortlist, n_rows),
                                       np.arange(n_rows + 1) * width),
                                      shape=(n_rows, self.n_items_))
            sources["pop"] = _top_per_row(usable(tiled), k // 2)
            tiled.data = spend[np.repeat(np.arange(n_rows), width),
                               self.category_[tiled.indices] + 1] * (1 + tiled.data)
            sources["category"] = _top_per_row(usable(tiled), k)
        n_items = self.n_items_
        keys = np.unique(np.concatenate([r.astype(np.int64) * n_items + c
                                         for r, c, _ in sources.values()]))
        rows, cols = np.divmod(keys, n_items)
        rank_of = {name: _rank_at(src, rows, cols, (n_rows, n_items)) for name, src in
                   sources.items()}
        at = snap.ease_position[cols]
        ease_value = np.where(at >= 0, ease[rows, np.maximum(at, 0)] if ease.size else 0.0,
                              np.nan)
        x = self._features(snap, own, rows, cols, rank_of, ease_value,
                           lookup(scores.cooc, rows, cols, 0.0),
                           lookup(scores.knn, rows, cols, 0.0),
                           lookup(scores.twin, rows, cols, 0.0),
                           spend[rows, self.category_[cols] + 1])
        return rows, cols, x

    def _features(self, snap: Snapshot, own: Personal, rows: np.ndarray,
                  cols: np.ndarray, rank_of: dict[str, np.ndarray], ease: np.ndarray,
                  cooc: np.ndarray, knn: np.ndarray, twin: np.ndarray,
                  category_share: np.ndarray) -> np.ndarray:
        at = _find(_cell_keys(own.count), rows.astype(np.int64) * self.n_items_ + cols)
        hit = at >= 0

        def mine(cells: sparse.csr_matrix) -> np.ndarray:
            """The pairs' cells of one of ``own``'s fields (they share one pattern)."""
            out = np.full(len(rows), np.nan, np.float32)
            out[hit] = cells.data[at[hit]]
            return out

        count = mine(own.count)
        bought = np.nan_to_num(count)
        days_since = mine(own.last) - 1  # stored as days + 1: 0 is a cell
        first_days = mine(own.first) - 1
        interval = np.where(count > 1, (first_days - days_since) / np.maximum(count - 1, 1),
                            np.nan)
        interval[interval <= 0] = np.nan  # several orders on one day: no pace yet
        orders = own.orders[rows]
        totals = np.asarray(own.count.sum(axis=1)).ravel()
        price = self.price_
        nan = np.full(len(rows), np.nan, np.float32)
        paid = own.count.copy()  # what each cell cost (no price: nothing), cell by cell
        paid.data = paid.data * np.nan_to_num(price[paid.indices])
        usual = np.asarray(paid.sum(axis=1)).ravel() / np.maximum(totals, 1)
        usual[usual <= 0] = np.nan  # no priced purchase: no usual price
        columns = {
            "count": bought, "days_since": days_since, "first_days": first_days,
            "interval": interval, "due": days_since / interval,
            "decayed": np.nan_to_num(mine(own.decayed)),
            "recent": np.nan_to_num(mine(own.recent)),
            "by_orders": np.nan_to_num(mine(own.by_orders)),
            "orders_since": mine(own.since) - 1,
            "basket_share": bought / np.maximum(orders, 1),
            "own_rank": rank_of["own"], "ease": ease, "ease_rank": rank_of.get("ease", nan),
            "cooc": cooc, "cooc_rank": rank_of["cooc"], "knn": knn, "knn_rank": rank_of["knn"],
            "twin": twin, "twin_rank": rank_of["twin"],
            "pop_rank": rank_of["pop"], "category_rank": rank_of["category"],
            "pop_all": snap.pop_all[cols], "pop_28": snap.pop_28[cols], "pop_7": snap.pop_7[cols],
            "trend": (snap.pop_7[cols] + 1) / (snap.pop_28[cols] / 4 + 1),
            "item_age": snap.item_age[cols], "item_interval": snap.item_interval[cols],
            "item_repeat": snap.item_repeat[cols], "price": price[cols],
            "orders": orders, "recency": own.recency[rows],
            "gap": own.span[rows] / np.maximum(orders, 1),
            "distinct": np.diff(own.count.indptr)[rows].astype(np.float32),
            "category_share": category_share, "price_ratio": price[cols] / usual[rows],
        }
        return np.column_stack([np.asarray(columns[f], np.float32) for f in FEATURES])

    def _score_users(self, history: sparse.csr_matrix, users: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError  # ranks through recommend(); never a dense catalog score

    def _item_similarity(self, items: np.ndarray) -> np.ndarray:
        """Bought in the same order (P(j | i)), best sellers after them."""
        snap = self.snapshot_
        scores = snap.cooc[items].toarray()
        return scores + 1e-6 * np.log1p(snap.pop_all)[None, :] / np.log1p(
            max(float(snap.pop_all.max(initial=0)), 1.0))

    def recommend(self, history: sparse.csr_matrix, n: int = 10, *,
                  users: np.ndarray | None = None, exclude: sparse.csr_matrix | None = None,
                  candidates: BoolArray | IntArray | None = None) -> Ranked:
        """The top ``n`` of each row's candidates by the learned ranker."""
        return self.recommend_with_reasons(history, n, users=users, exclude=exclude,
                                           candidates=candidates)[0]

    def recommend_with_reasons(self, history: sparse.csr_matrix, n: int = 10, *,
                               users: np.ndarray | None = None,
                               exclude: sparse.csr_matrix | None = None,
                               candidates: BoolArray | IntArray | None = None,
                               own_only: bool = False
                               ) -> tuple[Ranked, np.ndarray, np.ndarray]:
        """``recommend`` plus why each pick ranked: ``Reason`` values and the anchor of each
        (the product it goes with, or for ``REPEATS_EVERY`` the usual days between
        purchases; -1 for none). ``own_only``: rank the customer's own products only.
        Rows may mix stored customers and ``users = -1``; history beyond a stored
        customer's (live events) counts as an order today.

        A stored customer without live events, asked for a list kind ranked at fit
        (``candidates`` none or the products in stock, ``exclude`` none or the history
        itself, ``n`` up to ``stored``), is
        answered from that ranking: the same lists, read instead of computed."""
        self._check_fitted()
        excludes_history = exclude is not None and _same_cells(exclude, history)
        history, users, exclude, allowed = self._check_inputs(history, n, users, exclude,
                                                              candidates)
        batch = history.shape[0]
        users = np.full(batch, -1, np.int32) if users is None else users
        ids = np.full((batch, n), -1, np.int32)
        scores = np.full((batch, n), -np.inf, np.float32)
        kinds = np.full((batch, n), int(Reason.NONE), np.int32)
        anchors = np.full((batch, n), -1, np.int32)
        asked = np.ones(self.n_items_, bool) if allowed is None else allowed
        kind = self._stored_kind(n, exclude is None, excludes_history,
                                 np.array_equal(asked, self.available_), own_only)
        read = self._unchanged(history, users) if kind else np.zeros(batch, bool)
        if read.any():
            stored = self.lists_[kind]
            u = users[read]
            ids[read], scores[read] = stored["ids"][u, :n], stored["scores"][u, :n]
            kinds[read], anchors[read] = stored["kinds"][u, :n], stored["anchors"][u, :n]
        rest = np.flatnonzero(~read)
        if len(rest):
            every = len(rest) == batch
            [(ranked, kinds[rest], anchors[rest])] = self._rank(
                history if every else history[rest], n, users[rest], asked,
                [None if exclude is None else exclude if every else exclude[rest]], own_only)
            ids[rest], scores[rest] = ranked.ids, ranked.scores
        return Ranked(ids, scores), kinds, anchors

    def _stored_kind(self, n: int, no_exclusion: bool, excludes_history: bool,
                     in_stock: bool, own_only: bool) -> str | None:
        """The stored list that answers this question (``in_stock``: the allowed products
        are those in stock), None if none does."""
        if n > self.stored or not in_stock:
            return None
        if own_only:
            return "own" if no_exclusion else None
        return "all" if no_exclusion else "new" if excludes_history else None

    def _rank(self, history: sparse.csr_matrix, n: int, users: np.ndarray,
              allowed: np.ndarray, excludes: Sequence[sparse.csr_matrix | None],
              own_only: bool) -> list[tuple[Ranked, np.ndarray, np.ndarray]]:
        """Candidates, features and the boosters for every row, once per entry of
        ``excludes`` (``recommend_with_reasons`` without its stored lists)."""
        own = self._live(history, users)
        return [self._best(own, n, *pairs) for pairs in
                self._all_pairs(self.snapshot_, own, allowed, excludes, own_only)]

    def _best(self, own: Personal, n: int, rows: np.ndarray, cols: np.ndarray, x: np.ndarray
              ) -> tuple[Ranked, np.ndarray, np.ndarray]:
        """The top ``n`` of each row's candidates by the boosters, with reasons."""
        batch = len(own.orders)
        ids = np.full((batch, n), -1, np.int32)
        scores = np.full((batch, n), -np.inf, np.float32)
        at = np.full((batch, n), -1, np.int64)  # row of X behind each pick
        if len(rows):
            # a row without any own product among its candidates (a "discover" list) is
            # ranked by the model learnt on never-bought products
            mixed = np.zeros(batch, bool)
            mixed[rows[x[:, FEATURES.index("count")] > 0]] = True
            mine = mixed[rows]
            predicted = np.empty(len(rows), np.float32)
            for booster, part in ((self.booster_, mine), (self.discover_booster_, ~mine)):
                if part.any():
                    predicted[part] = booster.predict(x[part], num_threads=1)
            starts = np.searchsorted(rows, np.arange(batch + 1))
            for r in np.flatnonzero(np.diff(starts)):  # each row's few hundred candidates
                lo, hi = starts[r], starts[r + 1]
                best = lo + np.lexsort((cols[lo:hi], -predicted[lo:hi]))[:n]
                ids[r, :len(best)], scores[r, :len(best)] = cols[best], predicted[best]
                at[r, :len(best)] = best
        kinds, anchors = self._reasons(own, ids, x, at)
        return Ranked(ids, scores), kinds, anchors

    def _store_lists(self) -> None:
        """Rank every stored customer once per list kind among the products in stock:
        ``all`` (nothing excluded), ``new`` (their purchases excluded) and ``own`` (only their
        purchases)."""
        every = self.available_

        def block(start: int) -> list[tuple[Ranked, np.ndarray, np.ndarray]]:
            users = np.arange(start, min(start + STORE_BLOCK, self.n_users_), dtype=np.int32)
            seen = self.seen_[users]
            return self._rank(seen, self.stored, users, every, [None, seen], False) + \
                self._rank(seen, self.stored, users, every, [None], True)

        with ThreadPoolExecutor(self.workers) as pool:
            parts = list(pool.map(block, range(0, self.n_users_, STORE_BLOCK)))
        self.lists_ = {kind: {
            "ids": np.concatenate([p[k][0].ids for p in parts]),
            "scores": np.concatenate([p[k][0].scores for p in parts]),
            "kinds": np.concatenate([p[k][1] for p in parts]).astype(np.int8),
            "anchors": np.concatenate([p[k][2] for p in parts])}
            for k, kind in enumerate(LIST_KINDS)}

    def _unchanged(self, history: sparse.csr_matrix, users: np.ndarray) -> np.ndarray:
        """Rows of stored customers whose history is exactly what the model was fitted on."""
        seen = self.seen_
        u = np.maximum(users, 0)
        lengths = np.diff(history.indptr)
        same = (users >= 0) & (lengths == seen.indptr[u + 1] - seen.indptr[u])
        rows = np.flatnonzero(same & (lengths > 0))
        if len(rows):
            mine, theirs = row_cells(history.indptr, rows)[0], row_cells(seen.indptr, u[rows])[0]
            differs = (history.indices[mine] != seen.indices[theirs]) | \
                (history.data[mine] != seen.data[theirs])
            same[np.repeat(rows, lengths[rows])[differs]] = False
        return same

    def _reasons(self, own: Personal, ids: np.ndarray, x: np.ndarray, at: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        """What ranked each pick, read from its features (see ``recommend_with_reasons``)."""
        kinds = np.full(ids.shape, int(Reason.NONE), np.int32)
        anchors = np.full(ids.shape, -1, np.int32)
        picked = ids >= 0
        if not picked.any():
            return kinds, anchors
        f = {name: x[at[picked], j] for j, name in enumerate(FEATURES)}
        ranks = np.column_stack([np.nan_to_num(f[c], nan=np.inf) for c in
                                 ("cooc_rank", "ease_rank", "knn_rank", "pop_rank",
                                  "category_rank", "twin_rank")])
        best = np.argmin(ranks, axis=1)
        shared = f["category_share"] > 0
        new = ~(f["item_age"] >= NEW_DAYS)  # nan (never sold) counts as new
        kind = np.select(
            [f["count"] > 0, best == 5, new & shared, best == 0, best <= 2, shared],
            [np.where(f["interval"] >= 1, Reason.REPEATS_EVERY, Reason.BOUGHT_BEFORE),
             Reason.NEW_IN_CATEGORY_YOU_BUY, Reason.NEW_IN_CATEGORY_YOU_BUY, Reason.BOUGHT_TOGETHER,
             Reason.BECAUSE_YOU_BOUGHT, Reason.POPULAR_IN_CATEGORY],
            np.where(f["trend"] > 1.5, Reason.TRENDING, Reason.POPULAR))
        anchor = np.where(kind == Reason.REPEATS_EVERY, np.round(np.nan_to_num(f["interval"])),
                          -1).astype(np.int32)
        kinds[picked], anchors[picked] = kind, anchor
        twin = np.zeros(ids.shape, bool)
        twin[picked] = best == 5
        if twin.any():  # the own product with the same text: one per new product (_twins)
            anchors[twin] = self.snapshot_.twins_t[ids[twin]].indices
        together = np.isin(kinds, (Reason.BOUGHT_TOGETHER, Reason.BECAUSE_YOU_BOUGHT))
        if together.any():
            found = because_you_bought(self.snapshot_.cooc, own.count,
                                       np.where(together, ids, -1))
            anchors[together] = found[together]
            kinds[together & (found < 0)] = Reason.PERSONALIZED
        return kinds, anchors

    def _live(self, history: sparse.csr_matrix, users: np.ndarray) -> Personal:
        """Stored history of known rows; cells of ``history`` beyond it (events since the
        bundle, or a customer it never saw) count as one more order today.

        Built from the cells' arrays, not scipy arithmetic: ``Personal``'s fields share one
        pattern, and a request's few rows would pay scipy's per-object cost dozens of times."""
        own, seen = self.snapshot_.own, self.seen_
        batch, n = history.shape
        known = users >= 0
        stored = np.where(known, users, -1)  # row -1: nothing stored

        def stored_cells(matrix: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
            """Where the stored rows' cells sit in ``matrix``, and their keys in the batch."""
            cells, lengths = row_cells(matrix.indptr, stored)
            rows = np.repeat(np.arange(batch, dtype=np.int64), lengths)
            return cells, rows * n + matrix.indices[cells]

        cells, keys = stored_cells(own.count)
        seen_cells, seen_keys = stored_cells(seen)
        history_keys = _cell_keys(history)
        before = _at_keys(seen_keys, seen.data[seen_cells], history_keys, 0.0)
        fresh = history_keys[history.data - before >= 1e-6]
        if not len(fresh) and known.all():  # stored customers, no live events
            return own.rows(users)
        every = np.union1d(keys, fresh)
        is_new = np.zeros(len(every), bool)
        is_new[np.searchsorted(every, fresh)] = True
        at = np.searchsorted(every, keys)
        row = every // n
        today = np.zeros(batch, bool)
        today[row[is_new]] = True
        today_cell = today[row]

        def stored_values(name: str) -> np.ndarray:
            out = np.zeros(len(every), np.float32)
            out[at] = getattr(own, name).data[cells]
            return out

        since, first = stored_values("since"), stored_values("first")
        indptr = np.searchsorted(row, np.arange(batch + 1))
        indices = (every % n).astype(np.int32)

        def cells_of(values: np.ndarray) -> sparse.csr_matrix:
            return sparse.csr_matrix((values.astype(np.float32), indices, indptr),
                                     shape=(batch, n))

        span = np.where(known, own.span[np.maximum(users, 0)], np.nan)
        return Personal(
            cells_of(stored_values("count") + is_new),
            cells_of(np.where(is_new, 1, stored_values("last"))),
            cells_of(np.where(first == 0, 1, first)),  # 0: not stored, so new
            cells_of(stored_values("decayed") + is_new),
            cells_of(stored_values("recent") + is_new),
            cells_of(stored_values("by_orders") * np.where(today_cell, np.float32(ORDER_DECAY),
                                                           np.float32(1)) + is_new),
            cells_of(np.where(is_new, 1, since + (today_cell & (since > 0)))),
            np.where(known, own.orders[np.maximum(users, 0)], 0) + today,
            np.where(today, 0.0, np.where(known, own.recency[np.maximum(users, 0)], np.nan)),
            np.where(today & np.isnan(span), 0.0, span), users)

    # -- persistence ------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        text = self.booster_.model_to_string().encode()
        discover = self.discover_booster_.model_to_string().encode()
        return {"n_items_": np.asarray(self.n_items_), "n_users_": np.asarray(self.n_users_),
                "price_": self.price_, "category_": self.category_,
                "available_": self.available_,
                "text_group_": self.text_group_,
                "trees_used_": np.asarray(self.trees_used_),
                "booster": np.frombuffer(text, np.uint8),
                "booster_sha256": np.asarray(hashlib.sha256(text).hexdigest()),
                "discover_booster": np.frombuffer(discover, np.uint8),
                "discover_booster_sha256": np.asarray(hashlib.sha256(discover).hexdigest()),
                **self.snapshot_.arrays("snapshot."),
                **{f"lists.{kind}.{part}": values for kind, parts in self.lists_.items()
                   for part, values in parts.items()},
                **{f"seen.{p}": getattr(self.seen_, p) for p in ("data", "indices", "indptr")}}

    @classmethod
    def from_state(cls, params: Mapping[str, Any], state: Mapping[str, np.ndarray]) -> Self:
        wanted = {"booster", "discover_booster", "n_items_", "seen.data", "lists.own.ids",
                  *(f"snapshot.{name}" for names in Snapshot.stored_fields() for name in names)}
        missing = {k for k in wanted if k not in state and f"{k}.shape" not in state}
        if missing:
            raise ValueError(f"ranker state lacks {sorted(missing)}: a bundle of another "
                             "version of the ranker; train it again.")
        model = cls(**params)
        model.booster_ = _booster(state, "booster")
        model.discover_booster_ = _booster(state, "discover_booster")
        for booster in (model.booster_, model.discover_booster_):
            if booster.feature_name() != list(FEATURES):
                raise ValueError("the ranker's boosters were learnt on other features than "
                                 "this version computes: train it again.")
        model.n_items_ = int(state["n_items_"])
        model.n_users_ = int(state["n_users_"])
        model.price_ = np.asarray(state["price_"])
        # bundles from before availability ranked their lists among every product
        model.available_ = np.asarray(state["available_"]) if "available_" in state \
            else np.ones(model.n_items_, bool)
        model.category_ = np.asarray(state["category_"])
        model.text_group_ = np.asarray(state["text_group_"])
        model.trees_used_ = int(state["trees_used_"])
        model.snapshot_ = Snapshot.from_arrays(state, "snapshot.")
        model.seen_ = sparse.csr_matrix((state["seen.data"], state["seen.indices"],
                                         state["seen.indptr"]),
                                        shape=(model.n_users_, model.n_items_))
        model.lists_ = {kind: {part: np.asarray(state[f"lists.{kind}.{part}"])
                               for part in ("ids", "scores", "kinds", "anchors")}
                        for kind in LIST_KINDS}
        return model

    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            from recsys.errors import NotFittedError

            raise NotFittedError("LearnedRanker is not fitted; call fit() first.")


def _top_per_row(scores: sparse.csr_matrix, k: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``k`` best stored cells of each row: ``(rows, cols, rank)``, rank from 1 (ties by
    column)."""
    rows, at = _best_cells(scores, k)
    rank = np.arange(1, len(at) + 1) - np.searchsorted(rows, rows)  # rows come in runs
    return rows, scores.indices[at].astype(np.int64), rank.astype(np.float32)


def _best_cells(scores: sparse.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` best stored cells, row by row, best first (ties by column): their
    rows and their positions in ``scores.data``."""
    rows, out = [], []
    for r in np.flatnonzero(np.diff(scores.indptr)):
        lo, hi = scores.indptr[r], scores.indptr[r + 1]
        at = np.arange(lo, hi)
        if hi - lo > k:  # a partition first: rows hold thousands of cells
            at = lo + np.argpartition(-scores.data[lo:hi], k - 1)[:k]
        out.append(at[np.lexsort((scores.indices[at], -scores.data[at]))])
        rows.append(np.full(len(at), r, np.int64))
    if not out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(rows), np.concatenate(out)


def _rank_at(source: tuple[np.ndarray, np.ndarray, np.ndarray], rows: np.ndarray,
             cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Each pair's rank in ``source`` (``_top_per_row`` output: one cell per pair), nan where
    it is absent."""
    r, c, rank = source
    keys = r.astype(np.int64) * shape[1] + c
    order = np.argsort(keys)
    return _at_keys(keys[order], rank[order], rows.astype(np.int64) * shape[1] + cols, np.nan)


def _same_cells(a: sparse.spmatrix, b: sparse.spmatrix) -> bool:
    """Whether two CSR matrices store the same cells (values aside)."""
    return a is b or (a.format == "csr" and b.format == "csr" and a.shape == b.shape
                      and np.array_equal(a.indptr, b.indptr)
                      and np.array_equal(a.indices, b.indices))


def _booster(state: Mapping[str, np.ndarray], key: str) -> lgb.Booster:
    """A LightGBM model from its text in the state, checked against its sha256."""
    text = np.asarray(state[key], np.uint8).tobytes()
    if hashlib.sha256(text).hexdigest() != str(state[f"{key}_sha256"]):
        raise ValueError(f"the ranker's {key} does not match its checksum (corrupt bundle).")
    return lgb.Booster(model_str=text.decode())


def _with_positives(rows: np.ndarray, x: np.ndarray, y: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Only the customers with at least one bought candidate (others teach LambdaRank
    nothing)."""
    hit = np.zeros(int(rows.max()) + 1 if len(rows) else 0, bool)
    hit[rows[y > 0]] = True
    keep = hit[rows]
    return rows[keep], x[keep], y[keep]


def _sampled(rows: np.ndarray, x: np.ndarray, y: np.ndarray, negatives: int,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every positive and at most ``negatives`` random other candidates per customer: the
    learning cost follows the rows, and most candidates are easy negatives."""
    if not len(rows):
        return rows, x, y
    order = np.lexsort((rng.random(len(rows)), y > 0, rows))  # per row: negatives, shuffled
    rows, x, y = rows[order], x[order], y[order]
    starts = np.searchsorted(rows, rows, side="left")
    keep = (y > 0) | (np.arange(len(rows)) - starts < negatives)
    return rows[keep], x[keep], y[keep]


def _dataset(sets: list[PairSet]) -> lgb.Dataset:
    x = np.concatenate([s[1] for s in sets])
    y = np.concatenate([s[2] for s in sets])
    groups = np.concatenate([np.bincount(s[0])[np.bincount(s[0]) > 0] for s in sets])
    return lgb.Dataset(x, y, group=groups, feature_name=list(FEATURES), free_raw_data=True)


__all__ = ["LearnedRanker", "Snapshot", "FEATURES"]
