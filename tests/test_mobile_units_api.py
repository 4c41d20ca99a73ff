"""A mobile unit through the embedded system and the HTTP API: placed at its stop by the
clock, shown at its stop on the map, and its stops ranked for planners by the demand only
they would serve."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from schemas.auth import Role
from schemas.mobile import MobileStop
from schemas.stations import StationKind
from services.system import EmbeddedSystem
from tests.conftest import (
    CENTRE,
    T0,
    EventFactory,
    LiveServer,
    bearer,
    issue,
    load,
    make_station,
    settings_for,
    tiny_city,
)

NEAR_T1 = (CENTRE[0] + 0.002, CENTRE[1])  # inside T-0001's catchment: little to add there
OPEN_FIELD = (CENTRE[0] + 0.002, CENTRE[1] + 0.06)  # at T-0002, which never opens here


def add_bus(live: LiveServer) -> None:
    stops = (
        MobileStop(
            name="甲", lat=NEAR_T1[0], lon=NEAR_T1[1], start=T0, end=T0 + timedelta(hours=2)
        ),
        MobileStop(
            name="乙",
            lat=OPEN_FIELD[0],
            lon=OPEN_FIELD[1],
            start=T0 + timedelta(hours=3),
            end=T0 + timedelta(hours=5),
        ),
    )
    bus = make_station("BUS-1", *CENTRE, kind=StationKind.mobile_unit, stops=stops)
    answer = live.client.post("/v1/stations", json=bus.model_dump(mode="json"))
    assert answer.status_code == 200, answer.text


def open_up(live: LiveServer, event: EventFactory, *station_ids: str) -> None:
    items: list[dict[str, Any]] = []
    for sid in station_ids:
        items += [event("check_in", station_id=sid), event("health_check", station_id=sid)]
    heartbeat = {"amenities": {"drinking_water": "ok"}, "next_check_in_seconds": 86_400}
    items.append(event("health_check", station_id="BUS-1", payload=heartbeat))
    assert live.client.post("/v1/events", json=items).status_code == 200
    live.system.runtime.drain()


def test_the_tour_ranks_stops_by_the_demand_only_they_serve(
    live: LiveServer, event: EventFactory
) -> None:
    add_bus(live)
    open_up(live, event, "T-0001", "BUS-1")
    live.system.runtime.tick()
    tour = live.client.get("/v1/stations/BUS-1/tour").json()
    assert tour["serving_now"] is True
    assert tour["current_stop"]["name"] == "甲"
    assert tour["position"] == {"lat": NEAR_T1[0], "lon": NEAR_T1[1]}
    assert [s["name"] for s in tour["next_stops"]] == ["乙"]
    ranked = tour["stops_by_gain"]
    assert [g["stop"]["name"] for g in ranked] == ["乙", "甲"]
    assert ranked[0]["uncovered_demand_workers"] > ranked[1]["uncovered_demand_workers"]
    # The bus is on the map where it serves, not at its base.
    view = live.client.get("/v1/map").json()["stations"]
    at = view["id"].index("BUS-1")
    assert (view["lat"][at], view["lon"][at]) == (round(NEAR_T1[0], 6), round(NEAR_T1[1], 6))

    live.system.clock.advance(timedelta(hours=3))  # type: ignore[attr-defined]
    live.system.runtime.tick()
    moved = live.client.get("/v1/stations/BUS-1/tour").json()
    assert moved["current_stop"]["name"] == "乙"
    assert moved["next_stops"] == []
    covered = {
        f["id"]
        for f in live.client.get("/v1/coverage").json()["features"]
        if f["properties"]["stations_available"]
    }
    assert set(moved["serving_cells"]) <= covered


def test_only_mobile_units_have_a_tour_and_scopes_hold(live: LiveServer) -> None:
    add_bus(live)
    assert live.client.get("/v1/stations/T-0001/tour").status_code == 404
    assert live.client.get("/v1/stations/NOPE/tour").status_code == 404
    other = bearer(issue(live.system, Role.union, districts=["Elsewhere"]))
    assert live.client.get("/v1/stations/BUS-1/tour", headers=other).status_code == 403
    bad = make_station("S-9", *CENTRE).model_dump(mode="json")
    bad["stops"] = [{"lat": 1, "lon": 1, "start": T0.isoformat(), "end": T0.isoformat()}]
    answer = live.client.post("/v1/stations", json=bad)
    assert answer.status_code == 422
    assert "stops" in answer.json()["errors"][0]["field"]


def test_a_restart_keeps_the_bus_where_it_serves(tmp_path: Any, clock: Any) -> None:
    settings = settings_for(tmp_path)
    first = EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)
    load(first, tiny_city(settings))
    stop = MobileStop(
        name="甲", lat=NEAR_T1[0], lon=NEAR_T1[1], start=T0, end=T0 + timedelta(hours=2)
    )
    bus = make_station("BUS-1", *CENTRE, kind=StationKind.mobile_unit, stops=(stop,))
    with first.store.transaction() as tx:
        tx.station_changes.write([bus], actor="test", at=clock.now())
    first.start()
    first.ingest.handle(
        [
            {
                "event_id": str(uuid.uuid4()),
                "type": "check_in",
                "schema_version": 1,
                "station_id": "BUS-1",
                "occurred_at": clock.now().isoformat(),
                "payload": {"status": "open"},
            }
        ],
        clock.now(),
    )
    first.runtime.drain()
    first.runtime.tick()
    pipeline = first.runtime.pipeline
    assert pipeline is not None
    placed = pipeline.ledger.records["BUS-1"].placed
    assert placed is not None
    assert (placed.lat, placed.lon) == NEAR_T1
    before = {z: sorted(c.index.cells()) for z, c in first.runtime.zones.items() if c.stations}
    first.stop()

    second = EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)
    second.start()
    try:
        again = second.runtime.pipeline
        assert again is not None
        assert again.ledger.records["BUS-1"].placed == placed
        after = {z: sorted(c.index.cells()) for z, c in second.runtime.zones.items() if c.stations}
        assert after == before
    finally:
        second.stop()
