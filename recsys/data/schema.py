"""The canonical schema: table names, columns and dtypes, defined once.

Every adapter produces frames with exactly these columns (extra columns are dropped, optional
ones filled with their default). External ids are strings everywhere; timestamps are naive
``datetime64[ns]`` in the retailer's local time. Category paths join levels with
``CATEGORY_SEP`` ("GROCERY > FRZN ICE > ICE - CRUSHED/CUBED").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

CATEGORY_SEP = " > "

EVENT_TYPES = ("view", "add_to_cart", "purchase", "coupon_redeemed")


@dataclass(frozen=True)
class Column:
    """One column of a canonical table."""

    name: str
    dtype: str  # "str" | "float64" | "int64" | "bool" | "datetime64[ns]"
    required: bool = True
    default: object = None


def _cols(*columns: Column) -> dict[str, Column]:
    return {c.name: c for c in columns}


TABLES: dict[str, dict[str, Column]] = {
    "transactions": _cols(
        Column("order_id", "str"),
        Column("customer_id", "str"),
        Column("product_id", "str"),
        Column("quantity", "float64"),
        Column("amount", "float64"),  # line revenue (quantity x unit price, after discounts)
        Column("timestamp", "datetime64[ns]"),
        Column("store_id", "str", required=False, default="online"),  # store or channel
    ),
    "products": _cols(
        Column("product_id", "str"),
        Column("title", "str", required=False, default=""),
        Column("description", "str", required=False, default=""),
        Column("category", "str", required=False, default=""),  # path joined by CATEGORY_SEP
        Column("brand", "str", required=False, default=""),
        Column("price", "float64", required=False, default=float("nan")),
        Column("available", "bool", required=False, default=True),
        Column("attributes", "str", required=False, default=""),  # "key=value; key=value"
    ),
    "customers": _cols(
        Column("customer_id", "str"),
        Column("signup_date", "datetime64[ns]", required=False, default=pd.NaT),
        Column("consent_personalization", "bool", required=False, default=True),
        Column("consent_marketing", "bool", required=False, default=True),
        Column("attributes", "str", required=False, default=""),  # no names/emails/addresses
    ),
    "campaigns": _cols(
        Column("campaign_id", "str"),
        Column("kind", "str", required=False, default=""),
        Column("start", "datetime64[ns]"),
        Column("end", "datetime64[ns]"),
    ),
    "coupons": _cols(  # one row per (coupon, product it applies to)
        Column("coupon_id", "str"),
        Column("campaign_id", "str"),
        Column("product_id", "str"),
    ),
    "offers": _cols(  # which customer received which campaign
        Column("campaign_id", "str"),
        Column("customer_id", "str"),
    ),
    "redemptions": _cols(
        Column("customer_id", "str"),
        Column("coupon_id", "str"),
        Column("campaign_id", "str"),
        Column("timestamp", "datetime64[ns]"),
    ),
    "events": _cols(
        Column("event_id", "str"),
        Column("customer_id", "str"),
        Column("event_type", "str"),  # one of EVENT_TYPES
        Column("timestamp", "datetime64[ns]"),
        Column("product_id", "str", required=False, default=""),
        Column("coupon_id", "str", required=False, default=""),
        Column("quantity", "float64", required=False, default=1.0),
        Column("amount", "float64", required=False, default=0.0),
    ),
}


def empty(table: str) -> pd.DataFrame:
    """An empty frame of ``table`` with the canonical columns and dtypes."""
    return pd.DataFrame({c.name: pd.Series(dtype=c.dtype) for c in TABLES[table].values()})


@dataclass
class RetailData:
    """A retailer's history in the canonical schema, as typed pandas frames.

    ``transactions`` is the only table every source has; the others may be empty frames.
    ``name`` says where it came from (for reports and MLflow tags).
    """

    name: str
    transactions: pd.DataFrame
    products: pd.DataFrame = field(default_factory=lambda: empty("products"))
    customers: pd.DataFrame = field(default_factory=lambda: empty("customers"))
    campaigns: pd.DataFrame = field(default_factory=lambda: empty("campaigns"))
    coupons: pd.DataFrame = field(default_factory=lambda: empty("coupons"))
    offers: pd.DataFrame = field(default_factory=lambda: empty("offers"))
    redemptions: pd.DataFrame = field(default_factory=lambda: empty("redemptions"))


__all__ = ["CATEGORY_SEP", "EVENT_TYPES", "Column", "TABLES", "empty", "RetailData"]
