"""Cleaning with a report: every dropped line is counted under a named rule, never silently.

``clean`` applies these steps to the transactions, in order:

1. ``missing_ids``: no customer id (guest checkout) or no product id.
2. ``cancellations``: cancellation or return lines (order id starting with ``C``, or a negative
   quantity) and, for each, the purchase it undoes: the most recent earlier line of the same
   customer and product with the same absolute quantity (``merge_asof``; two cancellations
   matching the same purchase remove it once).
3. ``non_positive_quantity``: quantity <= 0 or missing.
4. ``non_positive_amount``: amount <= 0 (zero or negative price). A missing amount means
   "unknown" (interactions files without prices) and is kept.
5. ``non_product_codes``: postage, fees and vouchers rather than goods. Rule: the code is one of
   ``FEE_CODES`` or starts with ``gift_`` (gift vouchers), or it has no digit at all (Online
   Retail's POST, DOT, M, D, S, B, CRUK, PADS, AMAZONFEE, BANK CHARGES, ...). The no-digit rule
   only applies when most product ids of the data contain a digit, so a catalog of word ids
   (``"apple"``) is not wiped out. Known casualty: Online Retail's DCGSSBOY / DCGSSGIRL party
   bags (24 lines) have no digit and are dropped with the fees.
6. ``unknown_products``: product id not in the product table (only when that table is not
   empty).
7. ``duplicate_lines``: exact duplicates over every canonical transaction column.

Non-product codes are also removed from the product table (reported as their own step).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recsys.data.schema import RetailData

log = logging.getLogger(__name__)

# Online Retail's fee codes: flagged even where the no-digit rule is off. C2 is carriage
# (it has a digit); the others are named so a catalog of word ids still loses them.
FEE_CODES = frozenset({"C2", "POST", "DOT", "CRUK", "PADS", "AMAZONFEE", "BANK CHARGES"})
VOUCHER_PREFIX = "GIFT_"


@dataclass(frozen=True)
class CleaningStep:
    """One rule applied to one table: rows before and after, and why they went."""

    name: str
    reason: str
    rows_before: int
    rows_after: int
    table: str = "transactions"

    @property
    def removed(self) -> int:
        return self.rows_before - self.rows_after


@dataclass
class CleaningReport:
    """What ``clean`` did to a dataset, step by step."""

    source: str
    steps: list[CleaningStep] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        """One row per step: ``step, table, rows_before, removed, rows_after, reason``."""
        return pd.DataFrame(
            [(s.name, s.table, s.rows_before, s.removed, s.rows_after, s.reason)
             for s in self.steps],
            columns=["step", "table", "rows_before", "removed", "rows_after", "reason"])

    def render(self) -> str:
        """A plain-text table for terminals and logs."""
        lines = [f"cleaning {self.source}:",
                 f"  {'step':<24}{'table':<14}{'before':>11}{'removed':>10}{'after':>11}  reason"]
        for s in self.steps:
            lines.append(f"  {s.name:<24}{s.table:<14}{s.rows_before:>11,}{s.removed:>10,}"
                         f"{s.rows_after:>11,}  {s.reason}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def non_product_mask(product_ids: pd.Series) -> np.ndarray:
    """Boolean mask of codes that are postage, fees or vouchers (rule in the module doc).

    Parameters
    ----------
    product_ids : Series of str, length n

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    distinct = pd.Series(product_ids.dropna().unique(), dtype="str")  # rule per distinct code
    codes = distinct.str.strip().str.upper()
    flagged = codes.isin(FEE_CODES) | codes.str.startswith(VOUCHER_PREFIX)
    has_digit = codes.str.contains(r"\d", regex=True)
    if len(codes) and has_digit.mean() > 0.5:
        flagged |= ~has_digit
    if not flagged.any():
        return np.zeros(len(product_ids), dtype=bool)
    return isin(product_ids, distinct[flagged.to_numpy()])


