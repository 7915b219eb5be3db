"""Item side information aligned with an interaction matrix's columns (``ItemFeatures``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recsys.data.dataset import IdMap
from recsys.data.schema import CATEGORY_SEP

_DAY = 86_400.0


@dataclass
class ItemFeatures:
    """Side information about the catalog, aligned with the interaction matrix's columns.

    Attributes
    ----------
    text : list of str, length n_items
        Title, description, brand and category words (the content model's input).
    category : ndarray of str, shape (n_items,)
        Category path, ``""`` when unknown.
    price : ndarray of float32, shape (n_items,)
        Unit price, ``nan`` when unknown.
    first_sold_days : ndarray of float32, shape (n_items,)
        Days between the product's first sale and the end of training (``nan``: never sold);
        small values mean "new".
    repurchase_days : ndarray of float32, shape (n_items,)
        Median days between repeat purchases of the product by the same customer (``nan``:
        never repurchased).
    available : ndarray of bool, shape (n_items,)
        In stock (the catalog's ``available`` column; empty: every product is).
    """

    text: list[str]
    category: np.ndarray
    price: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    first_sold_days: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    repurchase_days: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    available: np.ndarray = field(default_factory=lambda: np.empty(0, bool))

    def __len__(self) -> int:
        return len(self.text)


def item_features(products: pd.DataFrame, transactions: pd.DataFrame, product_map: IdMap,
                  as_of: pd.Timestamp | str | None = None) -> ItemFeatures:
    """Text, category, price, novelty and repurchase cycle per item of ``product_map``.

    Parameters
    ----------
    products : DataFrame
        Canonical products (``product_id, title, description, brand, category, price``).
        Items of ``product_map`` missing from it get empty text and ``nan`` price.
    transactions : DataFrame
        Canonical transactions (``customer_id, product_id, timestamp``, and ``order_id`` when
        present); lines after ``as_of`` are ignored so features never see the future.
    product_map : IdMap
        Column order of the interaction matrix; output row ``i`` is ``product_map.ids[i]``.
    as_of : Timestamp or str, optional
        End of the training period; default the last transaction timestamp.

    Returns
    -------
    ItemFeatures
        ``text`` (list of n_items str), ``category`` (object array of str, shape (n_items,)),
        ``price``, ``first_sold_days`` and ``repurchase_days`` (float32, shape (n_items,)),
        the last two ``nan`` for items never sold / never bought twice by one customer, and
        ``available`` (bool; empty when the products have no ``available`` column).
    """
    ids = product_map.ids
    p = products.drop_duplicates("product_id").set_index("product_id").reindex(ids)

    def col(name: str) -> pd.Series:
        if name not in p:
            return pd.Series("", index=p.index, dtype="str")
        return p[name].astype("str").fillna("")

    category = col("category")
    words = (col("title") + " " + col("description") + " " + col("brand") + " "
             + category.str.replace(CATEGORY_SEP, " ", regex=False))
    text = words.str.replace(r"\s+", " ", regex=True).str.strip()
    price = (p["price"] if "price" in p else pd.Series(np.nan, index=p.index))

    tx = transactions
    ts = tx["timestamp"]
    ref = pd.Timestamp(as_of) if as_of is not None else ts.max()
    if as_of is not None:
        tx = tx[ts <= ref]
        ts = tx["timestamp"]
    codes, uniques = pd.factorize(tx["product_id"])  # map each distinct id once
    item = np.append(product_map.to_index(np.asarray(uniques, dtype=object), missing="mark"),
                     np.int32(-1))[codes]  # code -1 (missing id) picks the appended -1
    known = item >= 0
    item, ts_ns = item[known], ts.to_numpy(dtype="datetime64[ns]")[known]
    first = np.full(len(ids), np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, item, ts_ns.astype(np.int64))
    sold = first != np.iinfo(np.int64).max
    first_days = np.full(len(ids), np.nan, dtype=np.float32)
    if len(tx):
        first_days[sold] = (ref.value - first[sold]) / 1e9 / _DAY
    customer = pd.factorize(tx["customer_id"])[0][known]
    order = pd.factorize(tx["order_id"])[0][known] if "order_id" in tx else ts_ns
    return ItemFeatures(
        text=text.tolist(),
        category=category.to_numpy(dtype=object),
        price=price.to_numpy(dtype=np.float32),
        first_sold_days=first_days,
        repurchase_days=_repurchase_days(item, customer, order, ts_ns, len(ids)),
        available=in_stock(p) if "available" in p else np.empty(0, bool),
    )


def in_stock(products: pd.DataFrame) -> np.ndarray:
    """The products' ``available`` column as a mask, one entry per row (missing: in stock;
    no column: all are). The policy's filters and the models' stored lists read it here."""
    available = products["available"] if "available" in products else True
    return np.asarray(pd.Series(available, index=products.index).fillna(True), dtype=bool)


def _repurchase_days(item: np.ndarray, customer: np.ndarray, order: np.ndarray,
                     ts_ns: np.ndarray, n_items: int) -> np.ndarray:
    """Median days between consecutive purchases (orders) of an item by the same customer.

    ``customer`` and ``order`` are integer codes (or any sortable array) aligned with ``item``.
    """
    out = np.full(n_items, np.nan, dtype=np.float32)
    if len(item) == 0:
        return out
    frame = pd.DataFrame({"i": item, "c": customer, "o": order,
                          "t": ts_ns.astype(np.int64)})
    # One purchase per (customer, item, order): several lines of one basket are one event.
    frame = frame.groupby(["i", "c", "o"], sort=False)["t"].min().reset_index()
    frame = frame.sort_values(["i", "c", "t"], kind="stable")
    i, c, t = (frame[k].to_numpy() for k in ("i", "c", "t"))
    same = (i[1:] == i[:-1]) & (c[1:] == c[:-1])
    gaps = (t[1:] - t[:-1])[same] / 1e9 / _DAY
    if len(gaps):
        med = pd.Series(gaps).groupby(i[1:][same]).median()
        out[med.index.to_numpy()] = med.to_numpy(dtype=np.float32)
    return out


__all__ = ["ItemFeatures", "in_stock", "item_features"]
