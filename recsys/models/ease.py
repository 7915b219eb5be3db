"""EASE: embarrassingly shallow autoencoder, a closed-form item-item model (Steck 2019)."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
from scipy import sparse

from recsys.data.baskets import Baskets
from recsys.data.features import ItemFeatures
from recsys.models._common import Model, check_interactions, check_items


class EASE(Model):
    """Item-item weights ``B`` from one matrix inversion; ``score_u = history_u @ B``.

    ``P = (X^T X + regularization * I)^-1`` and ``B = I - P diag(1 / diag(P))``: the
    ridge regression of every item on all the others with a zero diagonal (the closed form of
    Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019).

    The inversion costs O(m^3) time and 8 m^2 bytes (float64) for ``m`` modelled items, and
    the state keeps ``B`` (4 m^2 bytes). ``m`` is therefore capped by ``max_items``: only the
    ``max_items`` products bought by the most customers are modelled (5,000 items: ~200 MB
    while fitting, 100 MB of state, a few seconds); the others score ``-inf``.

    Parameters
    ----------
    regularization : float
        L2 penalty ``lambda`` of the ridge regressions (larger for denser data).
    max_items : int
        The cap on modelled items described above.

    Attributes
    ----------
    item_index_ : ndarray of int32, shape (m,)
        Modelled item indices, most bought first.
    weights_ : ndarray of float32, shape (m, m)
        ``B`` over the modelled items.
    """

    name: ClassVar[str] = "ease"
    _state_keys: ClassVar[tuple[str, ...]] = ("n_items_", "item_index_", "weights_")

    def __init__(self, *, regularization: float = 100.0, max_items: int = 5000) -> None:
        self.regularization = regularization
        self.max_items = max_items

    def fit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
            baskets: Baskets | None = None) -> Self:
        """Solve for ``B`` over the ``max_items`` most bought items."""
        matrix = check_interactions(interactions)
        check_items(items, matrix.shape[1])
        if self.regularization <= 0 or self.max_items < 1:
            raise ValueError("regularization must be > 0 and max_items >= 1.")
        buyers = np.bincount(matrix.indices, minlength=matrix.shape[1])
        order = np.argsort(-buyers, kind="stable")
        keep = order[: min(self.max_items, int((buyers > 0).sum()) or 1)]
        x = matrix[:, keep]
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += self.regularization
        inverse = np.linalg.inv(gram)
        weights = inverse / -np.diag(inverse)[None, :]
        np.fill_diagonal(weights, 0.0)
        self.item_index_ = keep.astype(np.int32)
        self.weights_ = weights.astype(np.float32)
        self.n_items_ = matrix.shape[1]
        return self

    def _score_users(self, history: sparse.csr_matrix, users: np.ndarray | None) -> np.ndarray:
        scores = np.full(history.shape, -np.inf, np.float32)
        scores[:, self.item_index_] = history[:, self.item_index_] @ self.weights_
        scores[~self._known_rows(history, users)] = -np.inf
        return scores

    def _item_similarity(self, items: np.ndarray) -> np.ndarray:
        """``B[i, :]``: how much buying ``i`` raises each modelled item's score."""
        position = np.full(self.n_items_, -1, np.int64)
        position[self.item_index_] = np.arange(len(self.item_index_))
        scores = np.full((len(items), self.n_items_), -np.inf, np.float32)
        rows = position[items]
        modelled = rows >= 0
        scores[np.ix_(modelled, self.item_index_)] = self.weights_[rows[modelled]]
        return scores


__all__ = ["EASE"]
