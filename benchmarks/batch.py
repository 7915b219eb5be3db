"""Batch picks at scale: 1M synthetic customers x 100k products, top-10 plus one coupon.

Builds a bundle (ALS, or with ``--model ranker`` the learned ranker, which ranks every
customer's lists at fit) from ``recsys.data.synthetic.generate`` once (in a child process,
cached under ``--cache`` with the list of every registered customer id), then, in this fresh
process, loads it and runs the real job (``training.jobs.picks.write_picks``: Parquet output,
chunks on ``--workers`` threads, one coupon each from the campaign budget) for two audiences:
``registered``, all 1M customer ids (those who never bought get the cold-start answer), and
``buyers``, the bundle's customers (all personalized). Customers without consent are
skipped. Prints throughput (wall clock and per CPU-second), peak memory (``ru_maxrss`` of
this process, threads included) and the load average, since the machine may be shared.

``--engine spark`` runs the same job on Spark (``training.jobs.spark_picks``, ``--master``,
default ``local[2]``: one Python worker per core, each loading the bundle); its CPU seconds
and peak memory are those of this process's whole tree (the JVM and the Python workers,
sampled from /proc every 0.2 s), the session start-up outside the timed part.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/batch.py [--customers 1000000]
        [--products 100000] [--lines 10000000] [--model als|ranker] [--factors 32]
        [--chunk-size 5000]
        [--workers 2] [--audiences registered,buyers] [--coupons 1] [--limit N]
        [--engine local|spark] [--master local[2]] [--cache /tmp/recsys-batch-bench]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from recsys.policy.pipeline import Engine

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def bundle_dir(args: argparse.Namespace) -> Path:
    model = f"als{args.factors}" if args.model == "als" else args.model
    return Path(args.cache) / (f"synthetic-{args.customers}x{args.products}-{args.lines}"
                               f"-{model}") / "bundle"


def build(args: argparse.Namespace) -> None:
    """Generate the retailer and fit the bundle (the child process of a first run)."""
    from recsys.data.synthetic import generate
    from training.config import ModelConfig, TrainConfig
    from training.jobs.bundle import build_bundle

    started = time.perf_counter()
    data = generate(args.customers, args.products, n_lines=args.lines, seed=0,
                    show_progress=True)
    print(f"generated {len(data.transactions):,} lines in {time.perf_counter() - started:.0f}s",
          flush=True)
    configs = REPO / "configs"
    params = {"factors": args.factors, "iterations": 5} if args.model == "als" else {}
    cfg = TrainConfig(model=ModelConfig(name=args.model, params=params),
                      customers_config=str(configs / "customers.yaml"),
                      coupons=str(configs / "coupons.yaml"), policy=str(configs / "policy.yaml"))
    build_bundle(data, cfg, bundle_dir(args))
    registered = bundle_dir(args).parent / "customers.txt"
    registered.write_text("\n".join(data.customers["customer_id"].astype(str)) + "\n")
    print(f"bundle built in {time.perf_counter() - started:.0f}s", flush=True)


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class TreeSampler(threading.Thread):
    """Peak resident memory (GiB) and CPU seconds of this process and its descendants."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.stopped = 0.0, threading.Event()

    def run(self) -> None:
        from benchmarks.serving import tree_usage

        while not self.stopped.wait(0.2):
            self.peak = max(self.peak, tree_usage(os.getpid())[0] / 1024)

    def cpu(self) -> float:
        from benchmarks.serving import tree_usage

        return tree_usage(os.getpid())[1]


