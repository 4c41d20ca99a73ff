"""The whole processing chain for one event or one clock tick, as plain synchronous code.

The embedded runtime calls `Pipeline` directly over dicts; the distributed runtime calls the
same steps (ledger, fan-out, zone book, alert book) from agents over tables, topic by topic.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime

from geo.access import supply_ratio
from geo.catchment import Catchments
from geo.demand import DemandLayer
from schemas.alerts import Alert, AlertEvent, AlertEvidence, AlertKind
from schemas.events import Event, VisitEvent
from schemas.state import EventStatus, StationRecord, StationStateChanged
from schemas.stations import Station, StationState
from streams.alerts import AlertBook
from streams.coverage import ZoneAssessment, ZoneCoverage, ZoneCoverageBook, fan_out
from streams.ledger import StationLedger
from streams.overload import VisitWindow, VisitWindows
from waystation.settings import Settings


@dataclass
class StepOutcome:
    applied: EventStatus | None = None
    station_changes: list[StationStateChanged] = field(default_factory=list)
    flipped_cells: list[str] = field(default_factory=list)
    alert_events: list[AlertEvent] = field(default_factory=list)

    def extend(self, other: StepOutcome) -> None:
        self.station_changes.extend(other.station_changes)
        self.flipped_cells.extend(other.flipped_cells)
        self.alert_events.extend(other.alert_events)


class Pipeline:
    def __init__(
        self,
        *,
        settings: Settings,
        demand: DemandLayer,
        registry: Mapping[str, Station],
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
        self.ledger = StationLedger(records, settings)
        self.zone_book = ZoneCoverageBook(zones, demand, settings)
        self.alert_book = AlertBook(alerts, settings)
        self.visit_windows = VisitWindows(visits, settings)
        self._supply_ratios: dict[str, float] = {}  # 2SFCA step one, fixed for a demand layer

    def handle(self, event: Event, now: datetime) -> StepOutcome:
        if event.station_id not in self.registry:
            return StepOutcome(applied=EventStatus.unknown_station)
        outcome = StepOutcome()
        registered = self.ledger.register(event.station_id, now)
        if registered is not None:
            outcome.extend(self._propagate(registered, now))
        applied, change = self.ledger.on_event(event, now)
        outcome.applied = applied
        if change is not None:
            outcome.extend(self._propagate(change, now))
        if isinstance(event, VisitEvent) and applied is EventStatus.applied:
            visitors = self.visit_windows.record(event, now)
            outcome.alert_events.extend(self._observe_load(event.station_id, visitors, now))
        return outcome

    def tick(self, now: datetime) -> StepOutcome:
        outcome = StepOutcome()
        for change in self.ledger.on_tick(now):
            outcome.extend(self._propagate(change, now))
        for station_id in sorted(self.visit_windows.windows):
            visitors = self.visit_windows.visitors(station_id, now)
            outcome.alert_events.extend(self._observe_load(station_id, visitors, now))
        outcome.alert_events.extend(self.alert_book.on_tick(now))
        return outcome

    def restore(self, now: datetime) -> StepOutcome:
        """Rebuild coverage from the ledger's records (coverage is derived, never stored), bring
        every registered station into the ledger, and judge every zone that has demand, so
        that a zone no station reaches is seen too."""
        outcome = StepOutcome()
        self.catchments.many([(s.lat, s.lon) for s in self.registry.values()])  # one bulk pass
        for record in sorted(self.ledger.records.values(), key=lambda r: r.station_id):
            if record.station_id in self.registry:
                restored = StationStateChanged(
                    station_id=record.station_id,
                    old=None,
                    new=record.state,
                    at=record.state_since or now,
                    reason=record.state_reason,
                )
                outcome.extend(self._propagate(restored, now, judge_zones=False))
        for station_id in sorted(self.registry):
            registered = self.ledger.register(station_id, now)
            if registered is not None:
                outcome.extend(self._propagate(registered, now, judge_zones=False))
        # Every zone is judged once, after all stations are in (not once per station).
        zones = self.zone_book.demand.cells_of_zone
        for zone in sorted(zones):
            outcome.alert_events.extend(self._observe_zone(self.zone_book.assess(zone), now))
        for alert in list(self.alert_book.alerts.values()):
            if alert.kind is AlertKind.zone_underserved and alert.subject not in zones:
                # A zone the demand layer no longer has cannot stay underserved.
                outcome.alert_events += self.alert_book.observe(
                    alert.kind, alert.subject, active=False, evidence=alert.evidence, now=now
                )
        return outcome

    def _propagate(
        self, change: StationStateChanged, now: datetime, *, judge_zones: bool = True
    ) -> StepOutcome:
        outcome = StepOutcome(station_changes=[change])
        station = self.registry[change.station_id]
        outcome.alert_events.extend(self._observe_station(station, change, now))
        catchment = self.catchments.cells(station.lat, station.lon)
        ratio = self._supply_ratios.get(station.station_id)
        if ratio is None:
            ratio = supply_ratio(station.capacity, catchment, self.zone_book.demand.demand)
            self._supply_ratios[station.station_id] = ratio
        for delta in fan_out(change, catchment, self.grid, ratio):
            flipped, assessment = self.zone_book.apply(delta)
            outcome.flipped_cells.extend(flipped)
            if judge_zones:
                outcome.alert_events.extend(self._observe_zone(assessment, now))
        return outcome

    def _observe_station(
        self, station: Station, change: StationStateChanged, now: datetime
    ) -> list[AlertEvent]:
        record = self.ledger.records.get(station.station_id)
        heard_from = record is not None and record.last_heard_at is not None
        evidence = AlertEvidence(detail=change.reason, stations=(station.station_id,))
        events = self.alert_book.observe(
            AlertKind.station_silent,
            station.station_id,
            # A station never heard from is not yet commissioned, not a station gone quiet.
            active=change.new is StationState.silent and heard_from,
            evidence=evidence,
            now=now,
            district=station.district,
        )
        events += self.alert_book.observe(
            AlertKind.station_degraded,
            station.station_id,
            active=change.new is StationState.degraded,
            evidence=evidence,
            now=now,
            district=station.district,
        )
        return events

    def _observe_load(self, station_id: str, visitors: int, now: datetime) -> list[AlertEvent]:
        station = self.registry[station_id]
        limit = self.visit_windows.limit(station.capacity)
        detail = (
            f"{visitors} visitors in the last {self.settings.overload_window_minutes:g} min "
            f"for {station.capacity} seats (limit {limit:g})"
        )
        return self.alert_book.observe(
            AlertKind.station_overloaded,
            station_id,
            active=visitors > limit,
            evidence=AlertEvidence(detail=detail, stations=(station_id,)),
            now=now,
            district=station.district,
        )

    def _observe_zone(self, assessment: ZoneAssessment, now: datetime) -> list[AlertEvent]:
        threshold = self.settings.zone_uncovered_demand_workers
        if self.alert_book.is_active(AlertKind.zone_underserved, assessment.zone):
            threshold *= self.settings.zone_resolve_ratio  # hysteresis: harder to clear
        active = assessment.uncovered_demand_workers >= threshold
        evidence = AlertEvidence(
            detail=(
                f"{assessment.uncovered_demand_workers:g} of {assessment.demand_workers:g} "
                "expected workers have no open station within reach"
            ),
            cells=assessment.uncovered_cells,
            uncovered_demand_workers=assessment.uncovered_demand_workers,
            stations=assessment.stations_down,
        )
        return self.alert_book.observe(
            AlertKind.zone_underserved,
            assessment.zone,
            active=active,
            evidence=evidence,
            now=now,
            district=assessment.district,
        )
