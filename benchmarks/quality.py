"""Offline quality against the strongest simple baselines, on the protocol of recsys.evaluation.

Per dataset (The Complete Journey and UCI Online Retail): clean, cut at one exact timestamp
28 days before the end (train before it, test after), tune the baselines (optuna TPE, small
budget) for returning customers' NDCG@10 on the 28 days before the cut, refit the best
parameters on everything before the cut and score every model once on the test period:

- rows: buy-again filled with popularity, TIFU-KNN, EASE, ALS (the baselines, tuned), the
  old hybrid (defaults, what ``recsys train`` used), the learned ``ranker`` when it is in the
  registry (defaults), and the new-arrival references (random order of the new products,
  newest first, oldest first: only their new_arrivals column);
- columns: returning customers' NDCG@10 and recall@10 (the headline), ``discover`` NDCG@10
  (purchased products excluded, never-bought purchases relevant), ``new_arrivals``
  recall@20 (only products first sold in the test period), new customers' NDCG@10, fit and
  ranking seconds (``fit_s``, ``rank_s``: the main list of every test customer);
- then each non-baseline row's margin against the strongest baseline of every column.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/quality.py [--trials 10] [--timeout 75]
        [--datasets completejourney,../shared/data/online_retail/online_retail.csv.gz]
        [--val-customers 1000] [--out docs/benchmarks/quality.md]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402

from recsys.evaluation.evaluate import (  # noqa: E402
    EvalData,
    evaluate,
    launch_order,
    new_arrival_references,
    prepare,
)
from recsys.evaluation.report import margins, to_markdown  # noqa: E402
from recsys.models import REGISTRY, make_model  # noqa: E402
from training.jobs.evaluate import load_clean, split_data  # noqa: E402
from training.jobs.tune import SEARCH_SPACES, tune, validation_split  # noqa: E402

DATASETS = ("completejourney", str(REPO.parent / "shared/data/online_retail/online_retail.csv.gz"))
BASELINES = {"buy-again, popularity-filled": "buyagain", "TIFU-KNN": "tifuknn",
             "EASE": "ease", "ALS": "als"}
COLUMNS = {"returning/ndcg@10": "returning NDCG@10", "returning/recall@10": "returning recall@10",
           "discover/ndcg@10": "discover NDCG@10", "new_arrivals/recall@20":
           "new_arrivals recall@20", "cold_customers/ndcg@10": "new customers NDCG@10",
           "fit_s": "fit_s", "recommend_s": "rank_s"}
OBJECTIVE = "returning/ndcg"
NOTE = ("Reading the tables: every row is scored in one run by the same code. A model "
        "that scores every new product alike returns them in product order, which is the "
        "oldest-first reference (buy-again and ALS: no sales before the cut; EASE and "
        "TIFU-KNN return none). On Online Retail (34 new products, 20 listed) that order "
        "holds most of their purchases, so its `new_arrivals` column says little. The old "
        "hybrid is scored in its default `mixed` mode, its `discover` column with "
        "purchased products excluded. The Complete Journey has only 5 new test customers: "
        "its new-customers column is noise.")


def run_dataset(source: str, trials: int, timeout: float, val_customers: int) -> str:
    """Tune the baselines, score every row on the test period; returns a Markdown section."""
    t0 = time.perf_counter()
    data = load_clean(source)
    split = split_data(data, 28)
    print(f"\n== {data.name}: cut {split.cut}, {split.summary()} "
          f"(loaded in {time.perf_counter() - t0:.0f}s)", flush=True)
    val_split = validation_split(split, 28)
    validation = prepare(val_split, products=data.products, max_test_customers=val_customers)
    tuning, params = [], {}
    for label, name in BASELINES.items():
        start = time.perf_counter()
        result = tune(name, split, trials, validation=validation, timeout=timeout, seed=0,
                      metric=OBJECTIVE)
        params[name] = result.best_params
        seconds = time.perf_counter() - start
        tuning.append(f"| {label} | {len(result.trials)} | {result.best_value:.4f} | "
                      f"{seconds:.0f} | `{_short(result.best_params)}` |")
        print(f"   tuned {name:9s} {len(result.trials):2d} trials {seconds:5.0f}s "
              f"val returning ndcg@10={result.best_value:.4f} {_short(result.best_params)}",
              flush=True)
    test = prepare(split, products=data.products)
    rows: dict[str, dict[str, float]] = {}
    for label, name in BASELINES.items():
        rows[label] = evaluate(make_model(name, **params[name]), test, 10, name=label).flat()
    rows["old hybrid (defaults)"] = evaluate(make_model("hybrid"), test, 10).flat()
    note = ""
    if "ranker" in REGISTRY:
        rows["ranker"] = evaluate(make_model("ranker"), test, 10, name="ranker").flat()
    else:
        note = "The learned ranker (`ranker`) is not in the model registry yet: no row."
    for ref, metrics in new_arrival_references(test, 20).items():
        rows[f"new arrivals: {ref.replace('_', ' ')}"] = {
            "new_arrivals/recall@20": metrics["recall@20"]}
    table = pd.DataFrame([{c: r.get(c, math.nan) for c in COLUMNS} for r in rows.values()],
                         index=pd.Index(list(rows), name="row")).rename(columns=COLUMNS)
    quality = [c for c in table.columns if not c.endswith("_s")]  # times: no margin
    margin = margins(table, [r for r in table.index if r in BASELINES or
                             r.startswith("new arrivals:")], quality)
    first = rows[next(iter(BASELINES))]
    users = (f"{_users(test)}; discover {first['discover/users']:.0f} and new_arrivals "
             f"{first.get('new_arrivals/users', 0):.0f} returning customers with a relevant "
             "purchase")
    print(to_markdown(table), "\n", to_markdown(margin, 3), note, flush=True)
    return "\n".join([
        f"## {data.name}", "",
        f"Cut `{split.cut}`: train before it, test from it on (`{split.summary()}`); "
        f"customers per column: {users}.", "",
        to_markdown(table), "Margins against the strongest baseline of each column (its "
        "value / the baseline's; `new_arrivals` also against the three references):", "",
        to_markdown(margin, digits=3), note, "",
        f"Validation (tuning) period: cut `{val_split.cut}`, `{val_split.summary()}`, scored "
        f"on {len(validation.test_customers)} sampled customers, objective returning "
        "customers' NDCG@10:", "",
        "| baseline | trials | val NDCG@10 | seconds | best parameters |",
        "|---|---:|---:|---:|---|", *tuning, "",
        f"Newest first without launch dates: {launch_note(split, data.products, test)}", ""])


def launch_note(split, products: pd.DataFrame, test: EvalData) -> str:  # type: ignore[no-untyped-def]
    """How well the product id's order (the newest-first reference's launch key) agrees with
    the new products' real first sale, measured after the fact (never used for ranking)."""
    ids = test.train.products.ids[test.cold_items]
    first = split.test.groupby("product_id")["timestamp"].min().reindex(ids)
    key = pd.Series(launch_order(ids, products))
    rho = key.corr(pd.Series(first.to_numpy().astype("int64")), method="spearman")
    return (f"{len(ids)} new products; Spearman correlation of the launch key (product id "
            f"order) with the first sale in the test period: {rho:.2f}.")


