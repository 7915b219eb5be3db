"""An experiment's results as files people read: JSON, Markdown or HTML, with plots.

``write(result, out_dir, fmt)`` writes ``experiment.json`` (the dict ``analysis.analyze``
returns, the same JSON ``GET /admin/experiments`` answers), ``experiment.md`` or
``experiment.html`` (the Markdown rendered by markdown-it) and two PNG plots (matplotlib,
Agg canvas): each metric's difference with its interval, and each coupon's uplift.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from recsys.experiments.decision import decide

FORMATS = ("md", "html")
METHODS = {"welch": "Welch's t interval", "bootstrap": "percentile bootstrap interval"}


def _num(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.{digits}g}"
    return str(v)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    lines += ["| " + " | ".join(_num(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _ci(row: Mapping[str, Any]) -> str:
    if None in (row["diff"], row["low"], row["high"]):
        return "-"  # no variance in either group: no interval
    return f"{row['diff']:+.4g} [{row['low']:+.4g}, {row['high']:+.4g}]"


def markdown(result: Mapping[str, Any], plots: Mapping[str, str]) -> str:
    """The report as Markdown (``plots``: figure name -> file name next to it)."""
    level = f"{100 * (1 - result['alpha']):.0f} %"
    method = METHODS[result["interval"]]
    srm = result["srm"]
    parts = [
        "# Experiment report",
        f"Generated {result['generated_at']}. Unit: the customer, counted in the variant of "
        f"their first exposure; outcomes over the {result['window_days']:g} days after it, "
        f"CUPED covariate: spend in the {result['pre_days']:g} days before it. Intervals: "
        f"{method}, {level}; rows marked `+cuped` are adjusted with pre-period spend.",
        "## Split",
        f"{result['customers']} exposed customers "
        f"({result['customers_in_two_variants']} seen in two variants, counted in the first). "
        f"Sample-ratio check (chi-square against {srm['expected']}): counts {srm['counts']}, "
        f"p = {srm['p_value']:.3g} -> "
        + ("**MISMATCH: the split is broken; do not read the results**" if srm["mismatch"]
           else "no mismatch."),
        "## Variants",
        _table(["variant", "model versions", "exposed", "bought a shown product",
                "revenue / customer", "attributed revenue", "shown a coupon",
                "coupon redemption rate", "coupon cost / customer", "visit rate"],
               [[name, ", ".join(v["model_versions"]), v["exposed_customers"],
                 v["customers_bought_shown"], v["revenue_per_customer"],
                 v["attributed_revenue"], v["customers_shown_coupon"],
                 v["coupon_redemption_rate"], v["coupon_cost_per_customer"], v["visit_rate"]]
                for name, v in result["variants"].items()])]
    if result["comparisons"]:
        parts += [f"## {result['treatment']} minus {result['control']}",
                  _table(["metric", "method", "difference [CI]", "relative", "p"],
                         [[r["metric"], r["method"], _ci(r), r["relative"], r["p_value"]]
                          for r in result["comparisons"]])]
    if "differences" in plots:
        parts.append(f"![differences]({plots['differences']})")
    if result["coupons"]:
        parts += ["## Coupons against their holdout groups",
                  "Uplift = customers given the coupon minus customers held out of it, over "
                  "the window after their first eligible answer; net incremental revenue = "
                  "spend uplift x customers given it - the discounts paid on redemptions.",
                  _table(["coupon", "given", "held out", "visit-rate uplift [CI]",
                          "spend uplift / customer [CI]", "redemptions", "cost",
                          "net incremental revenue [CI]", "ROI", "holdout SRM p"],
                         [_coupon_row(c) for c in result["coupons"]])]
    if "coupons" in plots:
        parts.append(f"![coupons]({plots['coupons']})")
    if result.get("guardrails"):
        parts += ["## Server guardrails",
                  _table(["variant", "requests", "error rate", "p99 latency ms"],
                         [[k, v.get("requests"), v.get("error_rate"), v.get("latency_p99_ms")]
                          for k, v in result["guardrails"].items()])]
    if result["comparisons"]:
        verdict = decide(result)
        parts += ["## Decision on revenue per customer",
                  ("**Promote the challenger**: " if verdict.promote else "**Keep the "
                   "champion**: ") + str(verdict) + "."]
    return "\n\n".join(parts) + "\n"


def _coupon_row(c: Mapping[str, Any]) -> list[Any]:
    if "spend" not in c:
        return [c["coupon_id"], c["treated"], c["held_out"], c.get("note"), "-",
                c["redemptions"], c["cost"], "-", "-", "-"]
    net = (f"{c['net_incremental_revenue']:+,.0f} [{c['net_low']:+,.0f}, "
           f"{c['net_high']:+,.0f}]")
    return [c["coupon_id"], c["treated"], c["held_out"], _ci(c["visit_rate"]),
            _ci(c["spend"]), c["redemptions"], c["cost"], net, c["roi"],
            c["srm"]["p_value"] if "srm" in c else None]


def plot_differences(rows: Sequence[Mapping[str, Any]], title: str) -> Any:
    """Each row's difference relative to the control mean, with its interval."""
    from matplotlib.figure import Figure

    rows = [r for r in rows if None not in (r["diff"], r["low"], r["high"])]
    fig = Figure(figsize=(7, 0.6 * len(rows) + 1.2))
    ax = fig.add_subplot()
    for y, r in enumerate(rows):
        base = r["mean_control"] or 1.0
        ax.errorbar(100 * r["diff"] / base, y, fmt="o", color="black",
                    xerr=[[100 * (r["diff"] - r["low"]) / base],
                          [100 * (r["high"] - r["diff"]) / base]], capsize=4)
    ax.axvline(0, color="grey", lw=1)
    ax.set_yticks(range(len(rows)), [f"{r['metric']} ({r['method']})" for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("difference, % of the control mean")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def write(result: Mapping[str, Any], out_dir: str | Path, fmt: str = "md") -> list[Path]:
    """Write the JSON, the report in ``fmt`` (md or html) and its plots; returns the paths."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "experiment.json"]
    paths[0].write_text(json.dumps(result, indent=2, default=str) + "\n")
    plots: dict[str, str] = {}
    if result["comparisons"]:
        fig = plot_differences(result["comparisons"],
                               f"{result['treatment']} vs {result['control']}")
        fig.savefig(out / "differences.png", dpi=110)
        plots["differences"] = "differences.png"
    uplifts = [c[k] | {"metric": f"{c['coupon_id']}: {k}"} for c in result["coupons"]
               for k in ("visit_rate", "spend") if k in c]
    if uplifts:
        fig = plot_differences(uplifts, "coupons: given minus held out")
        fig.savefig(out / "coupons.png", dpi=110)
        plots["coupons"] = "coupons.png"
    paths += [out / name for name in plots.values()]
    text = markdown(result, plots)
    if fmt == "md":
        paths.append(out / "experiment.md")
        paths[-1].write_text(text)
    else:
        from markdown_it import MarkdownIt

        body = MarkdownIt("commonmark").enable("table").render(text)
        paths.append(out / "experiment.html")
        paths[-1].write_text("<!doctype html><html><head><meta charset='utf-8'><title>"
                             "Experiment report</title><style>body{font-family:sans-serif;"
                             "max-width:70em;margin:auto}table{border-collapse:collapse}"
                             "td,th{border:1px solid #ccc;padding:2px 6px}</style></head>"
                             f"<body>{body}</body></html>\n")
    return paths


__all__ = ["write", "markdown", "plot_differences", "FORMATS"]
