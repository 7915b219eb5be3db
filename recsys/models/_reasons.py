"""Reason codes of the hybrid's picks and the "because you bought X" attribution."""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from scipy import sparse

from recsys.models.base import RecommenderBase

EXPLAIN_HISTORY = 200  # history items per customer searched for the "because you bought" item


class Reason(IntEnum):
    """Why the hybrid picked an item (``reason_kind`` values; -1 marks padding)."""

    NONE = -1
    POPULAR = 0                  # overall best seller
    TRENDING = 1                 # selling fast lately
    POPULAR_IN_CATEGORY = 2      # best seller in a category the customer buys
    NEW_IN_CATEGORY_YOU_BUY = 3  # product without sales yet, like reason_item the customer buys
    BECAUSE_YOU_BOUGHT = 4       # similar to / bought with reason_item (from the history)
    BUY_AGAIN = 5                # the customer's own product, due again (reason_item = itself)


def pair_similarity(model: RecommenderBase | sparse.csr_matrix, items: np.ndarray,
                    picks: np.ndarray) -> np.ndarray:
    """Similarity of each pick to each history item under ``model``.

    Vector models use the cosine of their item vectors; ItemKNN and EASE their item-item
    weights (how much buying the history item raises the pick's score); a sparse matrix is
    read as such weights ``M[history item, pick]`` (the hybrid's twins).

    Parameters
    ----------
    items : ndarray of int, shape (batch, L)
        History items, -1 padded.
    picks : ndarray of int, shape (batch, n)
        Recommended items, -1 padded.

    Returns
    -------
    ndarray of float32, shape (batch, n, L); -inf where either side is padding.
    """
    src, dst = np.broadcast_arrays(items[:, None, :], picks[:, :, None])
    valid = (src >= 0) & (dst >= 0)
    similarity = model if sparse.issparse(model) else getattr(model, "similarity_", None)
    if isinstance(similarity, sparse.csr_matrix):  # ItemKNN, twins: look up valid pairs only
        out = np.zeros(valid.shape, np.float32)
        if valid.any():  # (scipy returns a matrix, not values, for empty index arrays)
            out[valid] = np.asarray(similarity[src[valid], dst[valid]], np.float32).ravel()
    elif hasattr(model, "weights_") and hasattr(model, "item_index_"):  # EASE
        position = np.full(model.n_items_, -1, np.int64)
        position[model.item_index_] = np.arange(len(model.item_index_))
        ps, pd_ = position[np.where(valid, src, 0)], position[np.where(valid, dst, 0)]
        ok = (ps >= 0) & (pd_ >= 0)
        out = np.zeros(valid.shape, np.float32)
        out[ok] = model.weights_[ps[ok], pd_[ok]]
    else:
        unit = model.unit_item_vectors()
        out = np.einsum("bnk,blk->bnl", unit[np.maximum(picks, 0)], unit[np.maximum(items, 0)])
    return np.where(valid, out, -np.inf).astype(np.float32)


def padded_history(history: sparse.csr_matrix, limit: int = EXPLAIN_HISTORY
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Each row's items (heaviest ``limit`` first) as ``(batch, L)`` arrays padded with -1 / 0."""
    lengths = np.minimum(np.diff(history.indptr), limit)
    width = max(int(lengths.max(initial=0)), 1)
    items = np.full((history.shape[0], width), -1, np.int64)
    weights = np.zeros((history.shape[0], width), np.float32)
    for row in range(history.shape[0]):
        lo, hi = history.indptr[row], history.indptr[row + 1]
        order = np.argsort(-history.data[lo:hi], kind="stable")[: lengths[row]]
        items[row, : len(order)] = history.indices[lo:hi][order]
        weights[row, : len(order)] = history.data[lo:hi][order]
    return items, weights


def because_you_bought(model: RecommenderBase | sparse.csr_matrix, history: sparse.csr_matrix,
                       picks: np.ndarray) -> np.ndarray:
    """The history item that most supports each pick: ``argmax_j weight_j * sim(j, pick)``.

    Parameters
    ----------
    model : fitted model whose item similarity explains the pick (CF or content part), or a
        sparse item-item weight matrix
    history : csr_matrix, shape (batch, n_items)
    picks : ndarray of int, shape (batch, n)

    Returns
    -------
    ndarray of int32, shape (batch, n)
        -1 where the row has no history or the pick is padding.
    """
    picks = np.asarray(picks)
    filled = picks >= 0  # each row's picks first, in as few columns as the fullest row needs
    width = max(int(filled.sum(axis=1).max(initial=0)), 1)
    order = np.argsort(~filled, axis=1, kind="stable")[:, :width]
    packed = np.take_along_axis(picks, order, axis=1)
    items, weights = padded_history(history)
    sims = pair_similarity(model, items, packed)
    with np.errstate(invalid="ignore"):  # -inf x 0 at padding; np.where drops those cells
        support = np.where(np.isfinite(sims), sims * weights[:, None, :], -np.inf)
    found = np.take_along_axis(items, np.argmax(support, axis=2), axis=1)
    found[~np.isfinite(np.max(support, axis=2)) | (packed < 0)] = -1
    out = np.full(picks.shape, -1, np.int32)
    np.put_along_axis(out, order, found, axis=1)
    return out


__all__ = ["Reason", "EXPLAIN_HISTORY", "pair_similarity", "padded_history",
           "because_you_bought"]
