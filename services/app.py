"""The HTTP API of an embedded waystation."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import waystation
from geo.crs import Datum
from geo.demand import check_demand_cells
from schemas.alerts import AlertKind, AlertStatus
from schemas.api import (
    AlertList,
    CoverageResponse,
    DemandReplaced,
    FieldError,
    GapReport,
    Health,
    ImportResponse,
    IngestResponse,
    Problem,
    StationList,
    StationView,
)
from schemas.auth import Role
from schemas.geography import BoundaryLevel, DemandCell
from schemas.stations import StationState
from services.auth import (
    AuthError,
    ForbiddenError,
    Gatekeeper,
    KeyRing,
    Principal,
    RateLimitedError,
    RateLimiter,
)
from services.dashboard_api import install_dashboard
from services.dashboard_data import DashboardData
from services.ingest import BodyError, read_body
from services.kafka_sink import BrokerUnavailableError
from services.live import LiveHub
from services.problems import PROBLEM_JSON, problem
from services.readings import GapArea, Readings, UnknownBoundaryError, UnknownDistrictError
from services.station_files import StationFileError, boundaries_from_features
from services.station_import import Crs, StationImporter
from services.system import EmbeddedSystem
from streams import metrics

log = logging.getLogger(__name__)

MAX_PAGE = 5000


class ChooseDistrictError(Exception):
    """A key scoped to several districts asked for one view without naming a district."""


_BEARER = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key")


def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    header_key: Annotated[str | None, Depends(_KEY_HEADER)],
) -> Principal:
    """The key's holder, checked and counted against its rate limit."""
    gatekeeper: Gatekeeper = request.app.state.gatekeeper
    return gatekeeper.admit(credentials.credentials if credentials else header_key)


Caller = Annotated[Principal, Depends(caller)]

API_DOC_PATHS = frozenset({"/docs", "/redoc"})
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Scripts, styles and data from the app only; `data:` images are the map library's
    # (Leaflet's CSS draws a few controls with them).
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def content_security_policy(basemap_tile_url: str | None) -> str:
    """The strict policy, with the basemap's origin allowed for images when one is set."""
    policy = SECURITY_HEADERS["Content-Security-Policy"]
    if not basemap_tile_url:
        return policy
    parts = urlsplit(basemap_tile_url)
    origin = f"{parts.scheme}://{parts.netloc}".replace("{s}", "*")
    return policy.replace("img-src 'self' data:", f"img-src 'self' data: {origin}")


class LiveGauges:
    """Gauges read from the live state at scrape time, so they are never stale."""

    def __init__(self, system: EmbeddedSystem) -> None:
        self.system = system

    def collect(self) -> Any:
        if not self.system.started:
            return
        with self.system.store.transaction() as tx:
            by_state = tx.records.counts_by_state()
            by_kind = tx.alerts.count_open_by_kind()
        stations = GaugeMetricFamily(
            "waystation_stations", "Stations by effective state", labels=["state"]
        )
        for state, count in by_state.items():
            stations.add_metric([state.value], count)
        alerts = GaugeMetricFamily("waystation_open_alerts", "Open alerts by kind", labels=["kind"])
        for kind, count in by_kind.items():
            alerts.add_metric([kind.value], count)
        depth = GaugeMetricFamily("waystation_queue_depth", "Events waiting to be processed")
        depth.add_metric([], self.system.runtime.queue_depth)
        yield from (stations, alerts, depth)


