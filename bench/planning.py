"""Planning benchmarks: siting at city scale, the heuristic against the exact solver at district
scale, and a what-if at city scale.

The live state is built in memory the way the embedded runtime builds it (a `Pipeline` over
dicts, restored from station records), without a store: planning reads only that state. Every
station is available except a seeded tenth that is closed or silent, so there are gaps.

Scales (from `generate_sample_city`, seed 7):
- city: 20,000 stations on 15,000 km2 (about 200,000 demand cells); `--quick`: 2,000 on 1,500;
- district: 2,300 stations on the default area (about 6,000 cells); `--quick`: 600 stations.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bench.coverage import (
    CITY_AREA_KM2,
    CITY_STATIONS,
    DISTRICT_STATIONS,
    QUICK_CITY_AREA_KM2,
    QUICK_CITY_STATIONS,
    SEED,
)
from bench.results import Result
from demo.sample_city import WITHIN_OPENING_HOURS, SampleCity, generate_sample_city
from geo.demand import DemandLayer
from geo.siting import CoverProblem, maximal_covering
from geo.siting_exact import exact_maximal_covering
from schemas.planning import ScenarioChanges, SitingRequest
from schemas.state import StationRecord
from schemas.stations import Station, StationState
from streams.coverage import ZoneCoverage
from streams.pipeline import Pipeline
from streams.planner import Planner
from streams.world import build_catchments, build_grid
from waystation.settings import Settings

NOW = WITHIN_OPENING_HOURS
DOWN_SHARE = 0.1  # stations closed or silent in the live state
SITING_K = 50
SITING_TARGET_S = 10.0
EXACT_K = 10
QUICK_EXACT_K = 5
VS_EXACT_TARGET = 0.98
QUICK_DISTRICT_STATIONS = 600
WHATIF_CLOSED = 100
WHATIF_RUNS = 5
QUICK_WHATIF_RUNS = 2
WHATIF_TARGET_MS = 500.0
SETTINGS = Settings.model_construct()  # the shipped defaults, not the environment


@dataclass
class InMemoryLive:
    """The live state planning reads, built like the embedded runtime's."""

    settings: Settings
    registry: dict[str, Station]
    demand: DemandLayer
    zones: dict[str, ZoneCoverage]
    pipeline: Pipeline

    @contextmanager
    def reading(self) -> Iterator[Pipeline]:
        yield self.pipeline


def live_state(city: SampleCity, rng: random.Random) -> InMemoryLive:
    grid = build_grid(SETTINGS, list(city.subdistricts))
    demand = DemandLayer.build(grid, city.demand)
    registry = {s.station_id: s for s in city.stations}
    down = set(rng.sample(sorted(registry), int(DOWN_SHARE * len(registry))))
    records = {
        sid: StationRecord(
            station_id=sid,
            state=rng.choice((StationState.closed, StationState.silent))
            if sid in down
            else StationState.available,
            state_since=NOW,
        )
        for sid in registry
    }
    zones: dict[str, ZoneCoverage] = {}
    pipeline = Pipeline(
        settings=SETTINGS,
        demand=demand,
        registry=registry,
        catchments=build_catchments(SETTINGS, grid),
        records=records,
        zones=zones,
        alerts={},
        visits={},
    )
    pipeline.restore(NOW)
    return InMemoryLive(SETTINGS, registry, demand, zones, pipeline)


def _city(quick: bool) -> tuple[SampleCity, str]:
    stations = QUICK_CITY_STATIONS if quick else CITY_STATIONS
    area = QUICK_CITY_AREA_KM2 if quick else CITY_AREA_KM2
    city = generate_sample_city(seed=SEED, stations=stations, area_km2=area)
    made_by = (
        f"`generate_sample_city(seed={SEED}, stations={stations}, area_km2={area:g})` "
        f"({len(city.demand):,} demand cells)"
    )
    return city, made_by


