"""Worker self check-in by QR code: the scan page, its one-tap form, and, for admins, each
station's poster and the rotation that revokes its old posters.

No `from __future__ import annotations` here: FastAPI reads the routes' annotations."""

from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response

from schemas.api import FieldError
from schemas.events import EventType
from services.auth import Principal
from services.problems import problem
from services.routes.deps import Caller
from services.routes.stations_lifecycle import NOT_FOUND
from services.scan_desk import ScanDesk, ScanOutcome, ScanResult, new_device_id
from services.scan_pages import done_page, form_page, problem_page
from services.scan_poster import poster_pdf, poster_png
from services.scan_tokens import scan_url
from services.system import EmbeddedSystem

router = APIRouter()

DEVICE_COOKIE = "ws_scan_device"
DEVICE_COOKIE_MAX_AGE_S = 365 * 24 * 3600
FORM_MAX_BYTES = 4096  # a handful of checkboxes; anything bigger is not our form
NO_STORE = {"Cache-Control": "no-store"}


def _desk(request: Request) -> ScanDesk:
    """One desk per app: its rate limits must see every scan."""
    desk: ScanDesk | None = getattr(request.app.state, "scan_desk", None)
    if desk is None:
        system: EmbeddedSystem = request.app.state.system
        desk = request.app.state.scan_desk = ScanDesk(system)
    return desk


Desk = Annotated[ScanDesk, Depends(_desk)]


def _html(status: int, body: str, headers: dict[str, str] | None = None) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=NO_STORE | (headers or {}))


def _refusal(result: ScanResult) -> HTMLResponse:
    status, body = problem_page(result)
    headers = {}
    if result.outcome is ScanOutcome.rate_limited:
        headers["Retry-After"] = str(max(1, round(result.retry_after_s)))
    return _html(status, body, headers)


@router.get("/scan/{token}", include_in_schema=False)
async def scan_page(token: str, request: Request, desk: Desk) -> HTMLResponse:
    result = await run_in_threadpool(desk.open, token)
    if result.outcome is not ScanOutcome.ready:
        return _refusal(result)
    response = _html(200, form_page(result, f"/scan/{token}"))
    if DEVICE_COOKIE not in request.cookies:
        response.set_cookie(
            DEVICE_COOKIE,
            new_device_id(),
            max_age=DEVICE_COOKIE_MAX_AGE_S,
            path="/scan",
            httponly=True,
            samesite="lax",
        )
    return response


@router.post("/scan/{token}", include_in_schema=False)
async def scan_submit(token: str, request: Request, desk: Desk) -> HTMLResponse:
    body = await request.body()
    if len(body) > FORM_MAX_BYTES:
        return _refusal(ScanResult(ScanOutcome.rejected))
    form = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=64)
    client = request.client.host if request.client else "unknown"
    device = request.cookies.get(DEVICE_COOKIE) or f"address:{client}"
    result = await desk.record(token, device, form)
    if result.outcome is not ScanOutcome.recorded or result.station is None:
        return _refusal(result)
    visits = await run_in_threadpool(_visits_today, request, desk, result.station.station_id)
    return _html(200, done_page(result, visits))


def _visits_today(request: Request, desk: ScanDesk, station_id: str) -> int:
    """The station's visits since local midnight, counted as the dashboard counts them."""
    midnight = request.app.state.live.data.midnight(desk.system.clock.now())
    with desk.system.store.transaction(readonly=True) as tx:
        return tx.events.count_by_type_since(
            midnight, type=EventType.visit.value, station_ids={station_id}
        )


def _scannable(who: Principal, desk: ScanDesk, station_id: str) -> JSONResponse | None:
    if not who.may_post_for(station_id):
        who.require()
    with desk.system.store.transaction(readonly=True) as tx:
        found = tx.stations.get(station_id) is not None
    if found:
        return None
    return problem(
        404,
        "Station not found",
        f"no active station {station_id!r}",
        [FieldError(field="station_id", reason="no active station with this id")],
    )


@router.get("/v1/stations/{station_id}/scan-link", responses=NOT_FOUND)
def scan_link(station_id: str, who: Caller, desk: Desk) -> Response:
    """(admin, or the station's operator) The link the station's QR poster carries."""
    missing = _scannable(who, desk, station_id)
    if missing is not None:
        return missing
    return JSONResponse(
        {
            "station_id": station_id,
            "url": scan_url(desk.system.settings, desk.token_for(station_id)),
        }
    )


@router.post("/v1/stations/{station_id}/scan-link/rotate", responses=NOT_FOUND)
def rotate_scan_link(station_id: str, who: Caller, desk: Desk) -> Response:
    """(admin, or the station's operator) Revoke every printed poster of the station (one was
    photographed and shared); returns the new link, to print a new poster."""
    missing = _scannable(who, desk, station_id)
    if missing is not None:
        return missing
    return JSONResponse(
        {"station_id": station_id, "url": scan_url(desk.system.settings, desk.rotate(station_id))}
    )


@router.get("/v1/stations/{station_id}/poster.{fmt}", responses=NOT_FOUND)
def poster(station_id: str, fmt: str, who: Caller, desk: Desk) -> Response:
    """(admin, or the station's operator) The printable QR poster, PNG or PDF (A4)."""
    missing = _scannable(who, desk, station_id)
    if missing is not None:
        return missing
    if fmt not in ("png", "pdf"):
        return problem(
            404,
            "Unknown poster format",
            "png or pdf",
            [FieldError(field="format", reason="png or pdf")],
        )
    with desk.system.store.transaction(readonly=True) as tx:
        station = tx.stations.get(station_id)
    assert station is not None
    url = scan_url(desk.system.settings, desk.token_for(station_id))
    if fmt == "png":
        return Response(poster_png(station, url), media_type="image/png")
    return Response(poster_pdf(station, url), media_type="application/pdf")
