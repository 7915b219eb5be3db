"""Fit a model on a shop's data and write the bundle serving and batch picks read: the item
and customer order, product and customer tables, popularity windows, the trained coupon
model and the shop's YAML files beside the model (``recsys.bundle`` is the format)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.bundle import PRODUCT_COLUMNS, Bundle, write_bundle
from recsys.coupons.served import ServedPropensity, fit_served_propensity
from recsys.data.baskets import build_baskets
from recsys.data.dataset import IdMap, Weighting, build_interactions
from recsys.data.features import item_features
from recsys.data.schema import RetailData
from recsys.errors import DataError
from recsys.models.base import Recommender

log = logging.getLogger(__name__)
POPULARITY_WINDOWS = {"all": None, "28d": 28, "7d": 7}


def catalog_map(data: RetailData) -> IdMap:
    """Every product in the catalog or the transactions, sorted: the bundle's item order."""
    ids = pd.concat([data.products["product_id"], data.transactions["product_id"]])
    return IdMap(np.sort(ids.astype(str).unique()))


def customer_map(data: RetailData) -> IdMap:
    """Every customer who bought something, sorted: the bundle's user order."""
    return IdMap(np.sort(data.transactions["customer_id"].astype(str).unique()))


def popularity(transactions: pd.DataFrame, products: IdMap) -> dict[str, np.ndarray]:
    """Distinct buyers per product over each window ending at the last transaction."""
    end = transactions["timestamp"].max()
    out = {}
    for name, days in POPULARITY_WINDOWS.items():
        tx = transactions if days is None else \
            transactions[transactions["timestamp"] > end - pd.Timedelta(days=days)]
        buyers = tx.drop_duplicates(["customer_id", "product_id"])["product_id"]
        idx = products.to_index(buyers.to_numpy(), missing="skip")
        out[name] = np.bincount(idx, minlength=len(products)).astype(np.float32)
    return out


def product_table(data: RetailData, products: IdMap) -> pd.DataFrame:
    """Product metadata aligned with the item order (filtering and reasons need it)."""
    meta = data.products.drop_duplicates("product_id").set_index("product_id")
    frame = meta.reindex(products.ids)
    frame.index.name = "product_id"
    frame = frame.reset_index()
    if frame["price"].isna().any():  # catalog without prices: median paid per unit
        tx = data.transactions
        unit = (tx["amount"] / tx["quantity"].where(tx["quantity"] > 0)).groupby(
            tx["product_id"]).median()
        frame["price"] = frame["price"].fillna(frame["product_id"].map(unit))
    frame["title"] = frame["title"].fillna("")
    frame["category"] = frame["category"].fillna("")
    frame["available"] = frame["available"].fillna(True).astype(bool)
    first = data.transactions.groupby("product_id")["timestamp"].min()
    frame["first_sold"] = frame["product_id"].map(first).astype("datetime64[ns]")  # NaT: never
    return frame[list(PRODUCT_COLUMNS)]


def customer_table(data: RetailData, customers: IdMap, customers_config: str | None = None
                   ) -> pd.DataFrame:
    """Per-customer targeting fields (segment, stage, tier, risk, value, consent), no PII;
    the profile (segment, stage, ...) when ``customers_config`` names a file."""
    frame = pd.DataFrame({"customer_id": customers.ids.astype(str)})
    known = data.customers.drop_duplicates("customer_id").set_index("customer_id")
    for col in ("consent_personalization", "consent_marketing"):
        values = known[col] if col in known else pd.Series(dtype=bool)
        frame[col] = frame["customer_id"].map(values).fillna(True).astype(bool)
    if customers_config and Path(customers_config).is_file():
        from recsys.customers import parse_customers_config, profile_customers

        config = parse_customers_config(Path(customers_config).read_text(), customers_config)
        profile = profile_customers(data.transactions, config=config,
                                    products=data.products, redemptions=data.redemptions)
        frame = frame.merge(profile, on="customer_id", how="left")
    if len(data.redemptions):  # features of the trained coupon propensity
        counts = data.redemptions["customer_id"].astype(str).value_counts()
        frame["coupon_redemptions"] = frame["customer_id"].map(counts).fillna(0).astype(
            np.int64)
    return frame


def coupon_propensity(data: RetailData, coupons_yaml: str | None
                      ) -> tuple[ServedPropensity | None, dict[str, object]]:
    """The trained redemption model when there is a catalog and offer history to learn from,
    else None and why coupons fall back to the prior (for the manifest)."""
    if not coupons_yaml:
        return None, {"source": "prior", "reason": "no coupon catalog"}
    started = time.perf_counter()
    try:
        served = fit_served_propensity(data)
    except DataError as exc:
        log.info("coupon propensity: prior (%s)", exc)
        return None, {"source": "prior", "reason": str(exc)}
    served.info["fit_seconds"] = round(time.perf_counter() - started, 3)
    return served, served.info


def assemble_bundle(data: RetailData, out_dir: str | Path, model: Recommender, *,
                    refit: bool = False, weighting: Weighting = "log",
                    half_life_days: float | None = None, customers_config: str | None = None,
                    coupons: str | None = None, policy: str | None = None,
                    manifest: dict[str, object] | None = None) -> Bundle:
    """Fit ``model`` on all of ``data`` (``refit``: a model already fitted on an earlier part
    of it, refitted with ``refit``) and write the bundle to ``out_dir``. ``customers_config``,
    ``coupons`` and ``policy`` are the YAML files that go with it (skipped when absent);
    ``manifest``: extra entries, e.g. ``events_until``."""
    products, customers = catalog_map(data), customer_map(data)
    inter = build_interactions(data.transactions, customers=customers, products=products,
                               weighting=weighting, half_life_days=half_life_days)
    features = item_features(data.products, data.transactions, products)
    baskets = build_baskets(data.transactions, customers, products)  # as of just after the end
    started = time.perf_counter()
    if refit:
        model.refit(inter.matrix, items=features, baskets=baskets)
    else:
        model.fit(inter.matrix, items=features, baskets=baskets)
    fit_seconds = time.perf_counter() - started
    log.info("fitted %s on %s in %.1fs", model.name, inter.shape, fit_seconds)
    tx = data.transactions
    coupons_yaml = _read_optional(coupons)
    propensity, propensity_info = coupon_propensity(data, coupons_yaml)
    bundle = Bundle(
        model=model,
        products=product_table(data, products),
        customers=customer_table(data, customers, customers_config),
        history=inter.matrix,
        popularity=popularity(tx, products),
        manifest={"dataset": data.name, "fit_seconds": round(fit_seconds, 3),
                  "data_window": [str(tx["timestamp"].min()), str(tx["timestamp"].max())],
                  "coupon_propensity": propensity_info, **(manifest or {})},
        coupons_yaml=coupons_yaml,
        policy_yaml=_read_optional(policy),
        coupon_propensity=propensity,
    )
    write_bundle(out_dir, bundle)
    return bundle


def _read_optional(path: str | None) -> str | None:
    return Path(path).read_text() if path and Path(path).is_file() else None


__all__ = ["assemble_bundle", "catalog_map", "customer_map", "popularity", "product_table",
           "customer_table", "coupon_propensity", "POPULARITY_WINDOWS"]
