"""Every view counts the same stations by state and the same open alerts, at every step: the
dashboard's tiles (in chromium), its map, `/v1/map`, `/v1/coverage`, `/v1/stations`, the gap
report, `/v1/alerts`, `/healthz` and `/metrics`, with no dashboard connected, with one, after
it left and when another comes. Each step's counts are also checked against what the step did.

Without chromium these tests skip on a developer's machine; under CI=true they fail."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.browser import VIEWPORT
from demo.sample_city import WITHIN_OPENING_HOURS
from services.live import LiveHub
from streams.clock import ManualClock
from tests.conftest import LiveServer
from tests.served_city import (
    CLOSED,
    DEGRADED,
    LEFT_SILENT,
    STATIONS,
    alerting_settings,
    envelope,
    opened,
    opened_sample_city,
    post,
)
from tests.test_dashboard_browser import sign_in

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
STATES = ("available", "degraded", "closed", "silent")
KINDS = ("zone_underserved", "station_silent", "station_degraded", "station_overloaded")
SETTLE_TIMEOUT_S = 15.0
SETTLE_POLL_S = 0.1
KEEPALIVE_S = 0.5  # how soon the server notices a page that left
STEP_MINUTES = 1
UNWATCHED_CLOSURES = 30  # enough closures that coverage must drop
FEED_LIMIT = 50  # the alert feed shows at most this many
METRIC = re.compile(r'^waystation_(stations|open_alerts)\{(state|kind)="(\w+)"\} ([0-9.]+)$')


@pytest.fixture
def city(tmp_path: Path) -> Iterator[tuple[LiveServer, ManualClock, list[str]]]:
    settings = alerting_settings(
        tmp_path,
        zone_uncovered_demand_workers=10.0,
        zone_scheme="h3",
        live_keepalive_seconds=KEEPALIVE_S,
    )
    with opened_sample_city(settings, WITHIN_OPENING_HOURS) as served:
        yield served.live, served.clock, opened(served.city)


def later(clock: ManualClock) -> ManualClock:
    clock.advance(timedelta(minutes=STEP_MINUTES))
    return clock


def close(clock: ManualClock, station_id: str) -> dict[str, Any]:
    return envelope("check_in", station_id, clock.now(), {"status": "closed", "seats_available": 0})


def reopen(clock: ManualClock, station_id: str) -> dict[str, Any]:
    return envelope("check_in", station_id, clock.now(), {"status": "open", "seats_available": 6})


def lose_water(clock: ManualClock, station_id: str) -> dict[str, Any]:
    return envelope(
        "health_check",
        station_id,
        clock.now(),
        {
            "amenities": {"drinking_water": "out_of_service", "rest_seats": "ok"},
            "next_check_in_seconds": 3600,
        },
    )


def every_api_count(live: LiveServer) -> dict[str, dict[str, dict[str, int]]]:
    """What each endpoint says: {endpoint: {"states": ..., "alerts": ...}}."""
    client = live.client
    snapshot = client.get("/v1/map").json()
    coverage = client.get("/v1/coverage").json()["summary"]
    stations = client.get("/v1/stations", params={"limit": 1000}).json()
    gaps = client.get("/v1/reports/gaps").json()
    health = client.get("/healthz").json()
    open_alerts = client.get("/v1/alerts", params={"status": "open", "limit": 1000}).json()
    metrics: dict[str, dict[str, int]] = {"states": {}, "alerts": {}}
    for line in client.get("/metrics").text.splitlines():
        found = METRIC.match(line)
        if found:
            what = "states" if found[1] == "stations" else "alerts"
            metrics[what][found[3]] = int(float(found[4]))
    listed = Counter(v["state"] for v in stations["stations"])
    alert_kinds = Counter(a["kind"] for a in open_alerts["alerts"])
    snapshot_kinds = Counter(a["kind"] for a in snapshot["open_alerts"])
    marker_states = Counter(snapshot["states"][i] for i in snapshot["stations"]["state"])
    return {
        "/v1/map kpis": {
            "states": snapshot["kpis"]["stations_by_state"],
            "alerts": snapshot["kpis"]["open_alerts_by_kind"],
        },
        "/v1/map columns": {
            "states": {s: marker_states[s] for s in STATES},
            "alerts": {k: snapshot_kinds[k] for k in KINDS},
        },
        "/v1/coverage": {"states": coverage["stations_by_state"], "alerts": None},
        "/v1/stations": {"states": {s: listed[s] for s in STATES}, "alerts": None},
        "/v1/reports/gaps": {
            "states": gaps["stations_by_state"],
            "alerts": gaps["open_alerts_by_kind"],
        },
        "/v1/alerts": {"states": None, "alerts": {k: alert_kinds[k] for k in KINDS}},
        "/healthz": {"states": None, "alerts": health["open_alerts"]},
        "/metrics": metrics,
    }


def agreed(live: LiveServer) -> tuple[dict[str, int], dict[str, int], float]:
    """The counts every endpoint agrees on (asserted), and the district's covered share."""
    views = every_api_count(live)
    states = {name: v["states"] for name, v in views.items() if v["states"] is not None}
    alerts = {name: v["alerts"] for name, v in views.items() if v["alerts"] is not None}
    first_states = next(iter(states.values()))
    first_alerts = next(iter(alerts.values()))
    assert all(s == first_states for s in states.values()), states
    assert all(a == first_alerts for a in alerts.values()), alerts
    covered = live.client.get("/v1/coverage").json()["summary"]["demand_covered_pct"]
    assert live.client.get("/v1/map").json()["kpis"]["demand_covered_pct"] == covered
    return first_states, first_alerts, covered


