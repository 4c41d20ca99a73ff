"""Station, demand and boundary files: round trips, datum conversion, bad rows, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyproj import Geod

from demo.sample_city import SampleCity, generate_sample_city
from geo.crs import Datum, from_wgs84
from schemas.stations import Station
from services.station_files import (
    STATION_CSV_COLUMNS,
    RowError,
    StationFileError,
    read_boundaries,
    read_demand,
    read_stations,
    write_sample_city,
    write_stations,
)

GEOD = Geod(ellps="WGS84")
DATUM_TOLERANCE_M = 0.5
HEADER = ",".join(STATION_CSV_COLUMNS)
GOOD_CSV_ROW = (
    "A-1,Good One,partner_store,Sample District,Anhe,116.48,39.94,8,"
    "drinking_water;rest_seats,Mo-Su 00:00-24:00,Shop Co."
)


@pytest.fixture(scope="module")
def city() -> SampleCity:
    return generate_sample_city(seed=5, stations=150, subdistricts=8)


@pytest.fixture(scope="module")
def written(city: SampleCity, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    paths = write_sample_city(city, tmp_path_factory.mktemp("city") / "out")
    return {path.name: path for path in paths}


def distance_m(a: Station, b: Station) -> float:
    _, _, dist = GEOD.inv(a.lon, a.lat, b.lon, b.lat)
    return dist


def test_writes_every_file(written: dict[str, Path]) -> None:
    assert set(written) == {
        "stations.geojson",
        "stations.csv",
        "demand.csv",
        "subdistricts.geojson",
        "district.geojson",
    }
    assert all(path.is_file() and path.stat().st_size > 0 for path in written.values())


@pytest.mark.parametrize("name", ["stations.geojson", "stations.csv"])
def test_stations_round_trip(city: SampleCity, written: dict[str, Path], name: str) -> None:
    result = read_stations(written[name])
    assert result.errors == []
    assert result.stations == list(city.stations)


def test_demand_round_trip(city: SampleCity, written: dict[str, Path]) -> None:
    assert read_demand(written["demand.csv"]) == list(city.demand)


def test_boundaries_round_trip(city: SampleCity, written: dict[str, Path]) -> None:
    assert read_boundaries(written["subdistricts.geojson"]) == list(city.subdistricts)
    assert read_boundaries(written["district.geojson"]) == [city.boundary]
    collection = json.loads(written["subdistricts.geojson"].read_text(encoding="utf-8"))
    first = collection["features"][0]["properties"]
    assert first["parent"] == city.district
    assert first["name"] == city.subdistricts[0].name


@pytest.mark.parametrize("suffix", [".geojson", ".csv"])
@pytest.mark.parametrize("datum", [Datum.gcj02, Datum.bd09])
def test_shifted_coordinates_are_converted(
    city: SampleCity, tmp_path: Path, suffix: str, datum: Datum
) -> None:
    shifted = []
    for station in city.stations:
        lon, lat = from_wgs84(station.lon, station.lat, datum)
        shifted.append(station.model_copy(update={"lon": lon, "lat": lat}))
    path = write_stations(shifted, tmp_path / f"shifted{suffix}")

    result = read_stations(path, datum=datum)

    assert result.errors == []
    assert len(result.stations) == len(city.stations)
    for original, read in zip(city.stations, result.stations, strict=True):
        assert read.station_id == original.station_id
        assert distance_m(original, read) < DATUM_TOLERANCE_M
    # Read as WGS84 by mistake, the same file is hundreds of metres off.
    naive = read_stations(path)
    assert distance_m(city.stations[0], naive.stations[0]) > 100 * DATUM_TOLERANCE_M


def test_write_stations_in_a_datum_reads_back(city: SampleCity, tmp_path: Path) -> None:
    path = write_stations(city.stations, tmp_path / "gcj.csv", datum=Datum.gcj02)
    result = read_stations(path, datum=Datum.gcj02)
    assert all(
        distance_m(a, b) < DATUM_TOLERANCE_M
        for a, b in zip(city.stations, result.stations, strict=True)
    )


BAD_CSV = "\n".join(
    [
        HEADER,
        GOOD_CSV_ROW,  # line 2
        "A-2,,partner_store,Sample District,,116.48,39.94,8,,,",  # line 3: no name
        "A-3,Typo,partner_stor,Sample District,,116.48,39.94,8,,,",  # line 4: kind typo
        "A-4,Far North,partner_store,Sample District,,116.48,95,8,,,",  # line 5: lat 95
        "A-5,Many,partner_store,Sample District,,116.48,39.94,many,,,",  # line 6: capacity
        "A-1,Again,partner_store,Sample District,,116.48,39.94,8,,,",  # line 7: duplicate
        "A-6,Bad Amenity,partner_store,Sample District,,116.48,39.94,8,water;sofa,,",  # line 8
        "A-7,Too Many,partner_store,Sample District,,116.48,39.94,8,,,,extra",  # line 9
        "",
        "A-8,Good Two,warm_station,Sample District,,116.5,39.96,20,heating,,",  # line 11
    ]
)


def error_fields(errors: list[RowError]) -> dict[int | str, set[str]]:
    found: dict[int | str, set[str]] = {}
    for error in errors:
        found.setdefault(error.row, set()).add(error.field)
    return found


@pytest.mark.parametrize("datum", [Datum.wgs84, Datum.gcj02])
def test_bad_csv_rows_become_row_errors(tmp_path: Path, datum: Datum) -> None:
    path = tmp_path / "stations.csv"
    path.write_text(BAD_CSV, encoding="utf-8")

    result = read_stations(path, datum=datum)

    assert [s.station_id for s in result.stations] == ["A-1", "A-8"]
    fields = error_fields(result.errors)
    assert fields[3] == {"name"}
    assert fields[4] == {"kind"}
    assert fields[5] == {"lat"}
    assert fields[6] == {"capacity"}
    assert fields[7] == {"station_id"}
    assert {field.split(".")[0] for field in fields[8]} == {"amenities"}
    assert fields[9] == {"row"}
    assert set(fields) == {3, 4, 5, 6, 7, 8, 9}
    by_row = {error.row: error for error in result.errors}
    assert "required" in by_row[3].reason.lower()
    assert "partner_store" in by_row[4].reason
    assert "90" in by_row[5].reason
    assert "integer" in by_row[6].reason
    assert "duplicate" in by_row[7].reason
    assert "row 2" in by_row[7].reason


def test_csv_amenities_and_blanks_are_parsed(tmp_path: Path) -> None:
    path = tmp_path / "stations.csv"
    path.write_text(HEADER + "\n" + GOOD_CSV_ROW + "\n", encoding="utf-8-sig")
    (station,) = read_stations(path).stations
    assert [a.value for a in station.amenities] == ["drinking_water", "rest_seats"]
    assert station.subdistrict == "Anhe"
    assert station.capacity == 8


def test_csv_optional_columns_may_be_left_out(tmp_path: Path) -> None:
    path = tmp_path / "stations.csv"
    path.write_text(
        "station_id,name,kind,district,lon,lat,capacity\n"
        "B-1,Minimal,union_station,Sample District,116.4,39.9,12\n",
        encoding="utf-8",
    )
    (station,) = read_stations(path).stations
    assert station.amenities == ()
    assert station.operator is None


def feature(
    properties: dict[str, object], coordinates: tuple[float, float] = (116.48, 39.94)
) -> dict[str, object]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": list(coordinates)},
        "properties": properties,
    }


def good_properties(station_id: str, **changes: object) -> dict[str, object]:
    properties: dict[str, object] = {
        "station_id": station_id,
        "name": f"Station {station_id}",
        "kind": "outdoor_worker_station",
        "district": "Sample District",
        "capacity": 10,
        "amenities": ["drinking_water"],
    }
    properties.update(changes)
    return {key: value for key, value in properties.items() if value is not None}


def test_bad_geojson_features_become_row_errors(tmp_path: Path) -> None:
    features = [
        feature(good_properties("G-1")),
        feature(good_properties("G-2", name=None)),
        feature(good_properties("G-3", kind="warmstation")),
        feature(good_properties("G-4"), coordinates=(116.48, 95.0)),
        feature(good_properties("G-5", capacity="many")),
        feature(good_properties("G-1")),
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": []},
            "properties": {},
        },
        feature(good_properties("G-6", colour="red")),
        "not a feature",
        feature(good_properties("G-7", lat=0.0, lon=0.0)),  # geometry wins over properties
    ]
    path = tmp_path / "stations.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), "utf-8")

    result = read_stations(path)

    assert [s.station_id for s in result.stations] == ["G-1", "G-7"]
    assert result.stations[1].lat == pytest.approx(39.94)
    assert error_fields(result.errors) == {
        "features[1]": {"name"},
        "features[2]": {"kind"},
        "features[3]": {"lat"},
        "features[4]": {"capacity"},
        "features[5]": {"station_id"},
        "features[6]": {"geometry"},
        "features[7]": {"colour"},
        "features[8]": {"feature"},
    }


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("stations.geojson", "{not json"),
        ("stations.json", json.dumps({"type": "Feature", "properties": {}})),
        ("stations.geojson", json.dumps({"type": "FeatureCollection", "features": {}})),
        ("stations.csv", ""),
        ("stations.csv", "id,title\n1,x\n"),
        ("stations.csv", "station_id,name,kind\nA,b,c\n"),
        ("stations.csv", HEADER + ",station_id\n"),
        ("stations.txt", HEADER + "\n"),
    ],
)
def test_unreadable_station_files_raise(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(StationFileError, match=name):
        read_stations(path)


def test_non_utf8_file_raises(tmp_path: Path) -> None:
    path = tmp_path / "stations.csv"
    path.write_bytes(HEADER.encode() + b"\n\xff\xfe\x00garbage\n")
    with pytest.raises(StationFileError, match="UTF-8"):
        read_stations(path)


def test_station_file_error_is_a_value_error() -> None:
    assert issubclass(StationFileError, ValueError)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("cell,demand_workers,district\n8931aa42a5bffff,-1,D\n", "line 2: demand_workers"),
        ("cell,demand_workers,district\nnot-a-cell,1,D\n", "line 2: cell"),
        ("cell,demand_workers,district\n8931aa42a5bffff,1,D\n8931aa42a5bffff,2,D\n", "repeats"),
        ("cell,district\n", "missing column"),
        ("cell,workers,demand_workers,district\n", "unknown column"),
    ],
)
def test_bad_demand_files_raise(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "demand.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(StationFileError, match=match):
        read_demand(path)
