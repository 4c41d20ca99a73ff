"""The dashboard in a real browser (Debian's chromium through Playwright): sign in with a union
key, see the station count and KPIs of a sample city, close a station through the API and see
its marker change and an alert appear without a reload, switch language, assign an alert, note
it and read its history (by keyboard, on a phone's width). Screenshots go to tests/artifacts/
for people to look at.

Without chromium these tests skip on a developer's machine; under CI=true they fail."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench import dashboard as bench_dashboard
from bench.browser import VIEWPORT
from demo.sample_city import (
    DISTRICT_NAME,
    WITHIN_OPENING_HOURS,
)
from schemas.alert_actions import ASSIGNEE_MAX_CHARS, NOTE_MAX_CHARS
from schemas.auth import Role
from tests.conftest import LiveServer, issue
from tests.served_city import (
    CLOSED,
    DEGRADED,
    HEARTBEAT_INTERVAL_S,
    LEFT_SILENT,
    STATIONS,
    SUBDISTRICTS,
    ServedCity,
    alerting_settings,
    envelope,
    opened,
    opened_sample_city,
    post,
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
PHONE_VIEWPORT = {"width": 360, "height": 740}
ON_DUTY = "总工会值班"  # the key's label: who did it
# Long and without spaces: it must wrap, not widen the page on a phone.
TEAM = (
    "朝阳区总工会第三网格户外劳动者服务保障队（负责望京、酒仙桥、大山子一带驿站的巡查与设施维修）"
)
NOTE = "饮水机已报修，<b>明早</b>到场"  # markup typed by a person stays text
DRAFT = "正在写"


@pytest.fixture
def city(tmp_path: Path) -> Iterator[ServedCity]:
    settings = alerting_settings(
        tmp_path,
        zone_uncovered_demand_workers=ZONE_THRESHOLD_WORKERS,
        zone_scheme="h3",  # small zones: closing one station can tip one over
    )
    with opened_sample_city(settings, WITHIN_OPENING_HOURS) as served:
        yield served


def sign_in(page: Any, live: LiveServer, key: str | None = None) -> None:
    """Signs in with `key`, or with a new union key for the sample district."""
    key = key or issue(live.system, Role.union, districts=[DISTRICT_NAME])
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


# --- acting on alerts from the page -----------------------------------------------------------


def degraded_alert_or_none(served: ServedCity) -> dict[str, Any] | None:
    """The open alert of a station that lost its water in `events_for`."""
    station_id = served.city.stations[LEFT_SILENT + CLOSED].station_id
    found = served.live.client.get("/v1/alerts", params={"status": "open", "limit": 1000})
    return next((a for a in found.json()["alerts"] if a["subject"] == station_id), None)


def degraded_alert(served: ServedCity) -> dict[str, Any]:
    alert = degraded_alert_or_none(served)
    assert alert is not None, "the degraded station must have its alert open"
    return alert


def alert_item(page: Any, alert: dict[str, Any]) -> Any:
    return page.locator(f"#alert-feed li.alert[data-subject='{alert['subject']}']")


def is_focused(locator: Any) -> bool:
    return bool(locator.evaluate("node => node === document.activeElement"))


def test_a_union_key_assigns_notes_and_reads_the_history_by_keyboard_on_a_phone(
    browser: Any, city: ServedCity
) -> None:
    live = city.live
    alert = degraded_alert(city)
    key = issue(live.system, Role.union, districts=[DISTRICT_NAME], label=ON_DUTY)
    page = browser.new_page(viewport=PHONE_VIEWPORT)
    sign_in(page, live, key)
    item = alert_item(page, alert)
    controls = item.locator(".alert-actions")
    assert controls.get_attribute("data-alert-id") == alert["alert_id"]
    assign_field = item.locator("form[data-form=assign] input")
    note_field = item.locator("form[data-form=notes] textarea")
    assert assign_field.get_attribute("maxlength") == str(ASSIGNEE_MAX_CHARS)
    assert note_field.get_attribute("maxlength") == str(NOTE_MAX_CHARS)

    # Assign: open the form (Escape closes it again), type, Enter.
    assign_button = item.locator("button[data-action=assign]")
    assign_button.focus()
    page.keyboard.press("Enter")
    assert assign_button.get_attribute("aria-expanded") == "true"
    assert is_focused(assign_field)
    page.keyboard.press("Escape")
    assert assign_field.is_hidden()
    assert is_focused(assign_button)
    page.keyboard.press("Enter")
    assert is_focused(assign_field)
    page.keyboard.type(TEAM)
    page.keyboard.press("Enter")
    item.locator(".alert-handling .tag", has_text=f"指派给 {TEAM}").wait_for(
        timeout=UPDATE_TIMEOUT_MS
    )
    assert item.locator(".alert-message").inner_text() == "已指派。"
    assert assign_field.is_hidden()
    assert is_focused(assign_button)

    # A note: a live update while it is being typed keeps the draft, the focus and the caret.
    note_button = item.locator("button[data-action=notes]")
    note_button.focus()
    page.keyboard.press("Enter")
    page.keyboard.type(DRAFT)
    seq = page.locator("body").get_attribute("data-live-seq")
    closing = opened(city.city)[0]
    city.clock.advance(timedelta(minutes=1))
    post(live, [envelope("check_in", closing, city.clock.now(), {"status": "closed"})])
    page.wait_for_selector(
        f"body[data-last-station='{closing}:closed']", state="attached", timeout=UPDATE_TIMEOUT_MS
    )
    assert page.locator("body").get_attribute("data-live-seq") != seq
    assert note_field.input_value() == DRAFT
    assert is_focused(note_field)
    page.keyboard.press("Backspace")  # at the caret, the end of the draft
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.type(NOTE)
    page.keyboard.press("Tab")  # to the save button
    page.keyboard.press("Enter")
    item.locator(".alert-handling .tag", has_text="备注 1 条").wait_for(timeout=UPDATE_TIMEOUT_MS)
    assert item.locator(".alert-message").inner_text() == "备注已保存。"

    # The history: who did what, with the note as typed.
    item.locator("button[data-action=history]").focus()
    page.keyboard.press("Enter")
    entries = item.locator(".alert-history li[data-action]")
    entries.nth(1).wait_for(timeout=UPDATE_TIMEOUT_MS)
    assert [e.get_attribute("data-action") for e in entries.all()] == ["assigned", "noted"]
    assert entries.nth(0).locator(".history-who").inner_text() == ON_DUTY
    assert entries.nth(0).locator(".history-what").inner_text() == f"指派给 {TEAM}"
    assert entries.nth(1).locator(".history-who").inner_text() == ON_DUTY
    assert entries.nth(1).locator(".history-what").inner_text() == "添加了备注"
    assert entries.nth(1).locator(".history-note").inner_text() == NOTE
    assert item.locator(".alert-history b").count() == 0, "typed markup must stay text"

    # The API tells the same story.
    answer = live.client.get(f"/v1/alerts/{alert['alert_id']}/actions").json()
    assert [(a["action"], a["by_label"], a["assignee"], a["note"]) for a in answer["actions"]] == [
        ("assigned", ON_DUTY, TEAM, None),
        ("noted", ON_DUTY, None, NOTE),
    ]
    assert answer["handling"]["assignee"] == TEAM
    assert answer["handling"]["notes"] == 1

    # Nothing is wider than the phone.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
    box = item.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= PHONE_VIEWPORT["width"]
    item.locator("button[data-action=notes]").click()  # the form shows in the picture
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_VIEWPORT["width"]
    item.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-alert-actions-phone.png"))

    # In English the same history is worded again, the person's words as they were.
    page.get_by_role("button", name="Switch to English").click()
    assert entries.nth(0).locator(".history-what").inner_text() == f"assigned to {TEAM}"
    assert entries.nth(1).locator(".history-note").inner_text() == NOTE
    assert item.locator("button[data-action=assign]").inner_text() == "Assign"
    page.get_by_role("button", name="切换到中文").click()
    page.close()


def test_api_errors_are_said_in_the_pages_words(browser: Any, city: ServedCity) -> None:
    live = city.live
    alert = degraded_alert(city)
    page = browser.new_page(viewport=VIEWPORT)
    page.route("**/v1/live**", lambda route: route.abort())  # no pushed updates: a stale page
    sign_in(page, live)
    item = alert_item(page, alert)
    message = item.locator(".alert-message[data-kind=error]")
    field = item.locator("form[data-form=assign] input")
    item.locator("button[data-action=assign]").click()

    # Too long for the API (the field's maxlength stops typing, not a script).
    field.evaluate("(node, n) => { node.value = '长'.repeat(n); }", ASSIGNEE_MAX_CHARS + 1)
    item.locator("form[data-form=assign] button[type=submit]").click()
    message.wait_for(timeout=UPDATE_TIMEOUT_MS)
    assert message.inner_text() == f"请填写 1 至 {ASSIGNEE_MAX_CHARS} 个字。"

    # The alert resolves meanwhile: the server says 409, the page says so in Chinese.
    station_id = alert["subject"]
    city.clock.advance(timedelta(minutes=1))
    water_back = {
        "amenities": {"drinking_water": "ok", "rest_seats": "ok"},
        "next_check_in_seconds": HEARTBEAT_INTERVAL_S,
    }
    post(live, [envelope("health_check", station_id, city.clock.now(), water_back)])
    assert degraded_alert_or_none(city) is None, "the alert must be resolved by now"
    field.fill("张队")
    item.locator("form[data-form=assign] button[type=submit]").click()
    item.locator(".alert-message", has_text="该警报已在此期间解除。").wait_for(
        timeout=UPDATE_TIMEOUT_MS
    )

    # A 403 (the key's districts changed, say): the server's English text never shows.
    forbidden = {"title": "Forbidden", "status": 403, "detail": "a union key cannot do this"}
    page.route(
        "**/v1/alerts/*/notes",
        lambda route: route.fulfill(
            status=403, content_type="application/problem+json", body=json.dumps(forbidden)
        ),
    )
    item.locator("button[data-action=notes]").click()
    item.locator("form[data-form=notes] textarea").fill("已到场")
    item.locator("form[data-form=notes] button[type=submit]").click()
    item.locator(".alert-message", has_text="此密钥无权处理该警报。").wait_for(
        timeout=UPDATE_TIMEOUT_MS
    )
    assert "cannot" not in item.inner_text()
    assert live.client.get(f"/v1/alerts/{alert['alert_id']}/actions").json()["actions"] == []
    page.close()


def test_a_planner_sees_who_handles_an_alert_but_no_controls(
    browser: Any, city: ServedCity
) -> None:
    live = city.live
    alert = degraded_alert(city)
    base = f"/v1/alerts/{alert['alert_id']}"
    assert live.client.post(f"{base}/assign", json={"assignee": "张队"}).status_code == 200
    assert live.client.post(f"{base}/notes", json={"text": "已到场"}).status_code == 200
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, live, issue(live.system, Role.planner))
    item = alert_item(page, alert)
    tags = item.locator(".alert-handling .tag").all_inner_texts()
    assert tags == ["指派给 张队", "备注 1 条"]
    assert page.locator("#alert-feed li.alert").count() > 1
    for control in (".alert-actions", "button[data-action]", "form", "input", "textarea"):
        assert page.locator(f"#alert-feed {control}").count() == 0, control
    page.close()
