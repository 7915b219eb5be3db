"""``evaluate(model, data, k) -> Report``: one model on one temporal split, all metrics and slices.

How the split becomes matrices (``prepare``):

- rows of the training matrix are the customers seen before the cut; its columns are the
  products sold before the cut **followed by the products first sold in the test period**
  (zero columns in training). CF models cannot score those new columns; content and hybrid
  models can, through ``ItemFeatures``. Including them assumes the retailer knows which new
  products are on the shelf during the test period, which it does.
- every test customer is scored: known customers with their training row as history and
  ``users`` set, customers new in the test period (cold) with an empty history and
  ``users = -1`` (fold-in from nothing: models fall back or return padding).
- relevance is binary: the products a customer bought in the test period.

Slices share one top-n list per customer and differ only in which purchases count as relevant
(a customer without a relevant purchase in a slice is left out of that slice's averages):
``returning`` (all purchases of customers seen before the cut: **the headline**), ``repeat``
(products the customer also bought before the cut), ``new`` (products new to the customer),
``cold_customers`` (all purchases of customers new in the test period: the new customers'
own slice, never mixed into the headline) and ``cold_products`` (purchases of products first
sold in the test period).

Two more lists per returning customer match the other uses of a list (``PROTOCOLS``):

- ``discover``: ranked with the customer's purchased products excluded; relevant are the
  test purchases of products the customer never bought before the cut;
- ``new_arrivals``: only products first sold in the test period are candidates
  (``recommend(..., candidates=cold_items)``); relevant are the purchases of those products,
  scored by recall at ``cold_k``. ``new_arrival_references`` scores lists that use no test
  purchase: the new products in random order, newest first and oldest first (see
  ``launch_order``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from recsys.data.baskets import Baskets, build_baskets
from recsys.data.dataset import IdMap, Interactions, Weighting, build_interactions
from recsys.data.features import ItemFeatures, item_features
from recsys.data.split import TemporalSplit
from recsys.evaluation import metrics
from recsys.models.base import Recommender

log = logging.getLogger(__name__)

SLICES = ("returning", "repeat", "new", "cold_customers", "cold_products")
PROTOCOLS = ("discover", "new_arrivals")


@dataclass
class EvalData:
    """A temporal split turned into matrices once, so that many models share it.

    Attributes
    ----------
    train : Interactions
        Training customers x products (train products, then cold products as zero columns).
    items : ItemFeatures or None
        Product side information aligned with ``train.products`` (features as of the cut).
    test_customers : IdMap
        Customers who bought in the test period; row ``r`` of the arrays below.
    users : ndarray of int32, shape (n_test,)
        Training row of each test customer, -1 for cold customers.
    history : csr_matrix, shape (n_test, n_items)
        Training row of each test customer (empty for cold ones).
    relevant : csr_matrix, shape (n_test, n_items)
        1 where the customer bought the product in the test period.
    cold_items : ndarray of int32
        Item indices of the products first sold in the test period.
    item_users : ndarray of float64, shape (n_items,)
        Number of training customers who bought each product (novelty, popularity bias).
    item_vectors : ndarray or sparse matrix, shape (n_items, d), or None
        Vectors for intra-list diversity (default: one-hot of the category path, or word
        TF-IDF of the product text when the catalog has no categories).
    baskets : Baskets or None
        The training customers' orders before the cut (same maps as ``train``), for
        time-aware models.
    newest_first : ndarray of int32
        ``cold_items`` newest first by ``launch_order`` (the newest-first reference).
    """

    split: TemporalSplit
    train: Interactions
    items: ItemFeatures | None
    test_customers: IdMap
    users: np.ndarray
    history: sparse.csr_matrix
    relevant: sparse.csr_matrix
    cold_items: np.ndarray
    item_users: np.ndarray
    item_vectors: np.ndarray | sparse.spmatrix | None = None
    baskets: Baskets | None = None
    newest_first: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))


@dataclass
class Report:
    """Metrics of one model on one split.

    ``metrics`` holds the overall ranking metrics at ``k`` plus ``coverage@k``, ``novelty@k``,
    ``diversity@k``, ``popularity@k`` (mean popularity percentile) and ``users``; ``slices``
    maps each of ``SLICES`` to its ranking metrics (``cold_products`` also has
    ``recall@cold_k``). Times are wall-clock seconds.
    """

    model: str
    k: int
    metrics: dict[str, float]
    slices: dict[str, dict[str, float]]
    fit_seconds: float
    recommend_seconds: float
    popularity_curve: metrics.PopularityCurve
    params: dict[str, Any] = field(default_factory=dict)

    def flat(self) -> dict[str, float]:
        """One flat dict: overall metrics, ``<slice>/<metric>``, ``fit_s`` and ``recommend_s``."""
        out = dict(self.metrics)
        for name, values in self.slices.items():
            out.update({f"{name}/{key}": value for key, value in values.items()})
        out["fit_s"] = self.fit_seconds
        out["recommend_s"] = self.recommend_seconds
        return out


def _diversity_vectors(items: ItemFeatures | None) -> sparse.csr_matrix | None:
    """One-hot category path per item; word TF-IDF of the text when no item has a category.

    Items with neither get an all-zero row (left out of diversity).
    """
    if items is None:
        return None
    paths = np.asarray([c if isinstance(c, str) else "" for c in items.category], dtype=str)
    known = paths != ""
    if known.any():
        names, codes = np.unique(paths, return_inverse=True)
        rows = np.nonzero(known)[0]
        return sparse.csr_matrix((np.ones(len(rows)), (rows, codes[known])),
                                 shape=(len(paths), len(names)))
    if any(t.strip() for t in items.text):
        from sklearn.feature_extraction.text import TfidfVectorizer

        return sparse.csr_matrix(TfidfVectorizer(token_pattern=r"(?u)\b\w+\b")
                                 .fit_transform(items.text))
    return None


def prepare(split: TemporalSplit, *, products: pd.DataFrame | None = None,
            weighting: Weighting = "log", half_life_days: float | None = None,
            item_vectors: np.ndarray | sparse.spmatrix | None = None,
            max_test_customers: int | None = None, random_state: int = 0) -> EvalData:
    """Build the training matrix, test relevance and item features of a split.

    Parameters
    ----------
    split : TemporalSplit
        From ``recsys.data.split.temporal_split``.
    products : DataFrame, optional
        Canonical products; when given, ``ItemFeatures`` are built (as of the cut) for models
        that use them and category one-hots for diversity.
    weighting, half_life_days
        Passed to ``build_interactions`` for the training matrix.
    item_vectors : array or sparse matrix, shape (n_items, d), optional
        Overrides the default vectors of intra-list diversity (category one-hots, else
        title-word TF-IDF); rows must follow the product order ``train products (sorted),
        then cold products (sorted)``.
    max_test_customers : int, optional
        Score a uniform random sample (seeded by ``random_state``) of this many test
        customers instead of all, to make tuning trials cheaper; training is unaffected.
    """
    train_tx, test_tx = split.train, split.test
    train_products = np.unique(np.asarray(train_tx["product_id"], dtype=str))
    cold = np.unique(np.asarray(split.cold_products, dtype=str))
    product_map = IdMap(np.concatenate([train_products, cold]))
    customer_map = IdMap(np.unique(np.asarray(train_tx["customer_id"], dtype=str)))
    train = build_interactions(train_tx, customers=customer_map, products=product_map,
                               weighting=weighting, half_life_days=half_life_days,
                               as_of=split.cut)
    test = build_interactions(test_tx, products=product_map, weighting="binary")
    if max_test_customers is not None and len(test.customers) > max_test_customers:
        rng = np.random.default_rng(random_state)
        rows = np.sort(rng.choice(len(test.customers), max_test_customers, replace=False))
        test = Interactions(test.matrix[rows], IdMap(test.customers.ids[rows]), test.products)
    users = customer_map.to_index(test.customers.ids, missing="mark")
    warm = users >= 0
    pick = sparse.csr_matrix((np.ones(warm.sum()), (np.nonzero(warm)[0], users[warm])),
                             shape=(len(users), len(customer_map)))
    history = sparse.csr_matrix(pick @ train.matrix, dtype=np.float32)
    items = None
    if products is not None:
        items = item_features(products, train_tx, product_map, as_of=split.cut)
    if item_vectors is None:
        item_vectors = _diversity_vectors(items)
    elif item_vectors.shape[0] != len(product_map):
        raise ValueError(f"item_vectors has {item_vectors.shape[0]} rows; the split's catalog "
                         f"has {len(product_map)} products.")
    item_users = np.bincount(train.matrix.indices, minlength=len(product_map)).astype(float)
    baskets = build_baskets(train_tx, customer_map, product_map, as_of=split.cut)
    cold_items = np.arange(len(train_products), len(product_map), dtype=np.int32)
    newest = cold_items[np.argsort(-launch_order(cold, products), kind="stable")]
    log.info("prepared split at %s: %d x %d train, %d test customers (%d cold), %d cold items",
             split.cut, *train.shape, len(users), (~warm).sum(), len(cold))
    return EvalData(split, train, items, test.customers, users, history, test.matrix,
                    cold_items, item_users, item_vectors, baskets, newest.astype(np.int32))


def launch_order(product_ids: np.ndarray, products: pd.DataFrame | None) -> np.ndarray:
    """A key per product, larger = launched later, known without any test purchase.

    A new product's first sale lies in the test period, so it cannot date the launch. The
    key is the product table's ``first_seen`` column when it has one (a catalog date);
    otherwise the natural order of the product id (its leading number, then the text),
    which assumes the retailer numbers products in launch order. That assumption is weak on
    the benchmark data (see docs/benchmarks/quality.md for its correlation with the first
    sale), so read the newest-first reference as what a retailer without launch dates gets.
    """
    ids = pd.Series(np.asarray(product_ids, dtype=str))
    if products is not None and "first_seen" in products:
        dates = products.drop_duplicates("product_id").set_index("product_id")["first_seen"]
        stamp = pd.to_datetime(ids.map(dates))
        return stamp.to_numpy("datetime64[ns]").astype(np.int64).astype(np.float64)
    lead = pd.to_numeric(ids.str.extract(r"^(\d+)")[0], errors="coerce").fillna(-1.0)
    order = pd.DataFrame({"number": lead, "text": ids}).sort_values(["number", "text"]).index
    key = np.empty(len(ids), np.float64)
    key[order.to_numpy()] = np.arange(len(ids))
    return key


def _slices(data: EvalData) -> dict[str, sparse.csr_matrix]:
    """Relevance matrices of each slice (same shape as ``data.relevant``)."""
    rel = data.relevant
    seen = (data.history > 0).astype(np.float32)
    repeat = rel.multiply(seen).tocsr()
    cold_rows = sparse.diags((data.users < 0).astype(np.float32))
    cold_cols = np.zeros(rel.shape[1], np.float32)
    cold_cols[data.cold_items] = 1.0
    out = {"returning": (sparse.diags((data.users >= 0).astype(np.float32)) @ rel).tocsr(),
           "repeat": repeat, "new": (rel - repeat).tocsr(),
           "cold_customers": (cold_rows @ rel).tocsr(),
           "cold_products": (rel @ sparse.diags(cold_cols)).tocsr()}
    for m in out.values():
        m.eliminate_zeros()
    return out


def evaluate(model: Recommender, data: EvalData | TemporalSplit, k: int = 10, *,
             cold_k: int = 20, exclude_seen: bool = False, name: str | None = None,
             products: pd.DataFrame | None = None, fit: bool = True,
             protocols: bool = True) -> Report:
    """Fit ``model`` on the training period and score its top-k lists on the test period.

    Parameters
    ----------
    model : Recommender
        An unfitted (or re-fittable) model; it is fitted here and the fit is timed.
    data : EvalData or TemporalSplit
        A prepared split (``prepare``), or a split to prepare with ``products``.
    k : int
        Cut-off of every metric.
    cold_k : int
        Extra cut-off of the recall on cold products (``recall@cold_k`` in that slice).
    exclude_seen : bool
        Exclude each customer's training purchases from the lists (a "discover" list). By
        default they may be recommended: in grocery most of a basket is repeats.
    name : str, optional
        Row label; default ``model.name``.
    products : DataFrame, optional
        Only used when ``data`` is a TemporalSplit.
    fit : bool
        False: ``model`` is already fitted on ``data.train`` (e.g. only parameters read at
        scoring time changed) and is only scored; ``fit_seconds`` is then 0.
    protocols : bool
        Also rank the ``discover`` and ``new_arrivals`` lists (``PROTOCOLS``, module
        docstring) and report them as slices; False saves their ranking time (tuning).

    Returns
    -------
    Report
    """
    if isinstance(data, TemporalSplit):
        data = prepare(data, products=products)
    start = time.perf_counter()
    if fit:
        model.fit(data.train.matrix, items=data.items, baskets=data.baskets)
    fit_s = time.perf_counter() - start if fit else 0.0
    start = time.perf_counter()
    ranked = model.recommend(data.history, max(k, cold_k), users=data.users,
                             exclude=data.history if exclude_seen else None)
    rec_s = time.perf_counter() - start
    ids = ranked.ids
    n_items = data.train.shape[1]
    overall = metrics.ranking_metrics(ids, data.relevant, k)
    overall[f"coverage@{k}"] = metrics.catalog_coverage(ids, n_items, k)
    overall[f"novelty@{k}"] = metrics.novelty(ids, data.item_users, data.train.shape[0], k)
    overall[f"diversity@{k}"] = (float("nan") if data.item_vectors is None
                                 else metrics.intra_list_diversity(ids, data.item_vectors, k))
    overall[f"popularity@{k}"], curve = metrics.popularity_bias(ids, data.item_users, k)
    relevance = _slices(data)
    slices = {key: metrics.ranking_metrics(ids, rel, k) for key, rel in relevance.items()}
    slices["cold_products"][f"recall@{cold_k}"] = metrics.recall_at_k(
        ids, relevance["cold_products"], cold_k)
    if protocols:
        slices.update(_protocols(model, data, relevance, k, cold_k))
    params = model.get_params() if hasattr(model, "get_params") else {}
    label = name or getattr(model, "name", type(model).__name__)
    log.info("%s: ndcg@%d=%.4f fit %.1fs recommend %.1fs", label, k,
             overall[f"ndcg@{k}"], fit_s, rec_s)
    return Report(label, k, overall, slices, fit_s, rec_s, curve, params)


def _protocols(model: Recommender, data: EvalData, relevance: dict[str, sparse.csr_matrix],
               k: int, cold_k: int) -> dict[str, dict[str, float]]:
    """The ``discover`` and ``new_arrivals`` lists of the returning customers with a relevant
    purchase (the others do not count in the averages, so they are not ranked)."""
    returning = data.users >= 0
    out = {}
    never_bought = relevance["new"]
    rows = np.flatnonzero(returning & (np.diff(never_bought.indptr) > 0))
    ranked = model.recommend(data.history[rows], k, users=data.users[rows],
                             exclude=data.history[rows])
    out["discover"] = metrics.ranking_metrics(ranked.ids, never_bought[rows], k)
    new_bought = relevance["cold_products"]
    rows = np.flatnonzero(returning & (np.diff(new_bought.indptr) > 0))
    if len(data.cold_items) and len(rows):
        ranked = model.recommend(data.history[rows], cold_k, users=data.users[rows],
                                 candidates=data.cold_items)
        out["new_arrivals"] = metrics.ranking_metrics(ranked.ids, new_bought[rows], cold_k)
    return out


def new_arrival_references(data: EvalData, cold_k: int = 20, seed: int = 0
                           ) -> dict[str, dict[str, float]]:
    """``new_arrivals`` metrics at ``cold_k`` of lists that use no test purchase: each
    customer's own random order of the new products (seeded), and the same order for
    everyone by ``EvalData.newest_first``, newest first and oldest first (a model that
    scores every new product alike returns the product order, which without launch dates is
    the oldest-first list). Same rows as ``evaluate``'s."""
    new_bought = _slices(data)["cold_products"]
    rows = np.flatnonzero((data.users >= 0) & (np.diff(new_bought.indptr) > 0))
    cold = data.cold_items
    if not len(cold) or not len(rows):
        return {}
    n = min(cold_k, len(cold))
    keys = np.random.default_rng(seed).random((len(rows), len(cold)))
    shuffled = cold[np.argsort(keys, axis=1)[:, :n]]
    newest = np.tile(data.newest_first[:n], (len(rows), 1))
    oldest = np.tile(data.newest_first[::-1][:n], (len(rows), 1))
    return {name: metrics.ranking_metrics(ids, new_bought[rows], cold_k)
            for name, ids in (("random", shuffled), ("newest_first", newest),
                              ("oldest_first", oldest))}


__all__ = ["SLICES", "PROTOCOLS", "EvalData", "Report", "prepare", "evaluate", "launch_order",
           "new_arrival_references"]
