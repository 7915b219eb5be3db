"""Batch coupon assignment at scale: 100k customers x 200 coupons, timed and checked.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/coupon_assignment.py \
        [--customers 100000] [--coupons 200] [--order score|ratio] [--seed 0]

Setup (not timed): a synthetic retailer (``recsys.data.synthetic.generate``), its customer
profile (segment, stage, tier from ``recsys.customers.profile_customers``), a customer x
product spend matrix, a generated catalog of ``--coupons`` coupons over every category prefix
of the retailer plus sitewide ones (every kind and purpose, eligibility by stage / segment /
tier, per-coupon budgets, issue caps for a third, a global budget that binds), loaded through
``parse_catalog`` against the retailer's categories, and a random history of earlier issues
(so per-customer caps bind). Birth months are random (the synthetic retailer has none).

Timed: ``CouponAssigner.assign_batch`` with the affinity computed chunk by chunk from the
spend matrix (``scoring.target_share``), exactly as batch picks call it. "wall s" is elapsed
time and "cpu s" the process's CPU time (the honest number on a shared machine; the 1-minute
load average is printed beside it).

Checked on the result: every per-customer cap, per-coupon issue cap, per-coupon and global
budget, at most one welcome coupon per customer, only eligible pairs with positive value.
The script exits 1 if any check fails. Writes nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import sparse  # noqa: E402

from recsys.coupons import (  # noqa: E402
    KINDS,
    Assignment,
    Audience,
    BudgetState,
    Catalog,
    CouponAssigner,
    EligibilityRules,
    coupon_products,
    parse_catalog,
    target_share,
)
from recsys.data.schema import CATEGORY_SEP  # noqa: E402

AT = dt.date(2024, 12, 1)
PURPOSES = ["welcome", "second_purchase", "tier_nudge", "retention", "win_back", "birthday",
            "cross_sell", "perk"]
ELIGIBLE = {  # purpose -> who may get it
    "welcome": {"stages": ["prospect", "new"]}, "second_purchase": {"stages": ["new"]},
    "tier_nudge": {"stages": ["active"], "tiers": ["basic", "silver"]},
    "retention": {"segments": ["cant_lose", "at_risk", "need_attention", "about_to_sleep"]},
    "win_back": {"stages": ["at_risk", "churned"]}, "birthday": {},
    "cross_sell": {"stages": ["active", "loyal", "new"]},
    "perk": {"stages": ["loyal"], "tiers": ["silver", "gold"]},
}


def make_catalog(categories: list[str], n_coupons: int, seed: int) -> Catalog:
    """``n_coupons`` coupons cycling kinds and purposes over category prefixes and sitewide."""
    rng = np.random.default_rng(seed)
    prefixes = sorted({CATEGORY_SEP.join(c.split(CATEGORY_SEP)[:depth]) for c in categories
                       for depth in (1, 2)})
    coupons = []
    for j in range(n_coupons):
        kind, purpose = KINDS[j % len(KINDS)], PURPOSES[j % len(PURPOSES)]
        target = {} if j % 10 == 0 else {"categories": [prefixes[j % len(prefixes)]]}
        coupon: dict[str, object] = {
            "id": f"k{j:03d}", "kind": kind, "purpose": purpose, "target": target,
            "valid_from": "2024-01-01", "valid_to": "2025-12-31",
            "eligible": ELIGIBLE[purpose], "per_customer_cap": int(rng.integers(1, 4)),
            "budget": float(rng.choice([50.0, 200.0, 1000.0, 5000.0])),
            "min_basket": float(rng.choice([0.0, 0.0, 25.0, 60.0])),
            "cost": {"per_issue": float(rng.choice([0.0, 0.02, 0.05]))},
            "margin": {"basket_value": float(rng.uniform(25, 80)), "target_share":
                       float(rng.uniform(0.1, 0.6)), "gross_margin": 0.3,
                       "incrementality": float(rng.uniform(0.2, 0.7)),
                       "future_margin": float(rng.choice([0.0, 2.0, 8.0]))},
        }
        if j % 3 == 0:
            coupon["max_issues"] = int(rng.integers(500, 5000))
        if kind == "percent_off":
            coupon["value"] = float(rng.choice([5, 10, 15, 20, 30]))
        elif kind in ("amount_off", "free_shipping"):
            coupon["value"] = float(rng.choice([2.0, 4.99, 5.0, 10.0]))
        elif kind == "points_multiplier":
            coupon["value"] = float(rng.choice([2.0, 3.0, 5.0]))
        else:
            coupon["buy"], coupon["get"] = 2, 1
        coupons.append(coupon)
    raw = {"budget": 30_000.0, "max_per_customer": 3, "coupons": coupons,
           "prior": {"intercept": -3.0, "affinity_slope": 4.0,
                     "stage_offsets": {"new": 1.0, "active": 0.5, "churned": -1.0}}}
    return parse_catalog(raw, known_categories=categories, today=AT, source="generated")


@dataclass(frozen=True)
class Setup:
    """Everything the timed call needs."""

    catalog: Catalog
    audience: Audience
    spend: sparse.csr_matrix  # (customers, products)
    targets: sparse.csr_matrix  # (coupons, products)
    issued: sparse.csr_matrix  # (customers, coupons) earlier issues
    lines: int


def setup(n_customers: int, n_coupons: int, seed: int) -> Setup:
    """Retailer, profile, spend matrix, catalog, audience and earlier issues."""
    from recsys.customers import profile_customers
    from recsys.customers.config import ChurnConfig, CustomersConfig
    from recsys.data.synthetic import generate

    data = generate(n_customers, 2000, seed=seed)
    tx = data.transactions
    profile = profile_customers(tx, customers=data.customers,
                                config=CustomersConfig(churn=ChurnConfig(n_threads=1)))
    customers = data.customers.merge(profile, on="customer_id", how="left")
    customers["avg_basket"] = customers["monetary"] / customers["frequency"].where(
        customers["frequency"] > 0)
    rng = np.random.default_rng(seed)
    customers["birth_month"] = rng.integers(1, 13, len(customers))
    audience = Audience.from_frame(customers)
    ids = pd.Index(audience.customer_ids)
    products = data.products
    pidx = pd.Index(products["product_id"].astype(str))
    spend = sparse.csr_matrix(
        (tx["amount"].to_numpy(np.float64).clip(min=0),
         (ids.get_indexer(tx["customer_id"].astype(str)),
          pidx.get_indexer(tx["product_id"].astype(str)))),
        shape=(len(ids), len(pidx)))
    categories = products["category"].astype(str).tolist()
    catalog = make_catalog(categories, n_coupons, seed)
    targets = coupon_products(catalog, pidx.to_numpy(dtype=object),
                              np.asarray(categories, dtype=object))
    issued = sparse.random(len(ids), n_coupons, density=0.01, format="csr", random_state=seed,
                           data_rvs=lambda k: rng.integers(1, 3, k)).astype(np.int64)
    return Setup(catalog, audience, spend, targets, issued, len(tx))


def check(result: Assignment, catalog: Catalog, assigner: CouponAssigner,
          audience: Audience, issued: sparse.csr_matrix, state: BudgetState) -> list[str]:
    """Every budget and cap, eligibility and value; returns the failed checks (empty: ok)."""
    n, m = len(audience), len(catalog.coupons)
    ci, cj, cost = result.customer_idx, result.coupon_idx, result.expected_cost
    econ = assigner.econ
    rules = EligibilityRules(catalog)
    spent = np.bincount(cj, weights=cost, minlength=m)
    tests = {
        "per-customer cap (max_per_customer)":
            np.bincount(ci, minlength=n).max(initial=0) <= catalog.max_per_customer,
        "no pair twice": len(np.unique(ci.astype(np.int64) * m + cj)) == len(ci),
        "one welcome coupon per customer":
            np.bincount(ci[rules.welcome[cj]], minlength=n).max(initial=0) <= 1,
        "per-coupon issue caps (max_issues)": (np.bincount(cj, minlength=m)
                                               <= econ.max_issues).all(),
        "per-coupon budgets": (spent <= econ.budget + 1e-6).all(),
        "global budget": cost.sum() <= catalog.budget + 1e-6,
        "eligible pairs only (validity, segment/stage/tier, consent, per_customer_cap, "
        "birthday month)": rules.mask(audience.take(ci), AT, issued=issued[ci])[
            np.arange(len(ci)), cj].all(),
        "positive expected value": (result.score > 0).all(),
        "budget state charged exactly": np.allclose(state.coupon_budget, econ.budget - spent,
                                                    atol=1e-6)
        and abs(state.budget - (catalog.budget - cost.sum())) < 1e-6,
    }
    for name, ok in tests.items():
        print(f"- {name}: {'ok' if ok else 'FAILED'}")
    return [name for name, ok in tests.items() if not ok]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--coupons", type=int, default=200)
    ap.add_argument("--order", choices=["score", "ratio"], default="score")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    s = setup(args.customers, args.coupons, args.seed)
    assigner = CouponAssigner(s.catalog, order=args.order)
    print(f"setup {time.perf_counter() - t0:.0f} s: {len(s.audience):,} customers "
          f"({s.lines:,} lines), {len(s.catalog.coupons)} coupons, "
          f"{s.issued.nnz:,} earlier (customer, coupon) issues")

    def affinity(rows: np.ndarray) -> np.ndarray:
        return target_share(s.spend[rows], s.targets, assigner.sitewide)

    state = BudgetState.from_catalog(s.catalog, assigner.econ)
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    result = assigner.assign_batch(s.audience, affinity, AT, state=state, issued=s.issued)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    econ = assigner.econ
    spent = np.bincount(result.coupon_idx, weights=result.expected_cost,
                        minlength=len(econ.budget))
    issues = np.bincount(result.coupon_idx, minlength=len(econ.budget))
    per_customer = np.bincount(np.bincount(result.customer_idx, minlength=len(s.audience)))
    print(f"\nassign_batch (order={args.order}): {wall:.1f} s wall, {cpu:.1f} s CPU "
          f"(1-min load average {load:.1f} before, {os.getloadavg()[0]:.1f} after, "
          f"{os.cpu_count()} cores)\n")
    print("| measure | value |\n|---|---|")
    for name, value in {
        "coupons given": f"{len(result):,}",
        "customers with 0 / 1 / 2 / 3 coupons": " / ".join(f"{v:,}" for v in per_customer),
        "expected value (sum of scores)": f"{result.score.sum():,.0f}",
        "expected cost / global budget": f"{result.expected_cost.sum():,.0f} / "
                                         f"{s.catalog.budget:,.0f}",
        "coupons at their budget (within 1%)": int((spent >= 0.99 * econ.budget).sum()),
        "coupons at their issue cap": int((issues >= econ.max_issues).sum()),
        "coupons never given": int((issues == 0).sum()),
    }.items():
        print(f"| {name} | {value} |")
    print("\nchecks:")
    failed = check(result, s.catalog, assigner, s.audience, s.issued, state)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
