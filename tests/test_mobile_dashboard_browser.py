"""A mobile unit on the dashboard in a real browser (Debian's chromium through Playwright): the
bus shows at its stop, its popup lists its next stops and outlines the area it serves now, and
when the clock takes it to its next stop the map follows without a reload. Screenshots go to
tests/artifacts/.

Without chromium these tests skip on a developer's machine; under CI=true they fail."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.browser import VIEWPORT
from schemas.auth import Role
from schemas.mobile import MobileStop
from schemas.stations import StationKind
from tests.conftest import CENTRE, DISTRICT, T0, EventFactory, LiveServer, issue, make_station

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
RENDER_TIMEOUT_MS = 30_000
UPDATE_TIMEOUT_MS = 10_000
STOP_ZOOM = 15
POPUP_FADE_MS = 400
STOP_A = (CENTRE[0] + 0.004, CENTRE[1] + 0.01)
STOP_B = (CENTRE[0] - 0.004, CENTRE[1] + 0.05)


def bus_position(page: Any) -> tuple[float, float]:
    found = page.evaluate(
        """() => {
            const s = WS.dashboard.model.stations;
            const i = s.id.indexOf("BUS-1");
            return [s.lat[i], s.lon[i]];
        }"""
    )
    return found[0], found[1]


def test_the_bus_at_its_stop_with_its_next_stops_and_area(
    browser: Any, live: LiveServer, event: EventFactory
) -> None:
    stops = (
        MobileStop(
            name="望京站", lat=STOP_A[0], lon=STOP_A[1], start=T0, end=T0 + timedelta(hours=2)
        ),
        MobileStop(
            name="酒仙桥站",
            lat=STOP_B[0],
            lon=STOP_B[1],
            start=T0 + timedelta(hours=3),
            end=T0 + timedelta(hours=5),
        ),
    )
    bus = make_station(
        "BUS-1", *CENTRE, name="骑手健康体检车", kind=StationKind.mobile_unit, stops=stops
    )
    assert live.client.post("/v1/stations", json=bus.model_dump(mode="json")).status_code == 200
    beat = {"amenities": {"drinking_water": "ok"}, "next_check_in_seconds": 86_400}
    answer = live.client.post(
        "/v1/events",
        json=[
            event("check_in", station_id="BUS-1"),
            event("health_check", station_id="BUS-1", payload=beat),
        ],
    )
    assert answer.status_code == 200, answer.text
    live.system.runtime.drain()
    live.system.runtime.tick()

    page = browser.new_page(viewport=VIEWPORT)
    page.goto(live.url)
    page.get_by_label("API 密钥").fill(issue(live.system, Role.union, districts=[DISTRICT]))
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector("body[data-rendered]", state="attached", timeout=RENDER_TIMEOUT_MS)
    assert bus_position(page) == pytest.approx(STOP_A, abs=1e-6)

    point = page.evaluate(
        """([lat, lon, zoom]) => {
            const map = WS.dashboard.map;
            map.setView([lat, lon], zoom, { animate: false });
            const p = map.latLngToContainerPoint([lat, lon]);
            const box = map.getContainer().getBoundingClientRect();
            return [box.left + p.x, box.top + p.y];
        }""",
        [STOP_A[0], STOP_A[1], STOP_ZOOM],
    )
    page.mouse.click(point[0], point[1])
    popup = page.locator(".station-popup[data-station='BUS-1']")
    popup.locator(".tour").wait_for(timeout=UPDATE_TIMEOUT_MS)
    assert popup.locator(".tour").get_attribute("data-serving-now") == "true"
    assert "在站服务中" in popup.locator(".tour-now").inner_text()
    assert "望京站" in popup.locator(".tour-now").inner_text()
    assert popup.locator(".tour-next li").all_inner_texts()[0].startswith("酒仙桥站")
    served = live.client.get("/v1/stations/BUS-1/tour").json()["serving_cells"]
    assert served
    assert page.evaluate("() => WS.dashboard.tourLayer.getLayers().length") == len(served)
    page.wait_for_timeout(POPUP_FADE_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-mobile-unit.png"))

    page.evaluate("() => { window.notReloaded = true; }")
    live.system.clock.advance(timedelta(hours=3))  # type: ignore[attr-defined]
    live.system.runtime.tick()  # the bus drives to its next stop
    page.wait_for_function(
        """([lat, lon]) => {
            const s = WS.dashboard.model.stations;
            const i = s.id.indexOf("BUS-1");
            return Math.abs(s.lat[i] - lat) < 1e-6 && Math.abs(s.lon[i] - lon) < 1e-6;
        }""",
        arg=[STOP_B[0], STOP_B[1]],
        timeout=UPDATE_TIMEOUT_MS,
    )
    assert page.evaluate("window.notReloaded") is True
    page.close()
