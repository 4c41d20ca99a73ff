"""The dashboard in a real browser (Debian's chromium through Playwright): sign in with a union
key, see the station count and KPIs of a sample city, close a station through the API and see
its marker change and an alert appear without a reload, switch language. Screenshots go to
tests/artifacts/ for people to look at.

Without chromium these tests skip on a developer's machine; under CI=true they fail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import dashboard as bench_dashboard
from bench.browser import VIEWPORT
from demo.sample_city import (
    DISTRICT_NAME,
    WITHIN_OPENING_HOURS,
)
from schemas.auth import Role
from tests.conftest import LiveServer, issue
from tests.served_city import (
    CLOSED,
    DEGRADED,
    LEFT_SILENT,
    STATIONS,
    SUBDISTRICTS,
    ServedCity,
    alerting_settings,
    envelope,
    opened_sample_city,
)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
ZONE_THRESHOLD_WORKERS = 10.0
UPDATE_TIMEOUT_MS = 10_000
RENDER_TIMEOUT_MS = 30_000
STATION_ZOOM = 15
POPUP_FADE_MS = 400  # Leaflet fades popups in
COLOUR_TOLERANCE = 40  # per channel: antialiasing and the white outline blend at the edges
AVAILABLE_RGB = (0x00, 0x9E, 0x73)
CLOSED_RGB = (0xD5, 0x5E, 0x00)


@pytest.fixture
def city(tmp_path: Path) -> Iterator[ServedCity]:
    settings = alerting_settings(
        tmp_path,
        zone_uncovered_demand_workers=ZONE_THRESHOLD_WORKERS,
        zone_scheme="h3",  # small zones: closing one station can tip one over
    )
    with opened_sample_city(settings, WITHIN_OPENING_HOURS) as served:
        yield served


def sign_in(page: Any, live: LiveServer) -> None:
    key = issue(live.system, Role.union, districts=[DISTRICT_NAME])
    page.goto(live.url)
    page.get_by_label("API 密钥").fill(key)
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector("body[data-rendered]", state="attached", timeout=RENDER_TIMEOUT_MS)


def station_to_close(live: LiveServer) -> tuple[str, float]:
    """An open station whose closing tips a zone that is not alerting into underserved: the
    demand only it reaches in that zone, plus what the zone already lacks, passes the
    threshold. Returns it with that margin over the threshold."""
    cells = [f["properties"] for f in live.client.get("/v1/coverage").json()["features"]]
    sole = {c["cell"]: c["demand_workers"] for c in cells if c["stations_available"] == 1}
    gaps = live.client.get("/v1/reports/gaps").json()["zones"]
    lacking = {g["zone"]: g["uncovered_demand_workers"] for g in gaps}
    alerting = {g["zone"] for g in gaps if g["alert_open"]}
    runtime = live.system.runtime
    with live.system.store.transaction() as tx:
        stations = tx.stations.list()
    best, best_margin = "", -1.0
    with runtime.reading() as pipeline:
        records = dict(pipeline.ledger.records)
        for station in stations:
            record = records.get(station.station_id)
            if record is None or record.state.value != "available":
                continue
            by_zone: dict[str, float] = {}
            for cell in pipeline.catchments.cells(station.lat, station.lon):
                if cell in sole:
                    zone = runtime.grid.zone_of(cell)
                    by_zone[zone] = by_zone.get(zone, 0.0) + sole[cell]
            for zone, demand in by_zone.items():
                margin = lacking.get(zone, 0.0) + demand - ZONE_THRESHOLD_WORKERS
                if zone not in alerting and margin > best_margin:
                    best, best_margin = station.station_id, margin
    return best, best_margin


def marker_rgb(page: Any, lat: float, lon: float) -> tuple[int, int, int]:
    """The colour the stations canvas has at a station's centre."""
    return tuple(
        page.evaluate(
            """([lat, lon]) => {
                const map = WS.dashboard.map;
                const p = map.latLngToContainerPoint([lat, lon]);
                const canvas = map.getPane("stations").querySelector("canvas");
                const ratio = window.devicePixelRatio || 1;
                const px = canvas.getContext("2d")
                    .getImageData(Math.round(p.x * ratio), Math.round(p.y * ratio), 1, 1).data;
                return [px[0], px[1], px[2]];
            }""",
            [lat, lon],
        )
    )


def close_to(rgb: tuple[int, ...], expected: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= COLOUR_TOLERANCE for a, b in zip(rgb, expected, strict=True))


