"""Synthetic generator at scale: wall time and peak memory of ``recsys.data.synthetic.generate``.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/synthetic.py [--only NAME ...] [--write]
    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/synthetic.py --structure

"seconds" is wall time, "cpu s" the process's CPU time (the honest number when the machine is
shared). Each scale runs in a fresh subprocess so its peak resident memory (``ru_maxrss``, which
includes the interpreter and imports, reported as "base") is its own. ``--write`` also times
``recsys.data.load.write_dataset`` to Parquet in a temporary directory (deleted afterwards);
otherwise nothing is written. Prints a table. ``--structure`` instead prints the planted
structure measured on two small sets (what the unit tests check with thresholds).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCALES = {  # name: (customers, products, lines)
    "1M": (20_000, 5_000, 1_000_000),
    "10M": (200_000, 20_000, 10_000_000),
    "10M_wide": (1_000_000, 100_000, 10_000_000),
    "50M": (1_000_000, 100_000, 50_000_000),
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_one(customers: int, products: int, lines: int, write: bool) -> dict[str, object]:
    """Generate once in this process; returns counts, seconds and peak MiB."""
    sys.path.insert(0, str(REPO))
    from recsys.data.synthetic import generate

    base = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    data = generate(customers, products, n_lines=lines, seed=0)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    tx = data.transactions
    out: dict[str, object] = {
        "lines": len(tx), "orders": int(tx["order_id"].nunique()), "offers": len(data.offers),
        "redemptions": len(data.redemptions), "seconds": seconds, "cpu_s": cpu, "base_mb": base,
        "peak_mb": _rss_mb(),
        "frame_mb": sum(getattr(data, t).memory_usage(deep=True).sum() for t in
                        ("transactions", "products", "customers", "offers")) / 2**20,
    }
    if write:
        from recsys.data.load import write_dataset

        with tempfile.TemporaryDirectory() as tmp:
            t1 = time.perf_counter()
            files = write_dataset(data, tmp, "parquet")
            out["write_s"] = time.perf_counter() - t1
            out["parquet_mb"] = sum(f.stat().st_size for f in files) / 2**20
        out["peak_write_mb"] = _rss_mb()
    return out


def structure(customers: int, products: int) -> dict[str, float]:
    """Planted structure of ``generate(customers, products, seed=0)``, measured on its tables."""
    sys.path.insert(0, str(REPO))
    import numpy as np
    import pandas as pd

    from recsys.data.schema import CATEGORY_SEP
    from recsys.data.synthetic import generate

    data = generate(customers, products, seed=0)
    cat = data.products.set_index("product_id")["category"].str.split(CATEGORY_SEP).str[1]
    tx = data.transactions.assign(category=lambda f: f["product_id"].map(cat))
    counts = np.sort(tx.groupby("product_id").size().reindex(
        data.products["product_id"], fill_value=0).to_numpy())
    n = len(counts)
    first_sale = tx.groupby("product_id")["timestamp"].min()
    coupons = data.coupons.merge(data.campaigns[["campaign_id", "start"]], on="campaign_id")
    pairs = data.offers.merge(coupons[["campaign_id", "coupon_id", "start"]].drop_duplicates(),
                              on="campaign_id")
    pairs["category"] = pairs["coupon_id"].map(
        coupons["product_id"].map(cat).groupby(coupons["coupon_id"]).first())
    key = pd.MultiIndex.from_frame(pairs[["customer_id", "coupon_id"]])
    pairs["redeemed"] = key.isin(pd.MultiIndex.from_frame(
        data.redemptions[["customer_id", "coupon_id"]]))
    pairs["share"] = 0.0
    for start, idx in pairs.groupby("start").groups.items():
        before = tx[tx["timestamp"] < start]
        share = pd.crosstab(before["customer_id"], before["category"], normalize="index").stack()
        at = pd.MultiIndex.from_frame(pairs.loc[idx, ["customer_id", "category"]])
        pairs.loc[idx, "share"] = share.reindex(at).fillna(0.0).to_numpy()
    bought = coupons.merge(tx[["customer_id", "product_id", "timestamp"]], on="product_id")
    bought = bought[bought["timestamp"] < bought["start"]]
    pairs["bought"] = key.isin(pd.MultiIndex.from_frame(bought[["customer_id", "coupon_id"]]))
    positive = pairs["share"] > 0
    high = positive & (pairs["share"] >= pairs.loc[positive, "share"].median())
    ordered = tx.sort_values(["timestamp", "order_id"], kind="stable")
    return {
        "lines": len(tx),
        "lines/order": len(tx) / tx["order_id"].nunique(),
        "repeat share": ordered.duplicated(["customer_id", "product_id"]).mean(),
        "gini": float((2 * np.arange(1, n + 1) - n - 1) @ counts / (n * counts.sum())),
        "new last 28d": int((first_sale >= tx["timestamp"].max().normalize()
                             - pd.Timedelta(days=27)).sum()),
        "online share": tx["store_id"].eq("online").mean(),
        "redeem rate": pairs["redeemed"].mean(),
        "rate share=0": pairs.loc[pairs["share"] == 0, "redeemed"].mean(),
        "rate share low": pairs.loc[positive & ~high, "redeemed"].mean(),
        "rate share high": pairs.loc[high, "redeemed"].mean(),
        "rate bought": pairs.loc[pairs["bought"], "redeemed"].mean(),
        "rate not bought": pairs.loc[~pairs["bought"], "redeemed"].mean(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(SCALES), default=None)
    parser.add_argument("--write", action="store_true", help="also time write_dataset (parquet)")
    parser.add_argument("--one", nargs=3, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--structure", action="store_true",
                        help="print the planted structure of two small sets instead")
    args = parser.parse_args()
    if args.structure:
        rows = {f"{c}x{p}": structure(c, p) for c, p in ((2_000, 500), (20_000, 5_000))}
        print(f"{'measure':<16}" + "".join(f"{k:>14}" for k in rows))
        for m in next(iter(rows.values())):
            print(f"{m:<16}" + "".join(f"{r[m]:>14,}" if isinstance(r[m], int)
                                       else f"{r[m]:>14.4f}" for r in rows.values()))
        return
    if args.one:
        print(json.dumps(run_one(*args.one, write=args.write)))
        return
    header = (f"{'scale':<9} {'customers':>9} {'products':>8} {'target':>10} {'lines':>10} "
              f"{'orders':>9} {'redeem':>7} {'seconds':>7} {'cpu s':>7} {'base MiB':>8} "
              f"{'peak MiB':>8} {'frames MiB':>10}")
    if args.write:
        header += f" {'write s':>7} {'parquet MiB':>11} {'peak w MiB':>10}"
    print(header)
    for name in args.only or SCALES:
        c, p, n = SCALES[name]
        cmd = [sys.executable, __file__, "--one", str(c), str(p), str(n)]
        cmd += ["--write"] if args.write else []
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
        if proc.returncode:
            print(f"{name:<9} failed: {proc.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        row = (f"{name:<9} {c:>9,} {p:>8,} {n:>10,} {r['lines']:>10,} {r['orders']:>9,} "
               f"{r['redemptions']:>7,} {r['seconds']:>7.1f} {r['cpu_s']:>7.1f} "
               f"{r['base_mb']:>8.0f} {r['peak_mb']:>8.0f} {r['frame_mb']:>10.0f}")
        if args.write:
            row += f" {r['write_s']:>7.1f} {r['parquet_mb']:>11.0f} {r['peak_write_mb']:>10.0f}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
