"""The HTTP API of an embedded waystation."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import waystation
from geo.demand import check_demand_cells
from schemas.alerts import AlertKind, AlertStatus
from schemas.api import (
    AlertList,
    CoverageResponse,
    DemandReplaced,
    FieldError,
    GapReport,
    Health,
    IngestResponse,
    Problem,
    StationList,
    StationView,
)
from schemas.geography import DemandCell
from schemas.stations import StationState
from services.ingest import BodyError, read_body
from services.kafka_sink import BrokerUnavailableError
from services.readings import Readings, UnknownDistrictError
from services.status_page import render_status_page
from services.system import EmbeddedSystem
from streams import metrics

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
MAX_PAGE = 5000


def problem(
    status: int, title: str, detail: str | None = None, errors: list[FieldError] | None = None
) -> JSONResponse:
    body = Problem(title=title, status=status, detail=detail, errors=errors or [])
    return JSONResponse(body.model_dump(mode="json"), status_code=status, media_type=PROBLEM_JSON)


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
        try:
            yield
        finally:
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
    gauges = CollectorRegistry()
    gauges.register(LiveGauges(system))

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

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return problem(
            500, "Internal error", "the error was logged; nothing about it is shown here"
        )

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def status_page() -> HTMLResponse:
        now = system.clock.now().astimezone(ZoneInfo(settings.timezone))
        summary = readings.summary(None)
        with system.store.transaction() as tx:
            open_alerts = tx.alerts.list(status=AlertStatus.open, limit=50)
        html = render_status_page(summary, open_alerts, readings.visits_today(None, now), now)
        return HTMLResponse(html)

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
    async def post_events(request: Request) -> Response:
        """One event (a JSON object) or a batch (a JSON array of up to the batch limit).
        Each event is acknowledged only once it is durable."""
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
            result = await run_in_threadpool(system.ingest.handle, items, system.clock.now())
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
                "Event rejected" if only.status == 422 else "Event conflicts with a stored one",
                "; ".join(f"{e.field}: {e.reason}" if e.field else e.reason for e in only.errors),
                only.errors,
            )
        return JSONResponse(result.model_dump(mode="json"), status_code=only.status)

    @app.get("/v1/stations", response_model=StationList)
    def list_stations(
        district: str | None = None,
        subdistrict: str | None = None,
        state: StationState | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> StationList:
        readings.check_district(district)
        views = readings.stations(district=district, subdistrict=subdistrict, state=state)
        return StationList(total=len(views), stations=views[offset : offset + limit])

    @app.get(
        "/v1/stations/{station_id}", response_model=StationView, responses={404: {"model": Problem}}
    )
    def get_station(station_id: str) -> StationView | JSONResponse:
        with system.store.transaction() as tx:
            station = tx.stations.get(station_id)
        if station is None:
            return problem(404, "Unknown station", f"no station {station_id!r}")
        found = readings.stations(district=station.district, subdistrict=None, state=None)
        return next(v for v in found if v.station.station_id == station_id)

    @app.get("/v1/coverage", response_model=CoverageResponse, responses={404: {"model": Problem}})
    def coverage(district: str | None = None) -> CoverageResponse:
        """Cells as GeoJSON with coverage count and status, and the district's summary."""
        return readings.coverage(district)

    @app.get("/v1/alerts", response_model=AlertList)
    def alerts(
        status: AlertStatus | None = None,
        kind: AlertKind | None = None,
        district: str | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 500,
    ) -> AlertList:
        readings.check_district(district)
        with system.store.transaction() as tx:
            found = tx.alerts.list(status=status, kind=kind, district=district, limit=limit)
        return AlertList(total=len(found), alerts=found)

    @app.get("/v1/reports/gaps", response_model=GapReport, responses={404: {"model": Problem}})
    def gap_report(
        district: str | None = None, limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100
    ) -> GapReport:
        """Zones ranked by uncovered demand, with the stations whose state caused each gap."""
        zones = readings.gaps(district)[:limit]
        return GapReport(district=district, generated_at=system.clock.now(), zones=zones)

    @app.put(
        "/v1/demand",
        response_model=DemandReplaced,
        responses={422: {"model": Problem}},
    )
    def replace_demand(cells: list[DemandCell]) -> DemandReplaced | JSONResponse:
        """Replace the demand layer; coverage, access scores and zones are rebuilt on it."""
        try:
            check_demand_cells(cells, settings.grid_resolution)
        except ValueError as exc:
            return problem(422, "Invalid demand layer", str(exc))
        system.runtime.replace_demand(cells)
        return DemandReplaced(cells=len(cells), demand_workers=sum(c.demand_workers for c in cells))

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
        components["EventOrBatch"] = {
            "oneOf": [
                {"$ref": "#/components/schemas/Event"},
                {"type": "array", "items": {"$ref": "#/components/schemas/Event"}, "minItems": 1},
            ]
        }
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
