"""Where to put the next stations: maximal covering, set covering to a target share, and
maximal (capped) 2SFCA access, over candidate sites whose catchments are known.

Plain arrays in, plain results out. A problem is a 0/1 matrix (demand cells x candidates: the
candidate's catchment reaches the cell) and the demand each cell still lacks.

Maximal covering is solved greedily with lazy evaluation (a candidate's gain only shrinks as
sites are chosen, so a stale gain is an upper bound and most candidates are never re-scored),
then improved by interchange (swap a chosen site for the candidate that adds most once that
site is gone, while that gains) and a few rounds of iterated local search. Greedy alone
guarantees 1 - 1/e of the optimum; with the rest it matches the exact optimum on most small
random instances and stays above 98% of it on all of a seeded suite (tests hold it there).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import sparse

GAIN_EPSILON = 1e-9  # workers: a swap must gain more than rounding to count
PERTURBED_SITES = 2  # sites dropped per round of the local search (measured: 1 is too few)


@dataclass(frozen=True)
class CoverProblem:
    """`cover[i, j]` is 1 when candidate j reaches cell i; `demand[i]` is what cell i still
    lacks (uncovered demand for covering, all demand for access)."""

    cells: tuple[str, ...]
    demand: np.ndarray
    cover: sparse.csc_matrix

    @classmethod
    def build(
        cls, demand: dict[str, float], catchments: Sequence[frozenset[str] | set[str]]
    ) -> CoverProblem:
        """Cells are those with demand that some candidate reaches."""
        index = {cell: i for i, cell in enumerate(c for c, d in demand.items() if d > 0.0)}
        rows: list[int] = []
        counts = np.zeros(len(catchments), dtype=np.int64)
        for j, catchment in enumerate(catchments):
            hits = index.keys() & catchment  # a set intersection, in C
            rows.extend(map(index.__getitem__, hits))
            counts[j] = len(hits)
        reached = np.zeros(len(index), dtype=bool)
        reached[rows] = True
        # Keep only reached cells, renumbered in order.
        renumber = np.cumsum(reached) - 1
        matrix = sparse.csc_matrix(
            (
                np.ones(len(rows), dtype=np.float64),
                renumber[np.asarray(rows, dtype=np.int64)],
                np.concatenate(([0], np.cumsum(counts))),
            ),
            shape=(int(reached.sum()), len(catchments)),
        )
        matrix.sort_indices()
        cells = tuple(c for c, keep in zip(index, reached, strict=True) if keep)
        weights = np.array([demand[c] for c in cells], dtype=np.float64)
        return cls(cells=cells, demand=weights, cover=matrix)

    @cached_property
    def by_cell(self) -> sparse.csr_matrix:
        """The matrix by rows, for the products with a few cells' rows."""
        return self.cover.tocsr()

    @cached_property
    def by_candidate(self) -> sparse.csr_matrix:
        """The transpose, made once: every gain computation is a product with it."""
        return self.cover.T.tocsr()

    @property
    def candidates(self) -> int:
        return int(self.cover.shape[1])

    def rows(self, candidate: int) -> np.ndarray:
        start, end = self.cover.indptr[candidate], self.cover.indptr[candidate + 1]
        return self.cover.indices[start:end]

    def covered_by(self, chosen: Sequence[int]) -> float:
        if not chosen:
            return 0.0
        reached = np.zeros(len(self.cells), dtype=bool)
        for j in chosen:
            reached[self.rows(j)] = True
        return float(self.demand[reached].sum())


@dataclass(frozen=True)
class Pick:
    candidate: int
    added: float  # demand (or access value) this site adds after the ones before it
    cumulative: float


@dataclass(frozen=True)
class SitingResult:
    picks: tuple[Pick, ...]
    value: float  # covered demand (or capped access value) of all picks together
    swaps: int = 0
    reached_target: bool | None = None  # set covering only

    @property
    def chosen(self) -> list[int]:
        return [p.candidate for p in self.picks]


def _lazy_greedy(
    problem: CoverProblem,
    k: int | None,
    remaining: np.ndarray,
    stop_at: float | None = None,
    banned: frozenset[int] = frozenset(),
) -> list[Pick]:
    """Greedy by largest gain with lazy re-scoring; stops after k sites, when nothing more
    can be added, or once the running total reaches `stop_at`. `remaining` is used up."""
    gains = np.asarray(problem.by_candidate @ remaining).ravel()
    heap = [(-g, j) for j, g in enumerate(gains) if g > 0.0 and j not in banned]
    heapq.heapify(heap)
    picks: list[Pick] = []
    total = 0.0
    while heap and (k is None or len(picks) < k):
        if stop_at is not None and total >= stop_at:
            break
        _, j = heapq.heappop(heap)
        rows = problem.rows(j)
        gain = float(remaining[rows].sum())
        if gain <= 0.0:
            continue
        if heap and gain < -heap[0][0]:
            heapq.heappush(heap, (-gain, j))
            continue
        remaining[rows] = 0.0
        total += gain
        picks.append(Pick(candidate=j, added=gain, cumulative=total))
    return picks


def in_greedy_order(problem: CoverProblem, chosen: Sequence[int]) -> tuple[Pick, ...]:
    """The chosen sites ordered greedily among themselves: the curve a planner reads."""
    remaining = problem.demand.copy()
    left = list(chosen)
    picks = []
    total = 0.0
    while left:
        best = max(left, key=lambda j: (float(remaining[problem.rows(j)].sum()), -j))
        gain = float(remaining[problem.rows(best)].sum())
        remaining[problem.rows(best)] = 0.0
        total += gain
        picks.append(Pick(candidate=best, added=gain, cumulative=total))
        left.remove(best)
    return tuple(picks)


