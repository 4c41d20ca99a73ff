"""The whole processing chain for one event or one clock tick, as plain synchronous code.

Two halves, split where the key changes: `StationSteps` holds everything keyed by station
(ledger, visit windows, station alerts) and fans a state change out into per-zone deltas;
`ZoneSteps` applies those deltas to the zones and judges them. The embedded runtime runs both
through `Pipeline` over dicts, in one order; the distributed runtime runs each half in its own
stream, partitioned by its own key, over table state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from geo.access import supply_ratio
from geo.catchment import Catchments
from geo.demand import DemandLayer
from schemas.alerts import Alert, AlertEvent, AlertEvidence, AlertKind
from schemas.events import Event, VisitEvent
from schemas.lifecycle import StationChange
from schemas.mobile import GeoPoint, stop_at
from schemas.opening_hours import parse_opening_hours
from schemas.reasons import Reason, ReasonCode
from schemas.state import CoverageDelta, EventStatus, StationRecord, StationStateChanged
from schemas.stations import Station, StationState
from streams.alerts import AlertBook
from streams.coverage import ZoneAssessment, ZoneCoverage, ZoneCoverageBook, fan_out
from streams.ledger import StationLedger, counted_at
from streams.overload import VisitWindow, VisitWindows
from waystation.settings import Settings

Emitted = StationStateChanged | CoverageDelta | AlertEvent
"""What the station half produces, in the order it produced it."""


@dataclass
class StationOutcome:
    applied: EventStatus | None = None
    emitted: list[Emitted] = field(default_factory=list)
    # Cells whose access may have moved without a state change: old and new catchments of a
    # station that moved, resized or retired.
    touched_cells: set[str] = field(default_factory=set)
    registry_changes: list[StationChange] = field(default_factory=list)
    relocated: set[str] = field(default_factory=set)  # stations now counted somewhere else

    def extend(self, other: StationOutcome | None) -> None:
        """Add what `other` produced; None (a step that found nothing to do) adds nothing."""
        if other is None:
            return
        self.emitted.extend(other.emitted)
        self.touched_cells |= other.touched_cells
        self.registry_changes.extend(other.registry_changes)
        self.relocated |= other.relocated


@dataclass
class StepOutcome:
    applied: EventStatus | None = None
    station_changes: list[StationStateChanged] = field(default_factory=list)
    flipped_cells: list[str] = field(default_factory=list)
    alert_events: list[AlertEvent] = field(default_factory=list)
    touched_cells: set[str] = field(default_factory=set)
    registry_changes: list[StationChange] = field(default_factory=list)
    relocated: set[str] = field(default_factory=set)

    def extend(self, other: StepOutcome) -> None:
        self.station_changes.extend(other.station_changes)
        self.flipped_cells.extend(other.flipped_cells)
        self.alert_events.extend(other.alert_events)
        self.touched_cells |= other.touched_cells
        self.registry_changes.extend(other.registry_changes)
        self.relocated |= other.relocated


class StationSteps:
    """Station-keyed processing: one station's events and clock, its alerts, and the fan-out of
    its state changes into coverage deltas keyed by zone."""

    def __init__(
        self,
        *,
        settings: Settings,
        demand: DemandLayer,
        registry: MutableMapping[str, Station],
        catchments: Catchments,
        records: MutableMapping[str, StationRecord],
        alerts: MutableMapping[str, Alert],
        visits: MutableMapping[str, VisitWindow],
        supply_ratios: dict[str, float] | None = None,
    ) -> None:
        self.settings = settings
        self.demand = demand
        self.grid = demand.grid
        self.registry = registry
        self.catchments = catchments
        self.ledger = StationLedger(records, settings, self.closed_by_clock)
        self.alert_book = AlertBook(alerts, settings)
        self.visit_windows = VisitWindows(visits, settings)
        self.zone = ZoneInfo(settings.timezone)
        # 2SFCA step one, fixed for a demand layer; shareable between short-lived instances.
        self.supply_ratios = {} if supply_ratios is None else supply_ratios

    def bind(
        self,
        records: MutableMapping[str, StationRecord],
        alerts: MutableMapping[str, Alert],
        visits: MutableMapping[str, VisitWindow],
    ) -> None:
        """Work on other state from now on. The distributed runtime keeps each station's state
        apart (one table slot each) and moves one set of steps from slot to slot: making new
        steps for every event cost a tenth of its station stage."""
        self.ledger.records = records
        self.alert_book.alerts = alerts
        self.visit_windows.windows = visits

    def handle(self, event: Event, now: datetime) -> StationOutcome:
        if event.station_id not in self.registry:
            return StationOutcome(applied=EventStatus.unknown_station)
        outcome = StationOutcome()
        registered = self.ledger.register(event.station_id, now)
        if registered is not None:
            outcome.extend(self.propagate(registered, now))
        applied, change = self.ledger.on_event(event, now)
        outcome.applied = applied
        if change is not None:
            outcome.extend(self.propagate(change, now))
        if applied is EventStatus.applied:
            outcome.extend(self._follow_schedule(event.station_id, now))  # a reported location
        if isinstance(event, VisitEvent) and applied is EventStatus.applied:
            visitors = self.visit_windows.record(event, now)
            outcome.emitted.extend(self._observe_load(event.station_id, visitors, now))
        return outcome

    def register(self, station_ids: Iterable[str], now: datetime) -> StationOutcome:
        """Bring stations not yet in the ledger into it (silent, until heard from)."""
        outcome = StationOutcome()
        for station_id in station_ids:
            if station_id not in self.registry:
                continue  # retired since it was listed
            registered = self.ledger.register(station_id, now)
            if registered is not None:
                outcome.extend(self.propagate(registered, now))
        return outcome

    def tick(self, now: datetime) -> StationOutcome:
        """The clock for every station in this state: silence and the overload window. The
        alerts' grace periods are advanced by the caller (`alert_book.on_tick`), once."""
        outcome = StationOutcome()
        for station_id in sorted(self.ledger.records):  # mobile units move before they open
            outcome.extend(self._follow_schedule(station_id, now))
        for change in self.ledger.on_tick(now):
            outcome.extend(self.propagate(change, now))
        for station_id in sorted(self.visit_windows.windows):
            visitors = self.visit_windows.visitors(station_id, now)
            outcome.emitted.extend(self._observe_load(station_id, visitors, now))
        return outcome

    def propagate(
        self, change: StationStateChanged, now: datetime, *, previous: frozenset[str] = frozenset()
    ) -> StationOutcome:
        """A state change into coverage; `previous`: the catchment it had, if it moved."""
        outcome = StationOutcome(emitted=[change])
        station = self.registry[change.station_id]
        outcome.emitted.extend(self._observe_station(station, change, now))
        outcome.emitted.extend(self._fan_out(station, change, previous=previous))
        outcome.touched_cells |= self.catchment(station)
        return outcome

    def change(self, change: StationChange, now: datetime) -> StationOutcome:
        """Apply a registry change: the station's catchment leaves its old cells and zones and
        enters its new ones (none, when retired) at the state it has; its supply ratio is
        worked out again. A station not yet in the ledger only has its definition replaced."""
        station_id = change.station_id
        # What coverage counted: the change's own old side (the registry here may already
        # have been refreshed past it), else what the registry holds.
        before = change.old if change.old is not None else self.registry.get(station_id)
        previous = self.catchment(before) if before is not None else frozenset()
        self.supply_ratios.pop(station_id, None)
        outcome = StationOutcome(registry_changes=[change], relocated={station_id})
        if change.new is None:
            self.registry.pop(station_id, None)
        else:
            self.registry[station_id] = change.new
        record = self.ledger.records.get(station_id)
        if record is None:
            if change.new is not None:
                outcome.extend(self.register([station_id], now))
                outcome.extend(self._follow_schedule(station_id, now))
            return outcome
        if change.new is not None:
            record = self._placed(change.new, record, now)
            self.ledger.records[station_id] = record
        moved = StationStateChanged(
            station_id=station_id,
            old=record.state,
            new=record.state,
            at=now,
            reason=f"station {change.action.value}",
        )
        if change.new is None:
            outcome.emitted.extend(fan_out(moved, frozenset(), self.grid, 0.0, previous=previous))
            outcome.emitted.extend(self._retire_alerts(station_id, before, now))
            del self.ledger.records[station_id]
        else:
            outcome.emitted.extend(self._fan_out(change.new, moved, previous=previous))
            outcome.touched_cells |= self.catchment(change.new)
            settled = self.ledger.settle(station_id, now)  # new hours may close or open it
            if settled is not None:
                outcome.extend(self.propagate(settled, now))
        outcome.touched_cells |= previous
        return outcome

    def closed_by_clock(self, record: StationRecord, now: datetime) -> Reason | None:
        """Outside its opening hours (in the district's time zone) a station is closed; a
        mobile unit is closed between its stops, unless a check-in said where it is."""
        station = self.registry.get(record.station_id)
        if station is None:
            return None
        if (
            station.mobile
            and record.check_in_location is None
            and stop_at(station.stops, now) is None
        ):
            return Reason(code=ReasonCode.between_stops)
        if station.opening_hours is None:
            return None
        if parse_opening_hours(station.opening_hours).is_open(now.astimezone(self.zone)):
            return None
        return Reason(
            code=ReasonCode.outside_opening_hours, values={"hours": station.opening_hours}
        )

    def position(self, station: Station) -> GeoPoint:
        return counted_at(station, self.ledger.records.get(station.station_id))

    def catchment(self, station: Station) -> frozenset[str]:
        if not station.mobile:  # at its registered location (see `counted_at`)
            return self.catchments.cells(station.lat, station.lon)
        point = self.position(station)
        return self.catchments.cells(point.lat, point.lon)

    def _placed(self, station: Station, record: StationRecord, now: datetime) -> StationRecord:
        """The record with the unit placed where it serves now; between stops it stays where
        it was. Not a mobile unit: at its registered location."""
        if not station.mobile:
            placed = None
        elif record.check_in_location is not None:
            placed = record.check_in_location
        else:
            stop = stop_at(station.stops, now)
            placed = GeoPoint(lat=stop.lat, lon=stop.lon) if stop is not None else record.placed
        return record if placed == record.placed else record.model_copy(update={"placed": placed})

    def _follow_schedule(self, station_id: str, now: datetime) -> StationOutcome | None:
        """Move a mobile unit's catchment to where it serves now, at the state it has; None
        when nothing moved (every event of a fixed station asks)."""
        station = self.registry.get(station_id)
        record = self.ledger.records.get(station_id)
        if station is None or record is None or not station.mobile:
            return None
        placed = self._placed(station, record, now)
        if placed is record:
            return None
        outcome = StationOutcome()
        previous = self.catchment(station)
        self.ledger.records[station_id] = placed
        self.supply_ratios.pop(station_id, None)
        moved = StationStateChanged(
            station_id=station_id,
            old=record.state,
            new=record.state,
            at=now,
            reason="mobile unit moved",
        )
        outcome.emitted.extend(self._fan_out(station, moved, previous=previous))
        outcome.touched_cells |= previous | self.catchment(station)
        outcome.relocated.add(station_id)
        return outcome

    def _fan_out(
        self,
        station: Station,
        change: StationStateChanged,
        *,
        previous: frozenset[str] = frozenset(),
    ) -> list[CoverageDelta]:
        catchment = self.catchment(station)
        ratio = self.supply_ratios.get(station.station_id)
        if ratio is None:
            ratio = supply_ratio(station.capacity, catchment, self.demand.demand)
            self.supply_ratios[station.station_id] = ratio
        return fan_out(change, catchment, self.grid, ratio, previous=previous)

    def _retire_alerts(
        self, station_id: str, station: Station | None, now: datetime
    ) -> list[AlertEvent]:
        """A retired station's own alerts clear: pending ones at once, open ones after the
        resolve grace period like any condition that ended."""
        evidence = AlertEvidence(detail="station retired", stations=(station_id,))
        events: list[AlertEvent] = []
        for kind in (AlertKind.station_silent, AlertKind.station_degraded):
            events += self.alert_book.observe(
                kind,
                station_id,
                active=False,
                evidence=evidence,
                now=now,
                district=station.district if station is not None else None,
            )
        self.visit_windows.windows.pop(station_id, None)
        events += self.alert_book.observe(
            AlertKind.station_overloaded,
            station_id,
            active=False,
            evidence=evidence,
            now=now,
            district=station.district if station is not None else None,
        )
        return events

    def _observe_station(
        self, station: Station, change: StationStateChanged, now: datetime
    ) -> list[AlertEvent]:
        record = self.ledger.records.get(station.station_id)
        heard_from = record is not None and record.last_heard_at is not None
        # A station never heard from is not yet commissioned, not a station gone quiet.
        silent = change.new is StationState.silent and heard_from
        degraded = change.new is StationState.degraded
        book = self.alert_book
        if book.settled(AlertKind.station_silent, station.station_id, active=silent) and (
            book.settled(AlertKind.station_degraded, station.station_id, active=degraded)
        ):
            return []
        evidence = AlertEvidence(
            detail=change.reason, reason=change.cause, stations=(station.station_id,)
        )
        events = book.observe(
            AlertKind.station_silent,
            station.station_id,
            active=silent,
            evidence=evidence,
            now=now,
            district=station.district,
        )
        events += book.observe(
            AlertKind.station_degraded,
            station.station_id,
            active=degraded,
            evidence=evidence,
            now=now,
            district=station.district,
        )
        return events

    def _observe_load(self, station_id: str, visitors: int, now: datetime) -> list[AlertEvent]:
        station = self.registry[station_id]
        limit = self.visit_windows.limit(station.capacity)
        active = visitors > limit
        if self.alert_book.settled(AlertKind.station_overloaded, station_id, active=active):
            return []
        reason = Reason(
            code=ReasonCode.over_capacity,
            values={
                "visitors": visitors,
                "window_minutes": self.settings.overload_window_minutes,
                "seats": station.capacity,
                "limit": limit,
            },
        )
        return self.alert_book.observe(
            AlertKind.station_overloaded,
            station_id,
            active=active,
            evidence=AlertEvidence(detail=reason.text(), reason=reason, stations=(station_id,)),
            now=now,
            district=station.district,
        )


