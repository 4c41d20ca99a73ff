"""Station, demand and boundary files: what unions and operators hand over, and the sample city.

Station files come from spreadsheets and map tools, so one bad row must not sink the rest: every
row that fails validation becomes a `RowError` naming the row, the field and pydantic's reason,
and the good rows are kept. Only a file that cannot be read as the format at all (not UTF-8, not
JSON, no usable header) raises `StationFileError`.

Formats, chosen by suffix:
- `.geojson` / `.json`: a FeatureCollection of Point features; `properties` hold the Station
  fields except lat/lon, which come from the geometry (lat/lon in properties are ignored). A
  feature without geometry may give an `address` property instead. Rows are named
  `features[i]`.
- `.csv`: the columns in `STATION_CSV_READ_COLUMNS` (the optional ones may be left out), amenities
  separated by `;`, UTF-8 with or without a byte-order mark. Rows are named by line number.
  A row gives lon and lat, or an `address` that is geocoded.

Unions know many stations only by street address, so a row with an address and no coordinates
is located through the same geocoder and cache as planners' candidate sites; its answer is
already WGS84, so `datum` does not apply to it. A row with both keeps its coordinates. An
address without a match is a RowError on `address`, never a silently missing station.

Unknown properties or columns are errors rather than silently dropped, so that a misspelt
optional field ("operater") is noticed. Coordinates may be in GCJ-02 or BD-09 (what Chinese map
apps export): pass `datum` and they are converted to WGS84 before validation.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from demo.sample_city import SampleCity
from geo.crs import Datum, from_wgs84, geometry_to_wgs84, to_wgs84
from geo.polygon_input import check_polygon_coordinates
from schemas.geography import Boundary, BoundaryLevel, DemandCell
from schemas.stations import Station
from services.geocoding import NO_MATCH_REASON, GeocoderUnavailableError, Located

STATION_CSV_COLUMNS = (
    "station_id",
    "name",
    "kind",
    "district",
    "subdistrict",
    "lon",
    "lat",
    "capacity",
    "amenities",
    "opening_hours",
    "operator",
)
STATION_CSV_REQUIRED = frozenset({"station_id", "name", "kind", "district", "capacity"})
ADDRESS_FIELD = "address"
# Read, not written: a written file always has the coordinates.
STATION_CSV_READ_COLUMNS = (*STATION_CSV_COLUMNS, ADDRESS_FIELD)
# A station CSV locates its stations by coordinates or by address: one of these column sets.
STATION_CSV_LOCATED_BY = (frozenset({"lon", "lat"}), frozenset({ADDRESS_FIELD}))
DEMAND_CSV_COLUMNS = ("cell", "demand_workers", "district", "subdistrict")
DEMAND_CSV_REQUIRED = frozenset({"cell", "demand_workers", "district"})
AMENITY_SEPARATOR = ";"
GEOJSON_SUFFIXES = frozenset({".geojson", ".json"})
CSV_SUFFIXES = frozenset({".csv"})
COORDINATE_FIELDS = ("lon", "lat")
# Read with utf-8-sig so that a CSV saved by Excel (which adds a byte-order mark) still parses.
READ_ENCODING = "utf-8-sig"
CHINESE_ENCODING = "gb18030"  # a superset of GBK and GB2312
WRITE_ENCODING = "utf-8"

STATIONS_GEOJSON = "stations.geojson"
STATIONS_CSV = "stations.csv"
DEMAND_CSV = "demand.csv"
SUBDISTRICTS_GEOJSON = "subdistricts.geojson"
DISTRICT_GEOJSON = "district.geojson"


# Addresses to WGS84 answers (AddressLocator.locate); raises GeocoderUnavailableError.
AddressLookup = Callable[[Sequence[str]], Mapping[str, Located]]


class StationFileError(ValueError):
    """The file as a whole cannot be read (as opposed to single bad rows)."""


@dataclass(frozen=True)
class RowError:
    """One problem with one row: a CSV line number or a `features[i]` pointer, and the field."""

    row: int | str
    field: str
    reason: str


@dataclass
class StationFileResult:
    """The valid stations of a file, in file order, and what was wrong with the rest."""

    stations: list[Station] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: list[int | str] = field(default_factory=list)  # the row of each valid station
    geocoded: set[int | str] = field(default_factory=set)  # rows located by their address


# --- reading stations -----------------------------------------------------------------------


def read_stations(
    path: Path,
    *,
    datum: Datum = Datum.wgs84,
    encoding: str | None = None,
    locate: AddressLookup | None = None,
) -> StationFileResult:
    """Read a station file (format by suffix), converting coordinates from `datum` to WGS84
    and locating rows given by address with `locate`. Without `encoding`, UTF-8 or
    GBK/GB18030 is recognised."""
    datum = Datum(datum)
    suffix = path.suffix.lower()
    rows: Iterator[tuple[int | str, dict[str, Any] | RowError]]
    if suffix in GEOJSON_SUFFIXES:
        rows = _geojson_station_rows(path, encoding)
    elif suffix in CSV_SUFFIXES:
        rows = _csv_station_rows(path, encoding)
    else:
        raise StationFileError(
            f"{path.name}: unknown station file type {suffix!r} (use .geojson or .csv)"
        )

    return validate_station_rows(rows, datum, locate)


def validate_station_rows(
    rows: Iterable[tuple[int | str, dict[str, Any] | RowError]],
    datum: Datum,
    locate: AddressLookup | None = None,
) -> StationFileResult:
    """Each row on its own: bad rows become RowErrors, good ones Stations (in WGS84); a
    repeated station_id is an error of the later row. Rows with an address and no
    coordinates are located with `locate` (all addresses in one call, so each is asked once)."""
    listed = list(rows)
    located, failure = _locate_addresses(listed, locate)
    result = StationFileResult()
    first_row_of: dict[str, int | str] = {}
    for row, given in listed:
        raw = _placed(row, given, datum, located, failure)
        if isinstance(raw, RowError):
            result.errors.append(raw)
            continue
        try:
            station = Station.model_validate(raw)
        except ValidationError as exc:
            result.errors.extend(_row_errors(row, exc))
            continue
        if station.station_id in first_row_of:
            first = first_row_of[station.station_id]
            result.errors.append(
                RowError(row, "station_id", f"duplicate station_id, first used in row {first}")
            )
            continue
        first_row_of[station.station_id] = row
        result.stations.append(station)
        result.rows.append(row)
        if _wants_geocoding(given):
            result.geocoded.add(row)
    return result


def _has_coordinates(raw: Mapping[str, Any]) -> bool:
    return any(raw.get(name) not in (None, "") for name in COORDINATE_FIELDS)


def _wants_geocoding(raw: Mapping[str, Any] | RowError) -> bool:
    """An address and no coordinates: coordinates, when given, win."""
    return isinstance(raw, Mapping) and ADDRESS_FIELD in raw and not _has_coordinates(raw)


def _locate_addresses(
    rows: Sequence[tuple[int | str, dict[str, Any] | RowError]], locate: AddressLookup | None
) -> tuple[Mapping[str, Located], str]:
    """The answers for every address to geocode, or the reason there are none."""
    wanted = [
        raw[ADDRESS_FIELD]
        for _, raw in rows
        if _wants_geocoding(raw)
        and isinstance(raw, Mapping)
        and isinstance(raw[ADDRESS_FIELD], str)
    ]
    if not wanted:
        return {}, ""
    if locate is None:
        return {}, "addresses cannot be geocoded here; give lon and lat"
    try:
        return locate(wanted), ""
    except GeocoderUnavailableError as exc:
        return {}, str(exc)


def _placed(
    row: int | str,
    raw: dict[str, Any] | RowError,
    datum: Datum,
    located: Mapping[str, Located],
    failure: str,
) -> dict[str, Any] | RowError:
    """The row's Station fields in WGS84: its coordinates converted from `datum`, or its
    address's geocoded point; the address itself is not a Station field."""
    if isinstance(raw, RowError):
        return raw
    fields = {key: value for key, value in raw.items() if key != ADDRESS_FIELD}
    if not _wants_geocoding(raw):
        return _to_wgs84(fields, datum)
    address = raw[ADDRESS_FIELD]
    if not isinstance(address, str) or not address.strip():
        return RowError(row, ADDRESS_FIELD, "must be a non-empty text")
    if failure:
        return RowError(row, ADDRESS_FIELD, failure)
    answer = located.get(address.strip())
    if answer is None or not answer.found:
        return RowError(row, ADDRESS_FIELD, NO_MATCH_REASON)
    return {**fields, "lat": answer.lat, "lon": answer.lon}


