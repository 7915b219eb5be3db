"""Content model: character n-gram TF-IDF of product text, reduced by truncated SVD (LSA)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Self

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer

from recsys._typing import IntArray
from recsys.data.baskets import Baskets
from recsys.data.features import ItemFeatures
from recsys.models._common import Model, check_interactions, check_items

_PAIRS_PER_BLOCK = 1 << 24  # query x pool similarities computed at once (64 MB of float32)


class ContentTFIDF(Model):
    """Recommend products whose text resembles what the customer bought.

    Product text (``ItemFeatures.text``: title, brand, category words...) is cut into
    character n-grams within word boundaries (``analyzer="char_wb"``), so it works for any
    language and survives typos and compound words. TF-IDF (sublinear tf, L2 rows) is reduced
    to ``dims`` latent dimensions by truncated SVD; each product gets a unit vector. A
    customer's profile is the weighted sum of the vectors of their history; items score by
    cosine to it. Sales play no part in the similarity, so products never sold are
    recommended and get neighbours like any other; they only break ties: catalogs often hold
    many products with the same text (sizes, flavours), and ``popularity_weight`` adds
    ``w * log1p(buyers) / log1p(max buyers)`` so the best seller among identical texts comes
    first.

    Nothing is pickled: the state holds the n-gram vocabulary (a string array), the idf
    weights and the SVD basis, so ``embed`` computes vectors for products added after
    training without a refit.

    Parameters
    ----------
    ngram_range : tuple of int
        Smallest and largest character n-gram.
    max_features : int
        Vocabulary cap (most frequent n-grams).
    dims : int
        SVD dimensions (capped below the vocabulary size and the catalog size).
    popularity_weight : float
        Weight of the tie-breaking popularity term (0: pure content).
    random_state : int
        Seed of the randomised SVD.

    Attributes
    ----------
    item_vectors_ : ndarray of float32, shape (n_items, dims)
        Unit-length product vectors (zero for products without text).
    vocabulary_ : ndarray of str, shape (n_ngrams,)
    idf_ : ndarray of float32, shape (n_ngrams,)
    components_ : ndarray of float32, shape (dims, n_ngrams)
    item_popularity_ : ndarray of float32, shape (n_items,)
        ``log1p(buyers)`` scaled to [0, 1].
    """

    name: ClassVar[str] = "content"
    _state_keys: ClassVar[tuple[str, ...]] = ("n_items_", "item_vectors_", "vocabulary_",
                                              "idf_", "components_", "item_popularity_")

    def __init__(self, *, ngram_range: tuple[int, int] = (3, 5), max_features: int = 50_000,
                 dims: int = 64, popularity_weight: float = 0.01, random_state: int = 0
                 ) -> None:
        self.ngram_range = ngram_range
        self.max_features = max_features
        self.dims = dims
        self.popularity_weight = popularity_weight
        self.random_state = random_state

    def fit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
            baskets: Baskets | None = None) -> Self:
        """Learn the n-gram vocabulary, idf and SVD basis from ``items.text``.

        Catalogs repeat texts (sizes, flavours: The Complete Journey has ~17k distinct texts
        for ~68k products), so each distinct text is analysed once and weighted by its number
        of products: the vocabulary, idf and SVD basis equal those of the full catalog (the
        SVD of rows repeated ``m`` times is that of the distinct rows scaled by ``sqrt(m)``).
        """
        matrix = check_interactions(interactions)
        items = check_items(items, matrix.shape[1], required=True, who="ContentTFIDF")
        assert items is not None
        codes, distinct = pd.factorize(pd.Series([str(t) if t is not None else ""
                                                  for t in items.text], dtype=object))
        copies = np.bincount(codes, minlength=len(distinct)).astype(np.float32)
        try:
            counter = CountVectorizer(analyzer="char_wb", ngram_range=tuple(self.ngram_range),
                                      dtype=np.float32)
            counts = sparse.csr_matrix(counter.fit_transform(list(distinct)))
        except ValueError as err:  # sklearn: "empty vocabulary"
            raise ValueError("ContentTFIDF found no text to learn from: items.text is empty "
                             "for every product.") from err
        terms = counter.get_feature_names_out()
        total = counts.T @ copies  # corpus frequency of each n-gram, as TfidfVectorizer counts
        keep = np.sort(np.argsort(-total, kind="stable")[: self.max_features])
        counts = counts[:, keep]
        docs = (counts > 0).T.astype(np.float32) @ copies
        self.vocabulary_ = np.asarray(terms[keep], dtype=str)
        self.idf_ = (np.log((1.0 + len(codes)) / (1.0 + docs)) + 1.0).astype(np.float32)
        weighted = self._weigh(counts)
        dims = min(self.dims, weighted.shape[1] - 1, weighted.shape[0])  # rank <= distinct texts
        if dims < 1:
            raise ValueError("ContentTFIDF needs at least two distinct n-grams to build a "
                             "latent space.")
        svd = TruncatedSVD(n_components=dims, random_state=self.random_state)
        svd.fit(sparse.diags(np.sqrt(copies)) @ weighted)
        self.components_ = svd.components_.astype(np.float32)
        self.n_items_ = matrix.shape[1]
        self.item_vectors_ = self._project(weighted)[codes]
        buyers = np.log1p(np.bincount(matrix.indices, minlength=self.n_items_))
        self.item_popularity_ = (buyers / max(buyers.max(), 1e-12)).astype(np.float32)
        return self

    def _tfidf(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """TF-IDF rows of ``texts`` from the stored vocabulary and idf."""
        counts = CountVectorizer(analyzer="char_wb", ngram_range=tuple(self.ngram_range),
                                 vocabulary={t: i for i, t in enumerate(self.vocabulary_)},
                                 dtype=np.float32).transform(list(texts))
        return self._weigh(sparse.csr_matrix(counts))

    def _weigh(self, counts: sparse.csr_matrix) -> sparse.csr_matrix:
        """Sublinear tf times idf, rows scaled to unit length (TfidfVectorizer's maths)."""
        counts = counts.copy()
        counts.data = (1.0 + np.log(counts.data)).astype(np.float32)
        weighted = sparse.csr_matrix(counts @ sparse.diags(self.idf_), dtype=np.float32)
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sparse.csr_matrix(sparse.diags(1.0 / norms) @ weighted, dtype=np.float32)

    def _project(self, weighted: sparse.csr_matrix) -> np.ndarray:
        vectors = np.asarray(weighted @ self.components_.T, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return vectors / norms

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors for (new) product texts, in the space of ``item_vectors_``.

        Parameters
        ----------
        texts : sequence of str, length m

        Returns
        -------
        ndarray of float32, shape (m, dims)
        """
        self._check_fitted()
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one string.")
        return self._project(self._tfidf([str(t) for t in texts]))

    def profiles(self, history: sparse.csr_matrix) -> np.ndarray:
        """Each row's unit text profile: the history-weighted sum of its items' vectors."""
        profile = np.asarray(history @ self.item_vectors_, dtype=np.float32)
        norms = np.sqrt(np.add.reduce(profile * profile, axis=1, keepdims=True))  # linalg.norm's
        return profile / np.where(norms == 0, np.float32(1.0), norms)

    def score_items(self, profiles: np.ndarray, items: IntArray | None = None) -> np.ndarray:
        """Scores of ``items`` (None: all) for each profile: cosine plus the popularity nudge."""
        vectors = self.item_vectors_ if items is None else self.item_vectors_[items]
        scores = profiles @ vectors.T
        if self.popularity_weight:
            popularity = self.item_popularity_ if items is None else self.item_popularity_[items]
            scores += np.float32(self.popularity_weight) * popularity
        return scores

    def _score_users(self, history: sparse.csr_matrix, users: np.ndarray | None) -> np.ndarray:
        scores = self.score_items(self.profiles(history))
        scores[~self._known_rows(history, users)] = -np.inf
        return scores

    def neighbours(self, queries: IntArray, pool: IntArray, n: int, min_similarity: float,
                   groups: IntArray | None = None) -> sparse.csr_matrix:
        """The ``n`` items of ``pool`` most similar in text to each query item.

        Parameters
        ----------
        queries, pool : ndarray of int
            Item indices (a query in ``pool`` is its own first neighbour).
        n : int
            Neighbours kept per query (fewer when fewer reach ``min_similarity``).
        min_similarity : float
            Smallest cosine kept.
        groups : ndarray of int, shape (n_items,), optional
            Group code per item (e.g. category): neighbours come from the query's group, or
            from the whole pool for queries of group -1. Also the cost: only query x group
            similarities are computed.

        Returns
        -------
        csr_matrix, shape (n_items, n_items)
            ``M[j, q] = cos(j, q)`` for each query ``q`` and its neighbours ``j``, so that
            ``scores @ M`` passes scores of the neighbours on to the queries.
        """
        self._check_fitted()
        queries, pool = np.asarray(queries, np.int64), np.asarray(pool, np.int64)
        if groups is None:
            groups = np.full(int(self.n_items_), -1, np.int64)
        found = [(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32))]
        by_group = pool[np.argsort(groups[pool], kind="stable")]
        for group in np.unique(groups[queries]):
            members = queries[groups[queries] == group]
            lo, hi = np.searchsorted(groups[by_group], [group, group + 1]) if group >= 0 \
                else (0, 0)
            basis = by_group[lo:hi] if group >= 0 else pool
            if len(basis):
                found.append(self._nearest(members, basis, n, min_similarity))
        rows, cols, sims = (np.concatenate(parts) for parts in zip(*found, strict=True))
        size = int(self.n_items_)
        return sparse.csr_matrix((sims, (rows, cols)), shape=(size, size), dtype=np.float32)

    def _nearest(self, queries: np.ndarray, pool: np.ndarray, n: int, min_similarity: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(neighbour, query, cosine)`` triples of ``neighbours`` for one group."""
        rows, cols, sims = [], [], []
        basis = self.item_vectors_[pool]
        step = max(1, _PAIRS_PER_BLOCK // len(pool))
        for start in range(0, len(queries), step):
            block = queries[start:start + step]
            sim = self.item_vectors_[block] @ basis.T
            q, j = np.nonzero(sim >= min_similarity)
            value = sim[q, j]
            order = np.lexsort((-value, q))  # by query, most similar first
            q, j, value = q[order], j[order], value[order]
            keep = np.arange(len(q)) - np.searchsorted(q, q) < n
            rows.append(pool[j[keep]])
            cols.append(block[q[keep]])
            sims.append(value[keep])
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(sims)

    def _item_vectors(self) -> np.ndarray:
        return self.item_vectors_


__all__ = ["ContentTFIDF"]
