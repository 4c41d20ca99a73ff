"""Candidate sites from a file a planner uploads: CSV (site_id, name, lat, lon, address) or a
GeoJSON FeatureCollection of points. Every row that cannot be used is listed with its reason;
the good ones are kept."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from geo.crs import Datum, to_wgs84
from schemas.api import ImportProblem
from schemas.planning import CandidateSite

CSV_COLUMNS = ("site_id", "name", "lat", "lon", "address")


class CandidateFileError(ValueError):
    """The file as a whole cannot be read (empty, not CSV or GeoJSON, no usable column)."""


@dataclass
class CandidateFile:
    candidates: list[CandidateSite] = field(default_factory=list)
    rows: list[int | str] = field(default_factory=list)  # where each candidate came from
    errors: list[ImportProblem] = field(default_factory=list)


def _site(row: int | str, raw: dict[str, Any], datum: Datum, found: CandidateFile) -> None:
    values = {k: v for k, v in raw.items() if k in CSV_COLUMNS and v not in (None, "")}
    try:
        site = CandidateSite.model_validate(values)
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            found.errors.append(ImportProblem(row=row, field=where, reason=error["msg"]))
        return
    if (site.lat is None) != (site.lon is None):
        missing = "lon" if site.lon is None else "lat"
        found.errors.append(ImportProblem(row=row, field=missing, reason="lat and lon go together"))
        return
    if site.lat is None and not site.address:
        found.errors.append(
            ImportProblem(row=row, field="lat", reason="needs lat and lon, or an address")
        )
        return
    if site.lat is not None and site.lon is not None and datum is not Datum.wgs84:
        lon, lat = to_wgs84(site.lon, site.lat, datum)
        site = site.model_copy(update={"lat": round(lat, 7), "lon": round(lon, 7)})
    found.candidates.append(site)
    found.rows.append(row)


def read_candidates(body: bytes, *, datum: Datum = Datum.wgs84, max_rows: int) -> CandidateFile:
    """Rows are numbered from 1 after the CSV header, features from 0."""
    try:
        text = body.decode("utf-8-sig").strip()
    except UnicodeDecodeError as exc:
        raise CandidateFileError("the file is not UTF-8 text") from exc
    if not text:
        raise CandidateFileError("the file is empty")
    found = CandidateFile()
    rows = _geojson_rows(text) if text.startswith("{") else _csv_rows(text)
    if not rows:
        raise CandidateFileError("the file has no candidate sites")
    if len(rows) > max_rows:
        raise CandidateFileError(f"{len(rows)} candidate sites; the limit is {max_rows}")
    for row, raw in rows:
        _site(row, raw, datum, found)
    return found


def _csv_rows(text: str) -> list[tuple[int | str, dict[str, Any]]]:
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = [name.strip().lower() for name in reader.fieldnames or []]
        if not ({"lat", "lon"} <= set(header) or "address" in header):
            raise CandidateFileError(
                "the CSV header needs lat and lon (or address); columns: " + ", ".join(CSV_COLUMNS)
            )
        reader.fieldnames = header
        return [(n, dict(raw)) for n, raw in enumerate(reader, start=1)]
    except csv.Error as exc:
        raise CandidateFileError(f"not a readable CSV file: {exc}") from exc


def _geojson_rows(text: str) -> list[tuple[int | str, dict[str, Any]]]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CandidateFileError(f"not valid JSON: {exc.msg}") from exc
    features = document.get("features") if isinstance(document, dict) else None
    if not isinstance(features, list) or document.get("type") != "FeatureCollection":
        raise CandidateFileError("a GeoJSON file must be a FeatureCollection of points")
    rows: list[tuple[int | str, dict[str, Any]]] = []
    for n, feature in enumerate(features):
        feature = feature if isinstance(feature, dict) else {}
        geometry = feature.get("geometry")
        geometry = geometry if isinstance(geometry, dict) else {}
        properties = feature.get("properties")
        properties = dict(properties) if isinstance(properties, dict) else {}
        coordinates = geometry.get("coordinates")
        if (
            geometry.get("type") == "Point"
            and isinstance(coordinates, list)
            and len(coordinates) >= 2
        ):
            properties["lon"], properties["lat"] = coordinates[:2]
        rows.append((n, properties))
    return rows
