"""The coverage index: for every cell, how many stations in each state reach it.

Kept incrementally: a station changing state touches only the cells of its own catchment, so
the cost of an update is proportional to the catchment, never to the city. Built from scratch
in one vectorised pass (numpy over every station's catchment at once), so that a national
network of ~190,000 stations and millions of cells is a few seconds and a few arrays.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from schemas.stations import StationState

ACCESS_RESIDUE = 1e-12  # seats per worker: below this an access sum is rounding, not supply
STATE_SLOTS: dict[StationState, int] = {state: i for i, state in enumerate(StationState)}
_SLOTS = len(STATE_SLOTS)


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

    Built from scratch (`build`), the counts live in sorted numpy arrays, one row per cell,
    so a whole network costs a few arrays rather than a Python object per cell; a cell moves
    into the dict the first time a station's change touches it, and its array row is zeroed,
    so each cell is in exactly one of the two.
    """

    degraded_weight: float
    _counts: dict[str, list[int]] = field(default_factory=dict)
    _access: dict[str, float] = field(default_factory=dict)
    _base_cells: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    _base_counts: np.ndarray = field(default_factory=lambda: np.zeros((0, _SLOTS), np.int32))
    _base_access: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))

    @classmethod
    def build(
        cls,
        degraded_weight: float,
        *,
        owners: np.ndarray,
        cells: np.ndarray,
        states: Sequence[StationState | None],
        supply_ratios: np.ndarray | None = None,
    ) -> CoverageIndex:
        """The index of many stations at once: pair `i` puts cell `cells[i]` (an H3 index as
        an integer) in the catchment of station `owners[i]`, whose state is
        `states[owners[i]]` (None: not in the index) and supply ratio
        `supply_ratios[owners[i]]` (default 0). The same index as moving each station in.

        Pairs already in order of cell (as `CircleCatchments.reach` gives them for cells in
        ascending order) are grouped as they come, without a sort; a network whose stations
        are all in one state, or that has no supply, is counted per cell, not per pair."""
        index = cls(degraded_weight)
        slot_of = np.array(
            [_SLOTS if state is None else STATE_SLOTS[state] for state in states], np.int64
        )
        weights = np.array([index.weight(state) for state in states], np.float64)
        supply = weights * (np.zeros(len(states)) if supply_ratios is None else supply_ratios)
        if owners.size and slot_of.max(initial=0) == _SLOTS:
            kept = slot_of[owners] < _SLOTS
            owners, cells = owners[kept], cells[kept]
        if not cells.size:
            return index
        one_slot = int(slot_of.min()) if slot_of.min() == slot_of.max() else None
        if bool((cells[1:] >= cells[:-1]).all()):
            starts = np.flatnonzero(np.concatenate(([True], cells[1:] != cells[:-1])))
            unique = cells[starts]
            sizes = np.diff(starts, append=cells.size)
            where = None
        else:
            unique, where = np.unique(cells, return_inverse=True)
            where = where.reshape(-1)
            starts = sizes = None
        if one_slot is not None:
            counts = np.zeros((unique.size, _SLOTS), np.int32)
            counts[:, one_slot] = (
                np.bincount(where, minlength=unique.size) if sizes is None else sizes
            )
        else:
            if where is None:
                where = np.repeat(np.arange(unique.size), sizes)
            counts = (
                np.bincount(where * _SLOTS + slot_of[owners], minlength=unique.size * _SLOTS)
                .reshape(unique.size, _SLOTS)
                .astype(np.int32)
            )
        if supply.any():
            if where is None:
                access = np.add.reduceat(supply[owners], starts)
            else:
                access = np.bincount(where, weights=supply[owners], minlength=unique.size)
            access[np.abs(access) < ACCESS_RESIDUE] = 0.0
        else:
            access = np.zeros(unique.size)
        index._base_cells = unique.astype(np.int64, copy=False)
        index._base_counts = counts
        index._base_access = access
        return index

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
        # Looked up once: a zone stage moves a catchment's cells for every delta it takes.
        leaving = None if old is None else STATE_SLOTS[old]
        entering = None if new is None else STATE_SLOTS[new]
        counts_of, access, covered = self._counts, self._access, self._covered
        flipped: list[str] = []
        for cell in cells:
            counts = counts_of.get(cell)
            if counts is None:
                counts = counts_of[cell] = self._take_base(cell)
            before = covered(counts)
            if leaving is not None:
                counts[leaving] -= 1
            if entering is not None:
                counts[entering] += 1
            if access_delta:
                total = access.get(cell, 0.0) + access_delta
                if abs(total) < ACCESS_RESIDUE:  # float leftovers of stations that left
                    access.pop(cell, None)
                else:
                    access[cell] = total
            if not any(counts):
                del counts_of[cell]
                access.pop(cell, None)
            if covered(counts) != before:
                flipped.append(cell)
        return flipped

    def _base_row(self, cell: str) -> int | None:
        """The array row of `cell`, when the arrays hold it."""
        if not self._base_cells.size:
            return None
        key = int(cell, 16)
        row = int(self._base_cells.searchsorted(key))
        if row < self._base_cells.size and self._base_cells[row] == key:
            return row
        return None

    def _take_base(self, cell: str) -> list[int]:
        """The cell's counts out of the arrays (zeroing its row there), or new ones."""
        row = self._base_row(cell)
        if row is None:
            return [0] * _SLOTS
        counts = self._base_counts[row].tolist()
        access = float(self._base_access[row])
        if access:
            self._access[cell] = access
        self._base_counts[row] = 0
        self._base_access[row] = 0.0
        return counts

    def _get(self, cell: str) -> tuple[list[int] | None, float]:
        counts = self._counts.get(cell)
        if counts is not None:
            return counts, self._access.get(cell, 0.0)
        row = self._base_row(cell)
        if row is None or not self._base_counts[row].any():
            return None, 0.0
        return self._base_counts[row].tolist(), float(self._base_access[row])

    def _covered(self, counts: list[int]) -> bool:
        return counts[0] + self.degraded_weight * counts[1] >= 1.0

    def coverage(self, cell: str) -> CellCoverage:
        counts, _ = self._get(cell)
        return CellCoverage(*counts) if counts else CellCoverage()

    def is_covered(self, cell: str) -> bool:
        counts, _ = self._get(cell)
        return counts is not None and self._covered(counts)

    def covered_many(self, cells: np.ndarray) -> np.ndarray:
        """`is_covered` of many cells (H3 indexes as integers) at once."""
        covered, _ = self.covered_and_access_many(cells)
        return covered

    def covered_and_access_many(self, cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`covered_and_access` of many cells (H3 indexes as integers) at once."""
        covered = np.zeros(cells.size, bool)
        access = np.zeros(cells.size, np.float64)
        if self._base_cells.size:
            rows = np.minimum(np.searchsorted(self._base_cells, cells), self._base_cells.size - 1)
            counts = self._base_counts[rows]
            held = self._base_cells[rows] == cells
            covered = held & (counts[:, 0] + self.degraded_weight * counts[:, 1] >= 1.0)
            access = np.where(held, self._base_access[rows], 0.0)
        if self._counts:
            position = {int(cell, 16): cell for cell in self._counts}
            for i, key in enumerate(cells.tolist()):
                cell = position.get(key)
                if cell is not None:
                    covered[i] = self._covered(self._counts[cell])
                    access[i] = self._access.get(cell, 0.0)
        return covered, np.maximum(access, 0.0)

    def reach(self, cell: str) -> tuple[CellCoverage, bool, float]:
        """`coverage`, `is_covered` and `access` of one cell from one lookup: the live map
        reads all three for every cell it shows or saves."""
        counts, access = self._get(cell)
        if not counts:
            return CellCoverage(), False, 0.0
        return CellCoverage(*counts), self._covered(counts), max(0.0, access)

    def covered_and_access(self, cell: str) -> tuple[bool, float]:
        """`is_covered` and `access` of one cell from one lookup (judging a cell needs both)."""
        counts, access = self._get(cell)
        if not counts:
            return False, 0.0
        return self._covered(counts), max(0.0, access)

    def effective(self, cell: str) -> float:
        counts, _ = self._get(cell)
        return counts[0] + self.degraded_weight * counts[1] if counts else 0.0

    def access(self, cell: str) -> float:
        """2SFCA access score (seats per expected worker); float sums are clamped at zero."""
        _, access = self._get(cell)
        return max(0.0, access)

    def copy(self) -> CoverageIndex:
        """An index to change without changing this one, cheap however big it is: the arrays
        of an index built whole are copied (a change takes a cell's row out of them in place),
        but the count lists of cells moved since are shared until `unshare` gives the cells
        about to change lists of their own."""
        return CoverageIndex(
            self.degraded_weight,
            _counts=dict(self._counts),
            _access=dict(self._access),
            _base_cells=self._base_cells,  # never changed: shared
            _base_counts=self._base_counts.copy(),
            _base_access=self._base_access.copy(),
        )

    def unshare(self, cells: Iterable[str]) -> None:
        """Give these cells count lists of their own (in a `copy`, before changing them)."""
        counts = self._counts
        for cell in cells:
            found = counts.get(cell)
            if found is not None:
                counts[cell] = list(found)

    def covered_cells(self) -> list[str]:
        """Every cell `is_covered` holds for, read off the arrays at once."""
        counts = self._base_counts
        covered = counts[:, 0] + self.degraded_weight * counts[:, 1] >= 1.0
        found = [format(key, "x") for key in self._base_cells[covered].tolist()]
        found += [cell for cell, moved in self._counts.items() if self._covered(moved)]
        return found

    def cells(self) -> Iterator[str]:
        yield from self._counts
        held = self._base_counts.any(axis=1)
        for key in self._base_cells[held].tolist():
            yield format(key, "x")

    def __len__(self) -> int:
        return len(self._counts) + int(np.count_nonzero(self._base_counts.any(axis=1)))
