"""Spatial repositories on both backends: PostGIS answers in SQL (ST_Intersects, ST_DWithin on
geography), SQLite in Python with shapely and geodesics; the expected answers here are worked
out independently, so both backends must agree with them and so with each other."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import h3
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Point, Polygon, box
from sqlalchemy import select, text

from schemas.alerts import Alert, AlertEvidence, AlertKind, AlertStatus
from schemas.api import CellStatus
from schemas.auth import ApiKeyInfo, Role
from schemas.geography import Boundary, BoundaryLevel, CoverageCell
from schemas.stations import Amenity, Station, StationKind
from store.coverage_cells import area_gaps
from store.tables import AlertRow, CoverageCellRow, StationRow
from store.unit_of_work import Store

T0 = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
CENTRE = (39.95, 116.48)  # lat, lon
GEOD = Geod(ellps="WGS84")
SQUARE = box(116.46, 39.94, 116.50, 39.96)


def station(station_id: str, lat: float, lon: float) -> Station:
    return Station(
        station_id=station_id,
        name=station_id,
        kind=StationKind.warm_station,
        district="Chaoyang",
        subdistrict=None,
        lat=lat,
        lon=lon,
        capacity=6,
        amenities=(Amenity.drinking_water,),
    )


def distance_m(lat: float, lon: float, lat2: float, lon2: float) -> float:
    return float(GEOD.inv(lon, lat, lon2, lat2)[2])


def cells_around(rings: int = 12) -> list[CoverageCell]:
    """A disc of resolution-9 cells around CENTRE, in two zones, every third one underserved."""
    origin = h3.latlng_to_cell(*CENTRE, 9)
    cells = []
    for i, cell in enumerate(sorted(h3.grid_disk(origin, rings))):
        underserved = i % 3 == 0
        cells.append(
            CoverageCell(
                cell=cell,
                district="Chaoyang" if h3.cell_to_latlng(cell)[1] < CENTRE[1] else "Haidian",
                zone=h3.cell_to_parent(cell, 7),
                demand_workers=float(1 + i % 5),
                coverage_count=0 if underserved else 1 + i % 2,
                access_score=0.0 if underserved else 0.25,
                status=CellStatus.underserved if underserved else CellStatus.covered,
                updated_at=T0,
            )
        )
    return cells


def test_stations_get_a_point_and_distance_queries_are_geodesic(store: Store) -> None:
    lat, lon = CENTRE
    # Due east and due north of the centre at known geodesic distances.
    placed = {}
    for name, azimuth, metres in [
        ("E-0990", 90, 990.0),
        ("E-1010", 90, 1010.0),
        ("N-0500", 0, 500.0),
        ("N-1500", 0, 1500.0),
        ("S-0999", 180, 999.0),
    ]:
        lon2, lat2, _ = GEOD.fwd(lon, lat, azimuth, metres)
        placed[name] = station(name, lat2, lon2)
    with store.transaction() as tx:
        tx.stations.upsert_many(placed.values())
    with store.transaction() as tx:
        assert [s.station_id for s in tx.stations.within(lat, lon, 1000.0)] == [
            "E-0990",
            "N-0500",
            "S-0999",
        ]
        assert [s.station_id for s in tx.stations.within(lat, lon, 2000.0)] == sorted(placed)
        assert tx.stations.within(lat, lon, 100.0) == []
        geom = tx.session.scalar(select(StationRow.geom).where(StationRow.station_id == "N-0500"))
    assert geom == Point(placed["N-0500"].lon, placed["N-0500"].lat)


def test_boundaries_are_multipolygons_and_locate_points(store: Store) -> None:
    west = box(116.0, 39.0, 116.5, 40.0)
    east = MultiPolygon([box(116.5, 39.0, 117.0, 40.0), box(117.2, 39.0, 117.3, 39.1)])
    with store.transaction() as tx:
        tx.boundaries.replace(
            [
                Boundary(name="West", level="district", geometry=shapely.geometry.mapping(west)),
                Boundary(name="East", level="district", geometry=shapely.geometry.mapping(east)),
                Boundary(
                    name="Inner",
                    level="subdistrict",
                    parent="West",
                    geometry=shapely.geometry.mapping(box(116.1, 39.1, 116.2, 39.2)),
                ),
            ]
        )
    with store.transaction() as tx:
        assert tx.boundaries.containing(39.5, 116.25, level=BoundaryLevel.district) == ["West"]
        assert tx.boundaries.containing(39.05, 117.25, level=BoundaryLevel.district) == ["East"]
        # On the shared edge: both hold it, as ST_Intersects says; import order kept.
        assert tx.boundaries.containing(39.5, 116.5, level=BoundaryLevel.district) == [
            "West",
            "East",
        ]
        assert tx.boundaries.containing(39.5, 118.0, level=BoundaryLevel.district) == []
        assert tx.boundaries.containing(39.15, 116.15, level=BoundaryLevel.subdistrict) == ["Inner"]
        inner = tx.boundaries.outline("West/Inner", level=BoundaryLevel.subdistrict)
        assert inner is not None
        assert inner.equals(box(116.1, 39.1, 116.2, 39.2))
        assert tx.boundaries.outline("Nowhere", level=BoundaryLevel.district) is None
        listed = tx.boundaries.list(level=BoundaryLevel.district)
    assert [b.geometry["type"] for b in listed] == ["MultiPolygon", "MultiPolygon"]
    assert shapely.geometry.shape(listed[1].geometry).equals(east)


def test_coverage_snapshot_save_replace_and_load(store: Store) -> None:
    cells = cells_around(3)
    with store.transaction() as tx:
        assert tx.coverage.replace(cells) == len(cells)
    changed = cells[0].model_copy(
        update={"status": CellStatus.covered, "coverage_count": 2, "updated_at": T0 + timedelta(1)}
    )
    with store.transaction() as tx:
        assert tx.coverage.save([changed]) == 1
        assert tx.coverage.save([]) == 0
    with store.transaction() as tx:
        loaded = tx.coverage.load()
        assert loaded == sorted([changed, *cells[1:]], key=lambda c: c.cell)
        assert tx.coverage.count() == len(cells)
        underserved = sum(c.status is CellStatus.underserved for c in loaded)
        assert tx.coverage.count(status=CellStatus.underserved) == underserved
        outline, centre = tx.session.execute(
            select(CoverageCellRow.geom, CoverageCellRow.centre).where(
                CoverageCellRow.cell == changed.cell
            )
        ).one()
    lat, lon = h3.cell_to_latlng(changed.cell)
    assert centre == Point(lon, lat)
    assert isinstance(outline, Polygon)
    assert outline.contains(centre)
    with store.transaction() as tx:
        assert tx.coverage.replace(cells[:2]) == 2
    with store.transaction() as tx:
        assert [c.cell for c in tx.coverage.load()] == sorted(c.cell for c in cells[:2])


def test_cells_near_a_point_are_those_whose_centre_is_within_reach(store: Store) -> None:
    cells = cells_around()
    with store.transaction() as tx:
        tx.coverage.replace(cells)
    lat, lon = 39.951, 116.482
    for radius_m in (300.0, 1000.0, 2500.0):
        expected = sorted(
            c.cell for c in cells if distance_m(lat, lon, *h3.cell_to_latlng(c.cell)) <= radius_m
        )
        with store.transaction() as tx:
            found = tx.coverage.near(lat, lon, radius_m)
            gaps = tx.coverage.gaps_near(lat, lon, radius_m)
        assert [c.cell for c in found] == expected
        assert expected  # the query was not trivially empty
        assert gaps == area_gaps(c for c in cells if c.cell in set(expected))


def test_cells_within_an_outline_are_those_whose_hexagon_intersects_it(store: Store) -> None:
    cells = cells_around()
    with store.transaction() as tx:
        tx.coverage.replace(cells)
        tx.boundaries.replace_level(
            BoundaryLevel.subdistrict,
            [
                Boundary(
                    name="Square",
                    level="subdistrict",
                    parent="Chaoyang",
                    geometry=shapely.geometry.mapping(SQUARE),
                )
            ],
        )
    expected = sorted(
        c.cell
        for c in cells
        if Polygon([(x, y) for y, x in h3.cell_to_boundary(c.cell)]).intersects(SQUARE)
    )
    assert 0 < len(expected) < len(cells)
    with store.transaction() as tx:
        by_name = tx.coverage.within_boundary("Square", level=BoundaryLevel.subdistrict)
        by_zone = tx.coverage.within_boundary("Chaoyang/Square", level=BoundaryLevel.subdistrict)
        gaps = tx.coverage.gaps_within_boundary("Square", level=BoundaryLevel.subdistrict)
        assert tx.coverage.within_boundary("Square", level=BoundaryLevel.district) == []
    assert [c.cell for c in by_name] == expected
    assert by_zone == by_name
    assert gaps == area_gaps(c for c in cells if c.cell in set(expected))
    assert gaps
    assert gaps[0].uncovered_demand_workers >= gaps[-1].uncovered_demand_workers


def test_area_gaps_sum_uncovered_demand_per_zone() -> None:
    cells = cells_around(2)
    gaps = area_gaps(cells)
    for gap in gaps:
        members = [c for c in cells if c.zone == gap.zone]
        assert gap.demand_workers == round(sum(c.demand_workers for c in members), 3)
        missing = [c for c in members if c.status is CellStatus.underserved]
        assert gap.uncovered_demand_workers == round(sum(c.demand_workers for c in missing), 3)
        assert gap.uncovered_cells == tuple(sorted(c.cell for c in missing))
    assert area_gaps([]) == []


def test_alerts_carry_the_place_they_are_about(store: Store) -> None:
    lat, lon = CENTRE
    zone = h3.latlng_to_cell(lat, lon, 7)
    with store.transaction() as tx:
        tx.stations.upsert_many([station("CY-0001", lat, lon)])
        tx.boundaries.replace_level(
            BoundaryLevel.subdistrict,
            [
                Boundary(
                    name="Square",
                    level="subdistrict",
                    parent="Chaoyang",
                    geometry=shapely.geometry.mapping(SQUARE),
                )
            ],
        )

    def alert(kind: AlertKind, subject: str) -> Alert:
        return Alert(
            alert_id=f"{kind.value}:{subject}",
            kind=kind,
            subject=subject,
            district="Chaoyang",
            status=AlertStatus.open,
            condition_since=T0,
            opened_at=T0,
            updated_at=T0,
            evidence=AlertEvidence(detail="test"),
        )

    alerts = [
        alert(AlertKind.station_silent, "CY-0001"),
        alert(AlertKind.zone_underserved, zone),
        alert(AlertKind.zone_underserved, "Chaoyang/Square"),
        alert(AlertKind.station_silent, "CY-9999"),  # not registered: no place
    ]
    with store.transaction() as tx:
        tx.alerts.save_many(alerts)
    with store.transaction() as tx:
        places = dict(tx.session.execute(select(AlertRow.subject, AlertRow.geom)).all())
        assert len(tx.alerts.list()) == 4
    assert places["CY-0001"] == Point(lon, lat)
    assert places[zone].equals(Polygon([(x, y) for y, x in h3.cell_to_boundary(zone)]))
    assert places["Chaoyang/Square"].equals(SQUARE)
    assert places["CY-9999"] is None


def test_api_keys_save_get_list_and_revoke(store: Store) -> None:
    """On both backends: keys round-trip with their scope, and revoking is once only."""
    key = ApiKeyInfo(
        key_id="0a1b2c3d4e5f",
        role=Role.operator,
        label="kiosk",
        stations=("CY-0001", "CY-0002"),
        created_at=T0,
        expires_at=T0 + timedelta(days=90),
    )
    other = ApiKeyInfo(
        key_id="1a1b2c3d4e5f", role=Role.union, districts=("Chaoyang",), created_at=T0
    )
    with store.transaction() as tx:
        tx.keys.add(key, "a" * 64)
        tx.keys.add(other, "b" * 64)
    with store.transaction() as tx:
        assert tx.keys.get("0a1b2c3d4e5f") == (key, "a" * 64)
        assert tx.keys.get("missing") is None
        assert tx.keys.list() == [key, other]
        assert tx.keys.count() == 2
        assert tx.keys.revoke("0a1b2c3d4e5f", T0 + timedelta(hours=1)) is True
        assert tx.keys.revoke("0a1b2c3d4e5f", T0 + timedelta(hours=2)) is False
        assert tx.keys.revoke("missing", T0) is False
    with store.transaction() as tx:
        found = tx.keys.get("0a1b2c3d4e5f")
    assert found is not None
    assert found[0].revoked_at == T0 + timedelta(hours=1)
    assert found[0].stations == ("CY-0001", "CY-0002")
    assert found[0].districts is None


@pytest.mark.parametrize("radius_m", [0.0, 1.0])
def test_a_distance_of_zero_finds_only_the_point_itself(store: Store, radius_m: float) -> None:
    lat, lon = CENTRE
    with store.transaction() as tx:
        tx.stations.upsert_many(
            [station("AT-0001", lat, lon), station("AT-0002", lat + 0.001, lon)]
        )
    with store.transaction() as tx:
        assert [s.station_id for s in tx.stations.within(lat, lon, radius_m)] == ["AT-0001"]


def test_coverage_snapshot_update_sets_live_values_and_keeps_fixed_columns(store: Store) -> None:
    cells = cells_around(3)
    with store.transaction() as tx:
        tx.coverage.replace(cells)
        before = dict(
            tx.session.execute(
                select(CoverageCellRow.cell, CoverageCellRow.geom).where(
                    CoverageCellRow.cell == cells[1].cell
                )
            ).all()
        )
    changed = cells[1].model_copy(
        update={
            "status": CellStatus.covered,
            "coverage_count": 4,
            "access_score": 0.25,
            "demand_workers": 7.5,
            "updated_at": T0 + timedelta(2),
        }
    )
    with store.transaction() as tx:
        assert tx.coverage.update([changed]) == 1
        assert tx.coverage.update([]) == 0
    with store.transaction() as tx:
        loaded = {c.cell: c for c in tx.coverage.load()}
        geom = tx.session.scalar(
            select(CoverageCellRow.geom).where(CoverageCellRow.cell == changed.cell)
        )
    assert loaded[changed.cell] == changed
    assert [loaded[c.cell] for c in cells if c.cell != changed.cell] == [
        c for c in cells if c.cell != changed.cell
    ]
    assert geom.equals(before[changed.cell])
    # Stored as every other write stores a time (SQL compares them), not just read back alike.
    with store.transaction() as tx:
        stored = tx.session.execute(
            text("SELECT updated_at FROM coverage_cells WHERE cell = :cell"),
            {"cell": changed.cell},
        ).scalar_one()
        if tx.session.get_bind().dialect.name == "sqlite":
            assert stored == "2026-11-23 01:00:00.000000"  # naive UTC text, as SQLAlchemy writes
        else:
            assert stored == T0 + timedelta(2)
