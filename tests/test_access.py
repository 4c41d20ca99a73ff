"""2SFCA access kept incrementally equals the textbook two-step computation from scratch."""

from __future__ import annotations

import math

import h3
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.access import supply_ratio
from geo.coverage import CoverageIndex
from schemas.stations import StationState

ORIGIN = h3.latlng_to_cell(39.95, 116.48, 9)
POOL = sorted(h3.grid_disk(ORIGIN, 3))  # 37 cells

stations_strategy = st.lists(
    st.tuples(
        st.integers(1, 60),  # capacity
        st.sets(st.sampled_from(POOL), min_size=1, max_size=12),  # catchment
    ),
    min_size=1,
    max_size=8,
)


def reference_2sfca(
    stations: list[tuple[int, set[str]]],
    states: list[StationState | None],
    demand: dict[str, float],
    degraded_weight: float,
) -> dict[str, float]:
    """Step one: each station's seats over the demand in its catchment. Step two: per cell,
    the weighted sum over the stations that count and reach it."""
    weights = {StationState.available: 1.0, StationState.degraded: degraded_weight}
    scores = dict.fromkeys(POOL, 0.0)
    for (capacity, catchment), state in zip(stations, states, strict=True):
        workers = sum(demand[c] for c in catchment)
        ratio = capacity / workers if workers > 0 else 0.0  # demand is 0 or at least 0.01
        for cell in catchment:
            scores[cell] += weights.get(state, 0.0) * ratio  # type: ignore[arg-type]
    return scores


@settings(max_examples=150, deadline=None)
@given(
    stations=stations_strategy,
    demand_values=st.lists(
        st.one_of(st.just(0.0), st.floats(0.01, 50)), min_size=len(POOL), max_size=len(POOL)
    ),
    degraded_weight=st.floats(0, 1),
    data=st.data(),
)
def test_incremental_access_equals_reference(
    stations: list[tuple[int, set[str]]],
    demand_values: list[float],
    degraded_weight: float,
    data: st.DataObject,
) -> None:
    demand = dict(zip(POOL, demand_values, strict=True))
    index = CoverageIndex(degraded_weight)
    ratios = [supply_ratio(cap, cells, demand) for cap, cells in stations]
    states: list[StationState | None] = [None] * len(stations)
    moves = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(stations) - 1), st.sampled_from(list(StationState))),
            max_size=30,
        )
    )
    for which, new in moves:
        index.move(stations[which][1], states[which], new, supply_ratio=ratios[which])
        states[which] = new
    expected = reference_2sfca(stations, states, demand, degraded_weight)
    for cell in POOL:
        assert math.isclose(index.access(cell), expected[cell], rel_tol=1e-9, abs_tol=1e-9), cell


def test_supply_ratio_is_seats_per_worker_and_zero_without_demand() -> None:
    cells = POOL[:4]
    assert supply_ratio(10, cells, dict.fromkeys(cells, 5.0)) == 0.5
    assert supply_ratio(10, cells, {}) == 0.0
