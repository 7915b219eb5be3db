"""CPU per ranked customer, in process, through the engine the API and batch picks use.

Loads a bundle (e.g. the champion of ``make run``: ``--bundle`` a directory, or
``--model loyalty-recsys`` to fetch the champion from the MLflow store), then ranks
``--customers`` random stored customers one at a time (no answer cache: every call ranks)
and in batches of ``--batch``, for each mode. Prints the median and p90 CPU milliseconds per
customer (``time.process_time``) and customers per CPU second in batches, with the load
average, since the machine may be shared.

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
        sample = [str(c) for c in rng.choice(ids, min(args.customers, len(ids)), replace=False)]
        batch = [str(c) for c in rng.choice(ids, min(args.batch, len(ids)), replace=False)]
        print(f"bundle {path}: model {engine.model.name}, {len(ids):,} customers x "
              f"{engine.n_items:,} products; load average {os.getloadavg()[0]:.1f}")
        print("| mode | one customer: median CPU ms | p90 | batch: customers per CPU s |")
        print("|---|---:|---:|---:|")
        for mode in args.modes.split(","):
            engine.recommend(sample[0], 10, mode=mode)  # warm-up
            costs = []
            for customer in sample:
                start = time.process_time()
                engine.recommend(customer, 10, mode=mode)
                costs.append(time.process_time() - start)
            start = time.process_time()
            engine.recommend_many(batch, 10, mode=mode)
            rate = len(batch) / (time.process_time() - start)
            print(f"| {mode} | {1000 * np.median(costs):.2f} | "
                  f"{1000 * np.percentile(costs, 90):.2f} | {rate:,.0f} |", flush=True)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
