"""Wall time and peak memory of `recsys train` (issue 4: under 2 minutes on The Complete Journey).

Each run is a fresh `recsys train --config CONFIG` process with its own empty data dir (so the
embedded MLflow store is created from nothing, as on a first run). Prints a Markdown table.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/train.py \
        [--configs configs/completejourney.yaml,configs/synthetic.yaml] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECSYS = Path(sys.executable).with_name("recsys")


def run_once(config: str) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one `recsys train` process."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RECSYS_DATA_DIR": tmp, "OPENBLAS_NUM_THREADS": "1"}
        env.pop("MLFLOW_TRACKING_URI", None)
        started = time.perf_counter()
        proc = subprocess.Popen([str(RECSYS), "train", "--config", config], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        if status != 0:
            sys.exit(f"recsys train --config {config} failed (status {status})")
    return seconds, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", default="configs/completejourney.yaml,configs/synthetic.yaml")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}\n")
    print("| config | runs | median s | min s | peak RSS MiB |")
    print("|---|--:|--:|--:|--:|")
    for config in args.configs.split(","):
        runs = [run_once(config) for _ in range(args.repeats)]
        secs = [s for s, _ in runs]
        print(f"| {config} | {len(runs)} | {statistics.median(secs):.1f} | {min(secs):.1f} | "
              f"{max(m for _, m in runs):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
