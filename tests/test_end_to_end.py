"""The whole loop over real HTTP on the embedded runtime: a station opens, reports, goes
quiet, its coverage disappears, an underserved-zone alert opens after its grace period (not
before), and everything recovers when it reports again."""

from __future__ import annotations

import re
from typing import Any

import httpx

from streams.clock import ManualClock
from tests.conftest import EventFactory, LiveServer, minutes

STATION = "T-0001"


def open_alerts(live: LiveServer, kind: str) -> list[dict[str, Any]]:
    response = live.client.get("/v1/alerts", params={"status": "open", "kind": kind})
    assert response.status_code == 200
    return response.json()["alerts"]


def station_state(live: LiveServer, station_id: str = STATION) -> str:
    response = live.client.get(f"/v1/stations/{station_id}")
    assert response.status_code == 200
    return response.json()["state"]


def covered_cells(live: LiveServer) -> set[str]:
    response = live.client.get("/v1/coverage")
    assert response.status_code == 200
    return {
        f["properties"]["cell"]
        for f in response.json()["features"]
        if f["properties"]["status"] == "covered"
    }


def post(live: LiveServer, body: Any) -> dict[str, Any]:
    response = live.client.post("/v1/events", json=body)
    assert response.status_code in (200, 202), response.text
    return response.json()


def heartbeat(live: LiveServer, event: EventFactory, station_id: str = STATION) -> None:
    post(live, event("health_check", station_id=station_id))


def test_silence_uncovers_cells_and_raises_then_resolves_alert(
    live: LiveServer, event: EventFactory, clock: ManualClock
) -> None:
    runtime = live.system.runtime
    post(live, [event("check_in", station_id=s) for s in ("T-0001", "T-0002")])
    heartbeat(live, event)
    heartbeat(live, event, "T-0002")
    runtime.drain()
    assert station_state(live) == "available"
    covered_while_open = covered_cells(live)
    assert covered_while_open, "an open station must cover its catchment"

    # Heartbeats from T-0002 only; T-0001 goes quiet.
    for _ in range(3):
        clock.advance(minutes(4))
        heartbeat(live, event, "T-0002")
        runtime.tick()
    assert station_state(live) == "silent"
    lost = covered_while_open - covered_cells(live)
    assert lost, "a silent station's cells must lose coverage"

    # The zone is underserved now, but the alert waits out its grace period.
    summary = live.client.get("/v1/coverage").json()["summary"]
    assert summary["underserved_zones"], "losing the station must leave a zone underserved"
    assert open_alerts(live, "zone_underserved") == []
    clock.advance(minutes(3))
    heartbeat(live, event, "T-0002")
    runtime.tick()
    assert open_alerts(live, "zone_underserved") == [], "opened before the grace period"
    clock.advance(minutes(3))
    heartbeat(live, event, "T-0002")
    runtime.tick()
    zone_alerts = open_alerts(live, "zone_underserved")
    assert zone_alerts, "the alert must open once the grace period is over"
    assert all(STATION in a["evidence"]["stations"] for a in zone_alerts)
    assert all(a["evidence"]["uncovered_demand_workers"] >= 20 for a in zone_alerts)
    assert open_alerts(live, "station_silent")[0]["subject"] == STATION

    gaps = live.client.get("/v1/reports/gaps").json()["zones"]
    assert gaps[0]["stations_down"] == [STATION]
    assert gaps == sorted(gaps, key=lambda g: -g["uncovered_demand_workers"])

    # Heartbeats resume: coverage returns at once, the alert resolves after its own grace.
    heartbeat(live, event)
    runtime.drain()
    assert station_state(live) == "available"
    assert covered_cells(live) == covered_while_open
    assert open_alerts(live, "zone_underserved"), "resolved before the resolve grace period"
    for _ in range(2):
        clock.advance(minutes(3))
        heartbeat(live, event)
        heartbeat(live, event, "T-0002")
        runtime.tick()
    assert open_alerts(live, "zone_underserved") == []
    assert open_alerts(live, "station_silent") == []
    resolved = live.client.get("/v1/alerts", params={"status": "resolved"}).json()["alerts"]
    assert {a["kind"] for a in resolved} >= {"zone_underserved", "station_silent"}
    assert all(a["resolved_at"] for a in resolved)


def test_dashboard_page_and_operational_endpoints(live: LiveServer, event: EventFactory) -> None:
    post(live, event("check_in"))
    live.system.runtime.drain()
    page = httpx.get(f"{live.url}/")  # no key: the page asks for one
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert 'id="sign-in-form"' in page.text
    assert "<script>" not in page.text, "no inline scripts under the strict CSP"
    scripts = re.findall(r'<script src="([^"]+)"', page.text)
    assert "/static/vendor/leaflet/leaflet.js" in scripts
    for path in scripts:
        assert httpx.get(f"{live.url}{path}").status_code == 200, path
    health = live.client.get("/healthz").json()
    assert health["status"] == "ok"
    assert health["stations"] == 2
    metrics = live.client.get("/metrics").text
    assert 'waystation_events_ingested_total{result="accepted",type="check_in"}' in metrics
    assert 'waystation_stations{state="available"} 1.0' in metrics
    assert "waystation_processing_seconds_bucket" in metrics


def test_duplicate_event_has_no_second_effect(live: LiveServer, event: EventFactory) -> None:
    visit = event("visit")
    first = live.client.post("/v1/events", json=visit)
    again = live.client.post("/v1/events", json=visit)
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["results"][0]["result"] == "duplicate"
    live.system.runtime.drain()
    with live.system.store.transaction() as tx:
        assert tx.events.count() == 1