def city_results(quick: bool) -> list[Result]:
    city, made_by = _city(quick)
    rng = random.Random(SEED)
    started = time.perf_counter()
    live = live_state(city, rng)
    built_s = time.perf_counter() - started
    planner = Planner(live)

    started = time.perf_counter()
    answer = planner.sites(SitingRequest(k=SITING_K), None, NOW)
    siting_s = time.perf_counter() - started

    records = live.pipeline.ledger.records
    available = [s for s, r in records.items() if r.state is StationState.available]
    times = []
    lost = 0
    for _ in range(WHATIF_RUNS if not quick else QUICK_WHATIF_RUNS):
        closing = rng.sample(sorted(available), WHATIF_CLOSED)
        started = time.perf_counter()
        diff = planner.whatif(ScenarioChanges(close=closing), None, NOW)
        times.append((time.perf_counter() - started) * 1000)
        lost = len(diff.cells_lost)
    return [
        Result(
            "planning.siting.city.k50.s",
            siting_s,
            "s",
            target=SITING_TARGET_S,
            about=(
                f"Siting {SITING_K} new stations at city scale with the heuristic (lazy greedy, "
                "interchange, local search): `Planner.sites` on the live state, from reading "
                "coverage to the ranked sites, candidates being every uncovered demand cell's "
                f"centre. The city: {made_by}, a seeded {DOWN_SHARE:.0%} of stations closed or "
                "silent."
            ),
            detail=(
                f"This run: {answer.candidates:,} candidates, {len(answer.picks)} sites adding "
                f"{answer.demand_covered_after_workers - answer.demand_covered_before_workers:,.0f}"
                f" workers; building the live state took {built_s:.1f} s (not counted)."
            ),
        ),
        Result(
            "planning.whatif.city.ms",
            statistics.median(times),
            "ms",
            target=WHATIF_TARGET_MS,
            about=(
                f"A what-if closing {WHATIF_CLOSED} random available stations at city scale, "
                "until the diff (cells and demand lost, zones changed) is ready: "
                f"`Planner.whatif`, median of {len(times)} runs. Same city as above."
            ),
            detail=f"This run: {', '.join(f'{t:.0f}' for t in times)} ms; {lost:,} cells lost.",
        ),
    ]


def district_results(quick: bool) -> list[Result]:
    stations = QUICK_DISTRICT_STATIONS if quick else DISTRICT_STATIONS
    k = QUICK_EXACT_K if quick else EXACT_K
    city = generate_sample_city(seed=SEED, stations=stations)
    live = live_state(city, random.Random(SEED))
    grid = live.demand.grid

    def covered(cell: str) -> bool:
        zone = live.zones.get(grid.zone_of(cell))
        return zone is not None and zone.index.is_covered(cell)

    uncovered = {c: d for c, d in live.demand.demand.items() if d > 0 and not covered(c)}
    minimum = SETTINGS.min_cell_demand_workers
    points = [live.demand.grid.centre(c) for c in sorted(uncovered) if uncovered[c] >= minimum]
    reach = live.pipeline.catchments.many(points)
    problem = CoverProblem.build(uncovered, reach)

    started = time.perf_counter()
    heuristic = maximal_covering(
        problem,
        k,
        swap_passes=SETTINGS.siting_swap_passes,
        perturbation_rounds=SETTINGS.siting_perturbation_rounds,
    )
    heuristic_s = time.perf_counter() - started
    started = time.perf_counter()
    exact = exact_maximal_covering(problem, k)
    exact_s = time.perf_counter() - started
    return [
        Result(
            "planning.siting.district.vs_exact",
            heuristic.value / exact.value if exact.value else 1.0,
            "share",
            target=VS_EXACT_TARGET,
            baseline="spopt MCLP solved exactly by CBC (PuLP)",
            ratio=exact_s / heuristic_s,
            about=(
                f"The heuristic's covered demand as a share of the exact optimum, k = {k}, at "
                f"district scale (`generate_sample_city(seed={SEED}, stations={stations})`, "
                f"{len(city.demand):,} cells, {DOWN_SHARE:.0%} of stations down); candidates: "
                "every uncovered cell's centre. Ratio: exact solve time over heuristic time."
            ),
            detail=(
                f"This run: {problem.candidates:,} candidates over {len(problem.cells):,} cells;"
                f" heuristic {heuristic.value:,.1f} workers in {heuristic_s:.2f} s, exact "
                f"{exact.value:,.1f} in {exact_s:.2f} s."
            ),
        )
    ]


def run(quick: bool) -> list[Result]:
    return district_results(quick) + city_results(quick)