def _users(test: EvalData) -> str:
    returning = int((test.users >= 0).sum())
    return f"{returning} returning, {int((test.users < 0).sum())} new test customers"


def _short(params: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in params.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--trials", type=int, default=10, help="trial budget per baseline")
    parser.add_argument("--timeout", type=float, default=75.0,
                        help="seconds per baseline search (a started trial finishes)")
    parser.add_argument("--val-customers", type=int, default=1000,
                        help="validation customers scored per trial (a seeded sample)")
    parser.add_argument("--out", type=Path, help="write the tables to this Markdown file")
    args = parser.parse_args()
    started, load_before = time.strftime("%Y-%m-%d %H:%M %Z"), os.getloadavg()
    start = time.perf_counter()
    sources = []
    for source in args.datasets.split(","):
        if source.endswith((".csv", ".csv.gz", ".parquet")) and not Path(source).exists():
            print(f"skipping {source}: no such file (the real datasets are read from "
                  "../shared/data)", file=sys.stderr, flush=True)
        else:
            sources.append(source)
    if not sources:
        raise SystemExit("no dataset to score: every --datasets file is missing")
    sections = [run_dataset(s, args.trials, args.timeout, args.val_customers)
                for s in sources]
    total = time.perf_counter() - start
    print(f"\ntotal {total / 60:.1f} min", flush=True)
    if args.out:
        command = "OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/quality.py " + " ".join(
            sys.argv[1:])
        load = ", ".join(f"{a:.1f}" for a in load_before) + " at the start, " + ", ".join(
            f"{a:.1f}" for a in os.getloadavg()) + " at the end"
        header = [
            "# Offline quality against the strongest simple baselines", "",
            f"Command: `{command}`, started {started}, total {total / 60:.1f} min on "
            f"{platform.machine()} with {os.cpu_count()} cores shared with other jobs (load "
            f"average {load}): times are inflated by that load.", "",
            "Protocol (`recsys/evaluation/evaluate.py`): one exact cut 28 days before the end; "
            "the headline is returning customers (seen before the cut), new customers are "
            "their own column. `discover` ranks with each customer's purchased products "
            "excluded and counts only purchases of products they never bought; "
            "`new_arrivals` ranks only the products first sold in the test period "
            "(`recommend(..., candidates=...)`) and counts their purchases by returning "
            "customers. Metrics at k=10 (recall@20 for new arrivals) over customers with at "
            "least one relevant purchase; recall is normalised by min(k, |relevant|).", "",
            f"Baselines tuned on the 28 days before the cut ({args.trials} trials or "
            f"{args.timeout:.0f} s each, seeded TPE, trial 0 = defaults). Searched: "
            f"`{ {m: list(SEARCH_SPACES[m]) for m in BASELINES.values()} }`. EASE models "
            f"the {make_model('ease').get_params()['max_items']:,} products with the most "
            "buyers (`max_items`).", "", NOTE, ""]
        args.out.write_text("\n".join(header) + "\n" + "\n".join(sections))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
