"""CPU per ranked customer, in process, through the engine the API and batch picks use.

Loads a bundle (e.g. the champion of ``make run``: ``--bundle`` a directory, or
``--model loyalty-recsys`` to fetch the champion from the MLflow store), then ranks
``--customers`` random stored customers one at a time (no answer cache: every call ranks)
and in batches of ``--batch``, for each mode; then ``--customers`` others one at a time
after one live purchase each (a stored customer with events since the bundle is ranked
afresh, not read from the lists stored at fit). Prints the median and p90 CPU milliseconds
per customer (``time.process_time``) and customers per CPU second in batches, with the
load average, since the machine may be shared.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/ranking_cpu.py --model loyalty-recsys
        [--customers 300] [--batch 500] [--modes mixed,discover,buy_again,new_arrivals]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys.bundle import read_bundle  # noqa: E402
from recsys.policy.pipeline import Engine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, help="a bundle directory")
    parser.add_argument("--model", help="registered model whose champion to fetch")
    parser.add_argument("--customers", type=int, default=300)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--modes", default="mixed,discover,buy_again,new_arrivals")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.bundle
        if path is None:
            from training.tracking import fetch_bundle, setup

            setup(args.model)
            path, _ = fetch_bundle(args.model, None, Path(tmp))
        engine = Engine(read_bundle(path))
        rng = np.random.default_rng(0)
        ids = engine.customers.ids
        picked = [str(c) for c in rng.choice(ids, min(2 * args.customers, len(ids)),
                                              replace=False)]
        sample, live = picked[: len(picked) // 2], picked[len(picked) // 2:]
        quiet = np.setdiff1d(ids.astype(str), live)  # the batch: no live events
        batch = [str(c) for c in rng.choice(quiet, min(args.batch, len(quiet)), replace=False)]
        products = engine.product_ids
        for customer in live:  # one purchase since the bundle
            engine.add_interactions(customer, [str(products[rng.integers(len(products))])],
                                    [1.0])
        print(f"bundle {path}: model {engine.model.name}, {len(ids):,} customers x "
              f"{engine.n_items:,} products; load average {os.getloadavg()[0]:.1f}")
        print("| mode | one customer: median CPU ms | p90 | batch: customers per CPU s | "
              "with a live purchase: median CPU ms | p90 |")
        print("|---|---:|---:|---:|---:|---:|")
        for mode in args.modes.split(","):
            engine.recommend(sample[0], 10, mode=mode)  # warm-up
            costs, live_costs = [], []
            for customers, out in ((sample, costs), (live, live_costs)):
                for customer in customers:
                    start = time.process_time()
                    engine.recommend(customer, 10, mode=mode)
                    out.append(time.process_time() - start)
            rates = []
            for _ in range(5):  # the median of five: one pass can hold a full collection
                start = time.process_time()
                engine.recommend_many(batch, 10, mode=mode)
                rates.append(len(batch) / (time.process_time() - start))
            rate = float(np.median(rates))
            print(f"| {mode} | {1000 * np.median(costs):.2f} | "
                  f"{1000 * np.percentile(costs, 90):.2f} | {rate:,.0f} | "
                  f"{1000 * np.median(live_costs):.2f} | "
                  f"{1000 * np.percentile(live_costs, 90):.2f} |", flush=True)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
