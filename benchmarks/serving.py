"""Serving latency and throughput: uvicorn in one process, a load generator in another.

    python benchmarks/serving.py                       # The Complete Journey bundle (built once)
    python benchmarks/serving.py --bundle DIR          # any bundle directory
    python benchmarks/serving.py --model-uri models:/loyalty-recsys@champion --data-dir data

The server runs ``serving.main:create_app`` as ``recsys serve`` does (``serving.server.run``)
with 2 workers (the production count for 2 cores) plus one extra route, ``GET /v1/constant``,
that returns a constant through the same middleware and API-key check: the ceiling of the
stack. The load generator is open-loop: it
sends at fixed rates whatever the answers, and latency is measured from each request's
scheduled time, so a server that falls behind shows it (no coordinated omission). A final
closed-loop phase saturates each endpoint to compare throughput. After each phase the generator
waits until the server has worked off its backlog (column "backlog s"), so an overloaded phase
does not slow the next one down. "server CPU ms/req" is the workers' CPU time per request
sent: unlike latency it does not grow when other processes compete for the cores, and
2 cores x 1000 / it bounds the throughput. "client CPU ms/req" is the load generator's, which
shares the same cores. "reused" is the share of recommendations answered from the workers'
answer cache (``RECSYS_ANSWER_CACHE_CUSTOMERS``; ``--answer-cache 0`` ranks every request).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import random
import re
import resource
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CJ_CACHE = Path(tempfile.gettempdir()) / "recsys-bench" / "completejourney-bundle"


def bench_app() -> Any:
    """The production app plus the constant ceiling route (uvicorn factory)."""
    from fastapi import Depends

    from serving.main import create_app
    from serving.security import require_client_key

    app = create_app()

    @app.get("/v1/constant", dependencies=[Depends(require_client_key)])
    async def constant() -> dict[str, str]:
        return {"status": "ok"}

    return app


def build_completejourney(out: Path) -> Path:
    """Fit the production config on The Complete Journey and write its bundle (cached)."""
    if (out / "manifest.json").is_file():
        return out
    from training.config import load_config
    from training.jobs.bundle import build_bundle
    from training.jobs.evaluate import load_clean

    print(f"building The Complete Journey bundle in {out} (once) ...", flush=True)
    started = time.perf_counter()
    data = load_clean("completejourney")
    build_bundle(data, load_config(REPO / "configs" / "completejourney.yaml"), out)
    print(f"  built in {time.perf_counter() - started:.0f}s", flush=True)
    return out


def start_server(env: dict[str, str], port: int, workers: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-c", "from serving.server import run; run("
           f"'benchmarks.serving:bench_app', host='127.0.0.1', port={port}, "
           f"workers={workers}, log_level='warning')"]
    return subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True)


def wait_ready(base: str, server: subprocess.Popen[bytes], timeout: float = 600
                   ) -> dict[str, Any]:
    """The first live model, once /ready says 200; exits with the server's own reason when
    the model cannot load or the process dies."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with status {server.returncode}")
        try:
            ready = httpx.get(f"{base}/ready", timeout=5)
        except httpx.TransportError:
            time.sleep(0.5)
            continue
        body = ready.json()
        if ready.status_code == 200:
            return dict(body["models"][0])
        if body.get("reload") == "failed":
            raise SystemExit(f"the server is not ready: {body['problems']}")
        time.sleep(0.5)
    raise SystemExit(f"server not ready after {timeout:.0f}s")


async def _open_loop(urls: list[str], key: str, rate: float, duration: float
                     ) -> dict[str, float]:
    import aiohttp

    n = int(rate * duration)
    latencies = np.full(n, np.nan)
    errors = 0
    connector = aiohttp.TCPConnector(limit=512)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     headers={"X-API-Key": key}) as session:
        start = time.perf_counter() + 0.2

        async def one(i: int) -> None:
            nonlocal errors
            scheduled = start + i / rate
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            try:
                async with session.get(urls[i % len(urls)]) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                        return
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
                return
            latencies[i] = time.perf_counter() - scheduled

        await asyncio.gather(*(one(i) for i in range(n)))
        elapsed = time.perf_counter() - start
    ok = latencies[~np.isnan(latencies)] * 1e3
    pct = np.percentile(ok, [50, 95, 99]) if len(ok) else [np.nan] * 3
    return {"sent": n, "ok": len(ok), "errors": errors, "rps": len(ok) / elapsed,
            "p50": pct[0], "p95": pct[1], "p99": pct[2]}


