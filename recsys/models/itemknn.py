"""Item-based k-nearest neighbours (Sarwar et al. 2001) with implicit's similarity kernels."""

from __future__ import annotations

from typing import ClassVar, Literal, Self

import numpy as np
from implicit.nearest_neighbours import (
    ItemItemRecommender,
    bm25_weight,
    normalize,
    tfidf_weight,
)
from scipy import sparse

from recsys.data.baskets import Baskets
from recsys.data.features import ItemFeatures
from recsys.models._common import Model, check_interactions, check_items


class ItemKNN(Model):
    """Score items by their similarity to what the customer bought.

    ``score_u = history_u @ S`` where ``S`` keeps each item's ``neighbours`` most similar
    items (its own entry removed, so past purchases score only through their neighbours).

    Parameters
    ----------
    weighting : {"cosine", "bm25", "tfidf"}
        How customer columns are weighted before the item-item dot products: plain cosine,
        BM25 (down-weights heavy buyers; ``bm25_k1``, ``bm25_b``) or TF-IDF.
    neighbours : int
        Neighbours kept per item.
    bm25_k1, bm25_b : float
        BM25 saturation and length normalisation.
    num_threads : int
        Threads for the similarity computation (0: all cores).

    Attributes
    ----------
    sim_data_, sim_indices_, sim_indptr_ : ndarray
        The CSR arrays of ``S`` (float32 / int32 / int32), shape ``(n_items, n_items)``.
    """

    name: ClassVar[str] = "itemknn"
    _state_keys: ClassVar[tuple[str, ...]] = ("n_items_", "sim_data_", "sim_indices_",
                                              "sim_indptr_")

    def __init__(self, *, weighting: Literal["cosine", "bm25", "tfidf"] = "bm25",
                 neighbours: int = 100, bm25_k1: float = 1.2, bm25_b: float = 0.75,
                 num_threads: int = 0) -> None:
        self.weighting = weighting
        self.neighbours = neighbours
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.num_threads = num_threads

    def fit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
            baskets: Baskets | None = None) -> Self:
        """Compute the sparse item-item similarity matrix."""
        matrix = check_interactions(interactions)
        check_items(items, matrix.shape[1])
        if self.neighbours < 1:
            raise ValueError(f"neighbours must be >= 1, not {self.neighbours!r}.")
        knn = ItemItemRecommender(K=self.neighbours + 1, num_threads=self.num_threads)
        knn.fit(self._weigh(matrix), show_progress=False)  # K counts the item itself
        sim = sparse.csr_matrix(knn.similarity, dtype=np.float32)
        sim.setdiag(0.0)
        sim.eliminate_zeros()
        sim.sort_indices()
        self.sim_data_ = sim.data.astype(np.float32)
        self.sim_indices_ = sim.indices.astype(np.int32)
        self.sim_indptr_ = sim.indptr.astype(np.int32)
        self.n_items_ = matrix.shape[1]
        self._restore()
        return self

    def _weigh(self, matrix: sparse.csr_matrix) -> sparse.csr_matrix:
        """Re-weight the customers x items matrix as implicit's recommenders of that name do."""
        if self.weighting == "cosine":
            weighted = normalize(matrix.T).T
        elif self.weighting == "tfidf":
            weighted = normalize(tfidf_weight(matrix.T)).T
        elif self.weighting == "bm25":
            weighted = bm25_weight(matrix.T, self.bm25_k1, self.bm25_b).T
        else:
            raise ValueError("weighting must be 'cosine', 'bm25' or 'tfidf', not "
                             f"{self.weighting!r}.")
        return sparse.csr_matrix(weighted, dtype=np.float64)  # all_pairs_knn wants doubles

    def _restore(self) -> None:
        n = int(self.n_items_)
        self.similarity_ = sparse.csr_matrix(
            (self.sim_data_, self.sim_indices_, self.sim_indptr_), shape=(n, n))

    def _score_users(self, history: sparse.csr_matrix, users: np.ndarray | None) -> np.ndarray:
        scores = (history @ self.similarity_).toarray()
        scores[~self._known_rows(history, users)] = -np.inf
        return scores

    def _item_similarity(self, items: np.ndarray) -> np.ndarray:
        """Rows of ``S``; items outside an item's neighbourhood are never similar."""
        rows = self.similarity_[items].toarray()
        rows[rows == 0] = -np.inf
        return rows


__all__ = ["ItemKNN"]
