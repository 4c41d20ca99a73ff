"""The HTTP API of an embedded waystation: the app factory. It wires the running system onto
`app.state`, the middleware, the problem answers and the routers of `services.routes`."""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import waystation
from schemas.api import FieldError
from services.auth import (
    AuthError,
    ForbiddenError,
    Gatekeeper,
    KeyRing,
    RateLimitedError,
    RateLimiter,
)
from services.dashboard_data import DashboardData
from services.geocoding import AddressLocator
from services.ingest import BodyError
from services.live import LiveHub
from services.problems import PROBLEM_JSON, problem
from services.readings import Readings, UnknownBoundaryError, UnknownDistrictError
from services.request_guard import RequestGuard
from services.routes import (
    admin,
    alert_actions,
    alerts,
    boundaries,
    coverage,
    dashboard,
    docs,
    events,
    history,
    mobile,
    planning,
    reports,
    scan,
    stations,
    stations_lifecycle,
    stats,
    webhooks,
)
from services.routes import system as system_routes
from services.routes.deps import ChooseDistrictError, UnknownStationError
from services.station_files import ADDRESS_FIELD
from services.station_import import StationImporter
from services.system import EmbeddedSystem

log = logging.getLogger(__name__)

API_PREFIX = "/v1/"
LOCATION = ("lat", "lon")
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
        docs_url=None,  # served from vendored files by services.routes.docs
        redoc_url=None,
    )
    settings = system.settings
    dashboard_data = DashboardData(system.runtime, settings, system.clock)
    hub = LiveHub(system.runtime, dashboard_data, settings)
    gauges = CollectorRegistry()
    gauges.register(system_routes.LiveGauges(system))
    app.state.system = system
    app.state.readings = Readings(system.runtime)
    app.state.dashboard_data = dashboard_data
    app.state.live = hub
    app.state.station_importer = StationImporter(
        system.store,
        system.registry_changed,
        AddressLocator(system.store, system.settings, system.clock).locate,
    )
    app.state.gauges = gauges
    app.state.gatekeeper = Gatekeeper(
        KeyRing(system.store, settings.auth_key_cache_seconds),
        RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
        system.clock,
        failures=RateLimiter(settings.auth_failures_per_minute, settings.auth_failures_burst),
    )
    headers = SECURITY_HEADERS | {
        "Content-Security-Policy": content_security_policy(settings.basemap_tile_url)
    }

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "PUT"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )

    app.add_middleware(RequestGuard, settings=settings, headers=headers, api_prefix=API_PREFIX)

    _install_problem_answers(app)
    app.include_router(events.router)  # first: the busiest path is matched before any other
    app.include_router(dashboard.router)
    app.include_router(stations.router)
    app.include_router(coverage.router)
    app.include_router(alerts.router)
    app.include_router(reports.router)
    app.include_router(boundaries.router)
    app.include_router(system_routes.router)
    app.include_router(admin.router)
    app.include_router(stations_lifecycle.router)
    app.include_router(scan.router)
    app.include_router(mobile.router)
    app.include_router(planning.router)
    app.include_router(alert_actions.router)
    app.include_router(webhooks.router)
    app.include_router(history.router)
    app.include_router(stats.router)
    if settings.api_docs:
        app.include_router(docs.router)
    app.mount("/static", StaticFiles(directory=dashboard.STATIC_DIR), name="static")
    _document_event_body(app)
    return app


def _install_problem_answers(app: FastAPI) -> None:
    """Every error, expected or not, leaves as an RFC 9457 problem naming field and reason."""

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

    @app.exception_handler(BodyError)
    async def _unreadable_body(_: Request, exc: BodyError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, exc.errors)

    @app.exception_handler(UnknownDistrictError)
    async def _unknown_district(_: Request, exc: UnknownDistrictError) -> JSONResponse:
        return problem(
            404,
            "Unknown district",
            f"no district named {exc.args[0]!r}",
            [FieldError(field="district", reason="is not a known district")],
        )

    @app.exception_handler(UnknownStationError)
    async def _unknown_station(_: Request, exc: UnknownStationError) -> JSONResponse:
        return problem(
            404,
            "Unknown station",
            f"no station {exc.args[0]!r} that this key may read",
            [FieldError(field="station_id", reason="is not a station this key may read")],
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
            f"{exc.why}; retry in {wait} s",
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


def _document_event_body(app: FastAPI) -> None:
    """The events, import and demand endpoints read their bodies by hand (to bound them and
    judge each item on its own), so their schemas are added to the OpenAPI document here."""
    from schemas.events import EVENT_ADAPTER
    from schemas.geography import DemandCell

    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        document = original()
        event_schema = EVENT_ADAPTER.json_schema(ref_template="#/components/schemas/{model}")
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components.update(event_schema.pop("$defs", {}))
        components["Event"] = event_schema
        components["DemandCell"] = DemandCell.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        _document_problems(document)
        components["StationImport"] = _station_import_schema(components["Station"])
        components["EventOrBatch"] = {
            "oneOf": [
                {"$ref": "#/components/schemas/Event"},
                {"type": "array", "items": {"$ref": "#/components/schemas/Event"}, "minItems": 1},
            ]
        }
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _station_import_schema(station: dict[str, Any]) -> dict[str, Any]:
    """A station as `POST /v1/stations` takes it: located by `lat`/`lon`, or by an `address`
    that is geocoded instead."""
    schema = copy.deepcopy(station)
    schema["title"] = "StationImport"
    schema["properties"][ADDRESS_FIELD] = {
        "type": "string",
        "minLength": 1,
        "description": "A street address, geocoded when lat/lon are not given; a miss or a "
        "match outside the station's district is refused on `address`",
    }
    schema["required"] = [name for name in schema.get("required", []) if name not in LOCATION]
    schema["anyOf"] = [{"required": list(LOCATION)}, {"required": [ADDRESS_FIELD]}]
    return schema


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
