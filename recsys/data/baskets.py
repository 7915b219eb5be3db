"""Customers' baskets in time order: what time-aware models (TIFU-KNN, the learned ranker) fit on.

The interaction matrix sums a customer's purchases into one weight per product and forgets
when they happened; ``Baskets`` keeps one row per order, its customer and its age in days at
``as_of``, aligned with the same customer and product ``IdMap`` as the matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from recsys.data.dataset import IdMap

DAY = pd.Timedelta(days=1)


@dataclass
class Baskets:
    """Orders as rows, sorted by (customer, time).

    Attributes
    ----------
    items : csr_matrix, shape (n_baskets, n_items)
        1.0 where the order holds the product.
    user : ndarray of int32, shape (n_baskets,)
        Customer row of each order (rows of the interaction matrix).
    age : ndarray of float64, shape (n_baskets,)
        Days between the order and ``as_of`` (> 0: orders are strictly before it).
    as_of : Timestamp
        The moment the baskets are seen from (the training cut or the data's end).
    n_users : int
        Number of customer rows (customers without orders have none).
    """

    items: sparse.csr_matrix
    user: np.ndarray
    age: np.ndarray
    as_of: pd.Timestamp
    n_users: int

    @property
    def n_items(self) -> int:
        return int(self.items.shape[1])

    def __len__(self) -> int:
        return int(self.items.shape[0])

    @property
    def user_ptr(self) -> np.ndarray:
        """Orders of customer ``u`` are rows ``user_ptr[u]:user_ptr[u + 1]``."""
        return np.searchsorted(self.user, np.arange(self.n_users + 1)).astype(np.int64)

    def window(self, start_days: float, stop_days: float = np.inf) -> Baskets:
        """Orders at least ``start_days`` and less than ``stop_days`` old, seen from
        ``start_days`` before ``as_of`` (a training cut inside the history)."""
        keep = (self.age >= start_days) & (self.age < stop_days)
        return Baskets(self.items[keep], self.user[keep], self.age[keep] - start_days,
                       self.as_of - start_days * DAY, self.n_users)

    def counts(self) -> sparse.csr_matrix:
        """Customers x products: number of orders holding each product."""
        pick = sparse.csr_matrix((np.ones(len(self)), (self.user, np.arange(len(self)))),
                                 shape=(self.n_users, len(self)))
        return sparse.csr_matrix(pick @ self.items, dtype=np.float32)


def build_baskets(transactions: pd.DataFrame, customers: IdMap, products: IdMap,
                  as_of: pd.Timestamp | str | None = None) -> Baskets:
    """Group transaction lines into orders (``order_id``; a customer's lines at one timestamp
    when the id is missing). Lines at or after ``as_of`` (default: just after the last line),
    of unknown customers or products, or with quantity <= 0 are left out."""
    tx = transactions
    stamp = tx["timestamp"]
    as_of = pd.Timestamp(as_of) if as_of is not None else stamp.max() + pd.Timedelta(seconds=1)
    tx = tx[(stamp < as_of) & (tx["quantity"] > 0)]
    user = customers.to_index(tx["customer_id"].astype(str).to_numpy(), missing="mark")
    item = products.to_index(tx["product_id"].astype(str).to_numpy(), missing="mark")
    keep = (user >= 0) & (item >= 0)
    ids = tx["order_id"] if "order_id" in tx else pd.Series("", index=tx.index)  # optional
    order = ids.astype(str).where(ids.notna() & (ids != ""), tx["timestamp"].astype(str))
    lines = pd.DataFrame({"user": user[keep], "item": item[keep],
                          "order": order.to_numpy()[keep],
                          "time": tx["timestamp"].to_numpy()[keep]})
    # one basket per (customer, order): its time is the order's first line
    codes, uniques = pd.factorize(pd.MultiIndex.from_frame(lines[["user", "order"]]))
    first = lines.groupby(codes)["time"].min().to_numpy()
    basket_user = np.asarray([u for u, _ in uniques], np.int64) if len(uniques) else \
        np.empty(0, np.int64)
    rank = np.lexsort((first, basket_user))  # sort baskets by (customer, time)
    new_row = np.empty(len(rank), np.int64)
    new_row[rank] = np.arange(len(rank))
    items = sparse.csr_matrix((np.ones(len(lines), np.float32), (new_row[codes], lines["item"])),
                              shape=(len(rank), len(products)))
    items.sum_duplicates()
    items.data[:] = 1.0
    age = ((as_of - pd.DatetimeIndex(first[rank])) / DAY).to_numpy(np.float64)
    return Baskets(items, basket_user[rank].astype(np.int32), age, as_of, len(customers))


__all__ = ["Baskets", "build_baskets"]
