"""The runtime keeps a coverage snapshot in the store for planners (both backends): whole at
start, then only the cells that changed; gap reports narrowed to an area come from it; on
PostGIS the planner views read it."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import h3
import pytest
import sqlalchemy as sa
from pyproj import Geod
from shapely.geometry import box, mapping

from schemas.api import CellStatus
from schemas.events import parse_event
from schemas.geography import Boundary, BoundaryLevel, CoverageCell
from services.system import EmbeddedSystem
from store.tables import CoverageCellRow
from store.unit_of_work import Store
from streams.clock import ManualClock
from streams.coverage_map import CellView
from streams.coverage_snapshot import CoverageSnapshotWriter
from tests.conftest import (
    CENTRE,
    DISTRICT,
    EventFactory,
    load,
    minutes,
    serve,
    settings_for,
    tiny_city,
)

GEOD = Geod(ellps="WGS84")
# The coalescing test: touches a little apart, all well within a coalescing time it never
# reaches; a flush then writes them.
COALESCE_LONGER_THAN_THE_TEST_S = 60.0
TOUCHES = 10
TOUCH_GAP_S = 0.02
FLUSH_TIMEOUT_S = 10.0
SQUARE = box(CENTRE[1] - 0.01, CENTRE[0] - 0.01, CENTRE[1] + 0.01, CENTRE[0] + 0.01)


@pytest.fixture
def spatial_system(
    database_url: str, tmp_path: Path, clock: ManualClock
) -> Iterator[EmbeddedSystem]:
    """The tiny city on the backend under test, with a district outline around station T-0001."""
    settings = settings_for(tmp_path, database_url=database_url)
    built = EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)
    load(built, tiny_city(settings))
    with built.store.transaction() as tx:
        tx.boundaries.replace_level(
            BoundaryLevel.district,
            [Boundary(name="Square", level="district", geometry=mapping(SQUARE))],
        )
    built.start()
    yield built
    built.stop()


def submit(system: EmbeddedSystem, clock: ManualClock, *bodies: dict[str, Any]) -> None:
    system.runtime.submit([parse_event(json.dumps(b), now=clock.now()) for b in bodies])
    system.runtime.drain()


def snapshot(system: EmbeddedSystem) -> dict[str, CoverageCell]:
    with system.store.transaction() as tx:
        return {c.cell: c for c in tx.coverage.load()}


def live(system: EmbeddedSystem) -> dict[str, tuple[int, CellStatus, float]]:
    with system.runtime.reading():
        views = system.runtime.coverage_map.cells(None)
    return {v.cell: (v.coverage_count, v.status, v.access_score) for v in views}


def saved(cells: dict[str, CoverageCell]) -> dict[str, tuple[int, CellStatus, float]]:
    return {c.cell: (c.coverage_count, c.status, c.access_score) for c in cells.values()}


def test_the_snapshot_follows_live_coverage_writing_only_changed_cells(
    spatial_system: EmbeddedSystem, clock: ManualClock, event: EventFactory
) -> None:
    start = snapshot(spatial_system)
    assert saved(start) == live(spatial_system)
    assert {c.status for c in start.values()} == {CellStatus.underserved}  # nothing heard yet

    clock.advance(minutes(1))
    submit(spatial_system, clock, event("check_in", "T-0001"), event("health_check", "T-0001"))
    after = snapshot(spatial_system)
    assert saved(after) == live(spatial_system)
    changed = {cell for cell in after if after[cell].updated_at != start[cell].updated_at}
    reach = spatial_system.runtime.pipeline.catchments.cells(*CENTRE)
    assert changed  # the station's catchment
    assert changed <= reach
    assert all(after[cell].status is CellStatus.covered for cell in changed)
    assert after[h3.latlng_to_cell(*CENTRE, 9)].coverage_count == 1

    clock.advance(minutes(1))
    # A second check-in changes nothing about coverage: nothing is written.
    submit(spatial_system, clock, event("check_in", "T-0001"))
    assert snapshot(spatial_system) == after


def test_gap_report_narrowed_to_an_outline_or_a_radius_uses_the_store(
    spatial_system: EmbeddedSystem, clock: ManualClock, event: EventFactory
) -> None:
    submit(spatial_system, clock, event("check_in", "T-0002"), event("health_check", "T-0002"))
    with serve(spatial_system) as server:
        everything = server.client.get("/v1/reports/gaps").json()["zones"]
        square = server.client.get("/v1/reports/gaps", params={"within": "Square"}).json()
        near = server.client.get(
            "/v1/reports/gaps", params={"lat": CENTRE[0], "lon": CENTRE[1], "radius_m": 500}
        ).json()
        unknown = server.client.get("/v1/reports/gaps", params={"within": "Atlantis"})
        half = server.client.get("/v1/reports/gaps", params={"lat": CENTRE[0]})
        other_district = server.client.get(
            "/v1/reports/gaps", params={"within": "Square", "district": DISTRICT}
        ).json()
    assert unknown.status_code == 404
    assert unknown.json()["errors"][0]["field"] == "within"
    assert half.status_code == 422

    with spatial_system.store.transaction() as tx:
        cells = {c.cell: c for c in tx.coverage.load()}
    in_square = {
        cell
        for cell in cells
        if box(*SQUARE.bounds).intersects(
            __import__("shapely").geometry.Polygon([(x, y) for y, x in h3.cell_to_boundary(cell)])
        )
    }
    reported = {cell for zone in square["zones"] for cell in zone["uncovered_cells"]}
    expected = {c for c in in_square if cells[c].status is CellStatus.underserved}
    assert reported == expected
    assert expected
    assert square["zones"] == other_district["zones"]
    # Same shape as the whole-city report, and each zone's gap is a part of its whole gap.
    whole = {z["zone"]: z for z in everything}
    for zone in square["zones"] + near["zones"]:
        assert set(zone) == set(whole[zone["zone"]])
        assert set(zone["uncovered_cells"]) <= set(whole[zone["zone"]]["uncovered_cells"])
        assert zone["uncovered_demand_workers"] <= whole[zone["zone"]]["uncovered_demand_workers"]
    near_cells = [cell for zone in near["zones"] for cell in zone["uncovered_cells"]]
    assert near_cells
    for cell in near_cells:
        lat, lon = h3.cell_to_latlng(cell)
        assert GEOD.inv(CENTRE[1], CENTRE[0], lon, lat)[2] <= 500


@pytest.mark.parametrize("backend", ["postgis"])  # the views are PostgreSQL only
def test_planner_views_answer_in_postgis(
    spatial_system: EmbeddedSystem, clock: ManualClock, event: EventFactory
) -> None:
    submit(spatial_system, clock, event("check_in", "T-0001"), event("health_check", "T-0001"))
    with spatial_system.store.transaction() as tx:
        statuses = dict(
            tx.session.execute(sa.text("SELECT station_id, state FROM v_station_status")).all()
        )
        underserved = tx.session.scalar(sa.text("SELECT count(*) FROM v_underserved_cells"))
        stored = tx.coverage.count(status=CellStatus.underserved)
        district = tx.session.execute(
            sa.text(
                "SELECT district, cells, stations, stations_available, demand_served_pct "
                "FROM v_district_coverage"
            )
        ).one()
        inside = tx.session.scalar(
            sa.select(sa.func.count()).where(
                sa.func.ST_Intersects(
                    sa.func.ST_GeomFromText(SQUARE.wkt, 4326), CoverageCellRow.centre
                )
            )
        )
    assert statuses == {"T-0001": "available", "T-0002": "silent"}
    assert underserved == stored > 0
    assert district.district == "Square"
    assert district.cells == inside > 0
    assert (district.stations, district.stations_available) == (1, 1)
    assert 0 < district.demand_served_pct <= 100


def test_snapshot_writer_writes_only_the_cells_that_changed(
    system: EmbeddedSystem, clock: ManualClock, event: EventFactory
) -> None:
    runtime = system.runtime
    assert runtime.pipeline is not None
    station = runtime.registry["T-0001"] if runtime.registry else None
    assert station is not None
    reach = runtime.pipeline.catchments.cells(station.lat, station.lon) & set(runtime.demand.demand)

    def post(body: dict[str, Any]) -> int:
        before = runtime.snapshot.writes
        runtime.submit([parse_event(json.dumps(body), now=clock.now())])
        runtime.drain()
        return runtime.snapshot.writes - before

    opened = post(event("check_in", "T-0001"))
    assert 0 < opened <= len(reach)
    assert post(event("visit", "T-0001")) == 0  # a visit moves no coverage: nothing written
    closed = post(event("check_in", "T-0001", payload={"status": "closed"}))
    assert 0 < closed <= len(reach)
    with system.store.transaction(readonly=True) as tx:
        saved = {c.cell: c for c in tx.coverage.load()}
    with runtime.reading():
        live = {cell: runtime.coverage_map.view(cell) for cell in reach}
    assert {c: saved[c].coverage_count for c in reach} == {
        c: v.coverage_count for c, v in live.items()
    }


def test_the_snapshot_writer_gathers_changes_for_its_whole_coalescing_time(
    tmp_path: Path,
) -> None:
    """Every processed batch touches cells; the writer must not wake for each one and write
    them a batch at a time, but wait its whole coalescing time (or a flush) and write once."""
    store = Store.open(f"sqlite:///{tmp_path / 'snapshot.db'}")
    reads: list[list[str]] = []

    def read(cells: Collection[str] | None) -> list[CellView]:
        reads.append(sorted(cells or ()))
        return []  # nothing differs from what is saved: nothing to write

    writer = CoverageSnapshotWriter(
        store,
        read=read,
        stamp=lambda views, at: [],
        now=lambda: datetime.now(UTC),
        coalesce_s=COALESCE_LONGER_THAN_THE_TEST_S,
    )
    writer.start()
    try:
        for i in range(TOUCHES):
            writer.touch([f"cell-{i}"])
            time.sleep(TOUCH_GAP_S)
        assert reads == []  # still gathering
        done = threading.Event()
        writer.flush_then(done)
        assert done.wait(timeout=FLUSH_TIMEOUT_S)
        assert reads == [sorted(f"cell-{i}" for i in range(TOUCHES))]  # one read of them all
    finally:
        writer.stop(timeout_s=FLUSH_TIMEOUT_S)
        store.close()
