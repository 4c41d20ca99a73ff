"""The distributed runtime's table values survive their bytes: a zone slot written and read
back holds the same stations and the same cell counts, and its bytes are plain JSON equal to
encoding the slot afresh (the per-station encodings kept between writes never go stale)."""

from __future__ import annotations

import json
from typing import Any

import h3
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.coverage import CoverageIndex
from schemas.stations import StationState
from streams.coverage import ZoneCoverage, ZoneStation
from streams.slots import ZoneSlot, dump_zone_slot, load_zone_slot

CELLS = sorted(h3.grid_disk(h3.latlng_to_cell(39.92, 116.46, 9), 2))
WEIGHT = 0.5

stations = st.dictionaries(
    st.sampled_from([f"S-{i:03d}" for i in range(12)]),
    st.tuples(
        st.sampled_from(list(StationState)),
        st.lists(st.sampled_from(CELLS), min_size=1, max_size=6, unique=True),
        st.floats(min_value=0, max_value=5, allow_nan=False),
    ),
    max_size=8,
)


def zone_slot(entries: dict[str, Any]) -> ZoneSlot:
    coverage = ZoneCoverage(zone="Z", index=CoverageIndex(WEIGHT))
    for station_id, (state, cells, ratio) in entries.items():
        known = ZoneStation(state, tuple(sorted(cells)), ratio)
        coverage.index.move(known.cells, None, known.state, supply_ratio=ratio)
        coverage.stations[station_id] = known
    return ZoneSlot(coverage=coverage)


def plain(slot: ZoneSlot) -> dict[str, Any]:
    """The slot as JSON, encoded the obvious way (the oracle)."""
    return {
        "zone": slot.coverage.zone,
        "weight": slot.coverage.index.degraded_weight,
        "stations": {
            sid: [k.state.value, list(k.cells), k.supply_ratio]
            for sid, k in slot.coverage.stations.items()
        },
        "alert": None,
    }


@settings(max_examples=60, deadline=None)
@given(first=stations, second=stations)
def test_zone_slot_round_trips_through_its_bytes(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    for entries in (first, second, {**first, **second}):  # later writes reuse encodings
        slot = zone_slot(entries)
        raw = dump_zone_slot(slot)
        assert json.loads(raw) == plain(slot)
        back = load_zone_slot(raw)
        assert back.coverage.stations == slot.coverage.stations
        for cell in CELLS:
            assert back.coverage.index.is_covered(cell) == slot.coverage.index.is_covered(cell)
            assert back.coverage.index.access(cell) == slot.coverage.index.access(cell)
