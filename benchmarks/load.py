"""Load and soak: a realistic request mix at a fixed rate against `recsys serve` (2 workers).

    python benchmarks/load.py                                # The Complete Journey (cached)
    python benchmarks/load.py --config configs/synthetic.yaml   # the synthetic retailer
    python benchmarks/load.py --bundle DIR --duration 60 --rate 200

The mix is 70% recommendations, 15% similar products, 10% events (one new event id per
request, as a site's tracker sends them) and 5% coupons, for known and unknown customers.
The load generator is a separate process and open-loop: requests leave on schedule whatever
the answers, and latency counts from the scheduled time, so a server that falls behind shows
it. A warm-up phase runs first; the server's memory (RSS of the uvicorn master and workers,
read from /proc) is taken after it and at the end. Any non-2xx answer or transport failure is
an error. Exit status 1 when there were errors or memory grew more than --max-growth.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # before benchmarks/, whose serving.py would shadow `serving`

import numpy as np  # noqa: E402

from benchmarks.serving import CJ_CACHE, answer_cache, counted, tree_usage, wait_ready  # noqa: E402

MIX = {"recommend": 0.70, "similar": 0.15, "events": 0.10, "coupons": 0.05}
EVENT_TYPES = (("view", 0.6), ("add_to_cart", 0.25), ("purchase", 0.15))


def bundle_for(config: Path) -> Path:
    """The bundle of a training config, built once into the benchmark cache (again when
    this release cannot read the cached one)."""
    from recsys.bundle import read_bundle
    from recsys.errors import BundleError

    out = CJ_CACHE.parent / f"{config.stem}-bundle"
    try:
        read_bundle(out)
        return out
    except BundleError:
        pass
    from training.config import load_config
    from training.jobs.bundle import build_bundle
    from training.jobs.evaluate import load_clean

    cfg = load_config(config)
    print(f"building the {cfg.dataset} bundle in {out} (once) ...", flush=True)
    build_bundle(load_clean(cfg.dataset), cfg, out)
    return out


def plan(n: int, customers: list[str], products: list[str], phase: str, seed: int
         ) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """``n`` requests ``(kind, method, path, json)`` drawn from ``MIX``; one customer in ten
    is unknown to the model (cold start)."""
    rng = random.Random(seed)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=n)
    out: list[tuple[str, str, str, dict[str, Any] | None]] = []
    for i, kind in enumerate(kinds):
        customer = rng.choice(customers) if rng.random() < 0.9 else f"new-{rng.randrange(10**6)}"
        if kind == "recommend":
            out.append((kind, "GET", f"/v1/customers/{customer}/recommendations?n=10", None))
        elif kind == "similar":
            out.append((kind, "GET", f"/v1/products/{rng.choice(products)}/similar?n=10", None))
        elif kind == "coupons":
            out.append((kind, "GET", f"/v1/customers/{customer}/coupons?n=3", None))
        else:
            event_type = rng.choices([t for t, _ in EVENT_TYPES],
                                     weights=[w for _, w in EVENT_TYPES])[0]
            out.append((kind, "POST", "/v1/events", {"events": [{
                "event_id": f"load-{phase}-{i}", "customer_id": customer,
                "event_type": event_type, "product_id": rng.choice(products)}]}))
    return out


async def open_loop(base: str, key: str, requests: list[tuple[str, str, str, Any]],
                    rate: float) -> dict[str, Any]:
    """Send ``requests`` at ``rate`` per second; latency (ms) per kind and the errors."""
    import aiohttp

    latencies: dict[str, list[float]] = {kind: [] for kind in MIX}
    errors: Counter[str] = Counter()
    connector = aiohttp.TCPConnector(limit=1024)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout,
                                     headers={"X-API-Key": key}) as session:

        async def one(kind: str, method: str, path: str, body: Any, scheduled: float) -> None:
            try:
                async with session.request(method, path, json=body) as response:
                    await response.read()
                    if response.status >= 300:
                        errors[f"{kind} {response.status}"] += 1
                        return
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[f"{kind} {type(exc).__name__}"] += 1
                return
            latencies[kind].append((time.perf_counter() - scheduled) * 1e3)

        start = time.perf_counter() + 0.2
        pending: set[asyncio.Task[None]] = set()
        for i, (kind, method, path, body) in enumerate(requests):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(kind, method, path, body, scheduled))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - start
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed}


def generator(base: str, key: str, phases: list[tuple[str, float, float]],
              customers: list[str], products: list[str], out: Any) -> None:
    """The load-generator process: each ``(name, rate, seconds)`` phase, reported in turn."""
    for seed, (name, rate, seconds) in enumerate(phases):
        requests = plan(int(rate * seconds), customers, products, name, seed)
        out.put((name, asyncio.run(open_loop(base, key, requests, rate))))
    out.put(None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def report(name: str, result: dict[str, Any], rate: float) -> int:
    """Print one phase's table; returns its error count."""
    lat, errors = result["latencies"], result["errors"]
    ok = sum(len(v) for v in lat.values())
    sent = ok + sum(errors.values())
    print(f"\n{name}: {sent} requests in {result['elapsed']:.0f}s = "
          f"{sent / result['elapsed']:.0f}/s offered (target {rate:.0f}/s), {ok} ok, "
          f"{sum(errors.values())} errors")
    print("| kind | share | ok | p50 ms | p95 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|---|")
    for kind, values in [*lat.items(), ("all", [v for vs in lat.values() for v in vs])]:
        if values:
            p = np.percentile(values, [50, 95, 99, 100])
            print(f"| {kind} | {len(values) / max(ok, 1):.0%} | {len(values)} | {p[0]:.1f} | "
                  f"{p[1]:.1f} | {p[2]:.1f} | {p[3]:.1f} |")
    for what, count in errors.most_common(5):
        print(f"  error {what}: {count}")
    return sum(errors.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, help="bundle directory to serve")
    parser.add_argument("--config", type=Path, default=REPO / "configs/completejourney.yaml",
                        help="without --bundle: the training config whose bundle is built "
                             "once into the benchmark cache")
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=300.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=20.0, help="seconds before measuring")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--max-growth", type=float, default=0.10,
                        help="largest allowed RSS growth from warm to end")
    args = parser.parse_args()

    bundle = (args.bundle or bundle_for(args.config)).resolve()
    work = Path(tempfile.mkdtemp(prefix="recsys-load-"))
    key = secrets.token_urlsafe(16)
    env = {**os.environ, "RECSYS_API_KEYS": key, "RECSYS_DATA_DIR": str(work),
           "RECSYS_ADMIN_KEY": secrets.token_urlsafe(16),
           "RECSYS_BUNDLE_PATH": str(bundle), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server on the way out
    port = args.port or free_port()
    cmd = [sys.executable, "-m", "training.cli", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(args.workers), "--log-level", "warning"]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL)
    try:
        model = wait_ready(base, server)
        import pyarrow.parquet as pq

        customers = [str(c) for c in pq.read_table(bundle / "customers.parquet",
                                                   columns=["customer_id"]).column(0)]
        products = [str(p) for p in pq.read_table(bundle / "products.parquet",
                                                  columns=["product_id"]).column(0)]
        print(f"model {model['model']} version {model['model_version']}, {model['n_items']} "
              f"items, {len(customers)} customers; {args.workers} uvicorn workers; "
              f"{args.rate:.0f} req/s for {args.duration:.0f}s after {args.warmup:.0f}s warm-up")
        print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} on "
              f"{os.cpu_count()} cores", flush=True)
        ctx = mp.get_context("spawn")
        out = ctx.Queue()
        phases = [("warm-up", args.rate, args.warmup), ("measured", args.rate, args.duration)]
        gen = ctx.Process(target=generator, args=(base, key, phases, customers, products, out),
                          daemon=True)  # ends with this process, even on SIGTERM
        gen.start()
        errors, usage, cache, shed = 0, {}, {}, {}
        while (item := out.get()) is not None:
            name, result = item
            usage[name], cache[name] = tree_usage(server.pid), answer_cache(base)
            shed[name] = counted(base, "recsys_shed_requests", "reason")
            errors += report(name, result, args.rate) if name == "measured" else 0
            if name == "warm-up":
                print(f"warm-up done: {sum(map(len, result['latencies'].values()))} ok, "
                      f"{sum(result['errors'].values())} errors", flush=True)
        gen.join()
        (rss_start, cpu_start), (rss_end, cpu_end) = usage["warm-up"], usage["measured"]
        growth = rss_end / rss_start - 1
        cost = (cpu_end - cpu_start) / (args.rate * args.duration) * 1e3
        print(f"\nserver CPU: {cost:.2f} ms per request sent (all {args.workers} workers), so "
              f"at most ~{os.cpu_count() * 1e3 / cost:.0f} req/s on {os.cpu_count()} idle "
              "cores" + ("" if errors == 0 else " (refused requests cost little: an "
                         "underestimate)"))
        refused = {k: v - shed["warm-up"].get(k, 0.0) for k, v in shed["measured"].items()}
        print("503s by reason (recsys_shed_requests_total): " + (", ".join(
            f"{k} {v:.0f}" for k, v in sorted(refused.items()) if v) or "none"))
        hits, misses = (cache["measured"][k] - cache["warm-up"][k] for k in (0, 1))
        print(f"\nrecommendations answered from the workers' answer cache: "
              f"{hits / max(hits + misses, 1):.0%} of {hits + misses:.0f}")
        print(f"\nserver RSS (master + {args.workers} workers): {rss_start:.0f} MB after "
              f"warm-up, {rss_end:.0f} MB at the end ({growth:+.1%})")
        print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        failed = errors > 0 or growth > args.max_growth
        print("verdict: " + ("FAIL" if failed else "PASS") +
              f" ({errors} errors, memory {growth:+.1%}, limit {args.max_growth:+.0%})")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:  # still draining a backlog
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
