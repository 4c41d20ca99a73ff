"""What-if scenarios run on a copy of the live state: closing and reopening gives back exactly
the live coverage, the diff says what changes, and nothing live (coverage, alerts, the store's
tables) moves."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from demo.sample_city import DISTRICT_NAME
from schemas.planning import NewSite, ScenarioChanges
from schemas.stations import StationState
from services.readings import Readings
from streams.planner import Planner, PlanningError
from tests.planning_city import CLOSED, LEFT_SILENT, planning_city
from tests.served_city import RunningCity


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCity]:
    # H3 zones (about 5 km2): small enough that closing stations tips some over.
    with planning_city(tmp_path_factory.mktemp("whatif"), zone_scheme="h3") as built:
        yield built


def open_stations(city: RunningCity) -> list[str]:
    return [s.station_id for s in city.city.stations[LEFT_SILENT + CLOSED :]]


def live_view(city: RunningCity) -> dict[str, Any]:
    runtime = city.system.runtime
    with runtime.reading():
        cells = {
            v.cell: (v.coverage, v.status, v.access_score) for v in runtime.coverage_map.cells(None)
        }
        zones = {z: runtime.pipeline.zone_book.assess(z) for z in runtime.demand.cells_of_zone}
    return {"cells": cells, "zones": zones}


def stored(city: RunningCity) -> dict[str, Any]:
    with city.system.store.transaction(readonly=True) as tx:
        return {
            "records": tx.records.load_all(),
            "alerts": sorted((a.alert_id, a.status, a.updated_at) for a in tx.alerts.list()),
            "coverage": sorted(
                (c.cell, c.coverage_count, c.status, c.access_score, c.updated_at)
                for c in tx.coverage.load()
            ),
        }


def test_close_then_reopen_is_exactly_live(city: RunningCity) -> None:
    runtime = city.system.runtime
    planner = Planner(runtime)
    closing = open_stations(city)[:12]
    with runtime.reading() as pipeline:
        scenario = planner._scenario(pipeline)
        states = {s: scenario.states[s] for s in closing}
        for station_id in closing:
            scenario.close(station_id)
        lost = [c for c in scenario.touched_cells if c in runtime.demand.demand]
        assert any(
            runtime.coverage_map.view(c).covered and not scenario.is_covered(c) for c in lost
        ), "closing a dozen open stations must uncover something"
        for station_id in closing:
            scenario.set_state(station_id, states[station_id])
        for cell in runtime.demand.demand:
            zone = runtime.zones.get(runtime.demand.grid.zone_of(cell))
            live_coverage = zone.index.coverage(cell) if zone else None
            copy = scenario.zones.own.get(runtime.demand.grid.zone_of(cell)) or zone
            assert (copy.index.coverage(cell) if copy else None) == live_coverage
            assert scenario.is_covered(cell) == runtime.coverage_map.view(cell).covered
            assert scenario.access(cell) == pytest.approx(
                runtime.coverage_map.view(cell).access_score, abs=1e-12
            )
        for zone_id in runtime.demand.cells_of_zone:
            assert scenario.assess(zone_id) == pipeline.zone_book.assess(zone_id)


def test_whatif_diff_and_nothing_live_moves(city: RunningCity) -> None:
    runtime = city.system.runtime
    readings = Readings(runtime)
    before_view = live_view(city)
    before_store = stored(city)
    before_gaps = readings.gaps(None)
    planner = Planner(runtime)
    closing = open_stations(city)[:30]
    now = city.clock.now()

    closed = planner.whatif(ScenarioChanges(close=closing), DISTRICT_NAME, now)
    assert closed.cells_lost
    assert not closed.cells_gained
    assert closed.demand_lost_workers > 0
    assert closed.underserved_demand_after_workers > closed.underserved_demand_before_workers
    assert closed.zones
    assert closed.zones_becoming_underserved
    for zone in closed.zones:
        assert zone.uncovered_after_workers >= zone.uncovered_before_workers
        becoming = zone.underserved_after and not zone.underserved_before
        assert becoming == (zone.zone in closed.zones_becoming_underserved)
    lost_demand = sum(runtime.demand.demand[c] for c in closed.cells_lost)
    assert closed.demand_lost_workers == pytest.approx(lost_demand, abs=1e-3)

    # A site at the centre of a lost cell wins at least that cell back.
    target = closed.cells_lost[0]
    lat, lon = runtime.demand.grid.centre(target)
    reopened = planner.whatif(
        ScenarioChanges(close=closing, open_sites=[NewSite(site_id="new-1", lat=lat, lon=lon)]),
        DISTRICT_NAME,
        now,
    )
    assert target not in reopened.cells_lost

    everything = planner.whatif(
        ScenarioChanges(network="full", demand_scale=2.0, seats={closing[0]: 40}),
        DISTRICT_NAME,
        now,
    )
    assert everything.demand_workers_after == pytest.approx(
        2 * everything.demand_workers_before, rel=1e-6
    )
    assert everything.cells_gained, "opening closed and silent stations covers more"
    assert everything.zones_no_longer_underserved or everything.zones_becoming_underserved

    assert live_view(city) == before_view
    assert stored(city) == before_store
    assert readings.gaps(None) == before_gaps
    assert all(runtime.pipeline.ledger.records[s].state is StationState.available for s in closing)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"close": ["NOPE-1"]}, "changes.close[0]"),
        (
            {"demand": [{"cell": "872830828ffffff", "demand_workers": 1, "district": "x"}]},
            "changes.demand",
        ),
        ({"reopen": ["SD-0001", "NOPE-2"]}, "changes.reopen[1]"),
        ({"seats": {"NOPE-3": 4}}, "changes.seats.NOPE-3"),
        ({"open_sites": [{"site_id": "x", "lat": 10.0, "lon": 10.0}]}, "changes.open_sites[0]"),
        (
            {"open_sites": [{"site_id": "SD-0001", "lat": 39.95, "lon": 116.49}]},
            "changes.open_sites[0].site_id",
        ),
    ],
)
def test_bad_changes_name_the_field(city: RunningCity, changes: dict, field: str) -> None:
    planner = Planner(city.system.runtime)
    with pytest.raises(PlanningError) as raised:
        planner.whatif(ScenarioChanges(**changes), DISTRICT_NAME, city.clock.now())
    assert raised.value.field == field


def test_station_of_another_district_is_refused(city: RunningCity) -> None:
    planner = Planner(city.system.runtime)
    with pytest.raises(PlanningError) as raised:
        planner.whatif(ScenarioChanges(close=["SD-0001"]), "Elsewhere", city.clock.now())
    assert raised.value.field == "changes.close[0]"
    assert "not a station of Elsewhere" in raised.value.reason


def test_uncovered_cells_zone_by_zone_match_cell_by_cell(city: RunningCity) -> None:
    runtime = city.system.runtime
    planner = Planner(runtime)
    with runtime.reading() as pipeline:
        scenario = planner._scenario(pipeline)
        for station_id in open_stations(city)[:15]:
            scenario.close(station_id)
        for district in (DISTRICT_NAME, None, "Elsewhere"):
            expected = {
                c: d
                for c, d in runtime.demand.demand.items()
                if d > 0
                and not scenario.is_covered(c)
                and (district is None or runtime.demand.district_of_cell[c] == district)
            }
            assert scenario.uncovered(district) == expected


def test_the_collector_is_paused_only_while_planning(city: RunningCity) -> None:
    planner = Planner(city.system.runtime)
    seen: list[bool] = []
    real = city.system.runtime.reading

    def watching() -> Any:
        seen.append(gc.isenabled())
        return real()

    city.system.runtime.reading = watching  # type: ignore[method-assign]
    try:
        planner.whatif(ScenarioChanges(close=open_stations(city)[:1]), None, city.clock.now())
    finally:
        del city.system.runtime.reading
    assert seen == [False]
    assert gc.isenabled()


def brute_force(city: RunningCity, states: dict[str, Any], sites: list[NewSite]) -> Any:
    """Coverage and 2SFCA access from scratch, station by station: the oracle."""
    runtime = city.system.runtime
    demand = runtime.demand.demand
    catchments = runtime.pipeline.catchments
    weight = city.system.settings.degraded_coverage_weight
    effective: dict[str, float] = {}
    access: dict[str, float] = {}
    places = [(s.lat, s.lon, s.capacity, states[s.station_id]) for s in city.city.stations]
    places += [(s.lat, s.lon, s.seats, StationState.available) for s in sites]
    for lat, lon, seats, state in places:
        share = {StationState.available: 1.0, StationState.degraded: weight}.get(state, 0.0)
        if not share:
            continue
        cells = catchments.cells(lat, lon)
        workers = sum(demand.get(c, 0.0) for c in cells)
        ratio = seats / workers if workers > 1e-6 else 0.0
        for cell in cells:
            effective[cell] = effective.get(cell, 0.0) + share
            access[cell] = access.get(cell, 0.0) + share * ratio
    return {c: effective.get(c, 0.0) >= 1.0 for c in demand}, access


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    closing=st.lists(st.integers(0, 139), max_size=25, unique=True),
    sites=st.lists(st.tuples(st.integers(0, 159), st.integers(1, 30)), max_size=4),
)
def test_scenarios_match_a_from_scratch_oracle(
    city: RunningCity, closing: list[int], sites: list[tuple[int, int]]
) -> None:
    runtime = city.system.runtime
    planner = Planner(runtime)
    stations = city.city.stations
    closed = [open_stations(city)[i] for i in closing]
    new_sites = [
        NewSite(site_id=f"site-{n}", lat=stations[i].lat + 0.004, lon=stations[i].lon, seats=seats)
        for n, (i, seats) in enumerate(sites)
    ]
    with runtime.reading() as pipeline:
        scenario = planner._scenario(pipeline)
        states = dict(scenario.states)
        for station_id in closed:
            scenario.close(station_id)
            states[station_id] = StationState.closed
        for site in new_sites:
            scenario.open_site(site.site_id, site.lat, site.lon, site.seats)
        covered, access = brute_force(city, states, new_sites)
        for cell in runtime.demand.demand:
            assert scenario.is_covered(cell) == covered[cell], cell
            assert scenario.access(cell) == pytest.approx(access.get(cell, 0.0), abs=1e-9)