def test_sign_in_shows_the_citys_stations_and_kpis(browser: Any, city: ServedCity) -> None:
    live = city.live
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, live)
    snapshot = live.client.get("/v1/map").json()
    kpis = snapshot["kpis"]
    assert page.locator("#kpi-stations").inner_text() == str(STATIONS)
    assert page.locator("#kpi-covered").inner_text() == f"{kpis['demand_covered_pct']:.1f}%"
    counts = {
        state: page.locator(f"#kpi-states li[data-state={state}] .state-count").inner_text()
        for state in ("available", "degraded", "closed", "silent")
    }
    assert counts == {
        "available": str(STATIONS - LEFT_SILENT - CLOSED - DEGRADED),
        "degraded": str(DEGRADED),
        "closed": str(CLOSED),
        "silent": str(LEFT_SILENT),
    }
    open_alerts = sum(kpis["open_alerts_by_kind"].values())
    assert open_alerts >= DEGRADED  # each degraded station has its alert
    assert page.locator("#kpi-alerts").inner_text() == str(open_alerts)
    assert page.locator("#alert-feed li.alert").count() == min(open_alerts, 50)
    assert page.locator("#attention li[data-station]").count() == LEFT_SILENT + CLOSED + DEGRADED
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("#live-status").get_attribute("data-state") == "live"
    # The map shows the subdistricts: as outlines and in the drill-down selector.
    options = page.locator("#subdistrict-select option").all_inner_texts()
    assert len(options) == SUBDISTRICTS + 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"))

    page.select_option("#subdistrict-select", index=1)
    sub_total = int(page.locator("#kpi-stations").inner_text())
    assert 0 < sub_total < STATIONS
    assert page.locator("#kpi-scope").inner_text() == options[1]
    page.close()


def test_a_closed_station_changes_on_the_map_and_raises_an_alert_live(
    browser: Any, city: ServedCity
) -> None:
    live = city.live
    station_id, margin = station_to_close(live)
    assert margin >= 0, "the sample city must have a station whose closing raises an alert"
    station = next(s for s in city.city.stations if s.station_id == station_id)
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, live)
    page.evaluate("window.notReloaded = true")
    page.evaluate(
        "([lat, lon, z]) => { WS.dashboard.map.setView([lat, lon], z); }",
        [station.lat, station.lon, STATION_ZOOM],
    )
    page.wait_for_timeout(100)
    assert close_to(marker_rgb(page, station.lat, station.lon), AVAILABLE_RGB)
    zone_alerts_before = page.locator("#alert-feed li[data-kind=zone_underserved]").count()

    operator = issue(live.system, Role.operator, stations=[station_id])
    closing = envelope(
        "check_in", station_id, city.clock.now(), {"status": "closed", "seats_available": 0}
    )
    answer = live.client.post(
        "/v1/events", json=closing, headers={"Authorization": f"Bearer {operator}"}
    )
    assert answer.status_code == 202, answer.text
    live.system.runtime.drain()
    live.system.runtime.tick()  # the alert's grace period is zero: it opens on this tick

    # (Selectors, not wait_for_function: the page's CSP rightly forbids evaluating strings.)
    page.wait_for_selector(
        f"body[data-last-station='{station_id}:closed']",
        state="attached",
        timeout=UPDATE_TIMEOUT_MS,
    )
    assert close_to(marker_rgb(page, station.lat, station.lon), CLOSED_RGB)
    page.wait_for_selector(
        f"#alert-feed li[data-kind=zone_underserved]:nth-child({zone_alerts_before + 1})",
        timeout=UPDATE_TIMEOUT_MS,
    )
    closed_row = page.locator(f"#attention li[data-station='{station_id}']")
    assert closed_row.get_attribute("data-state") == "closed"
    assert page.locator("#kpi-states li[data-state=closed] .state-count").inner_text() == str(
        CLOSED + 1
    )
    assert page.evaluate("window.notReloaded") is True, "the page must not reload"

    # The popup tells the same story, with the event that closed it.
    closed_row.get_by_role("button").click()
    popup = page.locator(f".station-popup[data-station='{station_id}']")
    assert popup.locator(".state-tag").get_attribute("data-state") == "closed"
    popup.locator(".events li time").first.wait_for()  # the events, not "loading"
    assert "签到" in popup.locator(".events").inner_text()
    page.wait_for_timeout(POPUP_FADE_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-station-closed.png"))
    page.close()


def test_language_switch(browser: Any, city: ServedCity) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, city.live)
    assert page.locator("#kpi-heading").inner_text().startswith("概况")
    page.get_by_role("button", name="Switch to English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#kpi-heading").inner_text().startswith("Overview")
    assert page.locator("#kpi-states li[data-state=closed] .state-name").inner_text() == "closed"
    assert page.locator("#as-of").inner_text().startswith("As of")
    assert page.get_by_label("District", exact=True).is_visible()
    page.locator(".skip-link").focus()
    tabbed = []
    for _ in range(3):  # from the skip link on, the controls in order, by keyboard
        page.keyboard.press("Tab")
        tabbed.append(page.evaluate("document.activeElement.id"))
    assert tabbed == ["district-select", "subdistrict-select", "lang-toggle"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-en.png"))
    page.get_by_role("button", name="切换到中文").click()
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.locator("#kpi-states li[data-state=closed] .state-name").inner_text() == "关闭"
    page.close()


def test_dashboard_benchmark_quick_run(browser: Any) -> None:
    """`make bench`'s dashboard module, at its quick size: both results, measured."""
    results = {r.name: r for r in bench_dashboard.measure(quick=True, browser=browser)}
    assert set(results) == {"dashboard.first_render.city.ms", "dashboard.live_update.city.ms"}
    for result in results.values():
        assert result.unit == "ms"
        assert 0 < result.value < UPDATE_TIMEOUT_MS * 3
        assert result.about
