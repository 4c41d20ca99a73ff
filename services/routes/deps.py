"""What the routers depend on: the caller's key, and the parts of the running system the app
factory put on `app.state`. Routers take these through `Depends`, never as globals, so that
one process can serve several apps (the tests do)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from schemas.stations import Station
from services.auth import Gatekeeper, Principal
from services.dashboard_data import DashboardData
from services.live import LiveHub
from services.readings import Readings
from services.station_import import StationImporter
from services.system import EmbeddedSystem
from waystation.settings import Settings

MAX_PAGE = 5000


class ChooseDistrictError(Exception):
    """A key scoped to several districts asked for one view without naming a district."""


class UnknownStationError(LookupError):
    """No station of this id that the key may read: a station that does not exist and one
    outside the key's scope get the same answer, so that ids cannot be probed."""


_BEARER = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    header_key: Annotated[str | None, Depends(_KEY_HEADER)],
) -> Principal:
    """The key's holder, checked and counted against its rate limit: on the event loop when
    what was read of the key is still trusted, in the thread pool when the store is read."""
    gatekeeper: Gatekeeper = request.app.state.gatekeeper
    client = request.client.host if request.client else ""
    presented = credentials.credentials if credentials else header_key
    if gatekeeper.keys.remembers(presented):
        return gatekeeper.admit(presented, client)
    return await run_in_threadpool(gatekeeper.admit, presented, client)


# The parts of the system are plain attribute reads, declared `async` so that FastAPI calls
# them on the event loop: a plain `def` dependency costs a hop through the thread pool on
# every request.
async def system(request: Request) -> EmbeddedSystem:
    return running_system(request)


def running_system(request: Request) -> EmbeddedSystem:
    """The system, for code that is handed the request rather than its parts."""
    return request.app.state.system


async def settings(request: Request) -> Settings:
    return request.app.state.system.settings


async def readings(request: Request) -> Readings:
    return request.app.state.readings


async def dashboard_data(request: Request) -> DashboardData:
    return request.app.state.dashboard_data


async def live_hub(request: Request) -> LiveHub:
    return request.app.state.live


async def station_importer(request: Request) -> StationImporter:
    return request.app.state.station_importer


Caller = Annotated[Principal, Depends(caller)]
SystemDep = Annotated[EmbeddedSystem, Depends(system)]
SettingsDep = Annotated[Settings, Depends(settings)]
ReadingsDep = Annotated[Readings, Depends(readings)]
DashboardDataDep = Annotated[DashboardData, Depends(dashboard_data)]
LiveHubDep = Annotated[LiveHub, Depends(live_hub)]
StationImporterDep = Annotated[StationImporter, Depends(station_importer)]


def check_district(readings: Readings, who: Principal, district: str | None) -> None:
    """A named district must exist and be in the key's scope (404, then 403)."""
    if district is not None:
        readings.check_district(district)
        who.check_district(district)


def scoped_district(readings: Readings, who: Principal, district: str | None) -> str | None:
    """The district a view is for: the one asked (if the key may read it), else the key's only
    district, else every district (for keys not limited to districts)."""
    if district is not None:
        check_district(readings, who, district)
        return district
    scope = who.district_scope()
    if scope is None:
        return None
    if len(scope) == 1:
        return next(iter(scope))
    raise ChooseDistrictError(sorted(scope))


def readable_station(system: EmbeddedSystem, who: Principal, station_id: str) -> Station:
    """The station, if it exists and the key may read it; else UnknownStationError (404)."""
    with system.store.transaction() as tx:
        station = tx.stations.get(station_id)
    if station is None or not who.may_read_station(station.station_id, station.district):
        raise UnknownStationError(station_id)
    return station
