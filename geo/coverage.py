"""The coverage index: for every cell, how many stations in each state reach it.

Kept incrementally: a station changing state touches only the cells of its own catchment, so
the cost of an update is proportional to the catchment, never to the city.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from schemas.stations import StationState

ACCESS_RESIDUE = 1e-12  # seats per worker: below this an access sum is rounding, not supply
STATE_SLOTS: dict[StationState, int] = {state: i for i, state in enumerate(StationState)}


@dataclass(frozen=True)
class CellCoverage:
    available: int = 0
    degraded: int = 0
    closed: int = 0
    silent: int = 0

    @property
    def stations(self) -> int:
        return self.available + self.degraded + self.closed + self.silent


@dataclass
class CoverageIndex:
    """Per-cell station counts by state, and per-cell 2SFCA access.

    A cell is covered when available stations plus weighted degraded ones reach 1.0 (so with
    weight 0.5 two degraded stations cover a cell). A cell's access score is the sum of the
    supply ratios (seats per expected worker in the catchment) of the stations that count,
    degraded ones weighted the same way.
    """

    degraded_weight: float
    _counts: dict[str, list[int]] = field(default_factory=dict)
    _access: dict[str, float] = field(default_factory=dict)

    def weight(self, state: StationState | None) -> float:
        if state is StationState.available:
            return 1.0
        if state is StationState.degraded:
            return self.degraded_weight
        return 0.0

    def move(
        self,
        cells: Iterable[str],
        old: StationState | None,
        new: StationState | None,
        *,
        supply_ratio: float = 0.0,
        old_supply_ratio: float | None = None,
    ) -> list[str]:
        """Move one station's catchment from state `old` to `new` (None: not in the index),
        its supply ratio from `old_supply_ratio` (default: unchanged) to `supply_ratio`.
        Returns the cells whose covered flag flipped."""
        before_ratio = supply_ratio if old_supply_ratio is None else old_supply_ratio
        access_delta = self.weight(new) * supply_ratio - self.weight(old) * before_ratio
        if old == new and access_delta == 0.0:
            return []
        flipped: list[str] = []
        for cell in cells:
            counts = self._counts.get(cell)
            if counts is None:
                counts = self._counts[cell] = [0, 0, 0, 0]
            before = self._covered(counts)
            if old is not None:
                counts[STATE_SLOTS[old]] -= 1
            if new is not None:
                counts[STATE_SLOTS[new]] += 1
            if access_delta:
                total = self._access.get(cell, 0.0) + access_delta
                if abs(total) < ACCESS_RESIDUE:  # float leftovers of stations that left
                    self._access.pop(cell, None)
                else:
                    self._access[cell] = total
            if not any(counts):
                del self._counts[cell]
                self._access.pop(cell, None)
            if self._covered(counts) != before:
                flipped.append(cell)
        return flipped

    def _covered(self, counts: list[int]) -> bool:
        return counts[0] + self.degraded_weight * counts[1] >= 1.0

    def coverage(self, cell: str) -> CellCoverage:
        counts = self._counts.get(cell)
        return CellCoverage(*counts) if counts else CellCoverage()

    def is_covered(self, cell: str) -> bool:
        counts = self._counts.get(cell)
        return counts is not None and self._covered(counts)

    def effective(self, cell: str) -> float:
        counts = self._counts.get(cell)
        return counts[0] + self.degraded_weight * counts[1] if counts else 0.0

    def access(self, cell: str) -> float:
        """2SFCA access score (seats per expected worker); float sums are clamped at zero."""
        return max(0.0, self._access.get(cell, 0.0))

    def cells(self) -> Iterator[str]:
        return iter(self._counts)

    def __len__(self) -> int:
        return len(self._counts)
