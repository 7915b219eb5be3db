"""`recsys customers profile | kpis`: per-customer profile and the loyalty KPI report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from training.commands.common import command_group, fail_cleanly

if TYPE_CHECKING:
    import pandas as pd

    from recsys.customers.config import CustomersConfig
    from recsys.data.schema import RetailData

app = command_group("Customer segments, lifecycle stages, churn risk, CLV and loyalty KPIs.")

DatasetOpt = Annotated[str, typer.Option(
    "--dataset", "-d", help="Dataset: completejourney, synthetic[:...], a file or a directory.")]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", help="Customer settings YAML (default: built-in = configs/customers.yaml).",
    exists=True, dir_okay=False)]


def _config(path: Path | None) -> CustomersConfig:
    from recsys.customers.config import parse_customers_config

    return parse_customers_config(path.read_text() if path else None, str(path or "defaults"))


def _load(dataset: str) -> RetailData:
    """The cleaned dataset minus customers erased through the API (as training reads it)."""
    from training.jobs.train import load_clean

    return load_clean(dataset)


def _optional(frame: pd.DataFrame) -> pd.DataFrame | None:
    return frame if len(frame) else None


def _write(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix == ".csv":
        frame.to_csv(path)
    else:
        raise typer.BadParameter(f"{path}: use a .parquet or .csv file name")


def _profile(data: RetailData, cfg: CustomersConfig, as_of: str | None) -> pd.DataFrame:
    from recsys.customers.profile import profile_customers

    products = data.products if (data.products["category"] != "").any() else None
    return profile_customers(data.transactions, as_of=as_of, config=cfg, products=products,
                             redemptions=_optional(data.redemptions),
                             customers=_optional(data.customers))


@app.command("profile")
def profile_cmd(
    dataset: DatasetOpt,
    out: Annotated[Path, typer.Option(help="Output Parquet file (one row per customer).")],
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Reference date YYYY-MM-DD (default: latest transaction).")] = None,
    plot_dir: Annotated[Path | None, typer.Option(
        help="Write segments.png, stages.png, tiers.png and clv.png here.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Profile customers (segment, stage, tier, p_alive, CLV, churn risk) into Parquet.

    Prints customers, revenue share and mean CLV per segment, stage and tier.
    """
    import pandas as pd

    from recsys.customers.plots import clv_distribution, segment_sizes
    from recsys.customers.profile import group_summary

    if out.suffix != ".parquet":
        raise typer.BadParameter(f"{out}: the profile is written as .parquet")
    with fail_cleanly():
        cfg = _config(config)
        profile = _profile(_load(dataset), cfg, as_of)
    _write(profile, out)
    typer.echo(f"{len(profile):,} customers as of {profile.attrs.get('as_of', as_of)} "
               f"(churn risk: {profile.attrs.get('churn_source', 'n/a')}) -> {out}")
    with pd.option_context("display.width", 120, "display.float_format", "{:,.3f}".format):
        for by in ("segment", "stage", "tier"):
            typer.echo(f"\n{group_summary(profile, by).to_string()}")
    if plot_dir:
        plot_dir.mkdir(parents=True, exist_ok=True)
        for by in ("segment", "stage", "tier"):
            fig = segment_sizes(group_summary(profile, by), title=f"Customers by {by}")
            fig.savefig(plot_dir / f"{by}s.png", dpi=110)
        clv_distribution(profile["clv"]).savefig(plot_dir / "clv.png", dpi=110)
        typer.echo(f"\nplots -> {plot_dir}")


@app.command("kpis")
def kpis_cmd(
    dataset: DatasetOpt,
    period: Annotated[str | None, typer.Option(
        help="Period alias: W, M, Q or Y (default from config: M).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Periods table (.csv or .parquet); cohorts, revenue share and coupons go next "
             "to it as <name>_cohorts, <name>_revenue_share, <name>_coupons.")] = None,
    heatmap: Annotated[Path | None, typer.Option(help="Cohort-retention heatmap PNG.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Loyalty KPIs per period: repeat rate, churn rate, cohort retention, AOV, coupons."""
    import pandas as pd

    from recsys.customers.config import check_period
    from recsys.customers.kpis import kpi_report
    from recsys.customers.plots import cohort_heatmap

    with fail_cleanly():
        cfg = _config(config)
        if period:
            check_period(period)  # before the slow part
        data = _load(dataset)
        profile = _profile(data, cfg, None)
        report = kpi_report(data.transactions, config=cfg, period=period, profile=profile,
                            offers=_optional(data.offers),
                            redemptions=_optional(data.redemptions),
                            campaigns=_optional(data.campaigns))
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.float_format", "{:,.3f}".format):
        typer.echo(report.periods.drop(columns="start").to_string(index=False))
        typer.echo(f"\nretention by monthly cohort:\n{report.cohorts.to_string()}")
    if out:
        _write(report.periods.set_index("period"), out)
        for name in ("cohorts", "revenue_share", "coupons"):
            frame = getattr(report, name)
            if len(frame):
                _write(frame, out.with_name(f"{out.stem}_{name}{out.suffix}"))
        typer.echo(f"\nKPI tables -> {out.parent}")
    if heatmap:
        if len(report.cohorts) == 0:
            raise typer.BadParameter("no transactions: nothing to plot")
        heatmap.parent.mkdir(parents=True, exist_ok=True)
        cohort_heatmap(report.cohorts).savefig(heatmap, dpi=110)
        typer.echo(f"heatmap -> {heatmap}")
