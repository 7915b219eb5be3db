"""Top-k metrics over padded id arrays, vectorised with numpy.

Inputs everywhere:

- ``ids``: ``(batch, n)`` int item indices best first, padded with -1 (``Ranked.ids``). Only the
  first ``k`` columns count; when ``n < k`` the missing columns count as padding. A -1 slot is
  an empty slot: it is never relevant and the items after it keep their positions.
- ``relevant``: CSR ``(batch, n_items)``; a non-zero cell means "row ``u`` bought item ``i`` in
  the test period" (gain is binary, weights are ignored).

Accuracy metrics are averaged over the rows with at least one relevant item; rows without
any are excluded (they have no defined recall or NDCG, and counting them as zero would make
the score depend on how many inactive customers the test period has).

Normalisations (binary relevance, ``R = |relevant|``, ``hit_j`` = item at rank ``j`` relevant):

- precision@k = hits / k (empty slots count as misses);
- recall@k = hits / min(k, R), as in Liang et al. (2018, VAE-CF) and Steck (2019, EASE), so a
  perfect list scores 1 even when a customer bought more than ``k`` items; it equals the
  textbook hits / R whenever R <= k;
- NDCG@k = sum_j hit_j / log2(j + 1) over ranks 1..k, divided by the ideal DCG of
  min(k, R) hits at the top;
- MAP@k = mean of AP@k, AP@k = sum_j precision@j * hit_j / min(k, R) (Kaggle's ``apk``);
- hit rate@k = 1 when any of the top k is relevant; MRR@k = 1 / rank of the first hit (0 if none).

Beyond accuracy (catalog coverage, novelty, intra-list diversity, popularity bias) look at the
recommended lists only and use every row that has at least one recommended item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.stats import rankdata

from recsys.data.csr import cell_rows

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")


def _check(ids: np.ndarray, k: int, n_items: int | None = None) -> np.ndarray:
    """The first ``k`` columns of ``ids`` as int64, padded with -1 up to ``k``."""
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"ids must be a 2-D (batch, n) array of item indices, not {ids.ndim}-D.")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"ids must hold integer item indices, not {ids.dtype}.")
    if not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be a positive integer, not {k!r}.")
    top = ids[:, :k].astype(np.int64)
    if top.shape[1] < k:
        top = np.pad(top, ((0, 0), (0, k - top.shape[1])), constant_values=-1)
    if (top < -1).any():
        raise ValueError("ids must be item indices >= 0, padded with -1.")
    if n_items is not None and (top >= n_items).any():
        raise ValueError(f"ids contain item indices >= n_items ({n_items}).")
    srt = np.sort(top, axis=1)
    if ((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)).any():
        raise ValueError("ids repeat an item within a row; each item may be recommended once.")
    return top


def hits(ids: np.ndarray, relevant: sparse.spmatrix, k: int) -> np.ndarray:
    """Boolean ``(batch, k)``: is the item at each of the top ``k`` slots relevant.

    Parameters
    ----------
    ids : ndarray of int, shape (batch, n)
        Ranked item indices padded with -1.
    relevant : sparse matrix, shape (batch, n_items)
        Non-zero cells are relevant items.
    k : int
        Cut-off.
    """
    relevant = sparse.csr_matrix(relevant)
    if relevant.shape[0] != np.shape(ids)[0]:
        raise ValueError(f"relevant has {relevant.shape[0]} rows but ids has {np.shape(ids)[0]};"
                         " pass one relevance row per ranked row.")
    top = _check(ids, k, relevant.shape[1])
    rel = relevant.copy()
    rel.eliminate_zeros()
    n_items = rel.shape[1]
    # Membership test on flat keys row * n_items + item: one sort + searchsorted for the batch.
    rel_rows = cell_rows(rel.indptr).astype(np.int64)
    rel_keys = np.sort(rel_rows * n_items + rel.indices)
    keys = np.arange(top.shape[0], dtype=np.int64)[:, None] * n_items + top
    pos = np.searchsorted(rel_keys, keys).clip(max=max(len(rel_keys) - 1, 0))
    found = rel_keys[pos] == keys if len(rel_keys) else np.zeros(keys.shape, bool)
    return found & (top >= 0)


def per_user(ids: np.ndarray, relevant: sparse.spmatrix, k: int) -> dict[str, np.ndarray]:
    """Every ranking metric for each row; ``nan`` where a row has no relevant item.

    Returns
    -------
    dict of str to ndarray of float64, shape (batch,)
        Keys ``precision, recall, ndcg, map, hit_rate, mrr``.
    """
    h = hits(ids, relevant, k).astype(np.float64)
    n_rel = sparse.csr_matrix(relevant, copy=True)
    n_rel.eliminate_zeros()
    r = np.diff(n_rel.indptr).astype(np.float64)
    denom = np.minimum(r, k)
    ranks = np.arange(1, k + 1, dtype=np.float64)
    discount = 1.0 / np.log2(ranks + 1.0)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[denom.astype(np.int64)]
    n_hits = h.sum(axis=1)
    first = np.where(h.any(axis=1), h.argmax(axis=1) + 1.0, np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = {
            "precision": n_hits / k,
            "recall": n_hits / denom,
            "ndcg": (h @ discount) / ideal,
            "map": ((np.cumsum(h, axis=1) / ranks) * h).sum(axis=1) / denom,
            "hit_rate": (n_hits > 0).astype(np.float64),
            "mrr": 1.0 / first,
        }
    for v in out.values():
        v[r == 0] = np.nan
    return out


def ranking_metrics(ids: np.ndarray, relevant: sparse.spmatrix, k: int) -> dict[str, float]:
    """Mean of each ranking metric over rows with at least one relevant item.

    Returns ``{"precision@k": ..., "recall@k": ..., "ndcg@k": ..., "map@k": ...,
    "hit_rate@k": ..., "mrr@k": ..., "users": n}``; the metrics are ``nan`` when no row has
    a relevant item.
    """
    rows = per_user(ids, relevant, k)
    valid = ~np.isnan(rows["ndcg"])
    out: dict[str, float] = {f"{name}@{k}": float(rows[name][valid].mean()) if valid.any()
                             else float("nan") for name in RANKING_METRICS}
    out["users"] = int(valid.sum())
    return out


def precision_at_k(ids: np.ndarray, relevant: sparse.spmatrix, k: int) -> float:
    """Mean hits / k over rows with a relevant item."""
    return ranking_metrics(ids, relevant, k)[f"precision@{k}"]


def recall_at_k(ids: np.ndarray, relevant: sparse.spmatrix, k: int) -> float:
    """Mean hits / min(k, |relevant|) over rows with a relevant item."""
    return ranking_metrics(ids, relevant, k)[f"recall@{k}"]


def ndcg_at_k(ids: np.ndarray, relevant: sparse.spmatrix, k: int) -> float:
    """Mean binary-gain NDCG@k (ideal DCG over min(k, |relevant|) hits)."""
    return ranking_metrics(ids, relevant, k)[f"ndcg@{k}"]


def map_at_k(ids: np.ndarray, relevant: sparse.spmatrix, k: int) -> float:
    """Mean average precision at k, AP normalised by min(k, |relevant|)."""
    return ranking_metrics(ids, relevant, k)[f"map@{k}"]


def hit_rate_at_k(ids: np.ndarray, relevant: sparse.spmatrix, k: int) -> float:
    """Share of rows (with a relevant item) that have a hit in the top k."""
    return ranking_metrics(ids, relevant, k)[f"hit_rate@{k}"]


def mrr_at_k(ids: np.ndarray, relevant: sparse.spmatrix, k: int) -> float:
    """Mean reciprocal rank of the first hit in the top k (0 when none)."""
    return ranking_metrics(ids, relevant, k)[f"mrr@{k}"]


# -- beyond accuracy -------------------------------------------------------------------------
def catalog_coverage(ids: np.ndarray, n_items: int, k: int) -> float:
    """Share of the ``n_items`` catalog that appears in at least one top-``k`` list."""
    top = _check(ids, k, n_items)
    return float(len(np.unique(top[top >= 0])) / n_items) if n_items else float("nan")


def _list_mean(top: np.ndarray, per_item: np.ndarray) -> float:
    """Mean over lists (rows with a recommended item) of the mean of ``per_item`` in the list."""
    valid = top >= 0
    counts = valid.sum(axis=1)
    sums = np.where(valid, per_item[np.clip(top, 0, None)], 0.0).sum(axis=1)
    keep = counts > 0
    return float((sums[keep] / counts[keep]).mean()) if keep.any() else float("nan")


def novelty(ids: np.ndarray, item_users: np.ndarray, n_users: int, k: int) -> float:
    """Mean self-information ``-log2 p(i)`` of recommended items (Zhou et al. 2010).

    Parameters
    ----------
    item_users : ndarray, shape (n_items,)
        Number of training customers who bought each item.
    n_users : int
        Number of training customers.

    Notes
    -----
    ``p(i) = (item_users[i] + 1) / (n_users + 1)``: the share of training customers who bought
    the item, smoothed by one so that items never sold in training (new products) get the
    finite maximum ``log2(n_users + 1)``.
    """
    item_users = np.asarray(item_users, dtype=np.float64)
    top = _check(ids, k, len(item_users))
    info = -np.log2((item_users + 1.0) / (n_users + 1.0))
    return _list_mean(top, info)


def intra_list_diversity(ids: np.ndarray, item_vectors: np.ndarray | sparse.spmatrix,
                         k: int) -> float:
    """Mean over lists of ``1 - mean pairwise cosine`` of the recommended items' vectors.

    Parameters
    ----------
    item_vectors : ndarray or sparse matrix, shape (n_items, d)
        Any item representation (e.g. a one-hot category matrix or content embeddings). Items
        with an all-zero vector (nothing known about them) are left out of their list.

    Notes
    -----
    Lists with fewer than two items with a vector are excluded; ``nan`` when no list has
    two. Computed without forming the ``k x k`` matrices: with unit vectors ``u``, the sum of
    pairwise cosines over ordered pairs ``i != j`` is ``|sum u|^2 - sum |u|^2``.
    """
    n_items = item_vectors.shape[0]
    top = _check(ids, k, n_items)
    if sparse.issparse(item_vectors):
        vec = sparse.csr_matrix(item_vectors, dtype=np.float64)
        norms = np.sqrt(np.asarray(vec.multiply(vec).sum(axis=1)).ravel())
        unit: np.ndarray | sparse.spmatrix = sparse.diags(
            np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ vec
    else:
        vec = np.asarray(item_vectors, dtype=np.float64)
        norms = np.linalg.norm(vec, axis=1)
        unit = vec / np.where(norms > 0, norms, 1.0)[:, None]
    valid = top >= 0
    rows = np.nonzero(valid)[0]
    pick = sparse.csr_matrix((np.ones(len(rows)), (rows, top[valid])), shape=(len(top), n_items))
    summed = pick @ unit
    sq = (np.asarray(summed.multiply(summed).sum(axis=1)).ravel() if sparse.issparse(summed)
          else (summed**2).sum(axis=1))
    m = pick @ (norms > 0).astype(np.float64)  # items with a vector in each list
    keep = m >= 2
    if not keep.any():
        return float("nan")
    mean_cos = (sq[keep] - m[keep]) / (m[keep] * (m[keep] - 1.0))
    return float((1.0 - mean_cos).mean())


def popularity_percentile(item_users: np.ndarray) -> np.ndarray:
    """Mid-rank percentile in [0, 1] of each item's training popularity within the catalog.

    ``pct[i]`` = share of items less popular than ``i`` plus half the share of its ties.
    """
    pop = np.asarray(item_users, dtype=np.float64)
    return (rankdata(pop, method="average") - 0.5) / len(pop) if len(pop) else pop


@dataclass
class PopularityCurve:
    """Share of recommendations vs share of training purchases per popularity bin.

    Items are binned by training popularity percentile into ``bins`` equal-width bins (bin 0:
    the long tail, last bin: the head). A model without popularity bias puts each bin's
    ``recommended`` share close to its ``train`` share.
    """

    edges: np.ndarray  # (bins + 1,) percentile edges in [0, 1]
    recommended: np.ndarray  # (bins,) share of recommended slots
    train: np.ndarray  # (bins,) share of training (customer, item) purchases


def popularity_bias(ids: np.ndarray, item_users: np.ndarray, k: int, *, bins: int = 10
                    ) -> tuple[float, PopularityCurve]:
    """Mean popularity percentile of recommended items, and the data for a long-tail plot.

    Parameters
    ----------
    ids : ndarray of int, shape (batch, n)
        Ranked item indices padded with -1.
    item_users : ndarray, shape (n_items,)
        Number of training customers who bought each item.
    k : int
        Cut-off.
    bins : int
        Number of popularity bins of the curve.

    Returns
    -------
    mean_percentile : float
        Mean over lists of the mean percentile (0.5 = no bias towards popular items).
    curve : PopularityCurve
    """
    item_users = np.asarray(item_users, dtype=np.float64)
    top = _check(ids, k, len(item_users))
    pct = popularity_percentile(item_users)
    edges = np.linspace(0.0, 1.0, bins + 1)
    item_bin = np.clip(np.searchsorted(edges, pct, side="right") - 1, 0, bins - 1)
    rec = np.bincount(item_bin[top[top >= 0]], minlength=bins).astype(np.float64)
    train = np.bincount(item_bin, weights=item_users, minlength=bins)
    curve = PopularityCurve(edges, rec / max(rec.sum(), 1.0), train / max(train.sum(), 1.0))
    return _list_mean(top, pct), curve


__all__ = [
    "RANKING_METRICS", "hits", "per_user", "ranking_metrics", "precision_at_k", "recall_at_k",
    "ndcg_at_k", "map_at_k", "hit_rate_at_k", "mrr_at_k", "catalog_coverage", "novelty",
    "intra_list_diversity", "popularity_percentile", "PopularityCurve", "popularity_bias",
]
