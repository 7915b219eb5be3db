"""Console page times on The Complete Journey: uvicorn in one process, this script as the
browser (HTTP requests with the session cookie) in another.

    python benchmarks/console.py                  # The Complete Journey bundle (built once)
    python benchmarks/console.py --bundle DIR     # any bundle directory
    python benchmarks/console.py --requests 60 --traffic 1000

The server runs ``serving.main:create_app`` as ``recsys serve`` does (``serving.server.run``).
Before timing, it gets some API traffic (answers with coupons, purchases, redemptions: what
the exposure log, the experiment analysis and the coupon page read) and every page is opened
until its background work (the KPI report, the experiment analysis) is done: the times are
those of an operator opening pages, not of that work. Each page is then requested
``--requests`` times in a row; "server CPU ms" is the server process's CPU time per request
(it does not grow when other processes compete for the cores, unlike the wall time).
The download of batch picks is an action, timed apart.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.serving import CJ_CACHE, build_completejourney, wait_ready  # noqa: E402

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
PAGES = ("/console", "/console/customers", "/console/coupons", "/console/experiments",
         "/console/lookup", "lookup (POST)", "/console/actions")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def traffic(client: object, customers: list[str]) -> None:
    """Answers with coupons for ``customers``, then purchases and redemptions of some."""
    events = []
    for i, customer in enumerate(customers):
        shown = client.get(f"/v1/customers/{customer}/recommendations",  # type: ignore[attr-defined]
                           params={"include_coupons": "true"}).json()
        if i % 2 and shown["items"]:
            events.append({"event_id": f"bench-{i}", "customer_id": customer,
                           "event_type": "purchase", "amount": 3.0 + i % 11,
                           "product_id": shown["items"][0]["product_id"]})
        if i % 5 == 0 and shown["coupons"]:
            events.append({"event_id": f"bench-c-{i}", "customer_id": customer,
                           "event_type": "coupon_redeemed", "amount": 2.0,
                           "coupon_id": shown["coupons"][0]["coupon_id"]})
    for start in range(0, len(events), 500):
        answer = client.post("/v1/events", json={"events": events[start:start + 500]})  # type: ignore[attr-defined]
        answer.raise_for_status()


def settle(console: object, timeout: float) -> None:
    """Open every page until none asks to refresh (its background work is done)."""
    deadline = time.monotonic() + timeout
    for path in PAGES:
        if not path.startswith("/"):
            continue
        while 'http-equiv="refresh"' in console.get(path).text:  # type: ignore[attr-defined]
            if time.monotonic() > deadline:
                raise SystemExit(f"{path} still computing after {timeout:.0f}s")
            time.sleep(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, help="bundle directory (default: The "
                        "Complete Journey, built once)")
    parser.add_argument("--dataset", default=None, help="KPI dataset (default: the bundle's)")
    parser.add_argument("--requests", type=int, default=40, help="requests per page")
    parser.add_argument("--traffic", type=int, default=600, help="customers given answers "
                        "before timing")
    parser.add_argument("--port", type=int, default=8731)
    args = parser.parse_args()
    import httpx
    import pandas as pd

    bundle = args.bundle or build_completejourney(CJ_CACHE)
    keys = {name: secrets.token_urlsafe(16) for name in ("client", "admin", "analyst")}
    data_dir = Path(tempfile.mkdtemp(prefix="console-bench-"))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               RECSYS_BUNDLE_PATH=str(bundle), RECSYS_DATA_DIR=str(data_dir),
               RECSYS_API_KEYS=keys["client"], RECSYS_ADMIN_KEY=keys["admin"],
               RECSYS_ANALYST_KEYS=keys["analyst"], PYTHONPATH=str(REPO))
    if args.dataset:
        env["RECSYS_CONSOLE_DATASET"] = args.dataset
    cmd = [sys.executable, "-c", "from serving.server import run; run("
           f"'serving.main:create_app', host='127.0.0.1', port={args.port}, "
           "log_level='warning')"]
    server = subprocess.Popen(cmd, cwd=REPO, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{args.port}"
    try:
        wait_ready(base, server)
        customers = pd.read_parquet(bundle / "customers.parquet")["customer_id"].astype(str)
        api = httpx.Client(base_url=base, headers={"X-API-Key": keys["client"]}, timeout=60)
        started = time.perf_counter()
        traffic(api, customers.iloc[:args.traffic].tolist())
        print(f"traffic: {args.traffic} answers + events in "
              f"{time.perf_counter() - started:.1f}s", flush=True)
        console = httpx.Client(base_url=base, timeout=60, follow_redirects=False)
        form = console.get("/console/login").text
        login = console.post("/console/login", data={
            "csrf": CSRF.search(form).group(1), "name": "Benchmark", "key": keys["admin"]})
        assert login.status_code == 303, login.text[:300]
        token = CSRF.search(console.get("/console/lookup").text).group(1)
        started = time.perf_counter()
        settle(console, timeout=900)
        customers_page = console.get("/console/customers").text
        assert 'id="kpis"' in customers_page, "no KPI table: see the customers page"
        print(f"background work (KPIs, experiment analysis) done in "
              f"{time.perf_counter() - started:.1f}s", flush=True)
        load_before = os.getloadavg()
        rows = []
        for path in PAGES:
            times, cpu0 = [], cpu_seconds(server.pid)
            for i in range(args.requests):
                t0 = time.perf_counter()
                if path.startswith("/"):
                    answer = console.get(path)
                else:
                    answer = console.post("/console/lookup", data={
                        "csrf": token, "customer_id": customers.iloc[i % len(customers)]})
                times.append((time.perf_counter() - t0) * 1e3)
                assert answer.status_code == 200, (path, answer.status_code)
            cpu = (cpu_seconds(server.pid) - cpu0) * 1e3 / args.requests
            rows.append((path, float(np.median(times)), float(np.percentile(times, 95)),
                         max(times), cpu))
        load_after = os.getloadavg()
        frame = pd.read_parquet(bundle / "customers.parquet")
        segment = str(frame["segment"].value_counts().index[0])  # the largest
        size = int((frame["segment"] == segment).sum())
        export = []
        for _ in range(3):
            t0 = time.perf_counter()
            answer = console.post("/console/actions/export", data={
                "csrf": token, "audience": f"segment:{segment}", "n": "10", "coupons": "1"})
            export.append((time.perf_counter() - t0) * 1e3)
            assert answer.status_code == 200, answer.text[:300]
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"\n{len(customers):,} customers in the bundle {bundle}; {args.requests} requests "
          f"per page, one at a time; {os.cpu_count()} cores")
    print("load average 1/5/15 min before timing: " + " ".join(f"{x:.2f}" for x in load_before)
          + "; after: " + " ".join(f"{x:.2f}" for x in load_after) + "\n")
    print("| page | median ms | p95 ms | max ms | server CPU ms/request |")
    print("|---|---:|---:|---:|---:|")
    for path, median, p95, worst, cpu in rows:
        print(f"| {path} | {median:.1f} | {p95:.1f} | {worst:.1f} | {cpu:.1f} |")
    print(f"\nexport of batch picks, segment {segment!r} ({size:,} customers, 10 products + "
          f"1 coupon each): {', '.join(f'{t:.0f}' for t in export)} ms")


if __name__ == "__main__":
    main()
