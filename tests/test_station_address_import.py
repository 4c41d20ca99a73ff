"""Stations imported by street address (CLI file import and POST /v1/stations) against a local
HTTP server answering as the geocoder would: located in WGS84 through the shared cache (one
request per address across imports), coordinates kept when a row has both, and every miss or
out-of-district match listed by row on `address` while the good rows are imported."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, Sequence
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from demo.sample_city import DISTRICT_NAME, generate_sample_city
from geo.crs import Datum
from schemas.auth import Role
from services import cli
from services.bootstrap import load_city
from services.geocoding import NO_MATCH_REASON, Located
from services.station_files import (
    StationFileError,
    read_stations,
    validate_station_rows,
)
from store.unit_of_work import Store
from tests.conftest import bearer, issue, serve
from tests.planning_city import planning_city
from tests.test_geocoding import TOLERANCE_DEG, Gazetteer, handler_for
from waystation.settings import Settings

INSIDE = "朝阳区 建国路 88号"  # in the sample district
INSIDE_LAT_LON = (39.95, 116.49)
ELSEWHERE = "Far Away Road 1"  # a real match, but in another city
ELSEWHERE_LAT_LON = (31.23, 121.47)
UNKNOWN = "Nowhere Lane 404"
OTHER_DISTRICT = "Other District"  # no outline loaded for it
GIVEN_LAT_LON = (39.951, 116.481)  # coordinates a row gives next to its address
WIDE_COLUMNS = 250  # so that the rejected-rows table is not wrapped

runner = CliRunner()


@pytest.fixture
def geocoder() -> Iterator[tuple[Gazetteer, str]]:
    known = Gazetteer(places={INSIDE: INSIDE_LAT_LON, ELSEWHERE: ELSEWHERE_LAT_LON})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(known))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield known, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


def station_row(station_id: str, **location: Any) -> dict[str, Any]:
    return {
        "station_id": station_id,
        "name": f"Station {station_id}",
        "kind": "warm_station",
        "district": DISTRICT_NAME,
        "capacity": 8,
        **location,
    }


def asked(known: Gazetteer) -> int:
    return len(known.requests)


# --- rows on their own (the geocoder seam replaced by a recording stand-in) -----------------


class RecordingLookup:
    """Answers from a table and records every call, to show what reaches the geocoder."""

    def __init__(self, places: dict[str, tuple[float, float]]) -> None:
        self.places = places
        self.calls: list[list[str]] = []

    def __call__(self, addresses: Sequence[str]) -> dict[str, Located]:
        self.calls.append(list(addresses))
        answers = {}
        for address in addresses:
            lat, lon = self.places.get(address, (None, None))
            answers[address] = Located(address, lat, lon, cached=False)
        return answers


def test_coordinates_win_over_an_address_and_are_not_geocoded() -> None:
    lookup = RecordingLookup({INSIDE: INSIDE_LAT_LON})
    lat, lon = GIVEN_LAT_LON
    rows = [
        (1, station_row("A-1", address=INSIDE)),
        (2, station_row("A-2", address=INSIDE, lat=lat, lon=lon)),
    ]
    result = validate_station_rows(rows, Datum.wgs84, lookup)
    assert result.errors == []
    assert lookup.calls == [[INSIDE]], "only the row without coordinates is looked up"
    by_id = {s.station_id: s for s in result.stations}
    assert (by_id["A-1"].lat, by_id["A-1"].lon) == INSIDE_LAT_LON
    assert (by_id["A-2"].lat, by_id["A-2"].lon) == GIVEN_LAT_LON
    assert result.geocoded == {1}


def test_a_geocoded_answer_is_not_shifted_by_the_files_datum() -> None:
    """The geocoder's answer is WGS84 already; --crs applies to the file's coordinates only."""
    lookup = RecordingLookup({INSIDE: INSIDE_LAT_LON})
    result = validate_station_rows([(1, station_row("A-1", address=INSIDE))], Datum.gcj02, lookup)
    assert (result.stations[0].lat, result.stations[0].lon) == INSIDE_LAT_LON


def test_without_a_geocoder_address_rows_are_refused_by_row() -> None:
    rows = [(1, station_row("A-1", address=INSIDE)), (2, station_row("A-2", lat=39.9, lon=116.4))]
    result = validate_station_rows(rows, Datum.wgs84, None)
    assert [s.station_id for s in result.stations] == ["A-2"]
    assert [(e.row, e.field) for e in result.errors] == [(1, "address")]


def test_a_csv_without_coordinates_or_address_columns_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "stations.csv"
    path.write_text("station_id,name,kind,district,capacity\nA-1,a,warm_station,d,3\n")
    with pytest.raises(StationFileError, match="address"):
        read_stations(path)


# --- the CLI: CSV and GeoJSON files -----------------------------------------------------------


@pytest.fixture
def cli_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, geocoder: tuple[Gazetteer, str]
) -> Settings:
    _, url = geocoder
    monkeypatch.setenv("WAYSTATION_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("WAYSTATION_GEOCODER", "nominatim")
    monkeypatch.setenv("WAYSTATION_GEOCODER_URL", url)
    monkeypatch.setenv("WAYSTATION_GEOCODER_MIN_DELAY_SECONDS", "0")
    monkeypatch.setattr(cli.console, "width", WIDE_COLUMNS)
    return Settings()


def stored_stations(settings: Settings) -> dict[str, tuple[float, float]]:
    store = Store.open(settings.resolved_database_url)
    try:
        with store.transaction(readonly=True) as tx:
            return {s.station_id: (s.lat, s.lon) for s in tx.stations.list()}
    finally:
        store.close()


def write_csv(path: Path, rows: list[str]) -> Path:
    header = "station_id,name,kind,district,capacity,lon,lat,address"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_cli_imports_a_csv_by_address_and_asks_each_address_once(
    tmp_path: Path, cli_env: Settings, geocoder: tuple[Gazetteer, str]
) -> None:
    known, _ = geocoder
    lat, lon = GIVEN_LAT_LON
    path = write_csv(
        tmp_path / "by_address.csv",
        [
            f"C-1,one,warm_station,{DISTRICT_NAME},4,,,{INSIDE}",
            f"C-2,two,warm_station,{DISTRICT_NAME},4,{lon},{lat},{ELSEWHERE}",
            f"C-3,three,warm_station,{DISTRICT_NAME},4,,,{UNKNOWN}",
        ],
    )
    first = runner.invoke(cli.app, ["stations", "import", str(path)])
    assert first.exit_code == 1, first.output  # one row rejected
    assert asked(known) == 2, "INSIDE and UNKNOWN once each; C-2 keeps its coordinates"
    stored = stored_stations(cli_env)
    assert set(stored) == {"C-1", "C-2"}
    assert stored["C-1"] == pytest.approx(INSIDE_LAT_LON, abs=TOLERANCE_DEG)
    assert stored["C-2"] == GIVEN_LAT_LON
    rejected = [line for line in first.output.splitlines() if NO_MATCH_REASON in line]
    assert len(rejected) == 1
    assert " 4 " in rejected[0]
    assert "address" in rejected[0]

    again = runner.invoke(cli.app, ["stations", "import", str(path)])
    assert again.exit_code == 1, again.output
    assert asked(known) == 2, "the second import is answered from the cache, misses included"
    assert NO_MATCH_REASON in again.output


def test_cli_imports_geojson_features_without_geometry(
    tmp_path: Path, cli_env: Settings, geocoder: tuple[Gazetteer, str]
) -> None:
    known, _ = geocoder
    features = [
        {"type": "Feature", "geometry": None, "properties": station_row("G-1", address=INSIDE)},
        {"type": "Feature", "properties": station_row("G-2", address=UNKNOWN)},
        {"type": "Feature", "geometry": None, "properties": station_row("G-3")},
    ]
    path = tmp_path / "by_address.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    result = runner.invoke(cli.app, ["stations", "import", str(path)])
    assert result.exit_code == 1, result.output
    assert asked(known) == 2
    stored = stored_stations(cli_env)
    assert set(stored) == {"G-1"}
    assert stored["G-1"] == pytest.approx(INSIDE_LAT_LON, abs=TOLERANCE_DEG)
    lines = result.output.splitlines()
    assert any("features[1]" in line and NO_MATCH_REASON in line for line in lines)
    assert any("features[2]" in line and "geometry" in line for line in lines)


def test_cli_refuses_matches_outside_the_stations_district(
    tmp_path: Path, cli_env: Settings, geocoder: tuple[Gazetteer, str]
) -> None:
    store = Store.open(cli_env.resolved_database_url)
    try:
        load_city(store, generate_sample_city(seed=7, stations=20, subdistricts=2))
    finally:
        store.close()
    path = write_csv(
        tmp_path / "districts.csv",
        [
            f"D-1,in,warm_station,{DISTRICT_NAME},4,,,{INSIDE}",
            f"D-2,out,warm_station,{DISTRICT_NAME},4,,,{ELSEWHERE}",
            f"D-3,nowhere,warm_station,{OTHER_DISTRICT},4,,,{ELSEWHERE}",
        ],
    )
    result = runner.invoke(cli.app, ["stations", "import", str(path)])
    assert result.exit_code == 1, result.output
    stored = stored_stations(cli_env)
    assert "D-1" in stored
    assert "D-2" not in stored
    assert "D-3" not in stored
    lines = result.output.splitlines()
    assert any(" 3 " in line and f"outside district {DISTRICT_NAME}" in line for line in lines), (
        result.output
    )
    assert any(" 4 " in line and "outside every district" in line for line in lines)


# --- the API ----------------------------------------------------------------------------------


def test_api_imports_by_address_lists_misses_and_uses_the_cache(
    tmp_path: Path, geocoder: tuple[Gazetteer, str]
) -> None:
    known, url = geocoder
    lat, lon = GIVEN_LAT_LON
    items = [
        station_row("P-1", address=INSIDE),
        station_row("P-2", address=ELSEWHERE),
        station_row("P-3", address=UNKNOWN),
        station_row("P-4", address=ELSEWHERE, lat=lat, lon=lon),
        station_row("P-5", address=ELSEWHERE, district=OTHER_DISTRICT),
    ]
    with (
        planning_city(
            tmp_path, geocoder="amap", geocoder_url=url, geocoder_min_delay_seconds=0.0
        ) as city,
        serve(city.system) as live,
    ):
        key = issue(city.system, Role.admin)
        with httpx.Client(base_url=live.url, headers=bearer(key)) as client:
            answer = client.post("/v1/stations", json=items)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert asked(known) == 3, "one request per distinct address without coordinates"
            again = client.post("/v1/stations", json=items)
            with city.system.store.transaction(readonly=True) as tx:
                given = tx.stations.get("P-4")
            assert given is not None
            first_p4 = (given.lat, given.lon)
            assert again.status_code == 200, again.text
            assert asked(known) == 3, "the second import is answered from the cache"
            all_missed = client.post("/v1/stations", json=[items[2]])
            moved = client.patch("/v1/stations/P-4", json={"address": INSIDE})
            not_moved = client.patch("/v1/stations/P-1", json={"address": UNKNOWN})
        with city.system.store.transaction(readonly=True) as tx:
            stored = {s.station_id: (s.lat, s.lon) for s in tx.stations.list()}
    assert body["imported"] == 2
    assert body["rejected"] == 3
    errors = {e["row"]: e for e in body["errors"]}
    assert set(errors) == {1, 2, 4}
    assert all(e["field"] == "address" for e in errors.values())
    assert f"outside district {DISTRICT_NAME}" in errors[1]["reason"]
    assert errors[2]["reason"] == NO_MATCH_REASON
    assert "outside every district" in errors[4]["reason"]
    assert again.json()["errors"] == body["errors"]
    assert stored["P-1"] == pytest.approx(INSIDE_LAT_LON, abs=TOLERANCE_DEG)
    assert first_p4 == GIVEN_LAT_LON
    assert not {"P-2", "P-3", "P-5"} & set(stored)
    assert all_missed.status_code == 422
    problem = all_missed.json()
    assert problem["errors"] == [{"field": "[0].address", "reason": NO_MATCH_REASON}]
    assert moved.status_code == 200, moved.text
    assert stored["P-4"] == pytest.approx(INSIDE_LAT_LON, abs=TOLERANCE_DEG), "moved by address"
    assert not_moved.status_code == 422
    assert not_moved.json()["errors"] == [{"field": "address", "reason": NO_MATCH_REASON}]
    assert stored["P-1"] == pytest.approx(INSIDE_LAT_LON, abs=TOLERANCE_DEG)


def test_cli_with_an_unreachable_geocoder_lists_address_rows_and_imports_the_rest(
    tmp_path: Path, cli_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    monkeypatch.setenv("WAYSTATION_GEOCODER_URL", f"http://127.0.0.1:{closed_port}")
    lat, lon = GIVEN_LAT_LON
    path = write_csv(
        tmp_path / "down.csv",
        [
            f"U-1,one,warm_station,{DISTRICT_NAME},4,,,{INSIDE}",
            f"U-2,two,warm_station,{DISTRICT_NAME},4,{lon},{lat},",
        ],
    )
    result = runner.invoke(cli.app, ["stations", "import", str(path)])
    assert result.exit_code == 1, result.output
    assert set(stored_stations(cli_env)) == {"U-2"}
    assert any(" 2 " in line and "geocoder failed" in line for line in result.output.splitlines())