def create_app(system: EmbeddedSystem, *, manage_lifecycle: bool = True) -> FastAPI:
    """`manage_lifecycle`: start and stop the system with the server (what `waystation run`
    wants); tests that drive the system themselves pass False."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            await run_in_threadpool(system.start)
        hub.start()
        try:
            yield
        finally:
            await run_in_threadpool(hub.stop)
            if manage_lifecycle:
                await run_in_threadpool(system.stop)

    app = FastAPI(
        title="waystation",
        version=waystation.__version__,
        summary="Live coverage, alerts and gap reports for rest stations for outdoor workers",
        lifespan=lifespan,
    )
    settings = system.settings
    readings = Readings(system.runtime)
    dashboard_data = DashboardData(system.runtime, settings, system.clock)
    hub = LiveHub(system.runtime, dashboard_data, settings)
    app.state.live = hub
    headers = SECURITY_HEADERS | {
        "Content-Security-Policy": content_security_policy(settings.basemap_tile_url)
    }
    system_stations = StationImporter(system.store)
    gauges = CollectorRegistry()
    gauges.register(LiveGauges(system))
    app.state.gatekeeper = Gatekeeper(
        KeyRing(system.store),
        RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
        system.clock,
    )

    def scoped_district(who: Principal, district: str | None) -> str | None:
        """The district a view is for: the one asked (if the key may read it), else the
        key's only district, else every district (for keys not limited to districts)."""
        if district is not None:
            readings.check_district(district)
            who.check_district(district)
            return district
        scope = who.district_scope()
        if scope is None:
            return None
        if len(scope) == 1:
            return next(iter(scope))
        raise ChooseDistrictError(sorted(scope))

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        """Answers slow requests with 503 instead of holding the client, and adds the
        security headers to everything."""
        try:
            response: Response = await asyncio.wait_for(
                call_next(request), timeout=settings.request_timeout_seconds
            )
        except TimeoutError:
            response = problem(
                503,
                "Request timed out",
                f"not answered within {settings.request_timeout_seconds:g} s; try again",
                headers={"Retry-After": "5"},
            )
        for name, value in headers.items():
            if name == "Content-Security-Policy" and request.url.path in API_DOC_PATHS:
                continue  # the interactive API docs load their scripts from a CDN
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _query_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            FieldError(field=".".join(str(p) for p in e["loc"][1:]), reason=e["msg"])
            for e in exc.errors()
        ]
        return problem(422, "Invalid request", "see errors", errors)

    @app.exception_handler(UnknownDistrictError)
    async def _unknown_district(_: Request, exc: UnknownDistrictError) -> JSONResponse:
        return problem(
            404,
            "Unknown district",
            f"no district named {exc.args[0]!r}",
            [FieldError(field="district", reason="is not a known district")],
        )

    @app.exception_handler(AuthError)
    async def _unauthenticated(_: Request, exc: AuthError) -> JSONResponse:
        return problem(401, "Unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(ForbiddenError)
    async def _forbidden(_: Request, exc: ForbiddenError) -> JSONResponse:
        return problem(403, "Forbidden", str(exc))

    @app.exception_handler(RateLimitedError)
    async def _rate_limited(_: Request, exc: RateLimitedError) -> JSONResponse:
        wait = max(1, math.ceil(exc.retry_after_s))
        return problem(
            429,
            "Too many requests",
            f"this key is over its rate limit; retry in {wait} s",
            headers={"Retry-After": str(wait)},
        )

    @app.exception_handler(ChooseDistrictError)
    async def _choose_district(_: Request, exc: ChooseDistrictError) -> JSONResponse:
        return problem(
            422,
            "Choose a district",
            "this key covers several districts: " + ", ".join(exc.args[0]),
            [FieldError(field="district", reason="is required for a key with several districts")],
        )

    @app.exception_handler(UnknownBoundaryError)
    async def _unknown_boundary(_: Request, exc: UnknownBoundaryError) -> JSONResponse:
        name, level = exc.args
        return problem(
            404,
            "Unknown boundary",
            f"no {level.value} outline named {name!r} is loaded",
            [FieldError(field="within", reason=f"is not a loaded {level.value} outline")],
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(
            500, "Internal error", "the error was logged; nothing about it is shown here"
        )

    install_dashboard(app, system, readings, hub, dashboard_data, caller, scoped_district)

    @app.post(
        "/v1/events",
        response_model=IngestResponse,
        status_code=202,
        responses={
            200: {
                "description": "Batch answered item by item, or a duplicate",
                "model": IngestResponse,
            },
            400: {"model": Problem},
            409: {"model": Problem},
            413: {"model": Problem},
            415: {"model": Problem},
            422: {"model": Problem},
            503: {"model": Problem, "description": "Distributed mode: the broker did not ack"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/EventOrBatch"}}
                },
            }
        },
    )
    async def post_events(request: Request, who: Caller) -> Response:
        """One event (a JSON object) or a batch (a JSON array of up to the batch limit).
        Each event is acknowledged only once it is durable. Operator keys post for the
        stations named on them."""
        who.require(Role.operator)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > settings.body_max_bytes:
            too_large = BodyError(
                413,
                "Body too large",
                f"body is {declared} bytes; the limit is {settings.body_max_bytes}",
            )
            return problem(too_large.status, too_large.title, too_large.detail, too_large.errors)
        body = await request.body()
        try:
            items, is_batch = read_body(body, request.headers.get("content-type"), settings)
        except BodyError as exc:
            return problem(exc.status, exc.title, exc.detail, exc.errors)
        try:
            result = await run_in_threadpool(
                system.ingest.handle, items, system.clock.now(), who.may_post_for
            )
        except BrokerUnavailableError as exc:
            unavailable = problem(503, "Event broker unavailable", str(exc))
            unavailable.headers["Retry-After"] = str(exc.retry_after_seconds)
            return unavailable
        for outcome, item in zip(result.results, items, strict=True):
            kind = item.get("type") if isinstance(item, dict) else None
            label = kind if kind in ("visit", "check_in", "health_check") else "unknown"
            metrics.EVENTS_INGESTED.labels(label, outcome.result.value).inc()
        if is_batch:
            return JSONResponse(result.model_dump(mode="json"), status_code=200)
        only = result.results[0]
        if only.status >= 400:
            return problem(
                only.status,
                {
                    403: "Forbidden",
                    409: "Event conflicts with a stored one",
                }.get(only.status, "Event rejected"),
                "; ".join(f"{e.field}: {e.reason}" if e.field else e.reason for e in only.errors),
                only.errors,
            )
        return JSONResponse(result.model_dump(mode="json"), status_code=only.status)

    @app.get("/v1/stations", response_model=StationList)
    def list_stations(
        who: Caller,
        district: str | None = None,
        subdistrict: str | None = None,
        state: StationState | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> StationList:
        """Stations with their live state; each key sees the stations in its scope."""
        if district is not None:
            readings.check_district(district)
            who.check_district(district)
        views = [
            view
            for view in readings.stations(district=district, subdistrict=subdistrict, state=state)
            if who.may_read_station(view.station.station_id, view.station.district)
        ]
        return StationList(total=len(views), stations=views[offset : offset + limit])

    @app.get(
        "/v1/stations/{station_id}", response_model=StationView, responses={404: {"model": Problem}}
    )
    def get_station(station_id: str, who: Caller) -> StationView | JSONResponse:
        with system.store.transaction() as tx:
            station = tx.stations.get(station_id)
        if station is None:
            return problem(404, "Unknown station", f"no station {station_id!r}")
        if not who.may_read_station(station.station_id, station.district):
            raise ForbiddenError(f"this key may not read station {station_id!r}")
        found = readings.stations(district=station.district, subdistrict=None, state=None)
        return next(v for v in found if v.station.station_id == station_id)

    @app.get("/v1/coverage", response_model=CoverageResponse, responses={404: {"model": Problem}})
    def coverage(who: Caller, district: str | None = None) -> CoverageResponse:
        """Cells as GeoJSON with coverage count and status, and the district's summary."""
        who.require(Role.union, Role.planner)
        return readings.coverage(scoped_district(who, district))

    @app.get("/v1/alerts", response_model=AlertList)
    def alerts(
        who: Caller,
        status: AlertStatus | None = None,
        kind: AlertKind | None = None,
        district: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 500,
    ) -> AlertList:
        """Alerts, newest first; a key scoped to districts sees theirs only."""
        who.require(Role.union, Role.planner)
        if district is not None:
            readings.check_district(district)
            who.check_district(district)
        scope = who.district_scope()
        with system.store.transaction() as tx:
            found = tx.alerts.list(status=status, kind=kind, district=district, limit=limit)
        visible = [a for a in found if scope is None or a.district in scope]
        return AlertList(total=len(visible), alerts=visible)

    @app.get("/v1/reports/gaps", response_model=GapReport, responses={404: {"model": Problem}})
    def gap_report(
        who: Caller,
        district: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
        within: Annotated[
            str | None, Query(description="Only cells meeting this loaded outline")
        ] = None,
        level: Annotated[
            BoundaryLevel, Query(description="Which outlines `within` names")
        ] = BoundaryLevel.district,
        lat: Annotated[
            float | None, Query(ge=-90, le=90, description="Centre of `radius_m`")
        ] = None,
        lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
        radius_m: Annotated[float, Query(gt=0, le=100_000)] = 1000.0,
    ) -> GapReport | JSONResponse:
        """Zones ranked by uncovered demand, with the stations whose state caused each gap.
        `within` (an outline) or `lat`+`lon`+`radius_m` (cells whose centre is in reach)
        narrow the report to an area; the store does that spatial filtering."""
        who.require(Role.union, Role.planner)
        district = scoped_district(who, district)
        if (lat is None) != (lon is None):
            field = "lon" if lon is None else "lat"
            return problem(
                422,
                "Invalid request",
                "lat and lon go together",
                [FieldError(field=field, reason="is required when the other is given")],
            )
        if within is not None and lat is not None:
            return problem(
                422,
                "Invalid request",
                "ask for one area: within, or lat/lon/radius_m",
                [FieldError(field="within", reason="cannot be combined with lat/lon")],
            )
        area = None
        if within is not None:
            area = GapArea(within=within, level=level)
        elif lat is not None and lon is not None:
            area = GapArea(near=(lat, lon), radius_m=radius_m)
        zones = readings.gaps(district, area)[:limit]
        return GapReport(district=district, generated_at=system.clock.now(), zones=zones)

    @app.put(
        "/v1/demand",
        response_model=DemandReplaced,
        responses={422: {"model": Problem}},
    )
    def replace_demand(cells: list[DemandCell], who: Caller) -> DemandReplaced | JSONResponse:
        """Replace the demand layer; coverage, access scores and zones are rebuilt on it."""
        who.require()
        try:
            check_demand_cells(cells, settings.grid_resolution)
        except ValueError as exc:
            return problem(422, "Invalid demand layer", str(exc))
        system.replace_demand(cells)
        return DemandReplaced(cells=len(cells), demand_workers=sum(c.demand_workers for c in cells))

    async def read_import_body(request: Request) -> tuple[list[Any], bool]:
        import_settings = settings.model_copy(
            update={"body_max_bytes": settings.import_body_max_bytes}
        )
        body = await request.body()
        return read_body(
            body,
            request.headers.get("content-type"),
            import_settings,
            max_items=settings.import_max_items,
        )

    @app.post(
        "/v1/stations",
        response_model=ImportResponse,
        responses={400: {}, 403: {}, 413: {}, 415: {}, 422: {}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/Station"},
                                {
                                    "type": "array",
                                    "items": {"$ref": "#/components/schemas/Station"},
                                },
                            ]
                        }
                    }
                },
            }
        },
    )
    async def import_stations(request: Request, who: Caller, crs: Crs = Crs.wgs84) -> Response:
        """Add or update stations (one object or an array). Each is judged on its own: bad
        ones are listed with field and reason, good ones stored. With district outlines
        loaded, a station outside every district is refused."""
        who.require()
        try:
            items, _ = await read_import_body(request)
        except BodyError as exc:
            return problem(exc.status, exc.title, exc.detail, exc.errors)
        result = await run_in_threadpool(system_stations.add, items, Datum(crs.value))
        if not result.imported and result.errors:
            first = result.errors[0]
            return problem(
                422,
                "Stations rejected",
                f"{first.field}: {first.reason}",
                [
                    FieldError(
                        field=f"[{e.row}]" + (f".{e.field}" if e.field else ""), reason=e.reason
                    )
                    for e in result.errors
                ],
            )
        return JSONResponse(result.model_dump(mode="json"))

    @app.put(
        "/v1/boundaries",
        response_model=ImportResponse,
        responses={400: {}, 403: {}, 413: {}, 415: {}, 422: {}},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "description": "A GeoJSON FeatureCollection of (Multi)Polygons",
                            "required": ["type", "features"],
                            "properties": {
                                "type": {"const": "FeatureCollection"},
                                "features": {"type": "array", "items": {"type": "object"}},
                            },
                        }
                    }
                },
            }
        },
    )
    async def import_boundaries(
        request: Request,
        who: Caller,
        level: BoundaryLevel = BoundaryLevel.subdistrict,
        name_property: str = "name",
        parent: str | None = None,
        crs: Crs = Crs.wgs84,
    ) -> Response:
        """Replace the outlines of one level from a GeoJSON FeatureCollection, all or
        nothing. Subdistricts become the alert zones at the next start."""
        who.require()
        try:
            items, is_batch = await read_import_body(request)
        except BodyError as exc:
            return problem(exc.status, exc.title, exc.detail, exc.errors)
        document = items[0]
        if is_batch or document.get("type") != "FeatureCollection":
            return problem(
                422,
                "Not a FeatureCollection",
                "send a GeoJSON FeatureCollection of (Multi)Polygons",
                [FieldError(field="type", reason="must be FeatureCollection")],
            )
        features = document.get("features")
        if not isinstance(features, list):
            return problem(
                422,
                "No features",
                "the FeatureCollection has no features list",
                [FieldError(field="features", reason="must be an array")],
            )
        try:
            found = boundaries_from_features(
                features,
                source="body",
                level=level,
                name_property=name_property,
                parent=parent,
                datum=Datum(crs.value),
            )
        except StationFileError as exc:
            where, _, reason = str(exc).removeprefix("body: ").partition(": ")
            return problem(
                422, "Outlines rejected", str(exc), [FieldError(field=where, reason=reason)]
            )
        with system.store.transaction() as tx:
            kept = [b for b in tx.boundaries.list() if b.level is not level]
            tx.boundaries.replace([*kept, *found])
        return JSONResponse(ImportResponse(imported=len(found), rejected=0, errors=[]).model_dump())

    @app.get("/healthz", response_model=Health)
    def healthz() -> Health:
        with system.store.transaction() as tx:
            stations = tx.stations.count()
            by_kind = tx.alerts.count_open_by_kind()
        return Health(
            status="ok" if system.started else "starting",
            queue_depth=system.runtime.queue_depth,
            stations=stations,
            open_alerts=by_kind,
        )

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        body = generate_latest(REGISTRY) + generate_latest(gauges)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    _document_event_body(app)
    return app


