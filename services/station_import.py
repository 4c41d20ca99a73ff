"""Stations posted over HTTP: validated row by row like a station file, and refused when
they lie outside every loaded district. A station given by address is located with the
planners' geocoder and cache, and refused when the answer lies outside its own district."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import shapely
from shapely.geometry import shape

from geo.crs import Datum
from schemas.api import ImportProblem, ImportResponse
from schemas.geography import Boundary, BoundaryLevel
from services.station_files import (
    ADDRESS_FIELD,
    AddressLookup,
    RowError,
    StationFileResult,
    validate_station_rows,
)
from store.unit_of_work import Store


class Crs(StrEnum):
    """The datums a client may send coordinates in."""

    wgs84 = "wgs84"
    gcj02 = "gcj02"
    bd09 = "bd09"


class StationImporter:
    """Writes stations through the registry's audit log, then tells the processors
    (`on_change`) so that a moved, resized or re-kinded station moves coverage at once."""

    def __init__(
        self,
        store: Store,
        on_change: Callable[[], None] | None = None,
        locate: AddressLookup | None = None,
    ) -> None:
        self.store = store
        self.on_change = on_change
        self.locate = locate

    def add(
        self, items: list[Any], datum: Datum, *, actor: str = "import", at: datetime | None = None
    ) -> ImportResponse:
        rows = [
            (index, item if isinstance(item, dict) else RowError(index, "", "must be an object"))
            for index, item in enumerate(items)
        ]
        result = validate_station_rows(rows, datum, self.locate)
        with self.store.transaction() as tx:
            districts = tx.boundaries.list(level=BoundaryLevel.district)
        placed = refuse_misplaced(result, districts, coordinates_too=True)
        errors, accepted = placed.errors, placed.stations
        with self.store.transaction() as tx:
            changes = tx.station_changes.write(accepted, actor=actor, at=at or datetime.now(UTC))
        if changes and self.on_change is not None:
            self.on_change()
        return ImportResponse(
            imported=len(accepted),
            rejected=len(items) - len(accepted),
            errors=[ImportProblem(row=e.row, field=e.field, reason=e.reason) for e in errors],
        )


def refuse_misplaced(
    result: StationFileResult, districts: Sequence[Boundary], *, coordinates_too: bool
) -> StationFileResult:
    """Move stations that lie outside the loaded outlines to the errors. A geocoded station
    must lie in its own district when that outline is loaded (else in some district): a
    same-named street elsewhere is a wrong match. Stations given by coordinates are checked
    against every district only with `coordinates_too`. Without outlines nothing is refused."""
    if not districts:
        return result
    outlines = {b.name: shape(b.geometry) for b in districts}
    placed = StationFileResult(errors=list(result.errors))
    for row, station in zip(result.rows, result.stations, strict=True):
        point = shapely.Point(station.lon, station.lat)
        reason, field = "", ADDRESS_FIELD
        if row in result.geocoded:
            own = outlines.get(station.district)
            if own is not None and not own.covers(point):
                reason = f"the address was found outside district {station.district}"
            elif own is None and not any(o.covers(point) for o in outlines.values()):
                reason = "the address was found outside every district"
        elif coordinates_too and not any(o.covers(point) for o in outlines.values()):
            reason, field = "the location lies outside every district", "lat"
        if reason:
            placed.errors.append(RowError(row, field, reason))
            continue
        placed.stations.append(station)
        placed.rows.append(row)
        if row in result.geocoded:
            placed.geocoded.add(row)
    return placed
