"""Search the hybrid's blend weights on a validation period (how its defaults were chosen).

Per dataset: clean, hold out the last 4 weeks (test), and tune on the 4 weeks before
(validation). The hybrid's parts are fitted once on the validation training period; each part's
normalised scores are kept on a candidate pool per customer (the union of every part's top
``--pool`` items), so one trial (a weight vector) costs a weighted sum and a top-10. Optuna TPE
maximises the geometric mean of the validation NDCG@10 over the datasets (so each dataset
counts by its relative gain, whatever its NDCG level); the best weights and the current
defaults are then refitted on everything before the test cut and compared with every single
model on the test period.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/hybrid_weights.py \
        [--datasets "synthetic:customers=5000,products=1000,seed=1;completejourney"] \
        [--trials 150] [--pool 200] [--test]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import optuna  # noqa: E402

from recsys.data.clean import clean  # noqa: E402
from recsys.data.load import load_dataset  # noqa: E402
from recsys.data.split import temporal_split  # noqa: E402
from recsys.evaluation.evaluate import evaluate, prepare  # noqa: E402
from recsys.evaluation.metrics import ndcg_at_k  # noqa: E402
from recsys.models import Hybrid, make_model  # noqa: E402
from recsys.models.base import top_n  # noqa: E402
from recsys.models.hybrid import COMPONENTS  # noqa: E402

SINGLE = ("popularity", "trending", "buyagain", "itemknn", "ease", "als", "bpr", "content")


class Pool:
    """Every part's scores on a candidate pool of each warm validation customer."""

    def __init__(self, model: Hybrid, data, pool: int) -> None:  # type: ignore[no-untyped-def]
        warm = np.nonzero(model._known_rows(data.history, data.users))[0]
        self.relevant = data.relevant[warm]
        ones = dict.fromkeys(COMPONENTS, 1.0)
        if not model.has_content_:
            ones["content"] = 0.0
        ids, parts = [], []
        chunk = max(16, 2**22 // data.history.shape[1])  # bounds the dense blocks
        for start in range(0, len(warm), chunk):
            rows = warm[start:start + chunk]
            block = dict(model._parts(data.history[rows], data.users[rows], ones))
            stacked = np.stack([np.asarray(block.get(c, 0.0) + np.zeros(
                (len(rows), data.history.shape[1]), np.float32)) for c in COMPONENTS])
            top = np.argpartition(-stacked, pool - 1, axis=2)[:, :, :pool]
            cand = np.concatenate(list(top), axis=1)
            cand.sort(axis=1)
            ids.append(cand)
            parts.append(np.take_along_axis(stacked, cand[None], axis=2))
        self.ids = np.concatenate(ids)          # (users, C), duplicates harmless
        self.parts = np.concatenate(parts, 1)   # (components, users, C)

    def ndcg(self, weights: dict[str, float]) -> float:
        w = np.array([weights.get(c, 0.0) for c in COMPONENTS], np.float32)
        total = np.tensordot(w, self.parts, axes=1)
        dup = np.zeros(self.ids.shape, bool)
        dup[:, 1:] = self.ids[:, 1:] == self.ids[:, :-1]
        total[dup] = -np.inf
        pos = top_n(total, 10).ids
        picks = np.where(pos >= 0, np.take_along_axis(self.ids, np.maximum(pos, 0), 1), -1)
        return ndcg_at_k(picks, self.relevant, 10)


def load(source: str):  # type: ignore[no-untyped-def]
    data, _ = clean(load_dataset(source))
    full = temporal_split(data.transactions, test_days=28)
    return data, full, temporal_split(full.train, test_days=28)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="synthetic:customers=5000,products=1000,seed=1",
                        help="sources separated by ';'")
    parser.add_argument("--trials", type=int, default=150)
    parser.add_argument("--pool", type=int, default=200)
    parser.add_argument("--params", default="{}", help="fixed Hybrid parameters (JSON)")
    parser.add_argument("--test", action="store_true", help="compare on the test period too")
    args = parser.parse_args()
    fixed = json.loads(args.params)
    pools, loaded = {}, {}
    for source in args.datasets.split(";"):
        start = time.perf_counter()
        data, full, val = load(source)
        ev = prepare(val, products=data.products)
        model = Hybrid(**fixed).fit(ev.train.matrix, items=ev.items)
        pools[source], loaded[source] = Pool(model, ev, args.pool), (data, full)
        print(f"{source}: validation {ev.train.shape} train, {pools[source].ids.shape[0]} warm "
              f"customers, pool {pools[source].ids.shape[1]} ({time.perf_counter() - start:.0f}s)",
              flush=True)
    defaults = {c: getattr(Hybrid(**fixed), f"{c}_weight") for c in COMPONENTS}

    def objective(trial: optuna.Trial) -> float:
        weights = {c: trial.suggest_float(c, 1e-3, 3.0, log=True) for c in COMPONENTS
                   if c != "buyagain"}
        weights["buyagain"] = 1.0  # the scale anchor
        return float(np.exp(np.mean([np.log(max(p.ndcg(weights), 1e-9))
                                     for p in pools.values()])))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=0))
    study.enqueue_trial({c: max(w, 1e-3) for c, w in defaults.items() if c != "buyagain"})
    study.optimize(objective, n_trials=args.trials)
    best = {**study.best_params, "buyagain": 1.0}
    print("\n| dataset | defaults val ndcg@10 | tuned val ndcg@10 |\n|---|---:|---:|")
    for source, pool in pools.items():
        print(f"| {source} | {pool.ndcg(defaults):.4f} | {pool.ndcg(best):.4f} |")
    print("\nbest weights:", json.dumps({k: round(v, 4) for k, v in best.items()}))
    if not args.test:
        return
    for source, (data, full) in loaded.items():
        ev = prepare(full, products=data.products)
        rows = [(n, make_model(n)) for n in SINGLE] + [
            ("hybrid (defaults)", Hybrid(**fixed)),
            ("hybrid (tuned)", Hybrid(**fixed, **{f"{c}_weight": w for c, w in best.items()}))]
        print(f"\n{source} test period: {full.summary()}\n\n| model | ndcg@10 | recall@10 | "
              "cold_products/recall@20 | fit s |\n|---|---:|---:|---:|---:|")
        for label, model in rows:
            r = evaluate(model, ev, 10)
            print(f"| {label} | {r.metrics['ndcg@10']:.4f} | {r.metrics['recall@10']:.4f} | "
                  f"{r.slices['cold_products']['recall@20']:.4f} | {r.fit_seconds:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
