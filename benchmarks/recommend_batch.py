"""Batch vs one-at-a-time ``recommend``: per-customer time for ALS and the hybrid.

Fits each model on a synthetic retailer, then times ``recommend`` for ``--batch`` customers in
one call against single-customer calls (``--singles`` of them, timed and averaged; the loop
over all customers would take minutes and says nothing more). Two request kinds: stored users
(``users`` given) and fold-in from history (``users=None``); each customer's purchases are
excluded. Timed twice: ``recommend`` alone (history rows sliced from the matrix beforehand),
and with the slicing inside the clock, as a caller that builds each request's history row
pays it. Prints a Markdown table.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/recommend_batch.py \
        [--customers 13000] [--products 1000] [--batch 10000] [--singles 500] [--n 10]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=13_000)
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
    print("| model | request | batch ms/customer | single ms/customer | speed-up | "
          "with row slicing: batch | single | speed-up |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for model in (ALS(num_threads=1), Hybrid(cf_params={"num_threads": 1})):
        model.fit(matrix, items=items)
        for label, with_users in (("stored users", True), ("fold-in", False)):
            def batch_call(rows: np.ndarray, history, m=model, users=with_users) -> None:  # type: ignore[no-untyped-def]
                m.recommend(history, args.n, users=rows if users else None, exclude=history)

            batch_call(singles[:1], matrix[singles[:1]])  # warm caches
            times = []
            for sliced in (False, True):
                histories = None if sliced else matrix[batch]
                singles_in = None if sliced else [matrix[[row]] for row in singles]
                start = time.perf_counter()
                batch_call(batch, matrix[batch] if sliced else histories)
                batch_t = (time.perf_counter() - start) / len(batch)
                start = time.perf_counter()
                for i, row in enumerate(singles):
                    rows = np.array([row])
                    batch_call(rows, matrix[rows] if sliced else singles_in[i])
                times += [batch_t, (time.perf_counter() - start) / len(singles)]
            cells = " | ".join(f"{b * 1e3:.3f} | {s * 1e3:.3f} | {s / b:.0f}x"
                               for b, s in (times[:2], times[2:]))
            print(f"| {model.name} | {label} | {cells} |", flush=True)


if __name__ == "__main__":
    main()
