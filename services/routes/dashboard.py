"""The dashboard: its page, and the endpoints only it needs (the key's scope, the map
snapshot, the live stream, outlines, a station's recent events). Its static files are mounted
by the app factory (`STATIC_DIR`)."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse

from schemas.api import Problem
from schemas.auth import Role
from schemas.dashboard import BoundaryCollection, MapSnapshot, StationEvents, Whoami
from services.live import KEEPALIVE, sse
from services.routes.deps import (
    Caller,
    DashboardDataDep,
    LiveHubDep,
    ReadingsDep,
    SystemDep,
    check_district,
    readable_station,
    scoped_district,
)

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
GZIP_MIN_BYTES = 1400  # below one packet compression gains nothing
GZIP_LEVEL = 1  # a city map (12 MB of JSON) in ~0.1 s: level 5 took 3x as long for 20% less
MAX_STATION_EVENTS = 100
RETRY_MS = 3000  # how soon a dropped stream's client should reconnect


def _maybe_gzip(request: Request, body: bytes, media_type: str) -> Response:
    if len(body) >= GZIP_MIN_BYTES and "gzip" in request.headers.get("accept-encoding", ""):
        return Response(
            gzip.compress(body, GZIP_LEVEL),
            media_type=media_type,
            headers={"Content-Encoding": "gzip", "Vary": "Accept-Encoding"},
        )
    return Response(body, media_type=media_type, headers={"Vary": "Accept-Encoding"})


router = APIRouter(tags=["dashboard"])


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/v1/me", response_model=Whoami)
def whoami(who: Caller, data: DashboardDataDep) -> Whoami:
    """The key's role and the districts it may read, with what the dashboard needs."""
    return data.whoami(who)


@router.get(
    "/v1/map",
    response_model=MapSnapshot,
    responses={404: {"model": Problem}, 422: {"model": Problem}},
)
def map_snapshot(
    request: Request,
    who: Caller,
    readings: ReadingsDep,
    data: DashboardDataDep,
    hub: LiveHubDep,
    district: str | None = None,
) -> Response:
    """Stations, cells, open alerts and KPIs of a district in one compact (columnar)
    document; the live stream's updates after its `seq` apply on top."""
    who.require(Role.union, Role.planner)
    chosen = scoped_district(readings, who, district)
    body = data.snapshot_json(chosen, hub.seq)
    return _maybe_gzip(request, body, "application/json")


@router.get("/v1/live", include_in_schema=False)
async def live(
    request: Request,
    who: Caller,
    system: SystemDep,
    readings: ReadingsDep,
    hub: LiveHubDep,
    district: str | None = None,
) -> Response:
    """Server-sent events: `update` (stations, cells, alerts, KPIs, with a `seq`) and
    `resync` (fetch /v1/map again). Authenticated like every /v1 call, by header."""
    who.require(Role.union, Role.planner)
    chosen = scoped_district(readings, who, district)
    sub = hub.subscribe(chosen)
    idle_s = system.settings.live_keepalive_seconds

    async def stream() -> AsyncIterator[str]:
        try:
            yield f"retry: {RETRY_MS}\n" + sse("hello", {"seq": hub.seq, "district": chosen})
            while True:
                message = await sub.next(idle_s)
                if message is None:
                    return
                yield message
                if message is KEEPALIVE and await request.is_disconnected():
                    return
        finally:
            hub.unsubscribe(sub)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/v1/boundaries",
    response_model=BoundaryCollection,
    responses={404: {"model": Problem}},
)
def boundaries(
    who: Caller, readings: ReadingsDep, data: DashboardDataDep, district: str | None = None
) -> BoundaryCollection:
    """District and subdistrict outlines (GeoJSON, WGS84) the key may read."""
    who.require(Role.union, Role.planner)
    if district is not None:
        check_district(readings, who, district)
        return data.boundaries(frozenset([district]))
    return data.boundaries(who.district_scope())


@router.get(
    "/v1/stations/{station_id}/events",
    response_model=StationEvents,
    responses={404: {"model": Problem}},
)
def station_events(
    station_id: str,
    who: Caller,
    system: SystemDep,
    data: DashboardDataDep,
    limit: Annotated[int, Query(ge=1, le=MAX_STATION_EVENTS)] = 10,
) -> StationEvents | Response:
    """A station's latest events, newest first (worker references left out)."""
    return data.station_events(readable_station(system, who, station_id), limit)
