"""Ids at the edge, indices inside: ``IdMap`` and the customer x product interaction matrix."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse

from recsys._typing import IntArray
from recsys.errors import UnknownIdError

Weighting = Literal["binary", "count", "log", "monetary"]


FEW_IDS = 32  # up to this many ids are looked up one by one


class IdMap:
    """A fixed bijection between external string ids and dense ``int32`` indices.

    Parameters
    ----------
    ids : iterable of str
        External ids; position ``i`` is index ``i``. Must be unique.
    """

    def __init__(self, ids: Iterable[str]) -> None:
        self._index = pd.Index(np.asarray(list(ids) if not isinstance(ids, np.ndarray | pd.Index)
                                          else ids, dtype=object).astype(str))
        if not self._index.is_unique:
            raise ValueError("IdMap ids must be unique; deduplicate them before building the map.")

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, id_: object) -> bool:
        return id_ in self._index

    @property
    def ids(self) -> np.ndarray:
        """External ids as an object array of ``str`` (row ``i`` is index ``i``)."""
        return self._index.to_numpy()

    def to_index(self, ids: Iterable[str] | str, *, missing: Literal["raise", "skip", "mark"]
                 = "raise") -> IntArray:
        """Map external ids to indices.

        ``missing="raise"`` raises ``UnknownIdError``; ``"mark"`` returns -1 for unknown ids;
        ``"skip"`` drops them.
        """
        arr = np.atleast_1d(np.asarray(ids if not isinstance(ids, str) else [ids], dtype=object))
        if len(arr) <= FEW_IDS:  # online calls: a hash lookup each beats building an Index
            idx = np.array([self._position(str(i)) for i in arr], np.int32)
        else:
            idx = self._index.get_indexer(arr.astype(str)).astype(np.int32)
        if missing == "raise" and (idx < 0).any():
            unknown = arr[idx < 0][:3].tolist()
            raise UnknownIdError(f"unknown id(s) {unknown}; they are not in this model's catalog")
        if missing == "skip":
            idx = idx[idx >= 0]
        return idx

    def _position(self, id_: str) -> int:
        try:
            return int(self._index.get_loc(id_))
        except KeyError:
            return -1

    def to_ids(self, idx: np.ndarray) -> np.ndarray:
        """Map indices back to external ids (``-1`` padding becomes ``""``)."""
        idx = np.asarray(idx)
        out = np.where(idx >= 0, self._index.to_numpy()[np.clip(idx, 0, None)], "")
        return out.astype(object)


@dataclass
class Interactions:
    """A customer x product CSR matrix with the id maps of its rows and columns.

    ``matrix[u, i]`` is the weight of customer ``u`` buying product ``i`` (float32).
    """

    matrix: sparse.csr_matrix
    customers: IdMap
    products: IdMap

    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape  # type: ignore[return-value]

    @property
    def density(self) -> float:
        n = self.shape[0] * self.shape[1]
        return self.matrix.nnz / n if n else 0.0


def _indices(ids: pd.Series, idmap: IdMap) -> np.ndarray:
    """``idmap`` indices of every line, looking each distinct id up once (-1: unknown)."""
    codes, uniques = pd.factorize(ids)
    known = idmap.to_index(np.asarray(uniques, dtype=object), missing="mark")
    return np.append(known, np.int32(-1))[codes]  # code -1 (missing id) maps to -1


def build_interactions(
    transactions: pd.DataFrame,
    *,
    customers: IdMap | None = None,
    products: IdMap | None = None,
    weighting: Weighting = "log",
    half_life_days: float | None = None,
    as_of: pd.Timestamp | None = None,
) -> Interactions:
    """Aggregate transaction lines into a customer x product matrix.

    Parameters
    ----------
    transactions : DataFrame
        Canonical transactions (``customer_id, product_id, quantity, amount, timestamp``).
    customers, products : IdMap, optional
        Fix the row/column order (e.g. to the training maps). Lines with ids outside a given
        map are dropped. By default the maps are built from the data, sorted.
    weighting : {"binary", "count", "log", "monetary"}
        Per line: 1, 1, 1, ``amount``; summed per cell. ``"count"`` counts distinct orders,
        ``"log"`` is ``1 + log(count)``, the confidence scaling of Hu, Koren & Volinsky (2008).
        ``"binary"`` caps each cell at 1.
    half_life_days : float, optional
        Recency decay: each line is weighted by ``0.5 ** (age_days / half_life_days)`` with age
        measured from ``as_of`` (default: the last timestamp).
    """
    tx = transactions
    cust = customers or IdMap(np.sort(tx["customer_id"].astype(str).unique()))
    prod = products or IdMap(np.sort(tx["product_id"].astype(str).unique()))
    rows = _indices(tx["customer_id"], cust)
    cols = _indices(tx["product_id"], prod)
    keep = (rows >= 0) & (cols >= 0)
    if weighting == "monetary":
        w = tx["amount"].to_numpy(dtype=np.float64).clip(min=0)
    elif weighting in ("binary", "count", "log"):
        w = np.ones(len(tx))
    else:
        raise ValueError(f"weighting must be binary, count, log or monetary, not {weighting!r}")
    if half_life_days is not None:
        ts = tx["timestamp"]
        ref = as_of if as_of is not None else ts.max()
        age = (ref - ts).dt.total_seconds().to_numpy() / 86400.0
        w = w * np.power(0.5, np.clip(age, 0, None) / half_life_days)
    if weighting in ("count", "log") and "order_id" in tx:
        # Several lines of one product in one order count once.
        dup = pd.DataFrame({"o": pd.factorize(tx["order_id"])[0], "r": rows, "c": cols}
                           ).duplicated().to_numpy()
        keep &= ~dup
    m = sparse.csr_matrix(
        (w[keep].astype(np.float32), (rows[keep], cols[keep])),
        shape=(len(cust), len(prod)), dtype=np.float32,
    )
    m.sum_duplicates()
    if weighting == "binary":
        m.data = np.minimum(m.data, 1.0).astype(np.float32)
    elif weighting == "log":
        m.data = (1.0 + np.log(np.maximum(m.data, 1e-6))).clip(min=1e-3).astype(np.float32)
    m.eliminate_zeros()
    return Interactions(m, cust, prod)


__all__ = ["IdMap", "Interactions", "build_interactions", "Weighting"]