def _row_errors(row: int | str, exc: ValidationError) -> list[RowError]:
    return [
        RowError(row, ".".join(str(part) for part in err["loc"]) or "row", err["msg"])
        for err in exc.errors()
    ]


def _to_wgs84(raw: dict[str, Any], datum: Datum) -> dict[str, Any]:
    """Convert lon/lat to WGS84 when both are numbers; otherwise leave them for validation."""
    if datum is Datum.wgs84:
        return raw
    if any(isinstance(raw.get(name), bool) for name in COORDINATE_FIELDS):
        return raw  # true/false is not a coordinate: validation says so
    try:
        lon, lat = (float(raw[name]) for name in COORDINATE_FIELDS)
    except (KeyError, TypeError, ValueError, OverflowError):
        return raw
    wgs_lon, wgs_lat = to_wgs84(lon, lat, datum)
    converted = {**raw, "lon": wgs_lon, "lat": wgs_lat}
    if isinstance(raw.get("stops"), list):  # a mobile unit's stops are in the same datum
        converted["stops"] = [
            _to_wgs84(stop, datum) if isinstance(stop, dict) else stop for stop in raw["stops"]
        ]
    return converted


def _read_text(path: Path, encoding: str | None = None) -> str:
    """The file's text: in `encoding` when given, else UTF-8 (with or without a byte order
    mark) or, failing that, GB18030, which covers the GBK that Excel saves in China."""
    data = path.read_bytes()
    if encoding is not None:
        try:
            return data.decode(encoding)
        except LookupError as exc:
            raise StationFileError(f"unknown encoding {encoding!r}") from exc
        except UnicodeDecodeError as exc:
            raise StationFileError(
                f"{path.name}: not {encoding} text ({exc.reason} at byte {exc.start})"
            ) from exc
    try:
        return data.decode(READ_ENCODING)
    except UnicodeDecodeError as exc:
        try:
            return data.decode(CHINESE_ENCODING)
        except UnicodeDecodeError:
            raise StationFileError(
                f"{path.name}: neither UTF-8 nor GBK/GB18030 text ({exc.reason} at byte "
                f"{exc.start}); name its encoding with --encoding"
            ) from exc


