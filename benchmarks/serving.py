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

Two mixes of customers, each on a fresh server; the default run prints both:
- ``--browsing``: 5,000 draws from the bundle's customers plus 500 unknown ones, the same
  list every phase (a storefront's regulars: answers are reused);
- ``--distinct``: every recommendation for another of the bundle's customers (a large
  storefront, most members opening one page a day). The run fails itself when over 1 % of
  its answers were reused. A bundle with fewer customers than the run may send (The Complete
  Journey's 2,469) is served with the answer cache off, so that every request is ranked.

``--burst`` saturates the distinct mix closed-loop to find the sustainable rate S, then sends
open loop 0.5 S, 3 S for ``--burst-seconds`` and 0.5 S again: shed requests (503 at the
in-flight limit, ``--max-in-flight``), the admitted ones' latency, and the seconds until the
latency is back. ``--memory`` prints RSS and PSS (``/proc/<pid>/smaps_rollup``: shared pages
counted once) of the server's processes with 1 and with ``--workers`` workers.
"""

from __future__ import annotations

import argparse
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
sys.path.insert(0, str(REPO))  # benchmarks.http_client when run as a script

from benchmarks.http_client import closed_loop, open_loop  # noqa: E402

CJ_CACHE = Path(tempfile.gettempdir()) / "recsys-bench" / "completejourney-bundle"


def bench_app() -> Any:
    """The production app plus the constant ceiling route (uvicorn factory), each request's
    app CPU time recorded (``RequestCpu``)."""
    from fastapi import Depends

    from serving.main import create_app
    from serving.security import require_client_key

    app = create_app()

    @app.get("/v1/constant", dependencies=[Depends(require_client_key)])
    async def constant() -> dict[str, str]:
        return {"status": "ok"}

    return RequestCpu(app, Path(os.environ["BENCH_CPU_DIR"]))


class _Steps:
    """Awaits a coroutine and sums the thread CPU time of its own steps (not that of the
    other tasks that run while it waits)."""

    def __init__(self, coroutine: Any) -> None:
        self.coroutine, self.cpu = coroutine, 0.0

    def __await__(self) -> _Steps:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    def send(self, value: Any) -> Any:
        started = time.thread_time()
        try:
            return self.coroutine.send(value)
        finally:
            self.cpu += time.thread_time() - started

    def throw(self, *exc: Any) -> Any:
        started = time.thread_time()
        try:
            return self.coroutine.throw(*exc)
        finally:
            self.cpu += time.thread_time() - started


class RequestCpu:
    """ASGI wrapper: each HTTP request's CPU time in the app (middleware, routing, the route,
    the response's socket writes; not uvicorn's reading and parsing, the event loop's wake-up
    or other threads), appended with its status as two float32 (status, ms) to
    ``<directory>/<worker pid>.f32``."""

    def __init__(self, app: Any, directory: Path) -> None:
        self.app, self.directory, self.fd, self.pid = app, directory, -1, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def noting(message: Any) -> None:
            nonlocal status
            status = message.get("status", status)
            await send(message)

        steps = _Steps(self.app(scope, receive, noting))
        await steps
        if self.pid != os.getpid():  # opened in the worker, not in a parent it forked from
            self.pid = os.getpid()
            self.fd = os.open(self.directory / f"{self.pid}.f32",
                              os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        os.write(self.fd, np.array([status, steps.cpu * 1e3], np.float32).tobytes())


def request_cpu(directory: Path, since: dict[str, int]) -> tuple[np.ndarray, dict[str, int]]:
    """The (status, app CPU ms) rows written to ``directory`` after the file sizes ``since``,
    and the sizes now."""
    rows, sizes = [], {}
    for path in directory.glob("*.f32"):
        data = path.read_bytes()
        sizes[path.name] = len(data) - len(data) % 8
        rows.append(np.frombuffer(data[since.get(path.name, 0):sizes[path.name]], "<f4"))
    return (np.concatenate(rows) if rows else np.zeros(0, "<f4")).reshape(-1, 2), sizes


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


def start_server(env: dict[str, str], port: int, workers: int, loop: str = "uvloop",
                 cpus: set[int] | None = None) -> subprocess.Popen[bytes]:
    """The server in its own session; on ``cpus`` only (its workers inherit it) if given."""
    cmd = [sys.executable, "-c", "from serving.server import run; run("
           f"'benchmarks.serving:bench_app', host='127.0.0.1', port={port}, "
           f"workers={workers}, log_level='warning', loop='{loop}')"]
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    return subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True, preexec_fn=pin)


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


def _open_loop(urls: list[str], offset: int, key: str, rate: float, duration: float
               ) -> dict[str, float]:
    n = int(rate * duration)
    began = time.perf_counter()
    latencies, statuses, _ = open_loop(urls, offset, key, np.arange(n) / rate)
    elapsed = time.perf_counter() - began - 0.2
    ok = latencies[statuses == 200] * 1e3
    pct = np.percentile(ok, [50, 95, 99]) if len(ok) else [np.nan] * 3
    shed = int((statuses == 503).sum())
    return {"sent": n, "ok": len(ok), "errors": n - len(ok) - shed, "shed": shed,
            "rps": len(ok) / elapsed, "p50": pct[0], "p95": pct[1], "p99": pct[2]}


def _closed_loop(urls: list[str], offset: int, key: str, concurrency: int, duration: float
                 ) -> dict[str, float]:
    latencies, statuses, elapsed = closed_loop(urls, offset, key, concurrency, duration)
    ms = latencies[statuses == 200] * 1e3
    shed = int((statuses == 503).sum())
    return {"sent": len(statuses), "ok": len(ms), "errors": len(statuses) - len(ms) - shed,
            "shed": shed, "rps": len(ms) / elapsed,
            "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99))}


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def tree_usage(pid: int) -> tuple[float, float]:
    """Resident memory (MB) and CPU time used so far (s) of ``pid`` and all its
    descendants (Linux /proc)."""
    rss_kb, ticks = 0, 0
    for current in process_tree(pid):
        try:
            status = Path(f"/proc/{current}/status").read_text()
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        rss_kb += next((int(line.split()[1]) for line in status.splitlines()
                        if line.startswith("VmRSS:")), 0)
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
    return rss_kb / 1024, ticks / os.sysconf("SC_CLK_TCK")


def counted(base: str, metric: str, label: str) -> dict[str, float]:
    """A counter of ``/metrics`` summed by one of its labels (all workers)."""
    import httpx

    text = httpx.get(f"{base}/metrics", timeout=10).text
    counts: dict[str, float] = {}
    for value_of, value in re.findall(rf'^{metric}_total\{{.*{label}="(\w+)".*\}} (\S+)$',
                                      text, re.M):
        counts[value_of] = counts.get(value_of, 0.0) + float(value)
    return counts


def answer_cache(base: str) -> tuple[float, float]:
    """(hits, misses) of the workers' answer cache so far, from ``/metrics``."""
    counts = counted(base, "recsys_answer_cache", "result")
    return counts.get("hit", 0.0), counts.get("miss", 0.0)


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
    the share of answers the server reused. Each endpoint's URLs are taken in order across
    phases, so a distinct mix never asks twice until its list runs out."""
    cursor = dict.fromkeys(urls, 0)
    cpu_dir = Path(os.environ["BENCH_CPU_DIR"])
    for endpoint, kind, level, duration in plan:
        cpu, own, (hits, misses) = tree_usage(server)[1], _own_cpu(), answer_cache(base)
        sizes = request_cpu(cpu_dir, {})[1]
        if kind == "open":
            result = _open_loop(urls[endpoint], cursor[endpoint], key, level, duration)
        else:
            result = _closed_loop(urls[endpoint], cursor[endpoint], key, int(level),
                                  duration)
        cursor[endpoint] += int(result["sent"])
        client = _own_cpu() - own
        result["drain"] = _drain(server)
        sent = max(result["sent"], 1)
        result["cpu_ms"] = (tree_usage(server)[1] - cpu) * 1e3 / sent
        rows = request_cpu(cpu_dir, sizes)[0]
        answered = rows[rows[:, 0] == 200, 1]  # not the 503s, nor /metrics calls
        result["app_ms"] = float(np.median(answered)) if len(answered) else float("nan")
        result["client_ms"] = client * 1e3 / sent
        after_hits, after_misses = answer_cache(base)
        result["hits"], result["answers"] = after_hits - hits, \
            after_hits - hits + after_misses - misses
        result["reused"] = result["hits"] / result["answers"] if result["answers"] \
            else float("nan")
        out.put((endpoint, kind, level, result))
    out.put(None)


def _burst_generator(urls: list[str], key: str, server: int, base: str,
                     args: argparse.Namespace, out: mp.Queue) -> None:  # type: ignore[type-arg]
    """The load generator of ``--burst``: the closed-loop throughput S of the endpoint, then
    open loop at ``base x S`` (before), ``3 x S`` for the burst, ``base x S`` again
    (after). Reports what each request got, by phase."""
    saturated = _closed_loop(urls, 0, key, args.saturate, args.duration)
    offset = int(saturated["sent"])
    _drain(server)
    sustainable = saturated["rps"]
    segments = [("before", args.burst_base * sustainable, args.duration),
                ("burst", 3 * sustainable, args.burst_seconds),
                ("after", args.burst_base * sustainable, args.after_seconds)]
    times, phases, t0 = [], [], 0.0
    for name, rate, seconds in segments:
        n = int(rate * seconds)
        times.append(t0 + np.arange(n) / rate)
        phases += [name] * n
        t0 += seconds
    schedule = np.concatenate(times)
    cpu, own = tree_usage(server)[1], _own_cpu()
    shed = counted(base, "recsys_shed_requests", "reason")
    latencies, statuses, lags = open_loop(urls, offset, key, schedule)
    after = counted(base, "recsys_shed_requests", "reason")
    out.put({"shed": {reason: after[reason] - shed.get(reason, 0.0) for reason in after},
             "lags": lags, "client_s": _own_cpu() - own, "sustainable": sustainable,
             "saturated": saturated, "segments": segments,
             "schedule": schedule, "phases": np.array(phases), "latencies": latencies,
             "statuses": statuses, "cpu_s": tree_usage(server)[1] - cpu,
             "drain": _drain(server)})


def _pct(values: np.ndarray, p: float) -> str:
    return f"{np.percentile(values, p):.1f}" if len(values) else "-"


def report_burst(r: dict[str, Any], burst_seconds: float) -> None:
    """Print the burst's figures: what was shed and how fast, the admitted requests' latency,
    and how long after the burst the latency was back to the level before it."""
    lat, status, phase = r["latencies"] * 1e3, r["statuses"], r["phases"]
    print(f"closed loop ({r['saturated']['sent']} requests): {r['sustainable']:.0f} rps "
          f"sustainable, p99 {r['saturated']['p99']:.1f} ms")
    print("| phase | rate rps | sent | 200 | 503 | other errors | 200 p50 ms | 200 p99 ms | "
          "503 p50 ms | 503 p99 ms | 503 max ms | client lag p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, rate, _ in r["segments"]:
        mine = phase == name
        ok, shed = lat[mine & (status == 200)], lat[mine & (status == 503)]
        left = r["lags"][mine] * 1e3
        left = left[~np.isnan(left)]  # requests that never left: timed out waiting
        print(f"| {name} | {rate:.0f} | {mine.sum()} | {len(ok)} | {len(shed)} | "
              f"{mine.sum() - len(ok) - len(shed)} | {_pct(ok, 50)} | {_pct(ok, 99)} | "
              f"{_pct(shed, 50)} | {_pct(shed, 99)} | {_pct(shed, 100)} | "
              f"{_pct(left, 50)} / {_pct(left, 99)} |")
    start = r["segments"][0][2]
    burst = phase == "burst"
    first = burst & (r["schedule"] < start + 1)  # the client opens most connections then
    print("burst's first second / the rest: 503 p99 "
          f"{_pct(lat[first & (status == 503)], 99)} / "
          f"{_pct(lat[burst & ~first & (status == 503)], 99)} ms, 200 p99 "
          f"{_pct(lat[first & (status == 200)], 99)} / "
          f"{_pct(lat[burst & ~first & (status == 200)], 99)} ms")
    before = lat[(phase == "before") & (status == 200)]
    normal = 2 * np.percentile(before, 99)
    end = r["segments"][0][2] + burst_seconds
    after = (phase == "after")
    second = np.floor(r["schedule"][after] - end).astype(int)
    late = [s for s in np.unique(second)
            if not (status[after][second == s] == 200).all()
            or np.percentile(lat[after][second == s], 99) > normal]
    recovered = "never (within the after phase)" if late and late[-1] == second.max() else \
        f"{(late[-1] + 1) if late else 0} s"
    # A later window can also miss because another process took the cores: the first of
    # three normal windows in a row says when the burst's own backlog was gone.
    back = next((s for s in range(second.max() - 1) if not {s, s + 1, s + 2} & set(late)),
                None)
    for s in late:  # the windows that were not back to normal, and why
        window = second == s
        print(f"  {s}-{s + 1} s after: {(status[after][window] != 200).sum()} not 200, p99 "
              f"{np.percentile(lat[after][window], 99):.1f} ms")
    print(f"back to normal {back} s after the burst (the first of three normal 1-s windows "
          "in a row)" if back is not None else "never three normal 1-s windows in a row")
    print(f"recovered (every later 1-s window all 200 with p99 <= 2 x the p99 before, "
          f"{normal:.1f} ms): {recovered} after the burst; server CPU {r['cpu_s']:.1f} s, "
          f"load generator CPU {r['client_s']:.1f} s, "
          f"backlog {r['drain']:.0f} s; 503s by reason (recsys_shed_requests_total): "
          + ", ".join(f"{reason} {count:.0f}" for reason, count in sorted(r["shed"].items())))


def pss(pid: int) -> list[tuple[int, float, float]]:
    """(pid, RSS MiB, PSS MiB) of ``pid`` and each of its descendants (smaps_rollup: pages
    shared by several processes count once in the sum of PSS)."""
    rows = []
    for current in process_tree(pid):
        try:
            text = Path(f"/proc/{current}/smaps_rollup").read_text()
        except OSError:
            continue
        kb = {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines()[1:]}
        rows.append((current, kb["Rss"] / 1024, kb["Pss"] / 1024))
    return rows


def _customers(bundle: Path) -> list[str]:
    import pyarrow.parquet as pq

    table = pq.read_table(bundle / "customers.parquet", columns=["customer_id"])
    return [str(c) for c in table.column(0).to_pylist()]


def mixes(customers: list[str], base: str, n: int, needed: int) -> dict[str, list[str]]:
    """Recommendation URLs of each mix. ``browsing``: 5,000 draws with replacement from the
    bundle's customers plus 500 unknown ones, shuffled (the same list every phase).
    ``distinct``: the bundle's customers without replacement, at most ``needed``."""
    rng = random.Random(0)
    sample = [rng.choice(customers) for _ in range(5000)] + [f"new-{i}" for i in range(500)]
    rng.shuffle(sample)
    distinct = rng.sample(customers, min(len(customers), needed))
    return {name: [f"{base}/v1/customers/{c}/recommendations?n={n}" for c in chosen]
            for name, chosen in (("browsing", sample), ("distinct", distinct))}


