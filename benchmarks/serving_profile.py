"""Where one recommendation request spends its CPU inside the app: distinct customers, the
answer cache off, the ASGI app called directly (no HTTP client or server in the way).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/serving_profile.py \
        [--bundle /tmp/recsys-bench/completejourney-bundle] [--requests 400]

Prints the app's CPU per request (``time.process_time``, writer and poller threads included)
with the load average, then the same number of other customers under cProfile, split into
the engine (``Engine.recommend_many``), the rest of the route, FastAPI's parameter parsing (or
the route's fast path's), the response encoding, and the rest (middleware, routing).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path[0] = str(Path(__file__).resolve().parents[1])  # not benchmarks/serving.py

import pandas as pd  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from serving.main import create_app  # noqa: E402
from serving.settings import Settings  # noqa: E402

KEY = "profile-key"


async def request(app: Any, customer: str) -> None:
    """One ``GET /v1/customers/{customer}/recommendations?n=10`` through the whole app."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "root_path": "", "raw_path": b"",
             "path": f"/v1/customers/{customer}/recommendations", "query_string": b"n=10",
             "headers": [(b"x-api-key", KEY.encode()), (b"host", b"bench")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if sent[0]["status"] != 200:
        raise SystemExit(f"{customer}: status {sent[0]['status']}")


def run(app: Any, customers: list[str]) -> None:
    async def all_of_them() -> None:
        for customer in customers:
            await request(app, customer)

    asyncio.run(all_of_them())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundle", type=Path,
                        default=Path(tempfile.gettempdir()) / "recsys-bench"
                        / "completejourney-bundle")
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    settings = Settings(bundle_path=args.bundle, data_dir=Path(tempfile.mkdtemp()),
                        api_keys=KEY, answer_cache_customers=0)
    app = create_app(settings)
    ids = pd.read_parquet(args.bundle / "customers.parquet",
                          columns=["customer_id"])["customer_id"].astype(str).tolist()
    random.Random(1).shuffle(ids)
    n = args.requests
    with TestClient(app):  # runs the lifespan: loads the bundle, starts the writer
        run(app, ids[:50])  # warm
        started = time.process_time()
        run(app, ids[50:50 + n])
        cpu = (time.process_time() - started) * 1e3 / n
        print(f"app CPU per distinct recommendation: {cpu:.2f} ms ({n} requests, load "
              f"average {os.getloadavg()[0]:.1f})")
        profile = cProfile.Profile()
        profile.enable()
        run(app, ids[50 + n:50 + 2 * n])
        profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]

    def cumulative(file_end: str, name: str) -> float:
        return max((v[3] for (f, _, fn), v in stats.items()
                    if f.endswith(file_end) and fn == name), default=0.0)

    total = cumulative("serving/metrics.py", "__call__")
    engine = cumulative("recsys/policy/pipeline.py", "recommend_many")
    route = cumulative("serving/routers/recommendations.py", "answer")
    params = cumulative("fastapi/dependencies/utils.py", "solve_dependencies")
    query = cumulative("serving/routers/recommendations.py", "plain_query")  # fast path
    fast = cumulative("serving/routers/recommendations.py", "recommend_fast")
    response = cumulative("fastapi/routing.py", "serialize_response") \
        + max(fast - route - query, 0.0)  # the fast path encodes the answer itself
    parts = {"engine (Engine.recommend_many)": engine,
             "rest of the route (coupons, exposure row, response objects)": route - engine,
             "FastAPI: query, path and key-check parameters": params,
             "fast path: query string parsed and validated": query,
             "response validation and JSON": response,
             "middleware, routing, the rest": total - route - params - query - response}
    print("| part | share of the request under cProfile |\n|---|---|")
    for part, seconds in parts.items():
        print(f"| {part} | {seconds / total:.0%} |")


if __name__ == "__main__":
    main()