def tiles(page: Any) -> tuple[dict[str, int], int, str, dict[str, int]]:
    """The tiles as the page shows them, and the states of the markers on its map."""
    states = {
        state: int(page.locator(f"#kpi-states li[data-state={state}] .state-count").inner_text())
        for state in STATES
    }
    markers = page.evaluate(
        """() => {
            const m = WS.dashboard.model, counts = {};
            for (const s of m.states) counts[s] = 0;
            for (let i = 0; i < m.stations.n; i++) counts[m.states[m.stations.state[i]]]++;
            return counts;
        }"""
    )
    return (
        states,
        int(page.locator("#kpi-alerts").inner_text()),
        (page.locator("#kpi-covered").inner_text()),
        markers,
    )


def assert_tiles_agree(page: Any, live: LiveServer) -> None:
    """Polls until the page has drawn the last update (bounded), then compares."""
    states, alerts, covered = agreed(live)
    expected = (states, sum(alerts.values()), f"{covered:.1f}%", states)
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    shown = tiles(page)
    while shown != expected and time.monotonic() < deadline:
        time.sleep(SETTLE_POLL_S)
        shown = tiles(page)
    assert shown == expected
    assert int(page.locator("#kpi-stations").inner_text()) == sum(states.values())
    feed = page.locator("#alert-feed li.alert").count()
    assert feed == min(sum(alerts.values()), FEED_LIMIT)


def test_every_view_counts_the_same_with_and_without_a_dashboard(
    browser: Any, city: tuple[LiveServer, ManualClock, list[str]]
) -> None:
    live, clock, opened = city
    a, b, c, d, e = opened[:5]
    unwatched = opened[5 : 5 + UNWATCHED_CLOSURES]

    # An admin registers a station that has not reported yet: it counts as silent everywhere.
    sample = live.client.get(f"/v1/stations/{a}").json()["station"]
    added = {**sample, "station_id": "CY-NEW-1", "name": "新站"}
    answer = live.client.post("/v1/stations", json=added)
    assert answer.status_code in (200, 201), answer.text
    states, alerts, _ = agreed(live)
    assert states == {
        "available": STATIONS - LEFT_SILENT - CLOSED - DEGRADED,
        "degraded": DEGRADED,
        "closed": CLOSED,
        "silent": LEFT_SILENT + 1,
    }
    assert alerts["station_degraded"] == DEGRADED

    # Nobody watching: one station closes, one loses its water.
    assert hub_of(live).subscribers == 0
    post(live, [close(later(clock), a), lose_water(clock, b)])
    states, alerts, _ = agreed(live)
    assert states["closed"] == CLOSED + 1
    assert states["degraded"] == DEGRADED + 1
    assert alerts["station_degraded"] == DEGRADED + 1

    # A dashboard connects: its tiles and map show what the API says.
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, live)
    assert_tiles_agree(page, live)

    # While it watches: the closed one reopens, another closes.
    post(live, [reopen(later(clock), a), close(clock, c)])
    states, _, _ = agreed(live)
    assert states["closed"] == CLOSED + 1
    assert_tiles_agree(page, live)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "one-count-watched.png"))
    page.close()

    # It leaves (the server notices at its next keep-alive); changes land unwatched.
    hub = hub_of(live)
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while hub.subscribers and time.monotonic() < deadline:
        time.sleep(SETTLE_POLL_S)
    assert hub.subscribers == 0
    covered_before = agreed(live)[2]
    post(live, [lose_water(later(clock), d), *(close(clock, s) for s in [e, *unwatched])])
    states, alerts, covered = agreed(live)
    assert states["closed"] == CLOSED + 2 + len(unwatched)
    assert states["degraded"] == DEGRADED + 2
    assert covered < covered_before  # the book the hub kept while watched is behind now

    # Another connects; its first live update must carry the unwatched changes too.
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, live)
    assert_tiles_agree(page, live)
    post(live, [reopen(later(clock), e)])
    page.wait_for_selector(
        f"body[data-last-station='{e}:available']", state="attached", timeout=15_000
    )
    assert_tiles_agree(page, live)
    page.close()


def hub_of(live: LiveServer) -> LiveHub:
    return next(
        listener.__self__
        for listener in live.system.runtime.listeners
        if isinstance(getattr(listener, "__self__", None), LiveHub)
    )
