"""Do the experiment statistics keep their promises? Seeded simulated experiments with a known
true effect (``recsys.experiments.simulate``).

    python benchmarks/experiments.py --path customers --runs 1000   # statistics, ~1 min
    python benchmarks/experiments.py --path rows --runs 1000        # the whole pipeline

``--path rows`` drives the real pipeline: each run's exposure and event rows go through
``recsys.experiments.analysis.analyze`` (attribution, per-customer outcomes, Welch intervals,
CUPED, SRM), about 1-2 s of CPU per run and scenario. ``--path customers`` feeds the
simulator's per-customer outcomes straight to the same statistics
(``recsys.experiments.stats.compare`` / ``srm``); tests check that both paths give the same
numbers for a run. Scenarios: the challenger adds 5 % spend and the coupon 2 points of visit
rate (coverage of the true effects, CUPED narrowing); an A/A test (how often a difference is
called); a forced 45/55 split of a 50/50 experiment with 4x the customers (how often the
SRM check flags it). The
table is printed every ``--every`` runs and at the end, with the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import numpy as np

from recsys.experiments.analysis import Setup, analyze
from recsys.experiments.simulate import Scenario, coupon_of, customers, frames, truth
from recsys.experiments.stats import compare, srm

CHECKS = ("cover_raw", "cover_cuped", "cover_visit", "cover_coupon_spend", "aa_raw", "aa_cuped",
          "srm_fair", "srm_forced")


def _rows_run(scenario: Scenario, seed: int) -> dict[str, object]:
    """One run through exposure/event rows and ``analyze``."""
    result = analyze(*frames(scenario, seed), Setup(holdout_shares={coupon_of(seed): 0.2}))
    rows = {(r["metric"], r["method"]): r for r in result["comparisons"]}
    (coupon,) = result["coupons"]
    return {"raw": rows["revenue_per_customer", "welch"],
            "cuped": rows["revenue_per_customer", "welch+cuped"],
            "visit": coupon["visit_rate"], "coupon_spend": coupon["spend"],
            "srm": result["srm"]["mismatch"]}


def _customers_run(scenario: Scenario, seed: int) -> dict[str, object]:
    """The same run from per-customer outcomes to the same statistics."""
    d = customers(scenario, seed)
    t, c = d[d["variant"] == "challenger"], d[d["variant"] == "champion"]
    g, h = d[d["treated"]], d[~d["treated"]]
    share = scenario.challenger_share
    return {"raw": compare("spend", t["spend"], c["spend"]).to_dict(),
            "cuped": compare("spend", t["spend"], c["spend"],
                             covariate=(t["pre_spend"], c["pre_spend"])).to_dict(),
            "visit": compare("visit", g["visited"], h["visited"]).to_dict(),
            "coupon_spend": compare("spend", g["spend"], h["spend"],
                                    covariate=(g["pre_spend"], h["pre_spend"])).to_dict(),
            "srm": srm({"challenger": len(t), "champion": len(c)},
                       {"challenger": share, "champion": 1 - share}).mismatch}


def _inside(row: dict, value: float) -> bool:
    return row["low"] <= value <= row["high"]


def table(counts: dict[str, int], narrowing: list[float], n: int, true: dict[str, float]
          ) -> str:
    def pct(key: str) -> str:
        return f"{100 * counts[key] / n:.1f} %"

    return "\n".join([
        "| check | target | result |", "|---|---|---|",
        f"| 95 % Welch interval covers the true spend effect "
        f"({true['revenue_per_customer']:+.3f} per customer) | 93.5-96.5 % | {pct('cover_raw')} |",
        f"| same, CUPED-adjusted | 93.5-96.5 % | {pct('cover_cuped')} |",
        f"| coupon: interval covers the true visit-rate uplift (+0.020) | 93.5-96.5 % | "
        f"{pct('cover_visit')} |",
        f"| coupon: CUPED interval covers the true spend uplift ({true['coupon_spend']:+.3f})"
        f" | 93.5-96.5 % | {pct('cover_coupon_spend')} |",
        f"| A/A: difference called (Welch) | 3.5-6.5 % | {pct('aa_raw')} |",
        f"| A/A: difference called (CUPED) | 3.5-6.5 % | {pct('aa_cuped')} |",
        f"| CUPED narrows the spend interval: mean (min-max) | >= 20 % | "
        f"{100 * np.mean(narrowing):.1f} % ({100 * np.min(narrowing):.1f}-"
        f"{100 * np.max(narrowing):.1f} %) |",
        f"| SRM check flags a fair 50/50 split (p < 0.001) | ~0.1 % | {pct('srm_fair')} |",
        f"| SRM check flags a forced 45/55 split (4x the customers) | high | "
        f"{pct('srm_forced')} |"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", choices=("rows", "customers"), default="rows")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--every", type=int, default=100, help="print the table every N runs")
    args = parser.parse_args()

    one = _rows_run if args.path == "rows" else _customers_run
    scenario = Scenario(customers=args.customers)
    true = truth(scenario)
    # A split off by 5 points: at 2,000 customers the chi-square expects 20 (p ~ 1e-5) but
    # varies; 8,000 customers is a fortnight of a mid-size shop's traffic.
    forced = replace(scenario, split=0.55, customers=4 * args.customers)
    counts = dict.fromkeys(CHECKS, 0)
    narrowing: list[float] = []
    started = time.perf_counter()
    print(f"path {args.path}: {args.runs} runs x {args.customers} customers, seeds "
          f"{args.seed}..{args.seed + args.runs - 1}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores", flush=True)
    for k in range(args.runs):
        seed = args.seed + k
        r = one(scenario, seed)
        counts["cover_raw"] += _inside(r["raw"], true["revenue_per_customer"])
        counts["cover_cuped"] += _inside(r["cuped"], true["revenue_per_customer"])
        counts["cover_visit"] += _inside(r["visit"], true["coupon_visit_rate"])
        counts["cover_coupon_spend"] += _inside(r["coupon_spend"], true["coupon_spend"])
        counts["srm_fair"] += r["srm"]
        raw, cuped = r["raw"], r["cuped"]
        narrowing.append(1 - (cuped["high"] - cuped["low"]) / (raw["high"] - raw["low"]))
        aa = one(scenario.aa(), 10**6 + seed)
        counts["aa_raw"] += aa["raw"]["significant"]
        counts["aa_cuped"] += aa["cuped"]["significant"]
        counts["srm_forced"] += one(forced, 2 * 10**6 + seed)["srm"]
        if (k + 1) % args.every == 0 or k + 1 == args.runs:
            print(f"\nafter {k + 1} runs ({time.perf_counter() - started:.0f} s, load average "
                  f"{os.getloadavg()[0]:.1f}):\n{table(counts, narrowing, k + 1, true)}",
                  flush=True)


if __name__ == "__main__":
    main()