class ZoneSteps:
    """Zone-keyed processing: coverage deltas into the zone books, and each zone judged
    against its demand (underserved-zone alerts, with hysteresis)."""

    def __init__(
        self,
        *,
        settings: Settings,
        demand: DemandLayer,
        zones: MutableMapping[str, ZoneCoverage],
        alerts: MutableMapping[str, Alert],
    ) -> None:
        self.settings = settings
        self.zone_book = ZoneCoverageBook(zones, demand, settings)
        self.alert_book = AlertBook(alerts, settings)

    def bind(
        self, zones: MutableMapping[str, ZoneCoverage], alerts: MutableMapping[str, Alert]
    ) -> None:
        """Work on other state from now on (the distributed runtime's zone slots, one at a
        time; see `StationSteps.bind`)."""
        self.zone_book.zones = zones
        self.alert_book.alerts = alerts

    def apply(self, delta: CoverageDelta, now: datetime) -> tuple[list[str], list[AlertEvent]]:
        """Returns the cells whose covered flag flipped and the alert steps it caused."""
        flipped = self.zone_book.move(delta)
        assessment = self.zone_book.assess(delta.zone, with_stations_down=False)
        return flipped, self._judge(
            assessment, lambda: self.zone_book.stations_down(delta.zone), now
        )

    def judge(self, assessment: ZoneAssessment, now: datetime) -> list[AlertEvent]:
        return self._judge(assessment, lambda: assessment.stations_down, now)

    def _judge(
        self,
        assessment: ZoneAssessment,
        stations_down: Callable[[], tuple[str, ...]],
        now: datetime,
    ) -> list[AlertEvent]:
        """`stations_down` is asked only when the condition holds: a clear zone's evidence is
        never kept, and most judgements after a delta find the zone clear."""
        threshold = self.settings.zone_uncovered_demand_workers
        if self.alert_book.is_active(AlertKind.zone_underserved, assessment.zone):
            threshold *= self.settings.zone_resolve_ratio  # hysteresis: harder to clear
        active = assessment.uncovered_demand_workers >= threshold
        if self.alert_book.settled(AlertKind.zone_underserved, assessment.zone, active=active):
            return []
        reason = Reason(
            code=ReasonCode.uncovered_demand,
            values={
                "uncovered_workers": assessment.uncovered_demand_workers,
                "demand_workers": assessment.demand_workers,
            },
        )
        evidence = AlertEvidence(
            detail=reason.text(),
            reason=reason,
            cells=assessment.uncovered_cells,
            uncovered_demand_workers=assessment.uncovered_demand_workers,
            stations=stations_down() if active else (),
        )
        return self.alert_book.observe(
            AlertKind.zone_underserved,
            assessment.zone,
            active=active,
            evidence=evidence,
            now=now,
            district=assessment.district,
        )


