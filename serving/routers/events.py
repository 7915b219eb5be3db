"""``POST /v1/events``: store a batch durably, then fold it into the live models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import HTTPException, Request, status

from recsys.events import Event
from serving.deps import JournalDep, MetricsDep, RequestIdDep, SettingsDep
from serving.schemas import EventBatch, EventIn, EventRefused, EventsAccepted
from serving.security import scoped_router
from serving.settings import Settings

router = scoped_router("events", tags=["events"])


@router.post("/events", response_model=EventsAccepted,
             responses={413: {"description": "More events than RECSYS_MAX_EVENTS_PER_BATCH"}})
async def post_events(request: Request, batch: EventBatch, runtime: JournalDep,
                      settings: SettingsDep, metrics: MetricsDep, request_id: RequestIdDep
                      ) -> EventsAccepted:
    """Record events (idempotent by event_id); the next recommendation reflects them."""
    limit = settings.max_events_per_batch
    if len(batch.events) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            f"a batch holds at most {limit} events; got {len(batch.events)}. "
                            "Split it into smaller batches.")
    now = datetime.now(UTC)
    check_times(batch.events, settings, now)
    events = [Event(e.event_id, e.customer_id, e.event_type, e.timestamp or now, e.product_id,
                    e.coupon_id, e.quantity, e.amount) for e in batch.events]
    result, folded = runtime.add_events(events)
    for ev in result.stored:
        metrics.events.labels(ev.event_type, "stored").inc()
    if result.duplicates:
        metrics.events.labels("any", "duplicate").inc(len(result.duplicates))
    if result.refused:
        metrics.events.labels("any", "refused").inc(len(result.refused))
    return EventsAccepted(stored=len(result.stored), duplicates=result.duplicates,
                          refused=[EventRefused(event_id=i, reason=r)
                                   for i, r in result.refused.items()],
                          folded=folded, request_id=request_id)


def check_times(events: list[EventIn], settings: Settings, now: datetime) -> None:
    """422 naming each timestamp outside [RECSYS_EVENT_TIME_EARLIEST, now +
    RECSYS_EVENT_TIME_AHEAD_HOURS] (a year-9999 time would also overflow in UTC)."""
    earliest = settings.event_time_earliest.replace(tzinfo=settings.event_time_earliest.tzinfo
                                                    or UTC)
    latest = now + timedelta(hours=settings.event_time_ahead_hours)
    bad = []
    for i, event in enumerate(events):
        ts = event.timestamp
        if ts is None:
            continue
        try:
            inside = earliest <= (ts if ts.tzinfo else ts.replace(tzinfo=UTC)) <= latest
        except OverflowError:
            inside = False
        if not inside:
            bad.append({"type": "value_error", "loc": ["body", "events", i, "timestamp"],
                        "msg": f"timestamp must be between {earliest.isoformat()} and "
                               f"{latest.isoformat(timespec='seconds')}"})
    if bad:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, bad[:20])
