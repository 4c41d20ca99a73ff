"""Table values of the distributed runtime, and their bytes.

One value per key holds everything a step changes for that key, so that a step's effect on
the table is one changelog message: a worker killed mid-step has either saved all of it or
none of it, and the replayed message then finds its event id remembered or not at all.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from geo.coverage import CoverageIndex
from schemas.alerts import Alert
from schemas.state import StationRecord
from schemas.stations import StationState
from streams.coverage import ZoneCoverage, ZoneStation
from streams.overload import VisitWindow

# One encoder, made once: `json.dumps` with any option builds a new encoder on every call.
COMPACT = json.JSONEncoder(separators=(",", ":"))
ZONE_STATIONS_KEPT = 1 << 16  # encoded station entries kept between zone writes
WINDOW_ENTRIES_KEPT = 1 << 16  # encoded visit-window entries kept between station writes


class SeenEvents:
    """The event ids a station has applied, each with when it happened (POSIX seconds), and
    their JSON kept as they come. A busy station remembers many ids, and its slot is written
    with every batch it is in: encoding them all each time, and scanning them all for the
    ones to forget, made each event cost in proportion to the station's traffic. The ids are
    forgotten oldest first, off a heap."""

    __slots__ = ("_at", "_expiry", "_pairs")

    def __init__(self, at: Mapping[str, float] | None = None) -> None:
        self._at: dict[str, float] = {}
        self._pairs: dict[str, str] = {}  # event id -> its `"id":seconds` JSON
        self._expiry: list[tuple[float, str]] = []  # a heap of (seconds, event id)
        for event_id, when in (at or {}).items():
            self.add(event_id, when)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._at

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeenEvents) and self._at == other._at

    def __repr__(self) -> str:
        return f"SeenEvents({self._at!r})"

    def add(self, event_id: str, at: float) -> None:
        """Remember `event_id` (the first time it is seen; a copy changes nothing)."""
        if event_id in self._at:
            return
        self._at[event_id] = at
        self._pairs[event_id] = _seen_pair(event_id, at)
        heapq.heappush(self._expiry, (at, event_id))

    def forget_before(self, cutoff: float) -> None:
        """Forget the ids that happened at or before `cutoff`."""
        expiry = self._expiry
        while expiry and expiry[0][0] <= cutoff:
            _, event_id = heapq.heappop(expiry)
            del self._at[event_id], self._pairs[event_id]

    def as_dict(self) -> dict[str, float]:
        return dict(self._at)

    def json(self) -> str:
        return "{" + ",".join(self._pairs.values()) + "}"


def _seen_pair(event_id: str, at: float) -> str:
    return f"{COMPACT.encode(event_id)}:{COMPACT.encode(at)}"


@dataclass
class StationSlot:
    """A station's ledger record, visit window, station alerts and the event ids it has seen."""

    station_id: str
    record: StationRecord | None = None
    window: VisitWindow = field(default_factory=list)
    alerts: dict[str, Alert] = field(default_factory=dict)
    seen: SeenEvents = field(default_factory=SeenEvents)
    # The record and its JSON: a record is written to the changelog with every slot write
    # and to the station-state topic when it changes, and most writes carry the same record.
    encoded: tuple[StationRecord, str] | None = field(default=None, compare=False, repr=False)

    def forget_before(self, horizon: datetime) -> None:
        """Event ids older than anything that could still change state need no memory."""
        self.seen.forget_before(horizon.timestamp())

    def record_json(self) -> str:
        """The record as JSON ("null" for none), encoded once per record."""
        if self.record is None:
            return "null"
        if self.encoded is None or self.encoded[0] is not self.record:
            self.encoded = (self.record, self.record.model_dump_json())
        return self.encoded[1]


def dedupe_horizon(now: datetime, window_minutes: float, lateness_minutes: float) -> datetime:
    """A copy of an event older than this is late, or outside the visit window, anyway."""
    return now - timedelta(minutes=max(window_minutes, lateness_minutes))


