"""What logging an exposure costs: the request path's part (build the row, queue it) and the
background writer's part (insert batches into the event store's SQLite file, WAL,
synchronous=FULL), per row, in CPU time of this process.

    python benchmarks/exposure_log.py [--rows 50000] [--batch 250]

The request path runs ``ExposureWriter.log`` exactly as ``serving/exposures.record`` calls it;
the writer thread is replaced by explicit ``flush`` calls so its cost is timed alone.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from recsys.events import EventStore
from recsys.exposures import Exposure, ExposureLog, ExposureWriter, now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=250, help="rows per flush (500 rps x "
                        "0.5 s over 2 workers = 125-250)")
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
