"""The zh-CN dashboard words everything itself: with an alert of every kind open, the popups
of stations in every state open, and an alert's forms and history (acknowledged, assigned,
noted) open, the rendered text holds no English (the server sends codes and values, never
sentences). Names are data and are left out of the scan.

Without chromium these tests skip on a developer's machine; under CI=true they fail."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.browser import VIEWPORT
from schemas.auth import Role
from streams.clock import ManualClock
from tests.conftest import T0, LiveServer, bearer, issue
from tests.served_city import (
    CLOSED,
    DEGRADED,
    LEFT_SILENT,
    STATIONS,
    SUBDISTRICTS,
    alerting_settings,
    envelope,
    events_for,
    served_sample_city,
)
from tests.test_dashboard_browser import sign_in

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
KINDS = ("zone_underserved", "station_silent", "station_degraded", "station_overloaded")
ZONE_CLOSURES = 15  # enough closed stations that some zone is underserved
SHORT_HEARTBEAT_S = 60
SILENCE_AFTER = timedelta(minutes=5)
STEP = timedelta(minutes=1)  # after the city's first events
OVERLOAD_VISITS_PER_SEAT = 4.0
POPUP_TIMEOUT_MS = 10_000
FEED_MAX = 50
ZONE_THRESHOLD_WORKERS = 150.0  # few zones alert, so that every alert fits in the feed
# Latin words the page may show: the product's name, the map library's credit, the words
# "API" and "AED" (used as such in Chinese) and the language switch's own label.
ALLOWED_LATIN = {"waystation", "Leaflet", "API", "AED", "English"}
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z_'-]+")
H3_CELL = re.compile(r"\b[0-9a-f]{15}\b")
ON_DUTY = "区总工会值班"  # the acting key's label


def visit(station_id: str, clock: ManualClock) -> dict[str, Any]:
    return envelope(
        "visit",
        station_id,
        clock.now(),
        {"worker_kind": "food_delivery", "party_size": 1, "source": "qr_scan"},
    )


@pytest.fixture
def every_kind_open(tmp_path: Path) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """A city with an alert of every kind open; returns the stations in each state."""
    settings = alerting_settings(
        tmp_path,
        zone_uncovered_demand_workers=ZONE_THRESHOLD_WORKERS,
        zone_scheme="h3",
        overload_visits_per_seat=OVERLOAD_VISITS_PER_SEAT,
    )
    with served_sample_city(settings, T0, stations=STATIONS, subdistricts=SUBDISTRICTS) as served:
        live, city, clock, system = served.live, served.city, served.clock, served.live.system
        client = live.client
        assert client.post("/v1/events", json=events_for(city, clock.now())).status_code == 200
        opened = city.stations[LEFT_SILENT + CLOSED + DEGRADED :]
        quiet, busy, *rest = opened
        clock.advance(STEP)
        closing = [
            envelope("check_in", s.station_id, clock.now(), {"status": "closed"})
            for s in rest[:ZONE_CLOSURES]
        ]
        heartbeat = envelope(
            "health_check",
            quiet.station_id,
            clock.now(),
            {"amenities": {"drinking_water": "ok"}, "next_check_in_seconds": SHORT_HEARTBEAT_S},
        )
        crowd = [
            visit(busy.station_id, clock)
            for _ in range(int(busy.capacity * OVERLOAD_VISITS_PER_SEAT) + 1)
        ]
        for batch in ([*closing, heartbeat], crowd):
            answer = client.post("/v1/events", json=batch)
            assert answer.status_code == 200, answer.text
        clock.advance(SILENCE_AFTER)
        system.runtime.drain()
        system.runtime.tick()
        system.runtime.drain()
        states = {
            "silent": quiet.station_id,
            "closed": rest[0].station_id,
            "degraded": city.stations[LEFT_SILENT + CLOSED].station_id,
            "never_heard": city.stations[0].station_id,
        }
        yield live, states


def names_in(live: LiveServer) -> list[str]:
    """Station, district and subdistrict names: data, in whatever language it was entered."""
    stations = live.client.get("/v1/stations", params={"limit": 1000}).json()["stations"]
    names = {v["station"]["name"] for v in stations}
    names |= {v["station"]["district"] for v in stations}
    names |= {v["station"]["subdistrict"] for v in stations if v["station"]["subdistrict"]}
    names |= {v["station"]["station_id"] for v in stations}
    with live.system.store.transaction() as tx:
        names |= {b.name for b in tx.boundaries.list()}
    return sorted(names, key=len, reverse=True)  # longest first: no name eats part of another


def latin_words(text: str, names: list[str]) -> set[str]:
    for name in names:
        text = text.replace(name, " ")
    text = H3_CELL.sub(" ", text)
    return {w for w in LATIN_WORD.findall(text) if w not in ALLOWED_LATIN}


def act_on(live: LiveServer, alert_id: str) -> None:
    """Every kind of action on one alert, by a key with a label, each with its words."""
    union = bearer(issue(live.system, Role.union, label=ON_DUTY))
    base = f"/v1/alerts/{alert_id}"
    for what, body in (
        ("acknowledge", {"note": "已派人查看"}),
        ("assign", {"assignee": "第三网格服务队"}),
        ("notes", {"text": "饮水机已报修"}),
    ):
        answer = live.client.post(f"{base}/{what}", json=body, headers=union)
        assert answer.status_code == 200, answer.text


def test_no_english_in_the_chinese_page_with_every_alert_kind_open(
    browser: Any, every_kind_open: tuple[LiveServer, dict[str, str]]
) -> None:
    live, states = every_kind_open
    open_alerts = live.client.get("/v1/alerts", params={"status": "open", "limit": 1000}).json()
    kinds = {a["kind"] for a in open_alerts["alerts"]}
    assert kinds == set(KINDS)
    assert open_alerts["total"] <= FEED_MAX, "every open alert must fit in the feed"
    for alert in open_alerts["alerts"]:  # the server sends a code and values for each
        assert alert["evidence"]["reason"]["code"], alert
    handled = next(a for a in open_alerts["alerts"] if a["kind"] == "station_degraded")
    act_on(live, handled["alert_id"])

    names = names_in(live)
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, live)
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    for kind in KINDS:
        assert page.locator(f"#alert-feed li[data-kind={kind}]").count() > 0, kind
    assert page.locator("#alert-feed button[data-action=history]").count() > 0
    texts = {"page": page.locator("body").inner_text()}
    # The alert someone acted on, with its forms and its history open.
    item = page.locator(f"#alert-feed li.alert[data-subject='{handled['subject']}']")
    for action in ("assign", "notes", "history"):
        item.locator(f"button[data-action={action}]").click()
    history = item.locator(".alert-history li[data-action]")
    history.nth(2).wait_for(timeout=POPUP_TIMEOUT_MS)
    assert [h.get_attribute("data-action") for h in history.all()] == [
        "acknowledged",
        "assigned",
        "noted",
    ]
    assert item.locator("form[data-form=notes] label").is_visible()
    texts["alert actions"] = item.inner_text()
    for state, station_id in states.items():
        page.locator(f"#attention li[data-station='{station_id}'] button").click()
        popup = page.locator(f".station-popup[data-station='{station_id}']")
        popup.locator(".events li").first.wait_for(timeout=POPUP_TIMEOUT_MS)
        popup.locator("dd .muted").last.wait_for(timeout=POPUP_TIMEOUT_MS)  # the reason
        texts[state] = popup.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-zh-every-alert.png"))

    found = {where: latin_words(text, names) for where, text in texts.items()}
    assert found == {where: set() for where in texts}
    # The scan can see English: the same page in English is full of it.
    page.get_by_role("button", name="Switch to English").click()
    english = latin_words(page.locator("#alert-feed").inner_text(), names)
    assert {"expected", "workers", "visitors", "assigned", "added"} <= english
    page.get_by_role("button", name="切换到中文").click()
    page.close()
