"""Reason codes of the hybrid's picks and the "because you bought X" attribution."""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from recsys.data.csr import cell_rows, row_cells

if TYPE_CHECKING:  # base.py gives every model's default reasons from Reason
    from recsys.models.base import RecommenderBase

EXPLAIN_HISTORY = 200  # history items per customer searched for the "because you bought" item


class Reason(IntEnum):
    """Why a model picked an item (``reason_kind`` values; -1 marks padding)."""

    NONE = -1
    POPULAR = 0                  # overall best seller
    TRENDING = 1                 # selling fast lately
    POPULAR_IN_CATEGORY = 2      # best seller in a category the customer buys
    NEW_IN_CATEGORY_YOU_BUY = 3  # product without sales yet, like reason_item the customer buys
    BECAUSE_YOU_BOUGHT = 4       # similar to / bought with reason_item (from the history)
    BUY_AGAIN = 5                # the customer's own product, due again (reason_item = itself)
    BOUGHT_TOGETHER = 6          # often in the same order as reason_item (from the history)
    REPEATS_EVERY = 7            # own product bought at a steady pace: reason_item = days apart
    BOUGHT_BEFORE = 8            # own product, no steady pace (yet)
    PERSONALIZED = 9             # from the purchase history as a whole


def pair_similarity(model: RecommenderBase | sparse.csr_matrix, items: np.ndarray,
                    picks: np.ndarray) -> np.ndarray:
    """Similarity of each pick to each history item under ``model``.

    Vector models use the cosine of their item vectors; ItemKNN and EASE their item-item
    weights (how much buying the history item raises the pick's score); a sparse matrix is
    read as such weights ``M[history item, pick]`` (the hybrid's twins; CSR or CSC).

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
    valid = (items[:, None, :] >= 0) & (picks[:, :, None] >= 0)
    similarity = model if sparse.issparse(model) else getattr(model, "similarity_", None)
    if isinstance(similarity, sparse.csr_matrix | sparse.csc_matrix):  # ItemKNN, twins
        out = _stored_pairs(similarity, items, picks)
    elif hasattr(model, "weights_") and hasattr(model, "item_index_"):  # EASE
        src, dst = np.broadcast_arrays(items[:, None, :], picks[:, :, None])
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


def _stored_pairs(matrix: sparse.csr_matrix | sparse.csc_matrix, items: np.ndarray,
                  picks: np.ndarray) -> np.ndarray:
    """``matrix[items[b, l], picks[b, n]]`` as ``(batch, n, L)`` float32, 0 where a side is
    padding: scipy's lookup of each pair, read from the stored cells of the history items'
    rows (CSR) or of the picks' columns (CSC: few when picks are few) instead."""
    out = np.zeros((items.shape[0], picks.shape[1], items.shape[1]), np.float32)
    by_pick = matrix.format == "csc"
    keys, others = (picks, items) if by_pick else (items, picks)
    rows, slots = np.nonzero(keys >= 0)
    cells, lengths = row_cells(matrix.indptr, keys[rows, slots])
    rows, slots = np.repeat(rows, lengths), np.repeat(slots, lengths)
    # each cell's other end, found among its row's ``others`` (ids unique within a row) by
    # bisection over (row, id) keys; -1 padding gets a key no real id has
    span, width = max(matrix.shape) + 1, others.shape[1]
    keys = np.repeat(np.arange(others.shape[0], dtype=np.int64), width) * span + others.ravel()
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    wanted = rows * span + matrix.indices[cells]
    at = np.minimum(np.searchsorted(ordered, wanted), max(len(keys) - 1, 0))
    hit = np.flatnonzero(ordered[at] == wanted) if len(keys) else np.zeros(0, np.int64)
    other = order[at[hit]] % width
    at = (rows[hit], slots[hit], other) if by_pick else (rows[hit], other, slots[hit])
    np.add.at(out, at, matrix.data[cells[hit]])  # duplicate cells add up, as in scipy
    return out


def padded_history(history: sparse.csr_matrix | tuple[np.ndarray, np.ndarray, np.ndarray],
                   limit: int = EXPLAIN_HISTORY) -> tuple[np.ndarray, np.ndarray]:
    """Each row's items (heaviest ``limit`` first) as ``(batch, L)`` arrays padded with -1 / 0;
    ``history`` is a CSR matrix or its ``(data, indices, indptr)``."""
    data, indices, indptr = (history.data, history.indices, history.indptr) \
        if sparse.issparse(history) else history
    rows = cell_rows(indptr)
    width = max(min(int(np.diff(indptr).max(initial=0)), limit), 1)
    order = np.lexsort((-data, rows))  # each row's cells heaviest first, ties in stored order
    slot = np.arange(len(order)) - np.repeat(indptr[:-1], np.diff(indptr))
    keep = slot < limit
    order, slot = order[keep], slot[keep]
    items = np.full((len(indptr) - 1, width), -1, np.int64)
    weights = np.zeros((len(indptr) - 1, width), np.float32)
    items[rows[order], slot] = indices[order]
    weights[rows[order], slot] = data[order]
    return items, weights


def because_you_bought(model: RecommenderBase | sparse.csr_matrix,
                       history: sparse.csr_matrix | tuple[np.ndarray, np.ndarray, np.ndarray],
                       picks: np.ndarray) -> np.ndarray:
    """The history item that most supports each pick: ``argmax_j weight_j * sim(j, pick)``.

    Parameters
    ----------
    model : fitted model whose item similarity explains the pick (CF or content part), or a
        sparse item-item weight matrix
    history : csr_matrix, shape (batch, n_items), or its ``(data, indices, indptr)``
    picks : ndarray of int, shape (batch, n)

    Returns
    -------
    ndarray of int32, shape (batch, n)
        -1 where the row has no history or the pick is padding.
    """
    picks = np.asarray(picks)
    rows = np.arange(picks.shape[0])[:, None]  # (x[rows, cols]: take_along_axis, cheaper)
    if picks.shape[0] == 1:  # a request: the same packing without the sort
        order = np.flatnonzero(picks[0] >= 0)[None, :]
        if not order.size:
            return np.full(picks.shape, -1, np.int32)
    else:  # each row's picks first, in as few columns as the fullest row needs
        filled = picks >= 0
        width = max(int(filled.sum(axis=1).max(initial=0)), 1)
        order = np.argsort(~filled, axis=1, kind="stable")[:, :width]
    packed = picks[rows, order]
    items, weights = padded_history(history)
    sims = pair_similarity(model, items, packed)
    with np.errstate(invalid="ignore"):  # -inf x 0 at padding; np.where drops those cells
        support = np.where(np.isfinite(sims), sims * weights[:, None, :], -np.inf)
    found = items[rows, np.argmax(support, axis=2)]
    found[~np.isfinite(np.max(support, axis=2)) | (packed < 0)] = -1
    out = np.full(picks.shape, -1, np.int32)
    out[rows, order] = found
    return out


__all__ = ["Reason", "EXPLAIN_HISTORY", "pair_similarity", "padded_history",
           "because_you_bought"]
