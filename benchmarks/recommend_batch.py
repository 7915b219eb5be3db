"""Batch vs one-at-a-time ``recommend``: per-customer time for ALS and the hybrid.

Fits each model on a synthetic retailer, then times ``recommend`` for ``--batch`` customers in
one call against single-customer calls (``--singles`` of them, timed and averaged; the loop
over all customers would take minutes and says nothing more). Two request kinds: stored users
(``users`` given) and fold-in from history (``users=None``). Prints a Markdown table.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/recommend_batch.py \
        [--customers 12000] [--products 1000] [--batch 10000] [--singles 500] [--n 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from recsys.data.dataset import build_interactions  # noqa: E402
from recsys.data.features import item_features  # noqa: E402
from recsys.data.synthetic import generate  # noqa: E402
from recsys.models import ALS, Hybrid  # noqa: E402


def per_customer(call, rows: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    """Seconds per customer of ``call(rows)`` (one call for all rows)."""
    start = time.perf_counter()
    call(rows)
    return (time.perf_counter() - start) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=12_000)
    parser.add_argument("--products", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--singles", type=int, default=500)
    parser.add_argument("--n", type=int, default=10)
    args = parser.parse_args()
    data = generate(args.customers, args.products, seed=0)
    inter = build_interactions(data.transactions)
    items = item_features(data.products, data.transactions, inter.products)
    matrix = inter.matrix
    rng = np.random.default_rng(0)
    batch = rng.choice(matrix.shape[0], min(args.batch, matrix.shape[0]), replace=False)
    singles = batch[: args.singles]
    print(f"synthetic: {matrix.shape[0]} customers x {matrix.shape[1]} products, "
          f"{matrix.nnz} cells; batch of {len(batch)}, {len(singles)} single calls, n={args.n}\n")
    print("| model | request | batch ms/customer | single ms/customer | speed-up |")
    print("|---|---|---:|---:|---:|")
    for model in (ALS(num_threads=1), Hybrid(cf_params={"num_threads": 1})):
        model.fit(matrix, items=items)
        for label, with_users in (("stored users", True), ("fold-in", False)):
            def call(rows: np.ndarray, users: bool = with_users, m=model) -> None:  # type: ignore[no-untyped-def]
                m.recommend(matrix[rows], args.n, users=rows if users else None,
                            exclude=matrix[rows])

            call(singles[:5])  # warm caches
            batch_t = per_customer(call, batch)
            start = time.perf_counter()
            for row in singles:
                call(np.array([row]))
            single_t = (time.perf_counter() - start) / len(singles)
            print(f"| {model.name} | {label} | {batch_t * 1e3:.3f} | {single_t * 1e3:.3f} | "
                  f"{single_t / batch_t:.0f}x |", flush=True)


if __name__ == "__main__":
    main()