def isin(values: pd.Series, allowed: pd.Series | pd.Index | np.ndarray) -> np.ndarray:
    """``values.isin(allowed)`` as a bool array, through pyarrow (several times faster than
    pandas' own ``isin`` on pyarrow-backed strings); missing values are never in."""
    value_set = pa.array(np.asarray(allowed, dtype=object), type=pa.large_string(),
                         from_pandas=True)
    found = pc.is_in(pa.array(values.astype("str").array), value_set=value_set)
    return np.asarray(found.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _cancellations(tx: pd.DataFrame, keep: np.ndarray) -> np.ndarray:
    """Cancellation/return lines plus the purchase each undoes (see module doc, step 2).

    Only rows still in ``keep`` take part in the matching.
    """
    cancel = keep & (tx["order_id"].astype("str").str.startswith("C").fillna(False).to_numpy()
                     | (tx["quantity"] < 0).to_numpy())
    drop = cancel.copy()
    if not cancel.any():
        return drop
    pos = np.flatnonzero(keep & ~cancel & (tx["quantity"] > 0).to_numpy())
    neg = np.flatnonzero(cancel)

    def side(rows: np.ndarray) -> pd.DataFrame:
        part = tx.iloc[rows]
        return pd.DataFrame({"timestamp": part["timestamp"].to_numpy(),
                             "customer_id": part["customer_id"].to_numpy(),
                             "product_id": part["product_id"].to_numpy(),
                             "qty": np.abs(part["quantity"].to_numpy()), "row": rows}).dropna()

    left, right = side(neg).drop(columns="row"), side(pos)
    if left.empty or right.empty:
        return drop
    matched = pd.merge_asof(left.sort_values("timestamp"), right.sort_values("timestamp"),
                            on="timestamp", by=["customer_id", "product_id", "qty"],
                            direction="backward")["row"].dropna()
    drop[matched.astype(np.int64).unique()] = True
    return drop


def _duplicates(tx: pd.DataFrame) -> np.ndarray:
    """``tx.duplicated()``, computed exactly but only over rows whose numbers collide.

    Exact duplicates share timestamp, quantity and amount; hashing those three numbers first
    leaves few candidate rows for the (slow) comparison of the string columns.
    """
    ts = tx["timestamp"].to_numpy().view(np.int64)
    amount = np.where(np.isnan(tx["amount"].to_numpy()), np.nan, tx["amount"].to_numpy())
    quantity = np.where(np.isnan(tx["quantity"].to_numpy()), np.nan, tx["quantity"].to_numpy())
    key = (ts * np.int64(1_000_003)) ^ (amount.view(np.int64) * np.int64(998_244_353)) \
        ^ quantity.view(np.int64)
    order = np.argsort(key)
    same = key[order][1:] == key[order][:-1]
    collide = np.zeros(len(tx), dtype=bool)
    collide[order[1:][same]] = True
    collide[order[:-1][same]] = True
    candidates = np.flatnonzero(collide)
    out = np.zeros(len(tx), dtype=bool)
    out[candidates] = tx.iloc[candidates].duplicated().to_numpy()
    return out


def _record(report: CleaningReport, step: CleaningStep) -> None:
    report.steps.append(step)
    log.info("clean %s: %s removed %d of %d %s", report.source, step.name, step.removed,
             step.rows_before, step.table)


def clean(data: RetailData) -> tuple[RetailData, CleaningReport]:
    """Apply the cleaning rules of this module (in order) and report each one.

    Parameters
    ----------
    data : RetailData
        Raw canonical data (``recsys.data.load.load_dataset``).

    Returns
    -------
    cleaned : RetailData
        A new object; transactions re-indexed 0..n-1, other tables shared unless changed.
    report : CleaningReport
        One step per rule with rows before/after, including steps that removed nothing.
    """
    tx = data.transactions.reset_index(drop=True)
    report = CleaningReport(source=data.name)
    products = data.products
    known = pd.Index(products["product_id"].dropna().unique()) if len(products) else None

    def missing_ids(t: pd.DataFrame, _keep: np.ndarray) -> np.ndarray:
        cid, pid = t["customer_id"], t["product_id"]
        return (cid.isna() | (cid == "") | pid.isna() | (pid == "")).to_numpy()

    # Each rule sees the whole table and the rows kept so far; the table is filtered once
    # before the duplicate check (string takes on millions of rows are the slow part).
    Rule = Callable[[pd.DataFrame, np.ndarray], np.ndarray]
    steps: list[tuple[str, str, Rule]] = [
        ("missing_ids", "no customer id (guest) or no product id", missing_ids),
        ("cancellations", "order id starts with C or quantity < 0, plus the purchase each "
         "undoes", _cancellations),
        ("non_positive_quantity", "quantity <= 0 or missing",
         lambda t, _k: ~(t["quantity"] > 0).to_numpy()),
        ("non_positive_amount", "amount <= 0 (zero or negative price; unknown kept)",
         lambda t, _k: (t["amount"] <= 0).to_numpy()),
        ("non_product_codes", "postage, fees, vouchers (code without digit, fee code, gift_*)",
         lambda t, _k: non_product_mask(t["product_id"])),
    ]
    if known is not None:
        steps.append(("unknown_products", "product id not in the product table",
                      lambda t, _k: ~isin(t["product_id"], known)))
    keep = np.ones(len(tx), dtype=bool)
    for name, reason, rule in steps:
        before = int(keep.sum())
        keep &= ~rule(tx, keep)
        _record(report, CleaningStep(name, reason, before, int(keep.sum())))
    if not keep.all():
        tx = tx[keep].reset_index(drop=True)
    dup = _duplicates(tx)
    if dup.any():
        tx = tx[~dup].reset_index(drop=True)
    _record(report, CleaningStep("duplicate_lines", "exact duplicate of an earlier line",
                                 len(tx) + int(dup.sum()), len(tx)))
    out = replace(data, transactions=tx)
    if len(products):
        keep = ~non_product_mask(products["product_id"])
        out.products = products[keep].reset_index(drop=True)
        report.steps.append(CleaningStep("non_product_codes", "postage, fees, vouchers",
                                         len(products), int(keep.sum()), table="products"))
    return out, report


def summarize(transactions: pd.DataFrame) -> dict[str, object]:
    """Counts of a transaction table: lines, orders, customers, products, density, dates.

    Returns
    -------
    dict
        ``lines, orders, customers, products`` (int), ``density`` (float, distinct
        customer-product pairs / (customers x products)), ``first``, ``last`` (Timestamp or
        None).
    """
    tx = transactions
    n_c = int(tx["customer_id"].nunique())
    n_p = int(tx["product_id"].nunique())
    pairs = len(tx[["customer_id", "product_id"]].dropna().drop_duplicates())
    ts = tx["timestamp"]
    return {
        "lines": len(tx), "orders": int(tx["order_id"].nunique()), "customers": n_c,
        "products": n_p, "density": pairs / (n_c * n_p) if n_c and n_p else 0.0,
        "first": ts.min() if len(tx) else None, "last": ts.max() if len(tx) else None,
    }


__all__ = ["FEE_CODES", "CleaningStep", "CleaningReport", "clean", "non_product_mask",
           "summarize"]
