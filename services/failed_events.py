"""Failed events, for an admin: what could not be applied and why, and setting them aside.

The archive keeps a failed event as it was posted (status `failed`); its reason is told again
from the event and today's rules rather than stored, so that it never goes stale.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import ValidationError

from schemas.api import FailedEvent, FailedEventsCleared
from services.ingest import field_errors
from store.repositories import ArchivedEvent
from store.unit_of_work import Store
from streams.ledger import plausible
from waystation.settings import Settings

UNEXPLAINED = "processing raised an error; the log has the details"


def why_failed(archived: ArchivedEvent, settings: Settings) -> str:
    """The reason an archived event cannot be applied, judged as the processors judge it."""
    try:
        event = archived.to_event()
    except ValidationError as exc:
        return "; ".join(f"{e.field}: {e.reason}" for e in field_errors(exc))
    if not plausible(event.occurred_at, archived.received_at, settings):
        skew = timedelta(minutes=settings.max_future_skew_minutes)
        return (
            f"occurred_at: {event.occurred_at.isoformat()} is outside the plausible window "
            f"({settings.earliest_occurred_at.isoformat()} to received_at + {skew})"
        )
    return UNEXPLAINED


def list_failed(
    store: Store, settings: Settings, *, station_id: str | None = None, limit: int
) -> list[FailedEvent]:
    with store.transaction() as tx:
        found = tx.events.with_status("failed", station_id=station_id, limit=limit)
    return [
        FailedEvent(
            event_id=e.event_id,
            type=e.type,
            station_id=e.station_id,
            occurred_at=e.occurred_at,
            received_at=e.received_at,
            reason=why_failed(e, settings),
        )
        for e in found
    ]


def clear_failed(
    store: Store, *, event_ids: list[str] | None = None, station_id: str | None = None
) -> FailedEventsCleared:
    """Set failed events aside as `discarded` (all of them, some ids, or one station's)."""
    with store.transaction() as tx:
        cleared = tx.events.discard_failed(event_ids=event_ids, station_id=station_id)
    return FailedEventsCleared(cleared=len(cleared), event_ids=cleared)
