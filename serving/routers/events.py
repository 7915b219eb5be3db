"""``POST /v1/events``: store a batch durably, then fold it into the live models."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, HTTPException, Request, status

from recsys.events import Event
from serving.deps import JournalDep, MetricsDep, RequestIdDep, SettingsDep
from serving.schemas import EventBatch, EventsAccepted

router = APIRouter(tags=["events"])


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
    events = [Event(e.event_id, e.customer_id, e.event_type, e.timestamp or now, e.product_id,
                    e.coupon_id, e.quantity, e.amount) for e in batch.events]
    result, folded = runtime.add_events(events)
    for ev in result.stored:
        metrics.events.labels(ev.event_type, "stored").inc()
    if result.duplicates:
        metrics.events.labels("any", "duplicate").inc(len(result.duplicates))
    return EventsAccepted(stored=len(result.stored), duplicates=result.duplicates,
                          folded=folded, request_id=request_id)
