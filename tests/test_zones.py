"""Zones by subdistrict polygon: a cell goes to the polygon holding its centre, else to its
H3 parent; and a system with subdistricts loaded names its underserved zones after them."""

from __future__ import annotations

from pathlib import Path

import h3
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box, mapping

from geo.grid import Grid
from geo.zones import BoundaryZones, H3Zones
from schemas.geography import Boundary, BoundaryLevel
from services.system import EmbeddedSystem
from streams.clock import ManualClock
from tests.conftest import CENTRE, DISTRICT, T0, load, minutes, settings_for, tiny_city

WEST = box(CENTRE[1] - 0.05, CENTRE[0] - 0.05, CENTRE[1] + 0.02, CENTRE[0] + 0.05)
EAST = box(CENTRE[1] + 0.02, CENTRE[0] - 0.05, CENTRE[1] + 0.09, CENTRE[0] + 0.05)


def subdistrict(name: str, polygon: shapely.Polygon) -> Boundary:
    return Boundary(
        name=name, level=BoundaryLevel.subdistrict, parent=DISTRICT, geometry=mapping(polygon)
    )


ZONES = BoundaryZones.from_boundaries(
    [subdistrict("West", WEST), subdistrict("East", EAST)], H3Zones(7)
)


@settings(max_examples=200, deadline=None)
@given(
    lat=st.floats(CENTRE[0] - 0.08, CENTRE[0] + 0.08),
    lon=st.floats(CENTRE[1] - 0.08, CENTRE[1] + 0.12),
)
def test_zone_is_the_polygon_holding_the_cell_centre(lat: float, lon: float) -> None:
    cell = h3.latlng_to_cell(lat, lon, 9)
    c_lat, c_lon = h3.cell_to_latlng(cell)
    centre = shapely.Point(c_lon, c_lat)
    holders = [
        name for name, poly in (("East", EAST), ("West", WEST)) if poly.contains(centre)
    ]  # brute force, in the scheme's name order
    expected = f"{DISTRICT}/{holders[0]}" if holders else h3.cell_to_parent(cell, 7)
    assert ZONES.zone_of(cell) == expected


@settings(max_examples=50, deadline=None)
@given(
    lat=st.floats(CENTRE[0] - 0.03, CENTRE[0] + 0.03),
    lon=st.floats(CENTRE[1] - 0.03, CENTRE[1] + 0.1),
    rings=st.integers(0, 6),
)
def test_cells_split_by_zone_as_each_cell_is_zoned(lat: float, lon: float, rings: int) -> None:
    grid = Grid(9, 7, ZONES)
    cells = frozenset(h3.grid_disk(h3.latlng_to_cell(lat, lon, 9), rings))
    expected: dict[str, list[str]] = {}
    for cell in cells:
        expected.setdefault(ZONES.zone_of(cell), []).append(cell)
    split = grid.by_zone(cells)
    assert split == {zone: tuple(sorted(members)) for zone, members in expected.items()}
    assert grid.by_zone(frozenset(cells)) == split  # an equal set, remembered
    assert grid.by_zone(frozenset()) == {}


def test_underserved_zone_is_named_after_its_subdistrict(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, alert_open_grace_minutes=0)
    clock = ManualClock(T0)
    system = EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)
    load(system, tiny_city(settings))
    with system.store.transaction() as tx:
        tx.boundaries.replace([subdistrict("West", WEST), subdistrict("East", EAST)])
    system.start()
    try:
        clock.advance(minutes(1))
        system.runtime.tick()
        with system.store.transaction() as tx:
            subjects = {a.subject for a in tx.alerts.list()}
        assert subjects == {f"{DISTRICT}/West", f"{DISTRICT}/East"}, (
            "with every station silent both subdistricts are underserved, and only they"
        )
    finally:
        system.stop()