def _document_event_body(app: FastAPI) -> None:
    """The events endpoint reads its body by hand (to judge each item on its own), so its
    schema is added to the OpenAPI document explicitly."""
    from schemas.events import EVENT_ADAPTER

    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = original()
        event_schema = EVENT_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.update(event_schema.pop("$defs", {}))
        components["Event"] = event_schema
        _document_problems(document)
        components["EventOrBatch"] = {
            "oneOf": [
                {"$ref": "#/components/schemas/Event"},
                {"type": "array", "items": {"$ref": "#/components/schemas/Event"}, "minItems": 1},
            ]
        }
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _document_problems(document: dict[str, Any]) -> None:
    """Every error answer is RFC 9457 problem details; say so for every operation, with the
    answers any protected operation can give (401, 403, 429) and the timeout (503)."""
    problem_content = {
        PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}},
    }
    common = {
        "503": "Request timed out",
    }
    protected = {
        "401": "No valid API key",
        "403": "Outside the key's role or scope",
        "429": "Over the key's rate limit",
    }
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            extra = {**common, **(protected if operation.get("security") else {})}
            if any(p.get("name") == "district" for p in operation.get("parameters", [])):
                extra["404"] = "Unknown district"
            for status, description in extra.items():
                responses.setdefault(status, {"description": description})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    response["content"] = problem_content
                    response.setdefault("description", "Problem")