def dump_station_slot(slot: StationSlot) -> bytes:
    """Assembled from its parts' JSON: the record's, the seen ids' and the visit window
    entries' are kept between writes, the models' own encoders make the rest."""
    station_id = json.dumps(slot.station_id)
    window = "[" + ",".join(map(_window_entry_json, slot.window)) + "]"
    alerts = ",".join(
        f"{json.dumps(key)}:{alert.model_dump_json()}" for key, alert in slot.alerts.items()
    )
    return (
        f'{{"station_id":{station_id},"record":{slot.record_json()},"window":{window},'
        f'"alerts":{{{alerts}}},"seen":{slot.seen.json()}}}'
    ).encode()


@lru_cache(maxsize=WINDOW_ENTRIES_KEPT)
def _window_entry_json(entry: tuple[datetime, int]) -> str:
    """A busy station's window holds many entries, and is written with every batch it is in
    while most of them stay as they were: each entry is encoded once."""
    at, visitors = entry
    return COMPACT.encode([at.isoformat(), visitors])


def load_station_slot(raw: bytes | dict[str, Any]) -> StationSlot:
    """From bytes, or from what a JSON decoder already made of them."""
    data = raw if isinstance(raw, dict) else json.loads(raw)
    return StationSlot(
        station_id=data["station_id"],
        record=StationRecord.model_validate(data["record"]) if data["record"] else None,
        window=[(datetime.fromisoformat(at), int(n)) for at, n in data["window"]],
        alerts={key: Alert.model_validate(value) for key, value in data["alerts"].items()},
        seen=SeenEvents({key: _seconds(at) for key, at in data["seen"].items()}),
    )


def _seconds(at: str | float) -> float:
    """A seen event's time: slots written before it was a number hold ISO text."""
    return datetime.fromisoformat(at).timestamp() if isinstance(at, str) else float(at)


@dataclass
class ZoneSlot:
    """A zone's coverage book (the stations reaching into it) and its underserved alert."""

    coverage: ZoneCoverage
    alert: Alert | None = None


def dump_zone_slot(slot: ZoneSlot) -> bytes:
    """Only the stations are written: the cell counts are rebuilt from them on load. A zone is
    written whole whenever one of its stations moves, while most of its stations stay as they
    were: each station's JSON is kept from the last write (a station's entry is immutable),
    so a write encodes only the stations that changed."""
    stations = ",".join(
        f"{json.dumps(station_id)}:{_zone_station_json(known)}"
        for station_id, known in slot.coverage.stations.items()
    )
    alert = COMPACT.encode(slot.alert.model_dump(mode="json")) if slot.alert else "null"
    zone = json.dumps(slot.coverage.zone)
    weight = json.dumps(slot.coverage.index.degraded_weight)
    return f'{{"zone":{zone},"weight":{weight},"stations":{{{stations}}},"alert":{alert}}}'.encode()


@lru_cache(maxsize=ZONE_STATIONS_KEPT)
def _zone_station_json(known: ZoneStation) -> str:
    return COMPACT.encode([known.state.value, list(known.cells), known.supply_ratio])


def load_zone_slot(raw: bytes | dict[str, Any]) -> ZoneSlot:
    """From bytes, or from what a JSON decoder already made of them."""
    data = raw if isinstance(raw, dict) else json.loads(raw)
    coverage = ZoneCoverage(zone=data["zone"], index=CoverageIndex(float(data["weight"])))
    for station_id, (state, cells, ratio) in data["stations"].items():
        known = ZoneStation(StationState(state), tuple(cells), float(ratio))
        coverage.index.move(known.cells, None, known.state, supply_ratio=known.supply_ratio)
        coverage.stations[station_id] = known
    alert = Alert.model_validate(data["alert"]) if data["alert"] else None
    return ZoneSlot(coverage=coverage, alert=alert)