def measure(args: argparse.Namespace) -> None:
    from recsys.bundle import read_bundle
    from recsys.policy.pipeline import Engine

    started = time.perf_counter()
    engine = Engine(read_bundle(bundle_dir(args)))
    print(f"bundle loaded in {time.perf_counter() - started:.1f}s: {len(engine.customers):,} "
          f"customers x {engine.n_items:,} products, model {engine.bundle.model.name}; peak "
          f"{peak_gib():.2f} GiB", flush=True)
    spark = None
    if args.engine == "spark":
        from training.spark import spark_session

        spark = spark_session(args.master, "batch-bench")
    print(f"\ntop-10 products and {args.coupons} coupon(s) per customer, engine "
          f"{args.engine}{f' ({args.master})' if spark else ''}")
    print("\n| audience | customers | chunk | workers | wall s | customers/s | CPU s | "
          "customers per CPU s | peak GiB | load before | load after |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for name in args.audiences.split(","):
        run(engine, name, args, spark)


def run(engine: Engine, name: str, args: argparse.Namespace, spark: object = None) -> None:
    """Write the picks of one audience and print its table row (and a summary on stderr)."""
    from recsys.events import EventStore
    from training.jobs.picks import write_picks
    from training.jobs.spark_picks import SparkPicks

    registered = bundle_dir(args).parent / "customers.txt"
    if name not in ("registered", "buyers"):
        raise SystemExit(f"unknown audience {name!r}: use registered or buyers")
    ids = registered.read_text().split() if name == "registered" else \
        engine.customers.ids.tolist()
    listed = Path(tempfile.mkdtemp()) / "audience.txt"
    listed.write_text("\n".join(ids[: args.limit or None]))
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "picks.parquet"
        sampler = TreeSampler()
        if spark:
            sampler.start()
        cpu, wall = sampler.cpu() if spark else cpu_seconds(), time.perf_counter()
        if spark:  # an empty journal, as the local run has
            store = EventStore(f"sqlite:///{Path(tmp) / 'events.db'}")
            job = SparkPicks.prepare(bundle_dir(args), store, f"@{listed}", str(out), n=10,
                                     coupons=args.coupons, chunk_size=args.chunk_size,
                                     workdir=Path(tmp))
            summary = job.run(spark, "bench")  # type: ignore[arg-type]
        else:
            summary = write_picks(engine, f"@{listed}", out, n=10, coupons=args.coupons,
                                  chunk_size=args.chunk_size, workers=args.workers,
                                  run_id="bench")
        wall = time.perf_counter() - wall
        cpu = (sampler.cpu() if spark else cpu_seconds()) - cpu
        sampler.stopped.set()
        peak = max(sampler.peak, peak_gib()) if spark else peak_gib()
        size = sum(f.stat().st_size for f in out.rglob("*")) if out.is_dir() else \
            out.stat().st_size
    load = " / ".join(f"{x:.1f}" for x in load_before), \
        " / ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"| {name} | {summary.written:,} | {args.chunk_size} | {args.workers} | {wall:.1f} | "
          f"{summary.written / wall:,.0f} | {cpu:.1f} | {summary.written / cpu:,.0f} | "
          f"{peak:.2f} | {load[0]} | {load[1]} |", flush=True)
    print(f"{name}: audience {summary.audience:,}, written {summary.written:,} "
          f"({size / 2**20:.0f} MiB); skipped {summary.skipped_no_consent:,} without "
          f"personalization consent, {summary.skipped_erased:,} erased and "
          f"{summary.skipped_no_marketing:,} without marketing consent; "
          f"coverage {summary.coverage:.1%}; {summary.coupons_issued:,} coupons, budget "
          f"used {summary.coupon_budget_used:,.0f} of {summary.coupon_budget:,.0f}; cores busy "
          f"{cpu / wall:.2f}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--model", choices=("als", "ranker"), default="als",
                        help="The bundle's model (ALS: --factors, 5 iterations; the learned "
                        "ranker: its defaults).")
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--audiences", default="registered,buyers")
    parser.add_argument("--coupons", type=int, default=1, help="Coupons per customer.")
    parser.add_argument("--limit", type=int, default=0, help="Only the first N customers.")
    parser.add_argument("--engine", choices=("local", "spark"), default="local")
    parser.add_argument("--master", default="local[2]", help="Spark master (--engine spark).")
    parser.add_argument("--cache", default=str(Path(tempfile.gettempdir()) /
                                               "recsys-batch-bench"))
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        build(args)
        return
    if not (bundle_dir(args) / "manifest.json").is_file():
        print(f"building the bundle once (cached in {bundle_dir(args)}) ...", flush=True)
        subprocess.run([sys.executable, __file__, "--build-only", *sys.argv[1:]], check=True)
    measure(args)


if __name__ == "__main__":
    main()
