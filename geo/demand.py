"""The demand layer: expected outdoor workers per cell, grouped by zone and district."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import h3

from geo.grid import Grid
from schemas.geography import DemandCell


@dataclass(frozen=True)
class DemandLayer:
    grid: Grid
    demand: dict[str, float]
    district_of_cell: dict[str, str]
    subdistrict_of_cell: dict[str, str | None]
    cells_of_zone: dict[str, tuple[str, ...]]
    district_of_zone: dict[str, str]
    demand_of_zone: dict[str, float]

    @classmethod
    def build(cls, grid: Grid, cells: Iterable[DemandCell]) -> DemandLayer:
        demand: dict[str, float] = {}
        district: dict[str, str] = {}
        subdistrict: dict[str, str | None] = {}
        by_zone: dict[str, list[str]] = defaultdict(list)
        for row in cells:
            demand[row.cell] = row.demand_workers
            district[row.cell] = row.district
            subdistrict[row.cell] = row.subdistrict
            by_zone[grid.zone_of(row.cell)].append(row.cell)
        zone_district = {
            # A zone straddling a border belongs to the district holding most of its cells.
            zone: Counter(district[c] for c in members).most_common(1)[0][0]
            for zone, members in by_zone.items()
        }
        cells_of_zone = {zone: tuple(sorted(m)) for zone, m in by_zone.items()}
        return cls(
            grid=grid,
            demand=demand,
            district_of_cell=district,
            subdistrict_of_cell=subdistrict,
            cells_of_zone=cells_of_zone,
            district_of_zone=zone_district,
            demand_of_zone={
                zone: sum(demand[c] for c in members) for zone, members in cells_of_zone.items()
            },
        )

    def zones_of_district(self, district: str | None) -> list[str]:
        return sorted(
            z for z, d in self.district_of_zone.items() if district is None or d == district
        )

    def cells_of_district(self, district: str | None) -> list[str]:
        return [c for c, d in self.district_of_cell.items() if district is None or d == district]

    @property
    def districts(self) -> list[str]:
        return sorted(set(self.district_of_cell.values()))


def check_demand_cells(cells: Iterable[DemandCell], resolution: int) -> None:
    """A demand layer must be on the grid coverage is counted on, one row per cell."""
    seen: set[str] = set()
    for index, row in enumerate(cells):
        if not h3.is_valid_cell(row.cell):
            raise ValueError(f"[{index}].cell {row.cell} is not an H3 cell")
        if h3.get_resolution(row.cell) != resolution:
            raise ValueError(
                f"[{index}].cell {row.cell} is at resolution {h3.get_resolution(row.cell)}, "
                f"the grid is at {resolution}"
            )
        if row.cell in seen:
            raise ValueError(f"[{index}].cell {row.cell} appears twice")
        seen.add(row.cell)
