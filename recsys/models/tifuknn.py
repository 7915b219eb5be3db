"""TIFU-KNN: time-decayed personal item frequencies blended with the nearest customers'.

Hu, He, Gao and Zhang, "Modeling Personalized Item Frequency Information for Next-basket
Recommendation", SIGIR 2020 (arXiv 2006.00556).
"""

from __future__ import annotations

from typing import ClassVar, Self

import numpy as np
from scipy import sparse

from recsys._typing import IntArray
from recsys.data.baskets import Baskets
from recsys.data.csr import as_csr
from recsys.data.features import ItemFeatures
from recsys.models._common import Model, check_interactions, check_items
from recsys.models.base import SCORE_CHUNK

_SIM_CELLS = 1 << 24  # customers x customers similarities computed per block (64 MB)


class TIFUKNN(Model):
    """Each customer is a vector of time-decayed product frequencies; the score of a product
    is ``alpha * own vector + (1 - alpha) * mean of the k nearest customers' vectors``.

    A customer's baskets (time order) are cut into groups of ``group_size``, counted from the
    most recent one, so only the oldest group may be shorter. A group's vector is
    ``sum_j r_b ** j * basket_j / size`` with ``j`` = 0 for the group's latest basket; the
    customer's vector is ``sum_g r_g ** g * group_g / n_groups`` with ``g`` = 0 for the latest
    group (the paper's within- and across-group decays and averages). Neighbours: the ``k``
    stored customers with the highest cosine similarity (never the customer itself; fewer
    when fewer have a positive one: the mean still divides by ``k``, as missing neighbours
    add nothing). Products scoring 0 are not recommended (-inf).

    Stored customers (``users`` >= 0) use their stored vector and neighbours. A row with
    ``users = -1`` and a history (a live customer) is one group built from its history
    weights, scaled to a maximum of 1 (the most bought product as if in every basket), and
    gets its neighbours among the stored vectors. ``fit`` without ``baskets`` treats every
    customer that way.

    Parameters
    ----------
    k : int
        Neighbours.
    group_size : int
        Baskets per group.
    r_b, r_g : float
        Within-group and across-group decay, in (0, 1].
    alpha : float
        Weight of the customer's own vector, in [0, 1].

    Attributes
    ----------
    vector_data_, vector_indices_, vector_indptr_ : ndarray
        The customers x products CSR matrix of customer vectors.
    neighbours_ : ndarray of int32, shape (n_users, min(k, n_users - 1))
        Each stored customer's neighbours, most similar first, -1 where none.
    """

    name: ClassVar[str] = "tifuknn"
    stores_users: bool = True
    _state_keys: ClassVar[tuple[str, ...]] = ("n_items_", "n_users_", "vector_data_",
                                              "vector_indices_", "vector_indptr_", "neighbours_")

    def __init__(self, *, k: int = 300, group_size: int = 7, r_b: float = 0.9,
                 r_g: float = 0.7, alpha: float = 0.7) -> None:
        self.k = k
        self.group_size = group_size
        self.r_b = r_b
        self.r_g = r_g
        self.alpha = alpha

    def fit(self, interactions: sparse.csr_matrix, *, items: ItemFeatures | None = None,
            baskets: Baskets | None = None) -> Self:
        """Customer vectors from ``baskets`` (else one group per matrix row), then each
        customer's neighbours."""
        matrix = check_interactions(interactions)
        check_items(items, matrix.shape[1])
        if self.k < 1 or self.group_size < 1:
            raise ValueError("k and group_size must be >= 1.")
        if not (0 < self.r_b <= 1 and 0 < self.r_g <= 1 and 0 <= self.alpha <= 1):
            raise ValueError("r_b and r_g must lie in (0, 1] and alpha in [0, 1].")
        if baskets is None:
            vectors = _one_group(matrix)
        elif (baskets.n_users, baskets.n_items) != matrix.shape:
            raise ValueError(f"baskets cover {baskets.n_users} x {baskets.n_items} customers x "
                             f"products; interactions are {matrix.shape}.")
        else:
            vectors = self._decayed(baskets)
        self.n_users_, self.n_items_ = matrix.shape
        self.vector_data_ = vectors.data.astype(np.float32)
        self.vector_indices_ = vectors.indices.astype(np.int32)
        self.vector_indptr_ = vectors.indptr.astype(np.int64)
        self._restore()
        self.neighbours_ = self._nearest(self._unit, np.arange(self.n_users_))
        return self

    def _decayed(self, baskets: Baskets) -> sparse.csr_matrix:
        """The customers x products vectors of the class docstring, one sparse product."""
        m = self.group_size
        count = np.diff(baskets.user_ptr)  # baskets per customer
        user = baskets.user.astype(np.int64)
        back = count[user] - 1 - (np.arange(len(baskets)) - baskets.user_ptr[user])  # 0: latest
        group, pos = np.divmod(back, m)
        n_groups = -(-count[user] // m)
        size = np.where(group < n_groups - 1, m, count[user] - m * (n_groups - 1))
        weight = (self.r_b ** pos / size) * (self.r_g ** group / n_groups)
        pick = sparse.csr_matrix((weight, (user, np.arange(len(baskets)))),
                                 shape=(baskets.n_users, len(baskets)))
        return sparse.csr_matrix(pick @ baskets.items, dtype=np.float32)

    def _restore(self) -> None:
        self._vectors = sparse.csr_matrix(
            (self.vector_data_, self.vector_indices_, self.vector_indptr_),
            shape=(int(self.n_users_), int(self.n_items_)))
        self._unit = _unit_rows(self._vectors)
        self._columns = self._vectors.T.tocsr()  # products x customers

    def _nearest(self, unit: sparse.csr_matrix, rows: np.ndarray) -> np.ndarray:
        """The ``k`` stored customers most cosine-similar to each unit row (``rows``: the
        row's own stored index, excluded; -1 for live rows), -1 where the similarity is 0."""
        n_users = int(self.n_users_)
        k = min(self.k, max(n_users - 1, 1))
        out = np.full((unit.shape[0], k), -1, np.int32)
        step = max(1, _SIM_CELLS // max(n_users, 1))
        for start in range(0, unit.shape[0], step):
            sims = (unit[start:start + step] @ self._unit.T).toarray()
            own = rows[start:start + step]
            mine = np.flatnonzero(own >= 0)
            sims[mine, own[mine]] = -np.inf
            if k < n_users:
                part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            else:
                part = np.tile(np.arange(n_users), (len(sims), 1))
            part_sims = np.take_along_axis(sims, part, axis=1)
            order = np.argsort(-part_sims, axis=1, kind="stable")[:, :k]
            best = np.take_along_axis(part, order, axis=1)
            best[np.take_along_axis(part_sims, order, axis=1) <= 0] = -1
            out[start:start + step, :best.shape[1]] = best
        return out

    def score_rows(self, history: sparse.csr_matrix, users: IntArray | None = None
                   ) -> sparse.csr_matrix:
        """TIFU-KNN scores of each row as a sparse ``(batch, n_items)`` matrix (zeros are
        products with no support): a candidate source and a feature for other models.

        Parameters
        ----------
        history : csr_matrix, shape (batch, n_items)
            Used for rows with ``users = -1`` (live customers).
        users : ndarray of int, shape (batch,), optional
            Stored customer row or -1; None: all rows are live.

        Rows are computed ``SCORE_CHUNK`` at a time; a row holds every product its
        neighbours bought (~20k on The Complete Journey at k=300), so ask for batches.
        """
        history = as_csr(history)
        users = None if users is None else np.asarray(users)
        blocks = [sparse.csr_matrix(self._scores(
            history[start:start + SCORE_CHUNK],
            None if users is None else users[start:start + SCORE_CHUNK]))
            for start in range(0, history.shape[0], SCORE_CHUNK)]
        if not blocks:
            return sparse.csr_matrix(history.shape, dtype=np.float32)
        return sparse.csr_matrix(sparse.vstack(blocks), dtype=np.float32)

    def _parts(self, history: sparse.csr_matrix, users: IntArray | None
               ) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
        """Each row's own vector (batch x products) and the averaging of its neighbours
        (batch x stored customers, 1 / k at each neighbour): the score is
        ``alpha * own + (1 - alpha) * mean @ vectors``."""
        self._check_fitted()
        history = as_csr(history)
        batch = history.shape[0]
        users = np.full(batch, -1, np.int64) if users is None else np.asarray(users, np.int64)
        stored = users >= 0
        live = np.flatnonzero(~stored)
        own_pick = sparse.csr_matrix((np.ones(stored.sum(), np.float32),
                                      (np.flatnonzero(stored), users[stored])),
                                     shape=(batch, int(self.n_users_)))
        own = own_pick @ self._vectors
        neighbours = np.full((batch, self.neighbours_.shape[1]), -1, np.int32)
        neighbours[stored] = self.neighbours_[users[stored]]
        if len(live):
            live_vectors = _one_group(history[live])
            own = own + sparse.csr_matrix(
                (np.ones(len(live), np.float32), (live, np.arange(len(live)))),
                shape=(batch, len(live))) @ live_vectors
            neighbours[live] = self._nearest(_unit_rows(live_vectors),
                                             np.full(len(live), -1))
        rows, cols = np.nonzero(neighbours >= 0)
        mean = sparse.csr_matrix((np.full(len(rows), 1.0 / max(neighbours.shape[1], 1),
                                          np.float32), (rows, neighbours[rows, cols])),
                                 shape=(batch, int(self.n_users_)))
        return sparse.csr_matrix(own), mean

    def _scores(self, history: sparse.csr_matrix, users: IntArray | None) -> np.ndarray:
        """Dense ``(batch, n_items)`` scores, 0 where nothing supports a product."""
        own, mean = self._parts(history, users)
        if mean.shape[0] * mean.shape[1] <= _SIM_CELLS:  # dense sums beat a sparse product here
            scores = np.ascontiguousarray((self._columns @ mean.T.toarray()).T)
        else:
            scores = (mean @ self._vectors).toarray()
        scores *= 1.0 - self.alpha
        coo = own.tocoo()
        scores[coo.row, coo.col] += self.alpha * coo.data
        return scores

    def _score_users(self, history: sparse.csr_matrix, users: np.ndarray | None) -> np.ndarray:
        scores = self._scores(history, users)
        scores[scores <= 0] = -np.inf
        return scores

    def _item_similarity(self, items: np.ndarray) -> np.ndarray:
        """Cosine of the products' columns of the customer vectors (who buys both, often)."""
        columns = self._columns
        norms = np.sqrt(np.asarray(columns.multiply(columns).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        sims = (columns[items] @ self._vectors).toarray()
        return sims / norms[items][:, None] / norms[None, :]


def _one_group(history: sparse.csr_matrix) -> sparse.csr_matrix:
    """Each row of history weights scaled to a maximum of 1 (one group, no decay)."""
    history = as_csr(history)
    history = history.multiply(history > 0).tocsr() if (history.data <= 0).any() else history
    top = np.zeros(history.shape[0], np.float32)
    filled = np.diff(history.indptr) > 0
    top[filled] = np.maximum.reduceat(history.data, history.indptr[:-1][filled])
    top[top == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / top) @ history, dtype=np.float32)


def _unit_rows(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sparse.csr_matrix(sparse.diags(1.0 / norms) @ matrix, dtype=np.float32)


__all__ = ["TIFUKNN"]
