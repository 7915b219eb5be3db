"""Batch picks at scale: 1M synthetic customers x 100k products, top-10 plus one coupon.

Builds an ALS bundle from ``recsys.data.synthetic.generate`` once (in a child process, cached
under ``--cache``), then, in this fresh process, loads it and runs the real job
(``training.jobs.picks.write_picks``: every customer with consent, Parquet output, ranking on
``--workers`` threads, coupons against one campaign budget). Prints throughput (wall clock
and per CPU-second), peak memory (``ru_maxrss`` of this process, threads included) and the
load average, since the machine may be shared.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/batch.py [--customers 1000000]
        [--products 100000] [--lines 10000000] [--factors 32] [--chunk-size 5000]
        [--workers 2] [--limit N] [--cache /tmp/recsys-batch-bench]
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
sys.path.insert(0, str(REPO))


def bundle_dir(args: argparse.Namespace) -> Path:
    return Path(args.cache) / (f"synthetic-{args.customers}x{args.products}-{args.lines}"
                               f"-als{args.factors}") / "bundle"


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
    cfg = TrainConfig(model=ModelConfig(name="als", params={"factors": args.factors,
                                                            "iterations": 5}),
                      customers_config=str(configs / "customers.yaml"),
                      coupons=str(configs / "coupons.yaml"), policy=str(configs / "policy.yaml"))
    build_bundle(data, cfg, bundle_dir(args))
    print(f"bundle built in {time.perf_counter() - started:.0f}s", flush=True)


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(args: argparse.Namespace) -> None:
    from recsys.bundle import read_bundle
    from recsys.policy.pipeline import Engine
    from training.jobs.picks import write_picks

    started = time.perf_counter()
    engine = Engine(read_bundle(bundle_dir(args)))
    print(f"bundle loaded in {time.perf_counter() - started:.1f}s: {len(engine.customers):,} "
          f"customers x {engine.n_items:,} products, ALS {args.factors} factors; peak "
          f"{peak_gib():.2f} GiB", flush=True)
    audience = "all"
    if args.limit:
        ids = engine.customers.ids[: args.limit]
        listed = Path(tempfile.mkdtemp()) / "audience.txt"
        listed.write_text("\n".join(ids))
        audience = f"@{listed}"
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "picks.parquet"
        cpu, wall = cpu_seconds(), time.perf_counter()
        summary = write_picks(engine, audience, out, n=10, coupons=1,
                              chunk_size=args.chunk_size, workers=args.workers, run_id="bench")
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        size = out.stat().st_size
    load_after = os.getloadavg()
    rate = summary.written / wall
    print(f"\naudience {summary.audience:,}; written {summary.written:,} rows "
          f"({size / 2**20:.0f} MiB Parquet); skipped {summary.skipped_no_consent:,} without "
          f"personalization consent, {summary.skipped_no_marketing:,} without marketing "
          f"consent; coverage {summary.coverage:.1%}; coupons {summary.coupons_issued:,}, "
          f"budget used {summary.coupon_budget_used:,.0f} of {summary.coupon_budget:,.0f}")
    print("\n| customers | chunk | workers | wall s | customers/s | CPU s | customers per CPU s "
          "| peak GiB | load before | load after |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    print(f"| {summary.written:,} | {args.chunk_size} | {args.workers} | {wall:.1f} | "
          f"{rate:,.0f} | {cpu:.1f} | {summary.written / cpu:,.0f} | {peak_gib():.2f} | "
          f"{' '.join(f'{x:.1f}' for x in load_before)} | "
          f"{' '.join(f'{x:.1f}' for x in load_after)} |")
    print(f"\ntargets: >= 20,000 customers/s -> {'met' if rate >= 20_000 else 'NOT met'} "
          f"({rate:,.0f}); peak < 4 GiB -> {'met' if peak_gib() < 4 else 'NOT met'} "
          f"({peak_gib():.2f} GiB); cores busy on average {cpu / wall:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--factors", type=int, default=32)
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="Only the first N customers.")
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
