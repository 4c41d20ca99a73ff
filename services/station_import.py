"""Stations posted over HTTP: validated row by row like a station file, and refused when
they lie outside every loaded district."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import shapely
from shapely.geometry import shape

from geo.crs import Datum
from schemas.api import ImportProblem, ImportResponse
from schemas.geography import BoundaryLevel
from schemas.stations import Station
from services.station_files import RowError, validate_station_rows
from store.unit_of_work import Store


class Crs(StrEnum):
    """The datums a client may send coordinates in."""

    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"


class StationImporter:
    """Writes stations through the registry's audit log, then tells the processors
    (`on_change`) so that a moved, resized or re-kinded station moves coverage at once."""

    def __init__(self, store: Store, on_change: Callable[[], None] | None = None) -> None:
        self.store = store
        self.on_change = on_change

    def add(
        self, items: list[Any], datum: Datum, *, actor: str = "import", at: datetime | None = None
    ) -> ImportResponse:
        rows = [
            (index, item if isinstance(item, dict) else RowError(index, "", "must be an object"))
            for index, item in enumerate(items)
        ]
        result = validate_station_rows(rows, datum)
        with self.store.transaction() as tx:
            districts = [
                shape(b.geometry) for b in tx.boundaries.list(level=BoundaryLevel.district)
            ]
        errors = list(result.errors)
        accepted: list[Station] = []
        for row, station in zip(result.rows, result.stations, strict=True):
            point = shapely.Point(station.lon, station.lat)
            if districts and not any(d.covers(point) for d in districts):
                errors.append(RowError(row, "lat", "the location lies outside every district"))
            else:
                accepted.append(station)
        with self.store.transaction() as tx:
            changes = tx.station_changes.write(accepted, actor=actor, at=at or datetime.now(UTC))
        if changes and self.on_change is not None:
            self.on_change()
        return ImportResponse(
            imported=len(accepted),
            rejected=len(items) - len(accepted),
            errors=[ImportProblem(row=e.row, field=e.field, reason=e.reason) for e in errors],
        )
