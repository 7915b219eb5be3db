"""Offline quality of every model on The Complete Journey and UCI Online Retail.

Per dataset: clean, hold out the last 4 weeks as test, tune each model (optuna TPE, small
budget) on the 4 weeks before, refit the best parameters on everything before the test cut
and score all models on the test period in one run. The hybrid is tuned last: its parts take
the tuned parameters of ALS (its CF part), buy-again, content and trending, and its search is
over the blend weights only (one fit, cheap trials, hence its own budget). The hybrid with
default parameters (what ``recsys train`` uses) is scored too, as ``hybrid (defaults)``.
Prints NDCG@10, recall@10, coverage@10, fit time, and recall@20 on products first sold in the
test period (cold products).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/quality.py [--trials 8] [--timeout 120]
        [--hybrid-trials 40] [--hybrid-timeout 400]
        [--datasets completejourney,../shared/data/online_retail/online_retail.csv.gz]
        [--models all] [--val-customers 1000] [--out docs/benchmarks/quality.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from recsys.evaluation.evaluate import evaluate, prepare  # noqa: E402
from recsys.evaluation.report import Comparison, evaluate_many, to_markdown  # noqa: E402
from recsys.models import REGISTRY, make_model  # noqa: E402
from training.jobs.evaluate import load_clean, parse_models, split_data  # noqa: E402
from training.jobs.tune import SEARCH_SPACES, TuneResult, tune, validation_split  # noqa: E402

DATASETS = ("completejourney", str(REPO.parent / "shared/data/online_retail/online_retail.csv.gz"))
COLUMNS = ["ndcg@10", "recall@10", "coverage@10", "fit_s", "recommend_s",
           "cold_products/recall@20", "repeat/ndcg@10", "new/ndcg@10",
           "cold_customers/ndcg@10"]
SINGLE = ("popularity", "trending", "itemknn", "als", "bpr", "ease", "buyagain", "content")


def run_dataset(source: str, models: list[str], trials: int, timeout: float,
                hybrid_trials: int, hybrid_timeout: float, val_customers: int) -> str:
    """Tune every model, evaluate all on the test period; returns a Markdown section."""
    t0 = time.perf_counter()
    data = load_clean(source)
    split = split_data(data, 28)
    print(f"\n== {data.name}: {split.summary()} (loaded in {time.perf_counter() - t0:.0f}s)",
          flush=True)
    val_split = validation_split(split, 28)
    validation = prepare(val_split, products=data.products, max_test_customers=val_customers)
    print(f"   validation: {val_split.summary()}, scored on "
          f"{len(validation.test_customers)} customers", flush=True)
    results: dict[str, TuneResult] = {}
    tuning: list[str] = []
    for name in sorted(models, key=lambda m: m == "hybrid"):  # the hybrid needs the others
        start = time.perf_counter()
        hybrid = name == "hybrid"
        result = tune(name, split, hybrid_trials if hybrid else trials, validation=validation,
                      timeout=hybrid_timeout if hybrid else timeout, seed=0,
                      base_params=hybrid_base(results) if hybrid else None)
        results[name] = result
        tuning.append(f"| {name} | {len(result.trials)} | {result.best_value:.4f} | "
                      f"{time.perf_counter() - start:.0f} | `{result.best_params}` |")
        print(f"   tuned {name:11s} {len(result.trials):2d} trials "
              f"{time.perf_counter() - start:6.0f}s  val ndcg@10={result.best_value:.4f} "
              f"{result.best_params}", flush=True)
    start = time.perf_counter()
    test = prepare(split, products=data.products)
    comparison = evaluate_many({n: r.best_params for n, r in results.items()}, test, k=10)
    if "hybrid" in results:
        comparison = Comparison([*comparison.reports, evaluate(
            make_model("hybrid"), test, 10, name="hybrid (defaults)")], comparison.split_summary)
    print(f"   test evaluation {time.perf_counter() - start:.0f}s", flush=True)
    table = comparison.table(COLUMNS)
    print(to_markdown(table), verdict(table), verdict(table, "hybrid (defaults)"), flush=True)
    return "\n".join([
        f"## {data.name}", "", f"Split: `{split.summary()}`.", "",
        f"Validation (tuning) period: `{val_split.summary()}`, scored on "
        f"{len(validation.test_customers)} sampled customers.", "",
        "Test period, tuned parameters refitted on everything before the cut:", "",
        to_markdown(table), verdict(table), verdict(table, "hybrid (defaults)"), "",
        "Tuning on the validation period:", "",
        "| model | trials | val ndcg@10 | seconds | best parameters |",
        "|---|---:|---:|---:|---|", *tuning, ""])


def hybrid_base(results: dict[str, TuneResult]) -> dict:
    """The hybrid's fixed parts: its default CF model (ALS) and components, tuned ones' way."""
    base: dict = {}
    for part, model in (("cf", "als"), ("content", "content"), ("buyagain", "buyagain"),
                        ("trending", "trending")):
        if model in results:
            base[f"{part}_params"] = results[model].best_params
    return base


def verdict(table, row: str = "hybrid") -> str:  # type: ignore[no-untyped-def]
    """Does the hybrid beat every single model on NDCG@10? By how much (not)?"""
    if row not in table.index:
        return f"({row} not evaluated)"
    others = table["ndcg@10"]
    others = others[others.index.isin(SINGLE)]
    best_name, best = others.idxmax(), others.max()
    hybrid = table.loc[row, "ndcg@10"]
    word = "beats" if hybrid > best else "does NOT beat"
    return (f"\n{row}: NDCG@10 {hybrid:.4f} {word} the best single model "
            f"({best_name}, {best:.4f}): difference {hybrid - best:+.4f} "
            f"({(hybrid - best) / best:+.1%}).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--models", default="all")
    parser.add_argument("--trials", type=int, default=8, help="trial budget per model")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds per model search (a started trial finishes)")
    parser.add_argument("--hybrid-trials", type=int, default=40,
                        help="trial budget of the hybrid's blend weights (fitted once)")
    parser.add_argument("--hybrid-timeout", type=float, default=400.0)
    parser.add_argument("--val-customers", type=int, default=1000,
                        help="validation customers scored per trial (a seeded sample)")
    parser.add_argument("--out", type=Path, help="write the tables to this Markdown file")
    args = parser.parse_args()
    models = sorted(REGISTRY) if args.models == "all" else parse_models(args.models)
    started, load_before = time.strftime("%Y-%m-%d %H:%M %Z"), os.getloadavg()
    start = time.perf_counter()
    sections = [run_dataset(s, models, args.trials, args.timeout, args.hybrid_trials,
                            args.hybrid_timeout, args.val_customers)
                for s in args.datasets.split(",")]
    total = time.perf_counter() - start
    print(f"\ntotal {total / 60:.1f} min", flush=True)
    if args.out:
        command = "OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/quality.py " + " ".join(
            sys.argv[1:])
        load = ", ".join(f"{a:.1f}" for a in load_before) + " at the start, " + ", ".join(
            f"{a:.1f}" for a in os.getloadavg()) + " at the end"
        header = [
            "# Offline quality: every model, tuned, on a 4-week temporal hold-out", "",
            f"Command: `{command}`, started {started}, total {total / 60:.1f} min on "
            f"{platform.machine()} with {os.cpu_count()} cores shared with other jobs (load "
            f"average {load}): times are inflated by that load.", "",
            "EASE models only the "
            f"{make_model('ease').get_params()['max_items']:,} products bought by the most "
            "customers (`max_items`): its dense inverse over all 68k products of The "
            "Complete Journey would need 37 GB; the others score -inf.", "",
            "Metrics at k=10 over test customers with at least one purchase in the slice "
            "(recall normalised by min(k, |relevant|)); `cold_products/recall@20` counts only "
            "purchases of products first sold in the test period. Searched parameters per "
            f"model: `{ {m: list(s) for m, s in SEARCH_SPACES.items()} }`.", ""]
        args.out.write_text("\n".join(header) + "\n" + "\n".join(sections))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