def _load_feature_collection(path: Path, encoding: str | None = None) -> list[Any]:
    try:
        data = json.loads(_read_text(path, encoding))
    except json.JSONDecodeError as exc:
        raise StationFileError(
            f"{path.name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise StationFileError(f"{path.name}: expected a GeoJSON FeatureCollection")
    features = data.get("features")
    if not isinstance(features, list):
        raise StationFileError(f"{path.name}: the FeatureCollection has no 'features' list")
    return features


def _geojson_station_rows(
    path: Path, encoding: str | None = None
) -> Iterator[tuple[str, dict[str, Any] | RowError]]:
    for index, feature in enumerate(_load_feature_collection(path, encoding)):
        row = f"features[{index}]"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            yield row, RowError(row, "feature", "not a GeoJSON Feature object")
            continue
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            yield row, RowError(row, "properties", "expected an object")
            continue
        raw = {key: value for key, value in properties.items() if key not in COORDINATE_FIELDS}
        geometry = feature.get("geometry")
        coordinates = _point_coordinates(geometry)
        if coordinates is not None:
            raw["lon"], raw["lat"] = coordinates
        elif geometry is not None or ADDRESS_FIELD not in raw:
            yield (
                row,
                RowError(
                    row, "geometry", "expected a Point with [lon, lat] coordinates, or an address"
                ),
            )
            continue
        yield row, raw


def _point_coordinates(geometry: Any) -> tuple[float, float] | None:
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        return None
    coordinates = geometry.get("coordinates")
    if not isinstance(coordinates, list) or len(coordinates) < len(COORDINATE_FIELDS):
        return None
    lon, lat = coordinates[0], coordinates[1]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lon, lat)):
        return None
    return float(lon), float(lat)


def _csv_records(
    path: Path,
    columns: tuple[str, ...],
    required: frozenset[str],
    encoding: str | None = None,
    located_by: Sequence[frozenset[str]] = (),
) -> Iterator[tuple[int, dict[str, str] | RowError]]:
    """Non-blank CSV records as {column: text}, empty cells left out, by line number."""
    text = _read_text(path, encoding)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise StationFileError(f"{path.name}: empty file, expected a header row")
        names = [name.strip().lower() for name in header]
        _check_header(path, names, columns, required, located_by)
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            line = reader.line_num
            if len(record) > len(names):
                reason = f"has {len(record)} fields, the header has {len(names)}"
                yield line, RowError(line, "row", reason)
                continue
            yield (
                line,
                {name: value for name, value in zip(names, record, strict=False) if value != ""},
            )
    except csv.Error as exc:
        raise StationFileError(f"{path.name}: not a readable CSV file ({exc})") from exc


