"""What the experiment analysis reads from a large event store: every stored event (how
``from_store`` read before issue 19's fix) against only the exposed customers' outcomes in the
experiment's span (``EventStore.event_rows``), in peak Python memory (tracemalloc) and CPU
time of this process; the two reports must be the same.

    python benchmarks/experiment_read.py [--customers 2000] [--other 500000] [--repeat 2]

The store (a SQLite file in a temp dir) holds a simulated experiment (``simulate.store``)
and ``--other`` events of 50,000 customers never exposed (purchases and views, before the
experiment). Each measure runs in a child process, so one's allocations do not count in the
other's; CPU is measured in a second run without tracemalloc, which slows Python down.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import timedelta
from pathlib import Path

# Run as a script, benchmarks/serving.py would shadow the serving package.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import pandas as pd  # noqa: E402

from recsys.events import Event, EventStore  # noqa: E402
from recsys.experiments.analysis import Setup, analyze, events_frame, from_store  # noqa: E402
from recsys.experiments.simulate import START, Scenario, coupon_of, store  # noqa: E402
from recsys.exposures import ExposureLog  # noqa: E402

SEED = 0


def build(url: str, customers: int, other: int) -> int:
    events = EventStore(url)
    store(Scenario(customers=customers), SEED, events, ExposureLog(events.engine))
    batch: list[Event] = []
    for k in range(other):
        batch.append(Event(f"x{k}", f"other{k % 50_000}", "purchase" if k % 3 else "view",
                           START - timedelta(days=200, minutes=-(k % 400_000)),
                           f"p{k % 997}", amount=1.0 + k % 17))
        if len(batch) == 5000:
            events.add(batch)
            batch = []
    events.add(batch)
    return events.count()


def measure(url: str, how: str, trace: bool) -> dict[str, object]:
    """One analysis, ``how`` = ``all`` (every event) or ``span`` (``from_store``)."""
    events = EventStore(url)
    setup = Setup(holdout_shares={coupon_of(SEED): 0.2})
    if trace:
        tracemalloc.start()
    cpu = time.process_time()
    if how == "all":
        exposures = ExposureLog(events.engine).frame()
        frame = events_frame(events.events())
        end = exposures["shown_at"].max() + setup.window
        start = exposures["shown_at"].min() - pd.Timedelta(days=setup.pre_days)
        frame = frame[(frame["timestamp"] >= start) & (frame["timestamp"] < end)]
        result = analyze(exposures, frame, setup)
    else:
        result = from_store(events, setup)
    cpu = time.process_time() - cpu
    peak = tracemalloc.get_traced_memory()[1] if trace else 0
    result.pop("generated_at")
    return {"cpu_s": cpu, "peak_mib": peak / 2**20, "result": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--other", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)  # url how trace
    args = parser.parse_args()
    if args.child:
        url, how, trace = args.child
        print(json.dumps(measure(url, how, trace == "1"), sort_keys=True))
        return
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'events.db'}"
        print(f"store: {build(url, args.customers, args.other):,} events")
        results = {}
        for _ in range(args.repeat):
            for how in ("all", "span"):
                runs = [json.loads(subprocess.run(
                    [sys.executable, __file__, "--child", url, how, trace],
                    check=True, capture_output=True, text=True).stdout) for trace in "10"]
                results[how] = runs[0]["result"]
                print(f"{how:>4}: peak {runs[0]['peak_mib']:.1f} MiB (tracemalloc), "
                      f"CPU {runs[1]['cpu_s']:.2f} s")
        print("same report:", results["all"] == results["span"])


if __name__ == "__main__":
    main()
