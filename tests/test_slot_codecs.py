"""The distributed runtime's table values survive their bytes: a zone slot written and read
back holds the same stations and the same cell counts, and its bytes are plain JSON equal to
encoding the slot afresh (the per-station encodings kept between writes never go stale); a
station slot read back is the slot written, whatever record it held before (its record's
encoding, kept between writes, never goes stale either)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import h3
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.coverage import CoverageIndex
from schemas.alerts import Alert, AlertEvidence, AlertKind, AlertStatus
from schemas.events import AmenityState, CheckInStatus
from schemas.state import StationRecord
from schemas.stations import Amenity, StationState
from streams.coverage import ZoneCoverage, ZoneStation
from streams.slots import (
    SeenEvents,
    StationSlot,
    ZoneSlot,
    dump_station_slot,
    dump_zone_slot,
    load_station_slot,
    load_zone_slot,
)

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


T0 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
instants = st.integers(min_value=-(10**6), max_value=10**6).map(lambda s: T0 + timedelta(seconds=s))
records = st.builds(
    StationRecord,
    station_id=st.just("S-001"),
    check_in_status=st.none() | st.sampled_from(list(CheckInStatus)),
    check_in_at=st.none() | instants,
    seats_available=st.none() | st.integers(min_value=0, max_value=50),
    amenities=st.dictionaries(st.sampled_from(list(Amenity)), st.sampled_from(list(AmenityState))),
    health_at=st.none() | instants,
    state=st.sampled_from(list(StationState)),
    state_reason=st.text(max_size=20),
)
alerts = st.builds(
    Alert,
    alert_id=st.uuids().map(str),
    kind=st.sampled_from([AlertKind.station_silent, AlertKind.station_degraded]),
    subject=st.just("S-001"),
    status=st.sampled_from(list(AlertStatus)),
    condition_since=instants,
    updated_at=instants,
    evidence=st.builds(AlertEvidence, detail=st.text(max_size=20)),
)
station_slots = st.builds(
    StationSlot,
    station_id=st.just("S-001"),
    record=st.none() | records,
    window=st.lists(st.tuples(instants, st.integers(min_value=1, max_value=9)), max_size=4),
    alerts=st.lists(alerts, max_size=2).map(lambda found: {a.key: a for a in found}),
    seen=st.dictionaries(
        st.uuids().map(str), instants.map(lambda at: at.timestamp()), max_size=5
    ).map(SeenEvents),
)


@settings(max_examples=80, deadline=None)
@given(slot=station_slots, earlier=st.none() | records)
def test_station_slot_round_trips_through_its_bytes(
    slot: StationSlot, earlier: StationRecord | None
) -> None:
    if earlier is not None:  # the slot encoded another record before this one
        record, slot.record = slot.record, earlier
        dump_station_slot(slot)
        slot.record = record
    raw = dump_station_slot(slot)
    data = json.loads(raw)
    assert data["record"] == (slot.record.model_dump(mode="json") if slot.record else None)
    back = load_station_slot(raw)
    assert back == slot
    assert load_station_slot(data) == slot  # what Faust's recovery hands over: decoded JSON


@settings(max_examples=80, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["add", "forget"]), st.sampled_from("abcdefgh"), instants),
        max_size=30,
    )
)
def test_seen_events_remember_as_a_plain_mapping_would(
    steps: list[tuple[str, str, datetime]],
) -> None:
    seen, oracle = SeenEvents(), {}
    for action, event_id, at in steps:
        if action == "add":
            seen.add(event_id, at.timestamp())
            oracle.setdefault(event_id, at.timestamp())  # the first sighting is kept
        else:
            seen.forget_before(at.timestamp())
            oracle = {key: when for key, when in oracle.items() if when > at.timestamp()}
        assert seen.as_dict() == oracle
        assert json.loads(seen.json()) == oracle
        assert all((event_id in seen) == (event_id in oracle) for event_id in "abcdefgh")


def test_a_station_slot_written_with_times_as_text_still_loads() -> None:
    """Slots written before seen events' times were numbers held ISO text."""
    at = T0 - timedelta(minutes=3)
    raw = json.dumps(
        {
            "station_id": "S-001",
            "record": None,
            "window": [],
            "alerts": {},
            "seen": {"e-1": at.isoformat()},
        }
    )
    assert load_station_slot(raw.encode()).seen.as_dict() == {"e-1": at.timestamp()}
