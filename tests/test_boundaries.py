"""Boundary import with the real Beijing district outlines: a point known to lie in Chaoyang is
placed there, whatever datum the file was drawn in."""

from __future__ import annotations

import os
from pathlib import Path

import h3
import pytest
from typer.testing import CliRunner

from geo.crs import Datum
from geo.zones import BoundaryZones, H3Zones
from schemas.geography import BoundaryLevel
from services.cli import app
from services.station_files import StationFileError, read_boundary_features
from store.unit_of_work import Store

BEIJING = Path(__file__).resolve().parents[2] / "shared" / "data" / "beijing_districts.geojson"
CHAOYANG_PARK = (39.9436, 116.4727)  # lat, lon
PEKING_UNIVERSITY = (39.9869, 116.3059)  # in Haidian


@pytest.fixture
def beijing() -> Path:
    if not BEIJING.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"the shared Beijing data is missing: {BEIJING}")
        pytest.skip("the shared Beijing data is not beside this checkout")
    return BEIJING


def district_of(zones: BoundaryZones, lat: float, lon: float) -> str:
    return zones.zone_of(h3.latlng_to_cell(lat, lon, 9))


@pytest.mark.parametrize("datum", [Datum.wgs84, Datum.gcj02])
def test_a_point_in_chaoyang_is_placed_in_chaoyang(beijing: Path, datum: Datum) -> None:
    outlines = read_boundary_features(
        beijing, level=BoundaryLevel.district, name_property="english", datum=datum
    )
    assert len(outlines) == 16
    zones = BoundaryZones.from_boundaries(outlines, H3Zones(7), level=BoundaryLevel.district)
    assert district_of(zones, *CHAOYANG_PARK) == "CHAOYANG"
    assert district_of(zones, *PEKING_UNIVERSITY) == "HAIDIAN"


def test_cli_imports_districts_and_keeps_other_levels(
    beijing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WAYSTATION_DATA_DIR", str(tmp_path))
    command = "boundaries import {} --level district --name-property english --crs gcj02"
    result = CliRunner().invoke(app, command.format(beijing).split())
    assert result.exit_code == 0, result.output
    store = Store.open(f"sqlite:///{tmp_path / 'waystation.db'}")
    try:
        with store.transaction() as tx:
            names = {b.name for b in tx.boundaries.list(level=BoundaryLevel.district)}
    finally:
        store.close()
    assert "CHAOYANG" in names
    assert len(names) == 16


@pytest.mark.parametrize("datum", [Datum.wgs84, Datum.gcj02])
def test_the_store_places_chaoyang_park_in_chaoyang(
    beijing: Path, store: Store, datum: Datum
) -> None:
    """On both backends: PostGIS answers with ST_Intersects, SQLite with shapely."""
    outlines = read_boundary_features(
        beijing, level=BoundaryLevel.district, name_property="english", datum=datum
    )
    with store.transaction() as tx:
        assert tx.boundaries.replace_level(BoundaryLevel.district, outlines) == 16
    with store.transaction() as tx:
        assert tx.boundaries.containing(*CHAOYANG_PARK, level=BoundaryLevel.district) == [
            "CHAOYANG"
        ]
        assert tx.boundaries.containing(*PEKING_UNIVERSITY, level=BoundaryLevel.district) == [
            "HAIDIAN"
        ]
        stored = tx.boundaries.list(level=BoundaryLevel.district)
    assert {b.geometry["type"] for b in stored} == {"MultiPolygon"}
    assert [b.name for b in stored] == [b.name for b in outlines]


def test_a_file_of_points_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "points.geojson"
    bad.write_text(
        '{"type": "FeatureCollection", "features": [{"type": "Feature", '
        '"properties": {"name": "x"}, "geometry": {"type": "Point", "coordinates": [116, 39]}}]}'
    )
    with pytest.raises(StationFileError, match="Polygon"):
        read_boundary_features(bad, level=BoundaryLevel.subdistrict)
