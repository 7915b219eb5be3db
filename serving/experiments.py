"""``GET /admin/experiments``: the same JSON as ``recsys experiments report``, computed from the
exposure log and the event store this server writes, with this server's guardrail metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import HTTPException, Query, status
from pydantic import BaseModel, Field

from recsys.experiments.analysis import Setup, from_store
from recsys.experiments.guardrails import from_prometheus
from serving.metrics import Metrics
from serving.runtime import Runtime
from serving.settings import Settings


class ExperimentQuery(BaseModel):
    """Which exposures to read and how (the options of ``recsys experiments report``)."""

    since: datetime | None = Field(None, description="First exposure time (UTC)")
    until: datetime | None = Field(None, description="End of exposures (UTC)")
    window_days: float = Field(7.0, gt=0, le=365, allow_inf_nan=False)
    pre_days: float = Field(28.0, ge=0, le=3650, allow_inf_nan=False)
    interval: Literal["welch", "bootstrap"] = "welch"


ExperimentQueryDep = Annotated[ExperimentQuery, Query()]


def _utc(ts: datetime | None) -> datetime | None:
    return ts if ts is None or ts.tzinfo is None else ts.astimezone(UTC).replace(tzinfo=None)


def experiment_results(runtime: Runtime, settings: Settings, metrics: Metrics,
                       query: ExperimentQuery) -> dict[str, object]:
    """The analysis of the exposures so far; 404 when none are logged."""
    if runtime.store is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the event store is unavailable")
    if runtime.exposures is not None:
        runtime.exposures.flush()  # this worker's queued rows count too
    share = settings.challenger_share
    chooser = runtime.models.champion.engine.coupon_chooser if runtime.models else None
    holdouts = {c.id: c.holdout_share for c in chooser.catalog.coupons
                if c.holdout_share} if chooser else {}
    setup = Setup(window_days=query.window_days, pre_days=query.pre_days,
                  interval=query.interval, holdout_shares=holdouts,
                  shares={"champion": 1 - share, "challenger": share})
    try:
        return from_store(runtime.store, setup, since=_utc(query.since),
                          until=_utc(query.until),
                          guardrails=from_prometheus(metrics.render().decode()))
    except ValueError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None


__all__ = ["ExperimentQuery", "ExperimentQueryDep", "experiment_results"]
