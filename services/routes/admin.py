"""The admin's view of events that could not be applied, and clearing them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from schemas.api import FailedEventList, FailedEventsCleared
from schemas.stations import STATION_ID_PATTERN
from services.failed_events import clear_failed, list_failed
from services.routes.deps import MAX_PAGE, Caller, SystemDep

router = APIRouter(prefix="/v1/admin", tags=["admin"])

StationFilter = Annotated[
    str | None, Query(pattern=STATION_ID_PATTERN, description="Only this station's events")
]
EventIdFilter = Annotated[
    list[str] | None,
    Query(
        max_length=MAX_PAGE,
        description="Only these events (repeat the parameter); none given: every failed event",
    ),
]


@router.get("/failed-events", response_model=FailedEventList)
async def failed_events(
    who: Caller,
    system: SystemDep,
    station_id: StationFilter = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> FailedEventList:
    """Events that were archived but could not be applied (their station carried on without
    them), oldest first, each with the reason."""
    who.require()
    found = await run_in_threadpool(
        list_failed, system.store, system.settings, station_id=station_id, limit=limit
    )
    return FailedEventList(total=len(found), events=found)


@router.delete("/failed-events", response_model=FailedEventsCleared)
async def clear_failed_events(
    who: Caller,
    system: SystemDep,
    station_id: StationFilter = None,
    event_id: EventIdFilter = None,
) -> FailedEventsCleared:
    """Set failed events aside as `discarded`: they stay in the archive, are never applied and
    no longer listed. Other events are never touched."""
    who.require()
    return await run_in_threadpool(
        clear_failed, system.store, event_ids=event_id, station_id=station_id
    )