async def _closed_loop(urls: list[str], key: str, concurrency: int, duration: float
                       ) -> dict[str, float]:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + duration
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                     headers={"X-API-Key": key}) as session:

        async def worker(w: int) -> None:
            nonlocal errors
            i = w
            while time.perf_counter() < stop:
                t = time.perf_counter()
                try:
                    async with session.get(urls[i % len(urls)]) as response:
                        await response.read()
                        ok = response.status == 200
                except aiohttp.ClientError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t)
                else:
                    errors += 1
                i += concurrency

        began = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.perf_counter() - began
    ms = np.array(latencies) * 1e3
    return {"sent": len(ms) + errors, "ok": len(ms), "errors": errors, "rps": len(ms) / elapsed,
            "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99))}


def tree_usage(pid: int) -> tuple[float, float]:
    """Resident memory (MB) and CPU time used so far (s) of ``pid`` and all its
    descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    rss_kb, ticks, todo = 0, 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            status = Path(f"/proc/{current}/status").read_text()
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        rss_kb += next((int(line.split()[1]) for line in status.splitlines()
                        if line.startswith("VmRSS:")), 0)
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return rss_kb / 1024, ticks / os.sysconf("SC_CLK_TCK")


def answer_cache(base: str) -> tuple[float, float]:
    """(hits, misses) of the workers' answer cache so far, from ``/metrics``."""
    import httpx

    text = httpx.get(f"{base}/metrics", timeout=10).text
    counts = {"hit": 0.0, "miss": 0.0}
    for result, value in re.findall(r'^recsys_answer_cache_total\{.*result="(\w+)".*\} (\S+)$',
                                    text, re.M):
        counts[result] += float(value)
    return counts["hit"], counts["miss"]


def _drain(pid: int, timeout: float = 600.0) -> float:
    """Wait until the server has worked off what the last phase queued (requests the client
    gave up on still run to completion): under 5% of a core used in two 1-second windows in
    a row. Returns the seconds waited, so the next phase starts on an idle server."""
    started, quiet = time.perf_counter(), 0
    while quiet < 2 and time.perf_counter() - started < timeout:
        before = tree_usage(pid)[1]
        time.sleep(1.0)
        quiet = quiet + 1 if tree_usage(pid)[1] - before < 0.05 else 0
    return time.perf_counter() - started


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _generator(plan: list[tuple[str, str, float, float]], urls: dict[str, list[str]], key: str,
               server: int, base: str, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """The load-generator process: runs every phase of ``plan`` and reports each, with the
    server and client CPU spent per request sent (the phase and the backlog it left) and
    the share of answers the server reused."""
    for endpoint, kind, level, duration in plan:
        cpu, own, (hits, misses) = tree_usage(server)[1], _own_cpu(), answer_cache(base)
        if kind == "open":
            result = asyncio.run(_open_loop(urls[endpoint], key, level, duration))
        else:
            result = asyncio.run(_closed_loop(urls[endpoint], key, int(level), duration))
        client = _own_cpu() - own
        result["drain"] = _drain(server)
        sent = max(result["sent"], 1)
        result["cpu_ms"] = (tree_usage(server)[1] - cpu) * 1e3 / sent
        result["client_ms"] = client * 1e3 / sent
        after_hits, after_misses = answer_cache(base)
        answers = after_hits - hits + after_misses - misses
        result["reused"] = (after_hits - hits) / answers if answers else float("nan")
        out.put((endpoint, kind, level, result))
    out.put(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path, help="bundle directory to serve")
    parser.add_argument("--model-uri", help="MLflow model URI instead of --bundle")
    parser.add_argument("--data-dir", type=Path, help="RECSYS_DATA_DIR for --model-uri")
    parser.add_argument("--rates", default="200,500,1000")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per rate")
    parser.add_argument("--saturate", type=int, default=32, help="closed-loop concurrency")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=8911)
    parser.add_argument("--n", type=int, default=10, help="recommendations per request")
    parser.add_argument("--answer-cache", type=int, default=10_000,
                        help="customers' answers each worker keeps (0: rank every request)")
    parser.add_argument("--exposures", choices=("on", "off"), default="on",
                        help="log what each answer showed (RECSYS_LOG_EXPOSURES)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="recsys-bench-"))
    key = secrets.token_urlsafe(16)
    (work / "prometheus").mkdir()  # one /metrics view over the workers, as `recsys serve`
    env = {**os.environ, "RECSYS_API_KEYS": key, "RECSYS_DATA_DIR": str(work),
           "PROMETHEUS_MULTIPROC_DIR": str(work / "prometheus"),
           "RECSYS_ANSWER_CACHE_CUSTOMERS": str(args.answer_cache),
           "RECSYS_LOG_EXPOSURES": str(args.exposures == "on").lower(),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    if args.model_uri:
        env["RECSYS_MODEL_URI"] = args.model_uri
        env["RECSYS_DATA_DIR"] = str((args.data_dir or REPO / "data").resolve())
        env["RECSYS_EVENTS_URL"] = f"sqlite:///{work / 'events.db'}"
        bundle = None
    else:
        bundle = args.bundle or build_completejourney(CJ_CACHE)
        env["RECSYS_BUNDLE_PATH"] = str(bundle.resolve())
    base = f"http://127.0.0.1:{args.port}"
    server = start_server(env, args.port, args.workers)
    try:
        model = wait_ready(base, server)
        customers = _customers(bundle) if bundle else [f"c{i}" for i in range(1000)]
        rng = random.Random(0)
        sample = [rng.choice(customers) for _ in range(5000)] + [f"new-{i}" for i in range(500)]
        rng.shuffle(sample)
        urls = {"recommendations": [f"{base}/v1/customers/{c}/recommendations?n={args.n}"
                                    for c in sample],
                "constant": [f"{base}/v1/constant"]}
        rates = [float(r) for r in args.rates.split(",")]
        plan = [(e, "open", r, args.duration) for r in rates
                for e in ("constant", "recommendations")]
        plan += [(e, "closed", args.saturate, args.duration)
                 for e in ("constant", "recommendations")]
        out: mp.Queue = mp.get_context("spawn").Queue()  # type: ignore[type-arg]
        gen = mp.get_context("spawn").Process(target=_generator,
                                            args=(plan, urls, key, server.pid, base, out))
        print(f"model {model['model']} version {model['model_version']}, "
              f"{model['n_items']} items; {args.workers} uvicorn workers; answer cache "
              f"{args.answer_cache} customers per worker; exposure log {args.exposures}; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        print("| endpoint | load | sent | ok rps | p50 ms | p95 ms | p99 ms | errors | "
              "backlog s | server CPU ms/req | client CPU ms/req | reused |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
        gen.start()
        while (item := out.get()) is not None:
            endpoint, kind, level, r = item
            load = f"{level:.0f} rps open" if kind == "open" else f"{level:.0f} conns closed"
            reused = "-" if np.isnan(r["reused"]) else f"{r['reused']:.0%}"
            print(f"| {endpoint} | {load} | {r['sent']} | {r['rps']:.0f} | {r['p50']:.1f} | "
                  f"{r['p95']:.1f} | {r['p99']:.1f} | {r['errors']} | {r['drain']:.0f} | "
                  f"{r['cpu_ms']:.2f} | {r['client_ms']:.2f} | {reused} |",
                  flush=True)
        gen.join()
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def _customers(bundle: Path) -> list[str]:
    import pyarrow.parquet as pq

    table = pq.read_table(bundle / "customers.parquet", columns=["customer_id"])
    return [str(c) for c in table.column(0).to_pylist()]


if __name__ == "__main__":
    main()
