"""Data preparation at scale: `recsys data prepare --engine spark` on the 50M-line synthetic set.

Generates ``recsys.data.synthetic.generate(1M customers, 100k products, n_lines=50M,
seed=0)`` once (in a child process, cached under ``--cache``) and writes its transaction
lines as raw Parquet partitioned by month (``month=2024-01/...``). Then, in this fresh
process, runs ``recsys.data.spark_prepare.prepare`` on ``--master`` (default ``local[2]``)
and prints lines in and out, customers, products, customer-product pairs, wall and CPU
seconds and the peak resident memory of this process's whole tree (the driver JVM and any
Python workers, sampled from /proc), with the load average, since the machine is shared.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/prepare.py [--lines 50000000]
        [--customers 1000000] [--products 100000] [--master local[2]]
        [--driver-memory 4g] [--cache /tmp/recsys-prepare-bench]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # before benchmarks/, whose serving.py would shadow `serving`


def lines_dir(args: argparse.Namespace) -> Path:
    return Path(args.cache) / f"synthetic-{args.customers}x{args.products}-{args.lines}"


def build(args: argparse.Namespace) -> None:
    """Generate the retailer and write its lines partitioned by month (the child process)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recsys.data.synthetic import generate

    started = time.perf_counter()
    tx = generate(args.customers, args.products, n_lines=args.lines, seed=0,
                  show_progress=True).transactions
    print(f"generated {len(tx):,} lines in {time.perf_counter() - started:.0f}s", flush=True)
    table = pa.Table.from_pandas(tx, preserve_index=False)
    month = pa.array(tx["timestamp"].dt.strftime("%Y-%m"))
    del tx
    pq.write_to_dataset(table.append_column("month", month), lines_dir(args) / "lines",
                        partition_cols=["month"])
    (lines_dir(args) / "DONE").write_text(str(table.num_rows))
    print(f"written in {time.perf_counter() - started:.0f}s", flush=True)


def measure(args: argparse.Namespace) -> None:
    import pandas as pd

    from benchmarks.batch import TreeSampler
    from recsys.data.prepare import INTERACTIONS

    source = str(lines_dir(args) / "lines")
    load_before = os.getloadavg()
    sampler = TreeSampler()
    with tempfile.TemporaryDirectory(dir=args.cache) as tmp:
        from recsys.data.spark_prepare import prepare
        from training.spark import spark_session

        spark = spark_session(args.master, "prepare-bench",
                              {"spark.driver.memory": args.driver_memory,
                               "spark.local.dir": tmp})
        sampler.start()
        cpu, wall = sampler.cpu(), time.perf_counter()
        report = prepare(spark, source, Path(tmp) / "out")
        wall, cpu = time.perf_counter() - wall, sampler.cpu() - cpu
        sampler.stopped.set()
        peak = max(sampler.peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
        pairs = pd.read_parquet(Path(tmp) / "out" / INTERACTIONS,
                                columns=["customer_id", "product_id"])
        customers, products = pairs["customer_id"].nunique(), pairs["product_id"].nunique()
    load = " / ".join(f"{x:.1f}" for x in load_before), \
        " / ".join(f"{x:.1f}" for x in os.getloadavg())
    steps = report.to_frame()
    lines_in = int(steps["rows_before"].iloc[0])
    lines_out = int(steps.loc[steps["table"] == "transactions", "rows_after"].iloc[-1])
    print(report.render())
    print("\n| engine | lines in | lines out | customers | products | pairs | wall s | "
          "lines/s | CPU s | peak GiB | load before | load after |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    print(f"| spark {args.master}, driver {args.driver_memory} | {lines_in:,} | "
          f"{lines_out:,} | {customers:,} | {products:,} | "
          f"{len(pairs):,} | {wall:.0f} | {lines_in / wall:,.0f} | {cpu:.0f} | {peak:.2f} | "
          f"{load[0]} | {load[1]} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=50_000_000)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="4g",
                        help="spark.driver.memory (local mode: the whole JVM's heap).")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) /
                                               "recsys-prepare-bench"))
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        build(args)
        return
    if not (lines_dir(args) / "DONE").is_file():
        print(f"generating the lines once (cached in {lines_dir(args)}) ...", flush=True)
        subprocess.run([sys.executable, __file__, "--build-only", *sys.argv[1:]], check=True)
    measure(args)


if __name__ == "__main__":
    main()