def _interchange(problem: CoverProblem, chosen: list[int], max_passes: int) -> int:
    """Swap chosen sites for better ones in place; returns how many swaps were made.

    What a candidate would add once site s is gone is what it adds now plus the demand of the
    cells only s covers that it reaches: one product with the whole matrix per pass (and per
    swap), and per site only a product with the few rows s alone covers."""
    counts = np.zeros(len(problem.cells), dtype=np.int32)
    for j in chosen:
        counts[problem.rows(j)] += 1
    in_solution = np.zeros(problem.candidates, dtype=bool)
    in_solution[chosen] = True
    swaps = 0
    for _ in range(max_passes):
        improved = False
        adds_now = problem.by_candidate @ np.where(counts == 0, problem.demand, 0.0)
        for position, site in enumerate(list(chosen)):
            rows = problem.rows(site)
            freed = rows[counts[rows] == 1]
            loss = float(problem.demand[freed].sum())
            gains = adds_now + problem.by_cell[freed].T @ problem.demand[freed]
            gains[in_solution] = -1.0
            best = int(np.argmax(gains))
            if gains[best] > loss + GAIN_EPSILON:
                chosen[position] = best
                in_solution[site] = False
                in_solution[best] = True
                counts[rows] -= 1
                counts[problem.rows(best)] += 1
                adds_now = problem.by_candidate @ np.where(counts == 0, problem.demand, 0.0)
                swaps += 1
                improved = True
        if not improved:
            break
    return swaps


def maximal_covering(
    problem: CoverProblem,
    k: int,
    *,
    swap_passes: int = 3,
    perturbation_rounds: int = 10,
    seed: int = 0,
) -> SitingResult:
    """At most k sites covering the most demand (fewer when nothing more can be covered).

    Greedy, interchange, then iterated local search: drop a few chosen sites at random, refill
    greedily without them, interchange again, keep the result when it covers more. Swaps alone
    stop in local optima (about 94% of the optimum on hard random instances); a few rounds of
    this escape most of them. Seeded, so a planner gets the same answer twice."""
    if k <= 0:
        raise ValueError("k must be positive")
    greedy = _lazy_greedy(problem, k, problem.demand.copy())
    best = [p.candidate for p in greedy]
    swaps = _interchange(problem, best, swap_passes) if swap_passes > 0 else 0
    value = problem.covered_by(best)
    rng = np.random.default_rng(seed)
    for _ in range(perturbation_rounds if swap_passes > 0 else 0):
        if len(best) < PERTURBED_SITES:
            break
        shuffled = [int(j) for j in rng.permutation(best)]
        dropped, kept = shuffled[:PERTURBED_SITES], shuffled[PERTURBED_SITES:]
        remaining = problem.demand.copy()
        for j in kept:
            remaining[problem.rows(j)] = 0.0
        refill = _lazy_greedy(
            problem, k - len(kept), remaining, banned=frozenset(dropped) | frozenset(kept)
        )
        trial = kept + [p.candidate for p in refill]
        trial_swaps = _interchange(problem, trial, swap_passes)
        trial_value = problem.covered_by(trial)
        if trial_value > value + GAIN_EPSILON:
            best, value = trial, trial_value
            swaps += trial_swaps + PERTURBED_SITES
    picks = in_greedy_order(problem, best) if swaps else tuple(greedy)
    return SitingResult(picks=picks, value=value, swaps=swaps)


def set_covering(problem: CoverProblem, needed: float, *, limit: int | None = None) -> SitingResult:
    """Few sites that together cover at least `needed` demand: greedy until reached, then
    sites that became redundant are dropped (last chosen first)."""
    picks = _lazy_greedy(problem, limit, problem.demand.copy(), stop_at=needed)
    chosen = [p.candidate for p in picks]
    for site in reversed(list(chosen)):
        rest = [j for j in chosen if j != site]
        if rest and problem.covered_by(rest) >= needed:
            chosen = rest
    value = problem.covered_by(chosen)
    return SitingResult(
        picks=in_greedy_order(problem, chosen), value=value, reached_target=value >= needed
    )


def maximal_access(
    problem: CoverProblem,
    supply_ratios: np.ndarray,
    access: np.ndarray,
    target: float,
    k: int,
) -> SitingResult:
    """At most k sites maximising demand-weighted 2SFCA access, each cell's access capped at
    `target` (seats per worker): without the cap every site adds exactly its seats, wherever
    it goes. `access` is each cell's access now; `supply_ratios` a candidate's seats over the
    demand in its catchment. Capped sums of additions are submodular, so lazy greedy holds."""
    if k <= 0:
        raise ValueError("k must be positive")
    level = access.astype(np.float64).copy()

    def gain(j: int) -> float:
        rows = problem.rows(j)
        before = np.minimum(level[rows], target)
        after = np.minimum(level[rows] + supply_ratios[j], target)
        return float((problem.demand[rows] * (after - before)).sum())

    heap = [(-gain(j), j) for j in range(problem.candidates)]
    heap = [item for item in heap if item[0] < 0.0]
    heapq.heapify(heap)
    picks: list[Pick] = []
    total = 0.0
    while heap and len(picks) < k:
        _, j = heapq.heappop(heap)
        current = gain(j)
        if current <= 0.0:
            continue
        if heap and current < -heap[0][0]:
            heapq.heappush(heap, (-current, j))
            continue
        level[problem.rows(j)] += supply_ratios[j]
        total += current
        picks.append(Pick(candidate=j, added=current, cumulative=total))
    return SitingResult(picks=tuple(picks), value=total)