def _check_header(
    path: Path,
    names: list[str],
    columns: tuple[str, ...],
    required: frozenset[str],
    located_by: Sequence[frozenset[str]] = (),
) -> None:
    expected = ", ".join(columns)
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise StationFileError(f"{path.name}: repeated column(s) {', '.join(duplicated)}")
    unknown = [name for name in names if name not in columns]
    if unknown:
        raise StationFileError(
            f"{path.name}: unknown column(s) {', '.join(unknown)}; expected {expected}"
        )
    missing = sorted(required - set(names))
    if missing:
        raise StationFileError(
            f"{path.name}: missing column(s) {', '.join(missing)}; expected {expected}"
        )
    if located_by and not any(columns_set <= set(names) for columns_set in located_by):
        ways = " or ".join(", ".join(sorted(c)) for c in located_by)
        raise StationFileError(f"{path.name}: no column(s) to locate stations by; give {ways}")


def _csv_station_rows(
    path: Path, encoding: str | None = None
) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    records = _csv_records(
        path, STATION_CSV_READ_COLUMNS, STATION_CSV_REQUIRED, encoding, STATION_CSV_LOCATED_BY
    )
    for line, record in records:
        if isinstance(record, RowError):
            yield line, record
            continue
        raw: dict[str, Any] = dict(record)
        if "amenities" in raw:
            raw["amenities"] = [
                item.strip() for item in raw["amenities"].split(AMENITY_SEPARATOR) if item.strip()
            ]
        yield line, raw


# --- reading demand and boundaries ----------------------------------------------------------


def read_demand(path: Path) -> list[DemandCell]:
    """Read a demand CSV (`DEMAND_CSV_COLUMNS`). A demand layer is all or nothing: any bad row
    or repeated cell raises `StationFileError` naming the line, since a partial layer would
    silently understate demand."""
    cells: list[DemandCell] = []
    first_line_of: dict[str, int] = {}
    for line, record in _csv_records(path, DEMAND_CSV_COLUMNS, DEMAND_CSV_REQUIRED):
        if isinstance(record, RowError):
            raise StationFileError(f"{path.name}: line {line}: {record.reason}")
        try:
            cell = DemandCell.model_validate(record)
        except ValidationError as exc:
            problems = "; ".join(f"{e.field}: {e.reason}" for e in _row_errors(line, exc))
            raise StationFileError(f"{path.name}: line {line}: {problems}") from exc
        if cell.cell in first_line_of:
            first = first_line_of[cell.cell]
            raise StationFileError(
                f"{path.name}: line {line}: cell {cell.cell} repeats line {first}"
            )
        first_line_of[cell.cell] = line
        cells.append(cell)
    return cells


def read_boundaries(path: Path) -> list[Boundary]:
    """Read a FeatureCollection of district or subdistrict outlines (as written below)."""
    boundaries = []
    for index, feature in enumerate(_load_feature_collection(path)):
        where = f"{path.name}: features[{index}]"
        properties = feature.get("properties") if isinstance(feature, dict) else None
        if not isinstance(properties, dict):
            raise StationFileError(f"{where}: expected a Feature with properties")
        try:
            boundaries.append(
                Boundary.model_validate({**properties, "geometry": feature.get("geometry")})
            )
        except ValidationError as exc:
            problems = "; ".join(f"{e.field}: {e.reason}" for e in _row_errors(index, exc))
            raise StationFileError(f"{where}: {problems}") from exc
    return boundaries


def read_boundary_features(
    path: Path,
    *,
    level: BoundaryLevel,
    name_property: str = "name",
    parent: str | None = None,
    datum: Datum = Datum.wgs84,
) -> list[Boundary]:
    """Read outlines from any GeoJSON FeatureCollection of (Multi)Polygons, taking each name
    from `name_property`, converting `datum` to WGS84. All or nothing: a boundary layer with a
    hole in it would misplace stations silently."""
    return boundaries_from_features(
        _load_feature_collection(path),
        source=path.name,
        level=level,
        name_property=name_property,
        parent=parent,
        datum=datum,
    )


