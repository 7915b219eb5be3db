"""Customer-intelligence benchmarks: BG/NBD on CDNOW, churn on real data, profiling at scale.

Usage::

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/customers.py [--only cdnow,churn,scale]
        [--customers 1000000] [--threads N]

- ``cdnow``: BG/NBD + Gamma-Gamma on the CDNOW 1/10th sample, calibration 1997-01-01 to
  1997-09-30 (39 weeks, time in weeks, t_x and T from each customer's first purchase, repeat
  purchases counted as purchase days), against Fader, Hardie & Lee (2005); predicted vs actual
  repeat purchase days in the following 39 weeks (to 1998-06-30).
- ``churn``: the churn classifier vs the recency-only and BG/NBD baselines on the last fully
  observed 90-day window of The Complete Journey and of UCI Online Retail.
- ``scale``: ``profile_customers`` on ``recsys.data.synthetic.generate(N)`` customers (with
  products, redemptions and the customers table, as ``recsys customers profile`` does).

Reads ``../shared/data`` (or ``RECSYS_SHARED_DATA``); writes nothing.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from recsys.customers import (  # noqa: E402
    BGNBD,
    CustomersConfig,
    FutureRowsWarning,
    GammaGamma,
    build_history,
    evaluate_churn,
    profile_customers,
)
from recsys.customers.config import ChurnConfig  # noqa: E402
from recsys.customers.summary import summarize  # noqa: E402

DATA = Path(os.environ.get("RECSYS_SHARED_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "data"))
PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


def md(frame: pd.DataFrame, index: bool = True) -> str:
    """A DataFrame as a GitHub markdown table (numbers as formatted by pandas)."""
    frame = frame.reset_index() if index else frame
    cells = frame.astype(object).where(frame.notna(), "").astype(str)
    rows = [list(map(str, frame.columns)), *cells.to_numpy().tolist()]
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    lines.insert(1, "|" + "---|" * len(frame.columns))
    return "\n".join(lines)


def read_cdnow_sample(path: Path) -> pd.DataFrame:
    """CDNOW sample (``id sample_index yyyymmdd n_cds dollars``) -> canonical transactions."""
    raw = pd.read_csv(path, sep=r"\s+", header=None, dtype={0: str, 2: str},
                      names=["customer_id", "index", "date", "cds", "amount"])
    return pd.DataFrame({"order_id": raw.index.astype(str), "customer_id": raw["customer_id"],
                         "amount": raw["amount"],
                         "timestamp": pd.to_datetime(raw["date"], format="%Y%m%d")})


def cdnow() -> None:
    tx = read_cdnow_sample(DATA / "cdnow" / "CDNOW_sample.txt.gz")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureRowsWarning)
        cal = summarize(build_history(tx, as_of="1997-09-30"))
    full = summarize(build_history(tx, as_of="1998-06-30"))
    x = (cal.n_days - 1).astype(float)
    t_x, T = (cal.last_day - cal.first_day) / 7, (cal.cut_day - cal.first_day) / 7
    t0 = time.perf_counter()
    bg = BGNBD().fit(x, t_x, T)
    fit_s = time.perf_counter() - t0
    table = pd.DataFrame({"published": PUBLISHED, "fitted": dict(zip(PUBLISHED, bg.params_,
                                                                      strict=True))})
    table["rel_error_%"] = 100 * (table["fitted"] / table["published"] - 1)
    print(f"\n## BG/NBD on CDNOW sample ({len(x)} customers, fit {fit_s * 1000:.0f} ms, "
          f"log-likelihood {bg.log_likelihood_:.2f})\n")
    print(md(table.round(4)))
    gg = GammaGamma().fit(x, cal.repeat_mean)
    print(f"\nGamma-Gamma p, q, gamma = {np.round(gg.params_, 3).tolist()} "
          "(Fader & Hardie 2013: 6.25, 3.74, 15.44)")
    actual_days = full.n_days - cal.n_days  # repeat purchase days in weeks 40-78
    actual_tx = tx[tx["timestamp"] > "1997-09-30"].groupby("customer_id").size()
    pred = bg.expected_purchases(39, x, t_x, T)
    # Population forecast (FHL 2005 fig. 2): E[X(T+39)] - E[X(T)] with t from first purchase.
    uncond = (bg.expected_purchases_new(T + 39) - bg.expected_purchases_new(T)).sum()
    print("\nRepeat purchases in the 39 holdout weeks (1997-10-01 .. 1998-06-30):\n")
    print(md(pd.DataFrame({"count": {
        "actual purchase days": actual_days.sum(),
        "actual transactions (rows)": int(actual_tx.sum()),
        "predicted, sum of conditional E[Y(39) given x, t_x, T]": pred.sum(),
        "predicted, population E[X(T+39)] - E[X(T)]": uncond,
    }}).round(1)))
    group = np.minimum(x, 7).astype(int)
    by = pd.DataFrame({"x": group, "actual": actual_days, "predicted": pred}).groupby("x")
    out = by.agg(customers=("actual", "size"), actual_mean=("actual", "mean"),
                 predicted_mean=("predicted", "mean"))
    out.index = [str(i) if i < 7 else "7+" for i in out.index]
    print("\nBy calibration-period repeat purchases (FHL 2005 fig. 5):\n")
    print(md(out.round(3)))


def _real(name: str):  # noqa: ANN202 - RetailData
    from recsys.data.clean import clean
    from recsys.data.load import load_dataset

    source = DATA / "online_retail" / "online_retail.csv.gz" if name == "online_retail" \
        else name
    data, _ = clean(load_dataset(source))
    return data


def churn(threads: int | None) -> None:
    config = CustomersConfig(churn=ChurnConfig(n_threads=threads))
    for name in ("completejourney", "online_retail"):
        data = _real(name)
        history = build_history(data.transactions,
                                products=data.products if len(data.products) else None,
                                redemptions=data.redemptions if len(data.redemptions) else None)
        t0 = time.perf_counter()
        report = evaluate_churn(history, config=config)
        secs = time.perf_counter() - t0
        print(f"\n## Churn, {name}: cut {report.cut:%Y-%m-%d}, horizon "
              f"{config.churn.horizon_days} days, {report.n_train} training rows, "
              f"{report.n_eval} customers scored, churn rate {report.churn_rate:.3f} "
              f"({secs:.1f} s)\n")
        print(md(report.scores.round(4), index=False))
        print("\nCalibration (equal-width bins of predicted churn probability):\n")
        for method, table in report.calibration.groupby("method", sort=False):
            print(f"\n{method}:\n")
            print(md(table.drop(columns="method").round(3), index=False))


def scale(n_customers: int, threads: int | None) -> None:
    from recsys.data.synthetic import generate

    t0 = time.perf_counter()
    data = generate(n_customers, 2000, seed=0)
    gen_s = time.perf_counter() - t0
    tx = data.transactions
    print(f"\n## Profiling {n_customers:,} synthetic customers ({len(tx):,} lines, "
          f"{tx['order_id'].nunique():,} orders, {tx['customer_id'].nunique():,} buyers; "
          f"generated in {gen_s:.0f} s)\n")
    config = CustomersConfig(churn=ChurnConfig(n_threads=threads))
    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    profile = profile_customers(tx, config=config, products=data.products,
                                redemptions=data.redemptions, customers=data.customers)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"profile_customers: {secs:.1f} s wall, {cpu:.1f} s CPU for {len(profile):,} rows "
          f"(churn risk from {profile.attrs.get('churn_source')}; 1-min load average "
          f"{load:.1f} before, {os.getloadavg()[0]:.1f} after, {os.cpu_count()} cores)")
    print(md(profile["stage"].value_counts().to_frame().T, index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="cdnow,churn,scale")
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=None,
                        help="OpenMP threads of the churn classifier (default: all cores)")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    if "cdnow" in parts:
        cdnow()
    if "churn" in parts:
        churn(args.threads)
    if "scale" in parts:
        scale(args.customers, args.threads)


if __name__ == "__main__":
    main()
