"""What the dashboard reads, assembled from the live runtime and the store: the map snapshot
(compact, columnar), the key's scope, district outlines and a station's recent events."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import h3
from shapely.geometry import shape

from geo.demand import DemandLayer
from schemas.alerts import AlertKind
from schemas.api import CellStatus
from schemas.dashboard import (
    BoundaryCollection,
    Kpis,
    StationEvent,
    StationEvents,
    Whoami,
)
from schemas.events import EventType
from schemas.geography import BoundaryLevel
from schemas.stations import Station, StationState
from services.alert_handling import handling_by_alert
from services.auth import Principal
from services.bootstrap import SAMPLE_CITY_KEY
from services.station_tally import take_tally
from streams.clock import Clock
from streams.embedded import EmbeddedRuntime
from streams.ledger import counted_at
from streams.pipeline import StepOutcome
from waystation.settings import Settings

STATES = list(StationState)
STATE_INDEX = {state: i for i, state in enumerate(STATES)}
STATUSES = [status.value for status in CellStatus]
STATUS_INDEX = {status: i for i, status in enumerate(CellStatus)}
COORD_DECIMALS = 5  # ~1 m: finer than any marker or cell edge on screen
SCORE_DIGITS = 4  # significant digits of access scores sent to the page


def _round_sig(value: float, digits: int = SCORE_DIGITS) -> float:
    return float(f"{value:.{digits}g}")


class CellCentres:
    """Cell centres, computed once per demand layer (a city has 200,000 cells)."""

    def __init__(self) -> None:
        self._layer: DemandLayer | None = None
        self._centres: dict[str, tuple[float, float]] = {}

    def of(self, layer: DemandLayer, cells: Iterable[str]) -> list[tuple[float, float]]:
        if layer is not self._layer:
            self._centres = {
                cell: tuple(round(v, COORD_DECIMALS) for v in h3.cell_to_latlng(cell))  # type: ignore[misc]
                for cell in layer.demand
            }
            self._layer = layer
        return [self._centres[cell] for cell in cells]


@dataclass
class CellChanges:
    """What outcomes changed since a district's cells were last read: cells, stations whose
    catchments moved, or something that cannot be pinned to cells (`whole`)."""

    cells: set[str] = field(default_factory=set)
    stations: set[str] = field(default_factory=set)
    whole: bool = False


@dataclass
class CellColumns:
    """A district's `cells` columns as the map sends them, kept between requests. The columns
    that change with coverage (status, access, covered) are patched for the cells an outcome
    named; the rest is encoded once per demand layer."""

    key: tuple[object, ...]
    cells: list[str]
    row_of: dict[str, int]
    live: dict[str, list[Any]]
    encoded_static: str
    subdistricts: frozenset[str]
    demand_workers: float
    cell_demand: list[float]

    def covered_workers(self) -> float:
        covered = self.live["covered"]
        return sum(d for d, c in zip(self.cell_demand, covered, strict=True) if c)

    def encoded(self) -> str:
        return "{" + self.encoded_static + "," + _json(self.live)[1:]


@dataclass(frozen=True)
class CellsDocument:
    """The `cells` member of a map as sent, with the totals the KPIs take from it."""

    encoded: str
    demand_workers: float
    covered_workers: float


@dataclass(frozen=True)
class StationRows:
    """A district's registered stations as of a registry version (change log seq, count)."""

    key: tuple[object, ...]
    stations: list[Station]


