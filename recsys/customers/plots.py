"""Figures of the customer reports, drawn without pyplot (no global state, no display).

Each function returns a ``matplotlib.figure.Figure``; ``fig.savefig(path)`` renders it with
the Agg canvas, so this works on servers and in CI.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def cohort_heatmap(cohorts: pd.DataFrame) -> Figure:
    """Retention by monthly cohort (rows) and months since first purchase (columns).

    Parameters
    ----------
    cohorts : ``KPIReport.cohorts`` (``customers`` then ``m0..mK`` shares)
    """
    shares = cohorts.drop(columns="customers").to_numpy(dtype=float)
    fig = Figure(figsize=(1.2 + 0.55 * shares.shape[1], 1.2 + 0.4 * max(len(shares), 1)))
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(shares), cmap="viridis", vmin=0, vmax=1,
                      aspect="auto")
    ax.set_xticks(range(shares.shape[1]), [c.removeprefix("m") for c in cohorts.columns[1:]])
    labels = [f"{c} (n={n})" for c, n in zip(cohorts.index, cohorts["customers"], strict=True)]
    ax.set_yticks(range(len(shares)), labels)
    for (i, j), v in np.ndenumerate(shares):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=7,
                    color="white" if v < 0.6 else "black")
    ax.set_xlabel("months since first purchase")
    ax.set_title("Retention by monthly cohort")
    fig.colorbar(image, ax=ax, label="share buying again")
    fig.tight_layout()
    return fig


def segment_sizes(summary: pd.DataFrame, title: str = "Segments") -> Figure:
    """Customers and revenue share per group (``profile.group_summary`` output)."""
    fig = Figure(figsize=(9, 1.5 + 0.35 * len(summary)))
    left, right = fig.subplots(1, 2, sharey=True)
    labels = [str(v) for v in summary.index]
    y = np.arange(len(summary))
    left.barh(y, summary["customers"], color="tab:blue")
    left.set_yticks(y, labels)
    left.invert_yaxis()
    left.set_xlabel("customers")
    right.barh(y, 100 * summary["revenue_share"], color="tab:orange")
    right.set_xlabel("revenue share (%)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def clv_distribution(clv: pd.Series | np.ndarray, bins: int = 50) -> Figure:
    """Histogram of customer lifetime value on a log1p axis (NaN values are left out)."""
    values = np.asarray(clv, dtype=float)
    values = values[np.isfinite(values)]
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    if len(values):
        ax.hist(np.log1p(np.maximum(values, 0)), bins=bins, color="tab:green")
        ticks = np.array([0, 10, 100, 1_000, 10_000, 100_000])
        ticks = ticks[ticks <= max(values.max(), 10)]
        ax.set_xticks(np.log1p(ticks), [f"{t:,}" for t in ticks])
        ax.axvline(np.log1p(np.median(values)), color="black", linestyle="--",
                   label=f"median {np.median(values):,.0f}")
        ax.legend()
    ax.set_xlabel("CLV (log scale)")
    ax.set_ylabel("customers")
    ax.set_title(f"Customer lifetime value ({len(values):,} customers)")
    fig.tight_layout()
    return fig


__all__ = ["cohort_heatmap", "segment_sizes", "clv_distribution"]
