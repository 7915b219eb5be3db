"""Bayesian personalised ranking (Rendle et al. 2009), wrapping ``implicit.cpu``."""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
from implicit.cpu.bpr import BayesianPersonalizedRanking
from scipy import sparse

from recsys.data.baskets import Baskets
from recsys.data.features import ItemFeatures
from recsys.models._common import FactorModel


class BPR(FactorModel):
    """Matrix factorisation trained on pairwise ranking (bought > not bought).

    implicit samples positive cells uniformly, so purchase weights only mark positives here.
    implicit keeps an item bias in the last factor column (users carry a constant 1 there).

    BPR has no closed-form user update, so fold-in (``users is None`` or ``users[row] == -1``)
    is a ridge regression fitted once at the end of ``fit``: the stored user factors are
    regressed on the weighted mean of the item factors of each user's history (plus an
    intercept), giving a ``(factors + 1, factors)`` map. Folding a customer in is then one
    matrix product for the whole batch, and it reproduces the stored users' rankings closely
    but not exactly (the test pins how closely).

    Parameters
    ----------
    factors : int
        Latent dimensions (the bias column comes on top).
    learning_rate : float
        SGD step size.
    regularization : float
        L2 penalty on the factors.
    iterations : int
        Epochs of SGD.
    random_state : int
        Seed of the initial factors and of the sampling.
    num_threads : int
        SGD threads. With more than one, implicit's lock-free updates make results vary from
        run to run; the default 1 is reproducible.

    Attributes
    ----------
    user_factors_ : ndarray of float32, shape (n_users, factors + 1)
    item_factors_ : ndarray of float32, shape (n_items, factors + 1)
    fold_in_map_ : ndarray of float32, shape (factors + 1, factors)
    """

    name: ClassVar[str] = "bpr"
    _state_keys: ClassVar[tuple[str, ...]] = ("n_items_", "n_users_", "user_factors_",
                                              "item_factors_", "fold_in_map_")

    def __init__(self, *, factors: int = 64, learning_rate: float = 0.01,
                 regularization: float = 0.01, iterations: int = 100, random_state: int = 0,
                 num_threads: int = 1) -> None:
        super().__init__(factors=factors, regularization=regularization, iterations=iterations,
                         random_state=random_state, num_threads=num_threads)
        self.learning_rate = learning_rate

    def fit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
            baskets: Baskets | None = None) -> Self:
        """Train by SGD on sampled (customer, bought, not bought) triples."""
        matrix = self._training_matrix(interactions, items)
        model = BayesianPersonalizedRanking(
            factors=self.factors, learning_rate=self.learning_rate,
            regularization=self.regularization, iterations=self.iterations,
            random_state=self.random_state, num_threads=self.num_threads, dtype=np.float32)
        model.fit(matrix, show_progress=False)
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self.n_items_, self.n_users_ = matrix.shape[1], matrix.shape[0]
        features = self._history_features(matrix).astype(np.float64)
        gram = features.T @ features
        ridge = 1e-3 * max(float(np.trace(gram)) / len(gram), 1e-12)
        gram[np.diag_indices_from(gram)] += ridge
        self.fold_in_map_ = np.linalg.solve(
            gram, features.T @ self.user_factors_[:, :-1].astype(np.float64)).astype(np.float32)
        self._restore()
        return self

    def _history_features(self, history: sparse.csr_matrix) -> np.ndarray:
        """``[weighted mean of the history's item factors, 1]`` per row."""
        totals = np.asarray(history.sum(axis=1), dtype=np.float32).ravel()
        totals[totals == 0] = 1.0
        mean = np.asarray(history @ self.item_factors_[:, :-1]) / totals[:, None]
        return np.hstack([mean, np.ones((history.shape[0], 1), np.float32)])

    def _fold_in(self, history: sparse.csr_matrix) -> np.ndarray:
        """The learnt linear map from the history's features, bias column appended."""
        vectors = self._history_features(history) @ self.fold_in_map_
        return np.hstack([vectors, np.ones((history.shape[0], 1), np.float32)])

    def _item_vectors(self) -> np.ndarray:
        return self.item_factors_[:, :-1]


__all__ = ["BPR"]
