"""Several models on one split, side by side: ``evaluate_many``, a table (Markdown/CSV), plots."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.data.dataset import Weighting
from recsys.data.schema import RetailData
from recsys.data.split import TemporalSplit
from recsys.evaluation.evaluate import EvalData, Report, evaluate, prepare

log = logging.getLogger(__name__)


def default_columns(k: int, cold_k: int = 20) -> list[str]:
    """The columns of the comparison table, most important first: the headline (returning
    customers), the discover and new-arrivals lists, new customers, then the rest."""
    return [*headline_columns(k, cold_k), f"ndcg@{k}", f"recall@{k}", f"precision@{k}",
            f"map@{k}", f"hit_rate@{k}", f"mrr@{k}", f"coverage@{k}", f"novelty@{k}",
            f"diversity@{k}", f"popularity@{k}", f"repeat/ndcg@{k}", f"new/ndcg@{k}",
            f"cold_products/recall@{cold_k}", "fit_s", "recommend_s"]


def headline_columns(k: int, cold_k: int = 20) -> list[str]:
    """The quality columns margins are stated on (see ``evaluate``'s module docstring)."""
    return [f"returning/ndcg@{k}", f"returning/recall@{k}", f"discover/ndcg@{k}",
            f"new_arrivals/recall@{cold_k}", f"cold_customers/ndcg@{k}"]


def margins(table: pd.DataFrame, baselines: Sequence[str],
            columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Each row that is not a baseline divided by the strongest baseline of each column,
    then the rows ``strongest baseline`` (its value) and ``(which)`` (its name).

    A column whose strongest baseline is 0 or missing gives ``nan``; ``baselines`` absent
    from the table are ignored.
    """
    cols = list(columns) if columns is not None else list(table.columns)
    base = table.loc[[b for b in baselines if b in table.index], cols]
    best = base.max()
    others = [r for r in table.index if r not in base.index]
    out = (table.loc[others, cols] / best.where(best > 0)).astype(object)
    out.loc["strongest baseline"] = best
    # a column the baselines could not score (a slice empty on this split) names no one
    names = base.astype(float).fillna(-math.inf).idxmax() if len(base) else \
        pd.Series(dtype=object)
    out.loc["(which)"] = [str(names[c]) if pd.notna(best.get(c)) else "-" for c in cols]
    return out


def comparison_table(reports: Sequence[Report], columns: Sequence[str] | None = None
                     ) -> pd.DataFrame:
    """One row per report (indexed by model name), one column per metric.

    Parameters
    ----------
    reports : sequence of Report
        Results on the same split (same ``k``).
    columns : sequence of str, optional
        Keys of ``Report.flat()``; default ``default_columns(k)``. Missing keys become ``nan``.
    """
    if not reports:
        raise ValueError("comparison_table needs at least one report.")
    cols = list(columns) if columns is not None else default_columns(reports[0].k)
    rows = [{c: r.flat().get(c, math.nan) for c in cols} for r in reports]
    return pd.DataFrame(rows, index=pd.Index([r.model for r in reports], name="model"))


def to_markdown(table: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub Markdown table; floats rounded to ``digits``, times to 0.01 s."""
    def fmt(col: str, v: object) -> str:
        if isinstance(v, float):
            if math.isnan(v):
                return "-"
            return f"{v:.2f}" if col.endswith("_s") else f"{v:.{digits}f}"
        return str(v)

    head = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * len(
        table.columns)) + "|"]
    for name, row in table.iterrows():
        cells = [str(name)] + [fmt(str(c), row[c]) for c in table.columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the table as Markdown (``.md``) or CSV (``.csv``), chosen by the suffix."""
    path = Path(path)
    if path.suffix == ".md":
        path.write_text(to_markdown(table))
    elif path.suffix == ".csv":
        table.to_csv(path, float_format="%.6g")
    else:
        raise ValueError(f"cannot write a table to {path.name!r}: use a .md or .csv file.")
    return path


def plot_bars(reports: Sequence[Report], path: str | Path,
              metrics: Sequence[str] | None = None) -> Path:
    """Grouped bar chart of ``metrics`` (default NDCG, recall, coverage at k) per model (PNG)."""
    # A bare Figure, not pyplot: no global backend switch (it would stop notebooks' plots).
    from matplotlib.figure import Figure

    table = comparison_table(reports, metrics or [f"ndcg@{reports[0].k}",
                                                  f"recall@{reports[0].k}",
                                                  f"coverage@{reports[0].k}"])
    fig = Figure(figsize=(max(6.0, 1.2 * len(table)), 4))
    ax = fig.add_subplot()
    table.plot.bar(ax=ax, rot=30, width=0.8)
    ax.set_ylabel("score")
    ax.set_title("offline evaluation, same temporal split")
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return Path(path)


def plot_popularity(reports: Sequence[Report], path: str | Path) -> Path:
    """Long-tail plot: share of recommendations per training-popularity bin, per model (PNG)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    curve = reports[0].popularity_curve
    centers = (curve.edges[:-1] + curve.edges[1:]) / 2
    ax.plot(centers, curve.train, "k--", label="training purchases")
    for r in reports:
        ax.plot(centers, r.popularity_curve.recommended, marker="o", label=r.model)
    ax.set_xlabel("item popularity percentile in training (0 = long tail)")
    ax.set_ylabel("share")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return Path(path)


@dataclass
class Comparison:
    """Reports of several models on the same split (``models``: the fitted ones asked for)."""

    reports: list[Report]
    split_summary: dict[str, object]
    models: dict[str, Any] = field(default_factory=dict)

    def metrics(self) -> dict[str, dict[str, float]]:
        """``model name -> Report.flat()``."""
        return {r.model: r.flat() for r in self.reports}

    def table(self, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The comparison table (see ``comparison_table``)."""
        return comparison_table(self.reports, columns)

    def write(self, directory: str | Path, baselines: Sequence[str] = ()) -> list[Path]:
        """Write ``comparison.md``, ``comparison.csv``, ``bars.png`` and ``popularity.png``;
        with ``baselines``, ``comparison.md`` ends with the other rows' ``margins`` against
        the strongest of them."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        table = self.table()
        paths = [write_table(table, directory / "comparison.md")]
        if baselines:
            k = self.reports[0].k
            with paths[0].open("a") as out:
                out.write(f"\nCut `{self.split_summary.get('cut')}`. Margins against the "
                          "strongest baseline (value / baseline's):\n\n")
                out.write(to_markdown(margins(table, baselines, headline_columns(k)), 3))
        return [*paths,
                write_table(table, directory / "comparison.csv"),
                plot_bars(self.reports, directory / "bars.png"),
                plot_popularity(self.reports, directory / "popularity.png")]


def evaluate_many(models: Mapping[str, Mapping[str, Any]] | Sequence[str],
                  split: TemporalSplit | EvalData, data: RetailData | None = None, *,
                  k: int = 10, cold_k: int = 20, weighting: Weighting = "log",
                  half_life_days: float | None = None, exclude_seen: bool = False,
                  keep: Sequence[str] = ()) -> Comparison:
    """Fit and evaluate each registry model on the same split.

    Parameters
    ----------
    models : mapping of name to params, or sequence of names
        Registry names (``recsys.models.REGISTRY``) with constructor parameters.
    split : TemporalSplit or EvalData
        The split; a TemporalSplit is prepared once (with ``data.products`` when given).
    data : RetailData, optional
        Source of the product table (item features for content and hybrid models).
    k, cold_k, exclude_seen
        As in ``evaluate``.
    weighting, half_life_days
        Training-matrix weighting (``build_interactions``).
    keep : names whose fitted model the result holds (``Comparison.models``).
    """
    # Imported here so that the metrics do not pull in every model's dependencies (implicit).
    from recsys.models import make_model

    specs = dict(models) if isinstance(models, Mapping) else {m: {} for m in models}
    if isinstance(split, TemporalSplit):
        prepared = prepare(split, products=None if data is None else data.products,
                           weighting=weighting, half_life_days=half_life_days)
    else:
        prepared = split
    reports, fitted = [], {}
    for name, params in specs.items():
        log.info("evaluating %s %s", name, dict(params))
        model = make_model(name, **params)
        reports.append(evaluate(model, prepared, k, cold_k=cold_k, exclude_seen=exclude_seen,
                                name=name))
        if name in keep:
            fitted[name] = model
    return Comparison(reports, prepared.split.summary(), fitted)


__all__ = ["Comparison", "evaluate_many", "default_columns", "comparison_table", "to_markdown",
           "write_table", "plot_bars", "plot_popularity", "headline_columns", "margins"]
