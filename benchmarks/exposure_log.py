"""What logging an exposure costs: the request path's part (build the row, queue it) and the
background writer's part (insert batches into the event store's SQLite file, WAL,
synchronous=FULL), per row, in CPU time of this process.

    python benchmarks/exposure_log.py [--rows 50000] [--batch 250]

The request path runs ``ExposureWriter.log`` exactly as ``serving/exposures.record`` calls it;
the writer thread is replaced by explicit ``flush`` calls so its cost is timed alone.

    python benchmarks/exposure_log.py --bundle /tmp/recsys-bench/completejourney-bundle

also serves ``GET /v1/customers/{id}/recommendations`` from two apps in this process, one
with the exposure log on and one off (``RECSYS_LOG_EXPOSURES``), alternating blocks of
requests, and prints the process CPU time per request of each (writer threads included):
a figure the machine's load does not inflate, unlike latency.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, benchmarks/serving.py would shadow the serving package.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from recsys.events import EventStore  # noqa: E402
from recsys.exposures import Exposure, ExposureLog, ExposureWriter, now  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=250, help="rows per flush (500 rps x "
                        "0.5 s over 2 workers = 125-250)")
    parser.add_argument("--bundle", type=Path, help="also time whole requests on this bundle")
    parser.add_argument("--requests", type=int, default=6000, help="per app (with --bundle)")
    args = parser.parse_args()
    rows_and_writer(args)
    if args.bundle:
        whole_requests(args.bundle, args.requests)


def rows_and_writer(args: argparse.Namespace) -> None:
    store = EventStore(f"sqlite:///{Path(tempfile.mkdtemp()) / 'events.db'}")
    log = ExposureLog(store.engine)
    writer = ExposureWriter(log, interval=3600, batch=10**9, capacity=10**9)  # flush by hand
    products = tuple(f"p{i}" for i in range(10))
    queue_cpu = write_cpu = 0.0
    print(f"{args.rows} rows, {args.batch} per batch; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    for start in range(0, args.rows, args.batch):
        t = time.process_time()
        for k in range(start, min(start + args.batch, args.rows)):
            writer.log(Exposure(f"r{k}", f"c{k % 2469}", "champion", "7", "recommendations",
                                products, (), (), now()))
        queue_cpu += time.process_time() - t
        t = time.process_time()
        writer.flush()
        write_cpu += time.process_time() - t
    writer.close()
    assert log.count() == args.rows
    print("| part | CPU us per row |")
    print("|---|---|")
    print(f"| request path: build the row and queue it | {1e6 * queue_cpu / args.rows:.1f} |")
    print(f"| writer thread: insert in batches of {args.batch} | "
          f"{1e6 * write_cpu / args.rows:.1f} |")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def whole_requests(bundle: Path, requests: int, block: int = 500) -> None:
    """CPU per recommendation request with the exposure log on and off (alternating)."""
    import random
    import statistics

    import pyarrow.parquet as pq
    from fastapi.testclient import TestClient

    from serving.main import create_app
    from serving.settings import Settings

    ids = [str(c) for c in pq.read_table(bundle / "customers.parquet",
                                         columns=["customer_id"]).column(0).to_pylist()]
    rng = random.Random(0)
    urls = [f"/v1/customers/{rng.choice(ids)}/recommendations?n=10" for _ in range(requests)]
    clients = {}
    for on in (True, False):
        settings = Settings(bundle_path=bundle, data_dir=Path(tempfile.mkdtemp()),
                            api_keys="k", log_exposures=on, warmup_requests=0)
        clients[on] = TestClient(create_app(settings)).__enter__()
    headers = {"X-API-Key": "k"}
    for client in clients.values():  # the same URLs once each: both answer caches warm
        for url in urls:
            client.get(url, headers=headers)
    cpu: dict[bool, list[float]] = {True: [], False: []}
    for start in range(0, requests, block):
        for on in (True, False) if start // block % 2 else (False, True):
            t = time.process_time()
            for url in urls[start:start + block]:
                assert clients[on].get(url, headers=headers).status_code == 200
            writer = clients[on].app.state.runtime.exposures
            if writer is not None:
                writer.flush()  # what the writer thread would store counts in this block
            cpu[on].append(1e3 * (time.process_time() - t) / block)
    for client in clients.values():
        client.__exit__(None, None, None)
    print(f"\n{requests} requests per app in blocks of {block}, exposure log on/off "
          f"alternating; load average {os.getloadavg()[0]:.1f}")
    print("| exposure log | CPU ms per request: median of blocks (min-max) |")
    print("|---|---|")
    for on in (True, False):
        print(f"| {'on' if on else 'off'} | {statistics.median(cpu[on]):.3f} "
              f"({min(cpu[on]):.3f}-{max(cpu[on]):.3f}) |")


if __name__ == "__main__":
    main()