class Pipeline:
    """Both halves in one process over one set of state, in the order a single event or tick
    causes things: each delta reaches its zone before the next thing the station emits."""

    def __init__(
        self,
        *,
        settings: Settings,
        demand: DemandLayer,
        registry: MutableMapping[str, Station],
        catchments: Catchments,
        records: MutableMapping[str, StationRecord],
        zones: MutableMapping[str, ZoneCoverage],
        alerts: MutableMapping[str, Alert],
        visits: MutableMapping[str, VisitWindow],
    ) -> None:
        self.settings = settings
        self.grid = demand.grid
        self.registry = registry
        self.catchments = catchments
        self.stations = StationSteps(
            settings=settings,
            demand=demand,
            registry=registry,
            catchments=catchments,
            records=records,
            alerts=alerts,
            visits=visits,
        )
        self.zones = ZoneSteps(settings=settings, demand=demand, zones=zones, alerts=alerts)
        self.ledger = self.stations.ledger
        self.visit_windows = self.stations.visit_windows
        self.zone_book = self.zones.zone_book
        self.alert_book = self.stations.alert_book  # one mapping holds both halves' alerts

    def handle(self, event: Event, now: datetime) -> StepOutcome:
        return self._route(self.stations.handle(event, now), now)

    def change(self, change: StationChange, now: datetime) -> StepOutcome:
        """A registry change (create, update, retire, reactivate) through both halves."""
        return self._route(self.stations.change(change, now), now)

    def tick(self, now: datetime) -> StepOutcome:
        outcome = self._route(self.stations.tick(now), now)
        outcome.alert_events.extend(self.alert_book.on_tick(now))
        return outcome

    def restore(self, now: datetime) -> StepOutcome:
        """Rebuild coverage from the ledger's records (coverage is derived, never stored), bring
        every registered station into the ledger, and judge every zone that has demand, so
        that a zone no station reaches is seen too."""
        self.catchments.many([(s.lat, s.lon) for s in self.registry.values()])  # one bulk pass
        for retired in [sid for sid in self.ledger.records if sid not in self.registry]:
            del self.ledger.records[retired]  # retired before its change was applied
        produced = StationOutcome()
        for record in sorted(self.ledger.records.values(), key=lambda r: r.station_id):
            if record.station_id in self.registry:
                restored = StationStateChanged(
                    station_id=record.station_id,
                    old=None,
                    new=record.state,
                    at=record.state_since or now,
                    reason=record.state_reason,
                    cause=record.state_cause,
                )
                produced.extend(self.stations.propagate(restored, now))
        produced.extend(self.stations.register(sorted(self.registry), now))
        outcome = self._route(produced, now, restoring=True)
        # Every zone is judged once, after all stations are in (not once per station).
        zones = self.zone_book.demand.cells_of_zone
        for zone in sorted(zones):
            outcome.alert_events.extend(self.zones.judge(self.zone_book.assess(zone), now))
        for alert in list(self.alert_book.alerts.values()):
            if alert.kind is AlertKind.zone_underserved and alert.subject not in zones:
                # A zone the demand layer no longer has cannot stay underserved.
                outcome.alert_events += self.alert_book.observe(
                    alert.kind, alert.subject, active=False, evidence=alert.evidence, now=now
                )
        return outcome

    def adopt(self, record: StationRecord, now: datetime) -> StepOutcome:
        """Take a station record decided elsewhere (by the distributed runtime, through the
        store) and move coverage with it; a read replica's view of the zones. A mobile unit
        the workers placed elsewhere moves here too."""
        old = self.ledger.records.get(record.station_id)
        self.ledger.records[record.station_id] = record
        station = self.registry.get(record.station_id)
        if station is None:
            return StepOutcome()
        moved = old is not None and counted_at(station, old) != counted_at(station, record)
        if not moved and old is not None and old.state is record.state:
            return StepOutcome()
        change = StationStateChanged(
            station_id=record.station_id,
            old=old.state if old is not None else None,
            new=record.state,
            at=record.state_since or now,
            reason=record.state_reason,
            cause=record.state_cause,
        )
        if old is None or not moved:
            return self._route(self.stations.propagate(change, now), now)
        was = counted_at(station, old)
        previous = self.catchments.cells(was.lat, was.lon)
        self.stations.supply_ratios.pop(record.station_id, None)
        produced = self.stations.propagate(change, now, previous=previous)
        produced.relocated.add(record.station_id)
        produced.touched_cells |= previous
        return self._route(produced, now)

    def _route(
        self, produced: StationOutcome, now: datetime, *, restoring: bool = False
    ) -> StepOutcome:
        """Each delta to its zone, judged there, in the order produced; `restoring`: the
        deltas of a whole network entering empty zones, loaded at once and not judged (the
        restore judges every zone once, at the end)."""
        outcome = StepOutcome(
            applied=produced.applied,
            touched_cells=set(produced.touched_cells),
            registry_changes=list(produced.registry_changes),
            relocated=set(produced.relocated),
        )
        deltas: list[CoverageDelta] = []
        for item in produced.emitted:
            if isinstance(item, StationStateChanged):
                outcome.station_changes.append(item)
            elif isinstance(item, CoverageDelta):
                if restoring:
                    deltas.append(item)
                    continue
                flipped, events = self.zones.apply(item, now)
                outcome.flipped_cells.extend(flipped)
                outcome.alert_events.extend(events)
            else:
                outcome.alert_events.append(item)
        if deltas:
            outcome.flipped_cells.extend(self.zone_book.load(deltas))
        return outcome