class Server:
    """The benchmark's uvicorn server process (``with Server(...) as s``)."""

    def __init__(self, env: dict[str, str], port: int, workers: int, loop: str = "uvloop",
                 cpus: set[int] | None = None) -> None:
        self.env, self.port, self.workers, self.loop = env, port, workers, loop
        self.cpus = cpus
        self.base = f"http://127.0.0.1:{port}"

    def __enter__(self) -> Server:
        self.process = start_server(self.env, self.port, self.workers, self.loop, self.cpus)
        try:
            self.model = wait_ready(self.base, self.process)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=60)


def pinned(args: argparse.Namespace) -> str:
    return "server on CPU 0, load generator on CPU 1" if args.pin else "not pinned"


def run_mix(name: str, urls: dict[str, list[str]], env: dict[str, str],
            args: argparse.Namespace, key: str) -> float:
    """One server, the open-loop rates and the closed loop on ``urls``; prints the table
    and returns the share of recommendations answered from reuse."""
    rates = [float(r) for r in args.rates.split(",")]
    plan = [(e, "open", r, args.duration) for r in rates for e in ("constant", "recommendations")]
    plan += [(e, "closed", args.saturate, args.duration) for e in ("constant", "recommendations")]
    with Server(env, args.port, args.workers, args.loop, args.server_cpus) as server:
        model = server.model
        out: mp.Queue = mp.get_context("spawn").Queue()  # type: ignore[type-arg]
        gen = mp.get_context("spawn").Process(
            target=_generator, args=(plan, urls, key, server.process.pid, server.base, out))
        print(f"\n## {name} mix: {len(set(urls['recommendations']))} distinct customers in "
              f"{len(urls['recommendations'])} URLs\n\nmodel {model['model']} version "
              f"{model['model_version']}, {model['n_items']} items; {args.workers} uvicorn "
              f"workers; answer cache {env['RECSYS_ANSWER_CACHE_CUSTOMERS']} customers per "
              f"worker; exposure log {args.exposures}; {pinned(args)}; load average "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
        print("| endpoint | load | sent | ok rps | p50 ms | p95 ms | p99 ms | errors | shed (503) "
              "| backlog s | server CPU ms/req | app CPU ms/req, median | client CPU ms/req | "
              "reused |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|", flush=True)
        gen.start()
        hits = answers = 0.0
        closed: dict[str, float] = {}
        while (item := out.get()) is not None:
            endpoint, kind, level, r = item
            load = f"{level:.0f} rps open" if kind == "open" else f"{level:.0f} conns closed"
            reused = "-" if np.isnan(r["reused"]) else f"{r['reused']:.1%}"
            print(f"| {endpoint} | {load} | {r['sent']} | {r['rps']:.0f} | {r['p50']:.1f} | "
                  f"{r['p95']:.1f} | {r['p99']:.1f} | {r['errors']} | {r['shed']} | "
                  f"{r['drain']:.0f} | "
                  f"{r['cpu_ms']:.2f} | {r['app_ms']:.2f} | {r['client_ms']:.2f} | "
                  f"{reused} |", flush=True)
            if endpoint == "recommendations":
                hits, answers = hits + r["hits"], answers + r["answers"]
            if kind == "closed":
                closed[endpoint] = r["rps"]
        gen.join()
    share = hits / answers if answers else 0.0
    print(f"\nreused: {share:.2%} of {answers:.0f} recommendations; closed loop: "
          f"recommendations at {closed['recommendations'] / closed['constant']:.0%} of the "
          f"constant endpoint's throughput; load average after: {os.getloadavg()[0]:.1f}",
          flush=True)
    return share


def run_burst(urls: list[str], env: dict[str, str], args: argparse.Namespace,
              key: str) -> None:
    with Server(env, args.port, args.workers, args.loop, args.server_cpus) as server:
        print(f"burst on the distinct mix: model {server.model['model']}, "
              f"{args.workers} workers ({args.loop}), in-flight limit "
              f"{env['RECSYS_MAX_IN_FLIGHT']} per worker, queueing delay at most "
              f"{env['RECSYS_MAX_WAIT_MS']} ms, answer cache "
              f"{env['RECSYS_ANSWER_CACHE_CUSTOMERS']}; {pinned(args)}; load average "
              f"{os.getloadavg()[0]:.1f}",
              flush=True)
        out: mp.Queue = mp.get_context("spawn").Queue()  # type: ignore[type-arg]
        gen = mp.get_context("spawn").Process(
            target=_burst_generator, args=(urls, key, server.process.pid, server.base, args,
                                           out))
        gen.start()
        report_burst(out.get(), args.burst_seconds)
        gen.join()
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def run_memory(urls: list[str], env: dict[str, str], args: argparse.Namespace,
               key: str) -> None:
    """RSS and PSS of the server's processes with 1 worker, then with ``--workers``, each
    after an open-loop phase on the distinct mix."""
    print("| workers | processes | RSS MiB each | PSS MiB each | total RSS MiB | "
          "total PSS MiB |")
    print("|---|---|---|---|---|---|", flush=True)
    totals = {}
    for workers in sorted({1, args.workers}):
        with Server(env, args.port, workers, cpus=args.server_cpus) as server:
            offset = 20_000 * workers  # other customers than the 1-worker run's
            _open_loop(urls, offset, key, float(args.rates.split(",")[0]), args.duration)
            rows = pss(server.process.pid)
        rss, shared = sum(r[1] for r in rows), sum(r[2] for r in rows)
        totals[workers] = shared
        print(f"| {workers} | {len(rows)} | {', '.join(f'{r[1]:.0f}' for r in rows)} | "
              f"{', '.join(f'{r[2]:.0f}' for r in rows)} | {rss:.0f} | {shared:.0f} |",
              flush=True)
    if args.workers > 1:
        print(f"\n{args.workers} workers: total PSS {totals[args.workers] / totals[1]:.2f}x "
              f"one worker's; load average {os.getloadavg()[0]:.1f}")


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
    parser.add_argument("--max-in-flight", type=int, default=32,
                        help="RECSYS_MAX_IN_FLIGHT per worker (0: no limit)")
    parser.add_argument("--max-wait-ms", type=int, default=80,
                        help="RECSYS_MAX_WAIT_MS: the queueing delay allowed (0: no bound)")
    mix = parser.add_mutually_exclusive_group()
    mix.add_argument("--distinct", action="store_true",
                     help="only the distinct mix: every recommendation for another customer")
    mix.add_argument("--browsing", action="store_true", help="only the browsing mix")
    mix.add_argument("--burst", action="store_true",
                     help="overload: 3x the closed-loop throughput for --burst-seconds")
    mix.add_argument("--memory", action="store_true",
                     help="RSS and PSS of the server with 1 and --workers workers")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop",
                        help="the server's event loop (production: uvloop)")
    parser.add_argument("--burst-seconds", type=float, default=30.0)
    parser.add_argument("--burst-base", type=float, default=0.5,
                        help="rate before and after the burst, as a share of the closed loop's")
    parser.add_argument("--after-seconds", type=float, default=15.0)
    parser.add_argument("--pin", action="store_true",
                        help="the server's processes on CPU 0, the load generator on CPU 1")
    args = parser.parse_args()
    args.server_cpus = None
    if args.pin:
        args.server_cpus = {0}
        os.sched_setaffinity(0, {1})  # the generator's process, spawned from here, inherits it

    work = Path(tempfile.mkdtemp(prefix="recsys-bench-"))
    key = secrets.token_urlsafe(16)
    (work / "prometheus").mkdir()  # one /metrics view over the workers, as `recsys serve`
    (work / "cpu").mkdir()  # each request's app CPU time, by worker (RequestCpu)
    os.environ["BENCH_CPU_DIR"] = str(work / "cpu")  # for the server and the generator
    env = {**os.environ, "RECSYS_API_KEYS": key, "RECSYS_DATA_DIR": str(work),
           "PROMETHEUS_MULTIPROC_DIR": str(work / "prometheus"),
           "RECSYS_ANSWER_CACHE_CUSTOMERS": str(args.answer_cache),
           "RECSYS_LOG_EXPOSURES": str(args.exposures == "on").lower(),
           "RECSYS_MAX_IN_FLIGHT": str(args.max_in_flight),
           "RECSYS_MAX_WAIT_MS": str(args.max_wait_ms),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    if args.model_uri:
        env["RECSYS_MODEL_URI"] = args.model_uri
        env["RECSYS_DATA_DIR"] = str((args.data_dir or REPO / "data").resolve())
        env["RECSYS_EVENTS_URL"] = f"sqlite:///{work / 'events.db'}"
        customers = [f"c{i}" for i in range(1000)]
    else:
        bundle = args.bundle or build_completejourney(CJ_CACHE)
        env["RECSYS_BUNDLE_PATH"] = str(bundle.resolve())
        customers = _customers(bundle)
    base = f"http://127.0.0.1:{args.port}"
    rates = [float(r) for r in args.rates.split(",")]
    # Requests the distinct mix may need: the open-loop phases plus closed loops of up to
    # 2,000 rps (more than either endpoint sustains here).
    needed = int(sum(rates) * args.duration + 2 * 2000 * max(args.duration,
                                                             args.burst_seconds))
    urls = mixes(customers, base, args.n, needed)
    distinct_env = dict(env)
    if len(customers) < needed and args.answer_cache:
        # Too few customers for a new one every request: with the cache off every request
        # is ranked, as it would be for a new customer each time.
        distinct_env["RECSYS_ANSWER_CACHE_CUSTOMERS"] = "0"
        print(f"the bundle has {len(customers)} customers, fewer than the {needed} requests "
              "the distinct mix may send: it runs with the answer cache off", flush=True)
    constant = [f"{base}/v1/constant"]
    if args.burst:
        run_burst(urls["distinct"], distinct_env, args, key)
        return
    if args.memory:
        run_memory(urls["distinct"], distinct_env, args, key)
        return
    if not args.distinct:
        run_mix("browsing", {"recommendations": urls["browsing"], "constant": constant},
                env, args, key)
    if not args.browsing:
        reused = run_mix("distinct", {"recommendations": urls["distinct"],
                                      "constant": constant}, distinct_env, args, key)
        if reused > 0.01:
            raise SystemExit(f"FAILED: the distinct mix reused {reused:.2%} of its answers "
                             "(over 1 %): it did not measure ranking")


if __name__ == "__main__":
    main()
