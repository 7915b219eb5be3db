"""`recsys experiments size | report | simulate`: plan, read and rehearse online experiments."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from training.commands.common import command_group, fail_cleanly

app = command_group("Online experiments: sample size, reports from the exposure log, "
                    "a simulated experiment (docs/experiments.md).")
EventsOpt = Annotated[str | None, typer.Option(
    "--events-url", help="Event store URL (default: RECSYS_EVENTS_URL or <data dir>/events.db).")]


def _store(url: str | None):  # noqa: ANN202 - EventStore, imported lazily
    from recsys.events import EventStore
    from training.tracking import event_store

    return EventStore(url) if url else event_store()


@app.command("size")
def size_cmd(
    sd: Annotated[float | None, typer.Option(help="Standard deviation of the per-customer "
                                             "outcome (e.g. spend over the window).")] = None,
    mean: Annotated[float | None, typer.Option(help="Control mean, for --lift.")] = None,
    lift: Annotated[float | None, typer.Option(help="Relative effect to detect, e.g. 0.05.")]
    = None,
    effect: Annotated[float | None, typer.Option(help="Absolute effect to detect.")] = None,
    rate: Annotated[float | None, typer.Option(help="Control rate of a yes/no outcome "
                                               "(e.g. visit rate 0.30).")] = None,
    points: Annotated[float | None, typer.Option(help="With --rate: absolute change to "
                                                 "detect, e.g. 0.02.")] = None,
    alpha: Annotated[float, typer.Option(min=1e-6, max=0.5)] = 0.05,
    power: Annotated[float, typer.Option(min=0.5, max=0.9999)] = 0.8,
    share: Annotated[float, typer.Option(min=0.01, max=0.99, help="Share of customers in the "
                                         "treatment (challenger share, 1 - holdout share).")]
    = 0.5,
) -> None:
    """Customers needed to detect an effect (two-sided Welch t test, exact t power)."""
    from recsys.experiments.stats import sample_size

    if rate is not None:
        if points is None or not 0 < rate < 1:
            raise typer.BadParameter("--rate needs a value in (0, 1) and --points")
        p2 = min(max(rate + points, 0.0), 1.0)
        sd, effect = ((rate * (1 - rate) + p2 * (1 - p2)) / 2) ** 0.5, points
    elif effect is None and lift is not None and mean is not None:
        effect = lift * mean
    if sd is None or effect is None:
        raise typer.BadParameter("give --sd with --effect (or --mean and --lift), or --rate "
                                 "with --points")
    ratio = share / (1 - share)
    with fail_cleanly():
        try:
            control = sample_size(effect, sd, alpha, power, ratio)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    treated = int(-(-control * ratio // 1))
    typer.echo(f"to detect {effect:+.4g} (sd {sd:.4g}) with power {power:.0%} at alpha {alpha}: "
               f"{control:,} control + {treated:,} treatment = {control + treated:,} customers")


@app.command("report")
def report_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the report files.")]
    = Path("reports/experiment"),
    fmt: Annotated[str, typer.Option("--format", help="md or html (JSON is always written).")]
    = "md",
    since: Annotated[datetime | None, typer.Option(help="First exposure time (UTC).")] = None,
    until: Annotated[datetime | None, typer.Option(help="End of exposures (UTC).")] = None,
    window_days: Annotated[float, typer.Option(min=0.01)] = 7.0,
    pre_days: Annotated[float, typer.Option(min=0.0)] = 28.0,
    interval: Annotated[str, typer.Option(help="welch or bootstrap.")] = "welch",
    challenger_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="The split the "
                                                    "server was set to.")] = 0.5,
    coupons: Annotated[Path | None, typer.Option(help="Coupon catalog with the holdout shares "
                                                 "(for their sample-ratio check).",
                                                 exists=True, dir_okay=False)] = None,
    metrics: Annotated[str | None, typer.Option(help="The server's /metrics (URL or file) for "
                                                "error-rate and latency guardrails.")] = None,
    events_url: EventsOpt = None,
) -> None:
    """Results of the experiment in the exposure log: per variant, challenger minus
    champion with intervals, the sample-ratio check, coupon uplift over holdouts."""
    from recsys.experiments.analysis import Setup, from_store
    from recsys.experiments.report import FORMATS, write
    from recsys.experiments.stats import INTERVALS

    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {FORMATS}")
    if interval not in INTERVALS:
        raise typer.BadParameter(f"--interval must be one of {INTERVALS}")
    holdouts = {}
    if coupons is not None:
        from recsys.coupons.catalog import load_catalog

        with fail_cleanly():
            catalog = load_catalog(coupons, today=datetime.min.date())
        holdouts = {c.id: c.holdout_share for c in catalog.coupons if c.holdout_share}
    setup = Setup(window_days=window_days, pre_days=pre_days, interval=interval,
                  shares={"champion": 1 - challenger_share, "challenger": challenger_share},
                  holdout_shares=holdouts)
    with fail_cleanly():
        guardrails = _guardrails(metrics) if metrics else None
        store = _store(events_url)
        try:
            result = from_store(store, setup, since=since, until=until, guardrails=guardrails)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        finally:
            store.close()
    for path in write(result, out, fmt):
        typer.echo(f"wrote {path}")


def _guardrails(source: str) -> dict[str, dict[str, float]]:
    from urllib.request import urlopen

    from recsys.errors import RecsysError
    from recsys.experiments.guardrails import from_prometheus

    try:
        if source.startswith(("http://", "https://")):
            with urlopen(source, timeout=10) as response:  # noqa: S310 - the user's URL
                text = response.read().decode()
        else:
            text = Path(source).read_text()
    except OSError as exc:
        raise RecsysError(f"cannot read the server's metrics from {source}: {exc}") from exc
    return from_prometheus(text)


@app.command("simulate")
def simulate_cmd(
    customers: Annotated[int, typer.Option(min=100)] = 20_000,
    seed: Annotated[int, typer.Option()] = 0,
    lift: Annotated[float, typer.Option(help="Challenger's true relative spend effect.")]
    = 0.05,
    uplift: Annotated[float, typer.Option(help="Coupon's true visit-rate effect (points).")]
    = 0.02,
    holdout: Annotated[float, typer.Option(min=0.01, max=0.99)] = 0.2,
    events_url: EventsOpt = None,
) -> None:
    """Write a simulated experiment with a known true effect into the event store and the
    exposure log (use an empty store: `--events-url sqlite:///sim/events.db`)."""
    from recsys.experiments.simulate import Scenario, coupon_of, store, truth
    from recsys.exposures import ExposureLog

    scenario = Scenario(customers=customers, spend_lift=lift, visit_uplift=uplift,
                        holdout_share=holdout)
    with fail_cleanly():
        events = _store(events_url)
        try:
            n = store(scenario, seed, events, ExposureLog(events.engine))
        finally:
            events.close()
    true = truth(scenario)
    typer.echo(f"wrote {n:,} exposures of {customers:,} customers (coupon {coupon_of(seed)}, "
               f"holdout {holdout:.0%}); true effects: revenue per customer "
               f"{true['revenue_per_customer']:+.3f}, coupon visit rate "
               f"{true['coupon_visit_rate']:+.3f}, coupon spend {true['coupon_spend']:+.3f}")