class DashboardData:
    def __init__(self, runtime: EmbeddedRuntime, settings: Settings, clock: Clock) -> None:
        self.runtime = runtime
        self.store = runtime.store
        self.settings = settings
        self.clock = clock
        self.zone = ZoneInfo(settings.timezone)
        self.centres = CellCentres()
        self._cells: dict[str | None, CellColumns] = {}
        self._changes: dict[str | None, CellChanges] = {}
        self._changes_lock = threading.Lock()  # short: the runtime's worker takes it
        self._reading_lock = threading.Lock()  # one request reads or patches cells at a time
        runtime.listeners.append(self.on_outcome)
        self._stations: dict[str | None, StationRows] = {}

    # scope ---------------------------------------------------------------------------------

    def known_districts(self) -> list[str]:
        with self.store.transaction() as tx:
            names = set(tx.stations.districts())
        return sorted(names | set(self.runtime.demand.districts))

    def whoami(self, who: Principal) -> Whoami:
        scope = who.district_scope()
        known = self.known_districts()
        return Whoami(
            role=who.role,
            label=who.key.label,
            districts=[d for d in known if scope is None or d in scope],
            all_districts=scope is None,
            timezone=self.settings.timezone,
            basemap_tile_url=self.settings.basemap_tile_url,
            basemap_attribution=self.settings.basemap_attribution,
            sample_data=self.sample_data(),
        )

    def sample_data(self) -> bool:
        with self.store.transaction(readonly=True) as tx:
            return tx.meta.get(SAMPLE_CITY_KEY) is not None

    # the map -------------------------------------------------------------------------------

    def midnight(self, now: datetime) -> datetime:
        return datetime.combine(now.astimezone(self.zone).date(), time.min, tzinfo=self.zone)

    def visits_by_station(self, now: datetime) -> dict[str, int]:
        with self.store.transaction() as tx:
            return tx.events.count_by_station_since(self.midnight(now), type=EventType.visit.value)

    def stations_of(self, district: str | None) -> list[Station]:
        """The district's stations, loaded again only when the registry changed (loading
        20,000 stations takes seconds; every change goes through the change log)."""
        with self.store.transaction(readonly=True) as tx:
            key = (tx.station_changes.last_seq(), tx.stations.count())
            cached = self._stations.get(district)
            if cached is not None and cached.key == key:
                return cached.stations
            stations = tx.stations.list(district=district)
        self._stations[district] = StationRows(key, stations)
        return stations

    def on_outcome(self, outcome: StepOutcome) -> None:
        """The runtime's listener: note which kept cells an outcome may have changed (the
        cells the live stream sends updates for); what cannot be pinned to cells (an
        underserved zone, a station added, moved or retired) marks the whole district."""
        whole = bool(
            outcome.registry_changes
            or outcome.relocated
            or any(e.alert.kind is AlertKind.zone_underserved for e in outcome.alert_events)
        )
        with self._changes_lock:
            for changes in self._changes.values():
                changes.whole |= whole
                changes.cells.update(outcome.flipped_cells)
                changes.cells |= outcome.touched_cells
                changes.stations.update(c.station_id for c in outcome.station_changes)

    def cells_document(self, district: str | None, sub_index: Mapping[str, int]) -> CellsDocument:
        """The district's cells as the map sends them, encoded while no other request patches
        them."""
        with self._reading_lock:
            kept = self._cell_columns(district, sub_index)
            return CellsDocument(kept.encoded(), kept.demand_workers, kept.covered_workers())

    def _cell_columns(self, district: str | None, sub_index: Mapping[str, int]) -> CellColumns:
        """The district's cells: read whole once per demand layer, then patched where
        outcomes changed coverage (reading 200,000 cells takes seconds; call with the lock)."""
        with self._changes_lock:  # noted from here on: for the next request
            changes = self._changes.get(district)
            self._changes[district] = CellChanges()
        kept = self._cells.get(district)
        key = (id(self.runtime.demand), tuple(sub_index.items()))
        if kept is not None and changes is not None and kept.key == key and not changes.whole:
            dirty = self._catchments_of(changes.stations) | changes.cells
            if len(dirty) <= self.settings.live_max_cells_per_update:
                self._patch(kept, dirty)
                return kept
        kept = self._read_cells(district, sub_index)
        self._cells[district] = kept
        return kept

    def _catchments_of(self, station_ids: Iterable[str]) -> set[str]:
        registry = self.runtime.registry
        cells: set[str] = set()
        with self.runtime.reading() as pipeline:
            for station_id in station_ids:
                station = registry.get(station_id) if registry is not None else None
                if station is not None:
                    cells |= pipeline.catchments.cells(station.lat, station.lon)
        return cells

    def _patch(self, kept: CellColumns, cells: Iterable[str]) -> None:
        rows = [(kept.row_of[c], c) for c in cells if c in kept.row_of]
        with self.runtime.reading():
            views = [(row, self.runtime.coverage_map.view(cell)) for row, cell in rows]
        live = kept.live
        for row, view in views:
            live["status"][row] = STATUS_INDEX[view.status]
            live["access"][row] = _round_sig(view.access_score)
            live["covered"][row] = int(view.covered)

    def _read_cells(self, district: str | None, sub_index: Mapping[str, int]) -> CellColumns:
        runtime = self.runtime
        with runtime.reading():
            demand = runtime.demand
            cells = demand.cells_of_district(district)
            views = [runtime.coverage_map.view(cell) for cell in cells]
        centres = self.centres.of(demand, cells)
        static = {
            "id": cells,
            "lat": [c[0] for c in centres],
            "lon": [c[1] for c in centres],
            "demand": [round(v.demand_workers, 2) for v in views],
            "subdistrict": [sub_index.get(demand.subdistrict_of_cell[c] or "", -1) for c in cells],
        }
        return CellColumns(
            key=(id(demand), tuple(sub_index.items())),
            cells=cells,
            row_of={cell: row for row, cell in enumerate(cells)},
            live={
                "status": [STATUS_INDEX[v.status] for v in views],
                "access": [_round_sig(v.access_score) for v in views],
                "covered": [int(v.covered) for v in views],
            },
            encoded_static=_json(static)[1:-1],
            subdistricts=frozenset(demand.subdistrict_of_cell[c] or "" for c in cells) - {""},
            demand_workers=sum(v.demand_workers for v in views),
            cell_demand=[v.demand_workers for v in views],
        )

    def cell_subdistricts(self, district: str | None) -> frozenset[str]:
        """Subdistricts the district's demand cells lie in (the demand layer's, static)."""
        demand = self.runtime.demand
        cached = self._cells.get(district)
        if cached is not None and cached.key[0] == id(demand):
            return cached.subdistricts
        cells = demand.cells_of_district(district)
        return frozenset(demand.subdistrict_of_cell[c] or "" for c in cells) - {""}

    def snapshot_json(self, district: str | None, seq: int) -> bytes:
        """The whole map of a district (every district for None) as JSON bytes matching
        `MapSnapshot`; built by hand because pydantic would take seconds at city scale. The
        cells, most of the document, come from `cells_document`."""
        now = self.clock.now()
        stations = self.stations_of(district)
        tally = take_tally(self.runtime)
        open_alerts = tally.alerts(district)
        with self.store.transaction(readonly=True) as tx:
            actions = tx.alert_actions.for_alerts([a.alert_id for a in open_alerts])
        handling = handling_by_alert(actions)
        visits = self.visits_by_station(now)
        open_zones = sorted(a.subject for a in open_alerts if a.kind is AlertKind.zone_underserved)
        subdistricts = sorted(
            {s.subdistrict for s in stations if s.subdistrict} | self.cell_subdistricts(district)
        )
        sub_index = {name: i for i, name in enumerate(subdistricts)}
        cells = self.cells_document(district, sub_index)
        states = [tally.state_of(s.station_id) for s in stations]
        positions = [counted_at(s, tally.records.get(s.station_id)) for s in stations]  # buses move
        demand_total = cells.demand_workers
        covered_total = cells.covered_workers
        kpis = Kpis(
            district=district,
            stations_total=tally.stations_total(district),
            stations_by_state=tally.stations_by_state(district),
            demand_workers=round(demand_total, 1),
            demand_covered_workers=round(covered_total, 1),
            demand_covered_pct=round(100.0 * covered_total / demand_total, 2)
            if demand_total
            else 0.0,
            open_alerts_by_kind=tally.open_alerts_by_kind(district),
            visits_today=sum(visits.get(s.station_id, 0) for s in stations),
            visits_today_by_subdistrict=visits_by_subdistrict(stations, visits),
        )
        body: dict[str, Any] = {
            "district": district,
            "seq": seq,
            "generated_at": now.isoformat(),
            "states": [s.value for s in STATES],
            "statuses": STATUSES,
            "subdistricts": subdistricts,
            "stations": {
                "id": [s.station_id for s in stations],
                "name": [s.name for s in stations],
                "kind": [s.kind.value for s in stations],
                "lat": [round(p.lat, COORD_DECIMALS) for p in positions],
                "lon": [round(p.lon, COORD_DECIMALS) for p in positions],
                "state": [STATE_INDEX[s] for s in states],
                "subdistrict": [sub_index.get(s.subdistrict or "", -1) for s in stations],
            },
            "underserved_zones": open_zones,
            "open_alerts": [a.model_dump(mode="json") for a in open_alerts],
            "alert_handling": {k: h.model_dump(mode="json") for k, h in handling.items()},
            "kpis": kpis.model_dump(mode="json"),
        }
        # The cached cells go in as they are: the document is an object, so they are added
        # as its last member instead of being encoded again.
        return (_json(body)[:-1] + ',"cells":' + cells.encoded + "}").encode()

    def cell_updates(self, cells: Iterable[str]) -> list[dict[str, Any]]:
        """The current state of some cells, as live updates carry them."""
        with self.runtime.reading():
            views = [self.runtime.coverage_map.view(c) for c in cells]
        return [
            {
                "id": v.cell,
                "status": STATUS_INDEX[v.status],
                "access": _round_sig(v.access_score),
                "covered": int(v.covered),
            }
            for v in views
        ]

    # outlines and events -------------------------------------------------------------------

    def boundaries(self, districts: frozenset[str] | None) -> BoundaryCollection:
        """District and subdistrict outlines within `districts` (None: all)."""
        with self.store.transaction() as tx:
            found = tx.boundaries.list()
        features = []
        for b in found:
            district = b.name if b.level is BoundaryLevel.district else b.parent
            if districts is not None and district not in districts:
                continue
            features.append(
                {
                    "type": "Feature",
                    "geometry": b.geometry,
                    "properties": {
                        "name": b.name,
                        "level": b.level.value,
                        "parent": b.parent,
                        "label_at": label_point(b.geometry),
                    },
                }
            )
        return BoundaryCollection(features=features)

    def station_events(self, station: Station, limit: int) -> StationEvents:
        with self.store.transaction() as tx:
            archived = tx.events.for_station(station.station_id, limit)
        events = []
        for item in archived:
            payload = json.loads(item.body).get("payload", {})
            payload.pop("worker_ref", None)  # a keyed hash, but still nobody's business here
            events.append(
                StationEvent(
                    event_id=item.event_id,
                    type=item.type,
                    occurred_at=item.occurred_at,
                    status=item.status,
                    payload=payload,
                )
            )
        return StationEvents(station_id=station.station_id, events=events)


def _json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def visits_by_subdistrict(stations: Iterable[Station], visits: dict[str, int]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for s in stations:
        n = visits.get(s.station_id, 0)
        if n:
            totals[s.subdistrict or ""] += n
    return dict(totals)


def label_point(geometry: dict[str, Any]) -> list[float]:
    """[lat, lon] of a point inside the outline, where its name is written on the map (a
    centroid can fall outside a crescent-shaped subdistrict)."""
    point = shape(geometry).representative_point()
    return [round(point.y, COORD_DECIMALS), round(point.x, COORD_DECIMALS)]