def boundaries_from_features(
    features: Iterable[Any],
    *,
    source: str,
    level: BoundaryLevel,
    name_property: str = "name",
    parent: str | None = None,
    datum: Datum = Datum.wgs84,
) -> list[Boundary]:
    """GeoJSON features to Boundaries, all or nothing (StationFileError names the feature)."""
    boundaries = []
    for index, feature in enumerate(features):
        where = f"{source}: features[{index}]"
        properties = feature.get("properties") if isinstance(feature, dict) else None
        geometry = feature.get("geometry") if isinstance(feature, dict) else None
        if not isinstance(properties, dict) or not isinstance(geometry, dict):
            raise StationFileError(f"{where}: expected a Feature with properties and geometry")
        if geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise StationFileError(f"{where}: geometry must be a Polygon or MultiPolygon")
        name = properties.get(name_property)
        if not isinstance(name, str) or not name.strip():
            raise StationFileError(f"{where}: no text property {name_property!r} to name it")
        try:
            check_polygon_coordinates(geometry)
            converted = geometry_to_wgs84(geometry, datum)
            boundaries.append(
                Boundary(name=name.strip(), level=level, parent=parent, geometry=converted)
            )
        except (ValidationError, ValueError, TypeError) as exc:
            raise StationFileError(f"{where}: {exc}") from exc
    return boundaries


# --- writing --------------------------------------------------------------------------------


def write_stations(stations: Iterable[Station], path: Path, *, datum: Datum = Datum.wgs84) -> Path:
    """Write stations as GeoJSON or CSV (by suffix), with coordinates in `datum`."""
    datum = Datum(datum)
    suffix = path.suffix.lower()
    if suffix in GEOJSON_SUFFIXES:
        features = [_station_feature(station, datum) for station in stations]
        _write_json(path, _feature_collection(features))
    elif suffix in CSV_SUFFIXES:
        with path.open("w", encoding=WRITE_ENCODING, newline="") as out:
            writer = csv.writer(out)
            writer.writerow(STATION_CSV_COLUMNS)
            writer.writerows(_station_csv_row(station, datum) for station in stations)
    else:
        raise StationFileError(
            f"{path.name}: unknown station file type {suffix!r} (use .geojson or .csv)"
        )
    return path


def write_demand(cells: Iterable[DemandCell], path: Path) -> Path:
    with path.open("w", encoding=WRITE_ENCODING, newline="") as out:
        writer = csv.writer(out)
        writer.writerow(DEMAND_CSV_COLUMNS)
        writer.writerows(
            (cell.cell, cell.demand_workers, cell.district, cell.subdistrict or "")
            for cell in cells
        )
    return path


def write_boundaries(boundaries: Iterable[Boundary], path: Path) -> Path:
    features = [
        {
            "type": "Feature",
            "properties": {"name": b.name, "level": b.level.value, "parent": b.parent},
            "geometry": b.geometry,
        }
        for b in boundaries
    ]
    _write_json(path, _feature_collection(features))
    return path


def write_sample_city(city: SampleCity, out_dir: Path) -> list[Path]:
    """Write the sample city's stations (GeoJSON and CSV), demand and outlines into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [
        write_stations(city.stations, out_dir / STATIONS_GEOJSON),
        write_stations(city.stations, out_dir / STATIONS_CSV),
        write_demand(city.demand, out_dir / DEMAND_CSV),
        write_boundaries(city.subdistricts, out_dir / SUBDISTRICTS_GEOJSON),
        write_boundaries([city.boundary], out_dir / DISTRICT_GEOJSON),
    ]


def _station_feature(station: Station, datum: Datum) -> dict[str, Any]:
    lon, lat = from_wgs84(station.lon, station.lat, datum)
    return {
        "type": "Feature",
        "id": station.station_id,
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": station.model_dump(mode="json", exclude=set(COORDINATE_FIELDS)),
    }


def _station_csv_row(station: Station, datum: Datum) -> list[Any]:
    lon, lat = from_wgs84(station.lon, station.lat, datum)
    values: Mapping[str, Any] = {
        **station.model_dump(mode="json"),
        "lon": lon,
        "lat": lat,
        "amenities": AMENITY_SEPARATOR.join(station.amenities),
    }
    return ["" if values[name] is None else values[name] for name in STATION_CSV_COLUMNS]


def _feature_collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding=WRITE_ENCODING)
