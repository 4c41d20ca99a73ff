"""Station lifecycle through the HTTP API and the embedded runtime: a station moved, resized,
retired and reactivated moves live coverage at once, every change audited; bad changes get a
problem naming the field."""

from __future__ import annotations

from typing import Any

from geo.catchment import CircleCatchments
from schemas.auth import Role
from services.system import EmbeddedSystem
from tests.conftest import (
    CENTRE,
    EventFactory,
    LiveServer,
    bearer,
    issue,
    settings_for,
    tiny_city,
)

MOVE_EAST_DEG = 0.012  # ~1 km at Beijing's latitude


def coverage(live: LiveServer) -> dict[str, dict[str, Any]]:
    body = live.client.get("/v1/coverage").json()
    return {f["id"]: f["properties"] for f in body["features"]}


def covered_by_t1(live: LiveServer) -> set[str]:
    return {c for c, p in coverage(live).items() if p["stations_available"] >= 1}


def open_station(live: LiveServer, event: EventFactory, station_id: str = "T-0001") -> None:
    answer = live.client.post(
        "/v1/events",
        json=[
            event("check_in", station_id=station_id),
            event("health_check", station_id=station_id),
        ],
    )
    assert answer.status_code == 200, answer.text
    live.system.runtime.drain()


def test_moving_a_station_moves_its_catchment_and_is_audited(
    live: LiveServer, event: EventFactory
) -> None:
    open_station(live, event)
    system = live.system
    catchments = CircleCatchments(system.runtime.grid, system.settings.catchment_radius_m)
    old_cells = catchments.cells(*CENTRE)
    assert old_cells & set(coverage(live))
    assert covered_by_t1(live) == old_cells & set(coverage(live))

    answer = live.client.patch(
        "/v1/stations/T-0001", json={"lon": CENTRE[1] + MOVE_EAST_DEG, "capacity": 25}
    )
    assert answer.status_code == 200, answer.text
    change = answer.json()
    assert change["action"] == "updated"
    assert change["version"] == 1  # the tiny city was loaded before any change was logged
    assert change["old"]["capacity"] == 10
    assert change["new"]["capacity"] == 25
    assert change["actor"].startswith("admin key ")

    new_cells = catchments.cells(CENTRE[0], CENTRE[1] + MOVE_EAST_DEG)
    demand_cells = set(coverage(live))
    assert covered_by_t1(live) == new_cells & demand_cells  # the old-only cells went uncovered
    station = live.client.get("/v1/stations/T-0001").json()
    assert station["station"]["capacity"] == 25
    assert station["state"] == "available"  # moving does not change what it reported

    history = live.client.get("/v1/stations/T-0001/changes").json()["changes"]
    assert [c["action"] for c in history] == ["updated"]


def test_retire_and_reactivate(live: LiveServer, event: EventFactory) -> None:
    open_station(live, event)
    assert covered_by_t1(live)
    retired = live.client.post("/v1/stations/T-0001/retire")
    assert retired.status_code == 200, retired.text
    assert retired.json()["action"] == "retired"
    assert retired.json()["new"] is None
    assert not covered_by_t1(live)
    assert live.client.get("/v1/stations/T-0001").status_code == 404
    listed = live.client.get("/v1/stations").json()["stations"]
    assert [s["station"]["station_id"] for s in listed] == ["T-0002"]
    again = live.client.post("/v1/stations/T-0001/retire")
    assert again.status_code == 404
    assert again.json()["errors"][0]["field"] == "station_id"

    # Events for a retired station are archived but change nothing.
    answer = live.client.post("/v1/events", json=[event("check_in", station_id="T-0001")])
    assert answer.status_code in (200, 422)
    assert not covered_by_t1(live)

    back = live.client.post("/v1/stations/T-0001/reactivate")
    assert back.status_code == 200, back.text
    assert back.json()["action"] == "reactivated"
    view = live.client.get("/v1/stations/T-0001").json()
    assert view["state"] == "silent"  # back, but owes a check-in before it counts
    open_station(live, event)
    assert covered_by_t1(live)
    assert live.client.post("/v1/stations/T-0002/reactivate").status_code == 404


def test_bad_changes_name_the_field(live: LiveServer) -> None:
    for body, field in (
        ({"capacity": 0}, "capacity"),
        ({"lat": 123}, "lat"),
        ({"kind": "spaceship"}, "kind"),
        ({"colour": "red"}, "colour"),
        ({"opening_hours": "Mo-Fr 9 to 5"}, "opening_hours"),
        ({"station_id": "T-0099"}, "station_id"),
    ):
        answer = live.client.patch("/v1/stations/T-0001", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert field in answer.json()["errors"][0]["field"], answer.json()
    assert live.client.patch("/v1/stations/NOPE", json={"capacity": 3}).status_code == 404
    history = live.client.get("/v1/stations/T-0001/changes").json()["changes"]
    assert history == []  # nothing was written


def test_only_admins_change_stations(live: LiveServer) -> None:
    union = bearer(issue(live.system, Role.union))
    answer = live.client.patch("/v1/stations/T-0001", json={"capacity": 3}, headers=union)
    assert answer.status_code == 403
    assert live.client.post("/v1/stations/T-0001/retire", headers=union).status_code == 403


def test_a_restart_keeps_a_retirement_and_a_move(tmp_path: Any, clock: Any) -> None:
    settings = settings_for(tmp_path)
    first = EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)
    city = tiny_city(settings)
    with first.store.transaction() as tx:
        tx.station_changes.write(city.stations, actor="test", at=clock.now())
        tx.demand.replace(city.demand)
    first.start()
    with first.store.transaction() as tx:
        tx.station_changes.retire("T-0002", actor="test", at=clock.now())
        moved = city.stations[0].model_copy(update={"lat": CENTRE[0] + 0.005})
        tx.station_changes.write([moved], actor="test", at=clock.now())
    first.runtime.tick()  # the clock picks up changes made by another process (the CLI)
    pipeline = first.runtime.pipeline
    assert pipeline is not None
    assert "T-0002" not in pipeline.ledger.records
    assert first.runtime.registry is not None
    assert first.runtime.registry["T-0001"].lat == moved.lat
    before = {z: (sorted(c.index.cells()), c.stations) for z, c in first.runtime.zones.items()}
    first.stop()

    second = EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)
    second.start()
    try:
        after = {z: (sorted(c.index.cells()), c.stations) for z, c in second.runtime.zones.items()}
        assert {z: v for z, v in after.items() if v[1]} == {z: v for z, v in before.items() if v[1]}
        with second.store.transaction() as tx:
            assert "T-0002" not in tx.records.load_all()
    finally:
        second.stop()
