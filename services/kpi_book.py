"""The dashboard's KPIs kept current from the runtime's step outcomes, district by district,
without a pass over the city's 200,000 cells for every batch.

Every update is idempotent (it records what is true now, not a difference), so reading a
state newer than the outcome being applied is harmless. Used by the live hub's thread only.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from geo.demand import DemandLayer
from schemas.alerts import Alert, AlertKind, AlertStatus
from schemas.dashboard import Kpis
from schemas.stations import StationState
from streams.embedded import EmbeddedRuntime

ALL = None  # the key under which totals over every district are kept


class KpiBook:
    def __init__(self, runtime: EmbeddedRuntime) -> None:
        self.runtime = runtime
        self._demand: DemandLayer | None = None
        self._covered: dict[str, bool] = {}
        self._demand_total: Counter[str | None] = Counter()
        self._demand_covered: Counter[str | None] = Counter()
        self._state: dict[str, StationState] = {}
        self._district_of_station: dict[str, str] = {}
        self._states: defaultdict[str | None, Counter[StationState]] = defaultdict(Counter)
        self._open_alerts: dict[str, Alert] = {}
        self._visits: dict[str, int] = {}
        self._visits_by_sub: defaultdict[str | None, Counter[str]] = defaultdict(Counter)

    @property
    def ready(self) -> bool:
        return self._demand is not None and self._demand is self.runtime.demand

    def rebuild(self) -> None:
        """Everything from the live state: at the first use and when the demand changes."""
        runtime = self.runtime
        assert runtime.registry is not None
        with runtime.reading() as pipeline:
            demand = runtime.demand
            covered = {c: runtime.coverage_map.view(c).covered for c in demand.demand}
            records = dict(pipeline.ledger.records)
            alerts = list(pipeline.alert_book.alerts.values())
        self._demand = demand
        self._covered = covered
        self._demand_total = Counter()
        self._demand_covered = Counter()
        for cell, workers in demand.demand.items():
            for key in (ALL, demand.district_of_cell[cell]):
                self._demand_total[key] += workers
                if covered[cell]:
                    self._demand_covered[key] += workers
        self._state = {}
        self._states = defaultdict(Counter)
        registry = runtime.registry
        for station_id in registry:
            self._district_of_station[station_id] = registry[station_id].district
            record = records.get(station_id)
            self._set_state(station_id, record.state if record else StationState.silent)
        self._open_alerts = {}
        self.alerts(alerts)

    def _district(self, station_id: str) -> str:
        district = self._district_of_station.get(station_id)
        if district is None:
            assert self.runtime.registry is not None
            district = self.runtime.registry[station_id].district
            self._district_of_station[station_id] = district
        return district

    def _set_state(self, station_id: str, state: StationState) -> None:
        old = self._state.get(station_id)
        if old is state:
            return
        for key in (ALL, self._district(station_id)):
            if old is not None:
                self._states[key][old] -= 1
            self._states[key][state] += 1
        self._state[station_id] = state

    def stations(self, changes: Iterable[tuple[str, StationState]]) -> None:
        for station_id, state in changes:
            self._set_state(station_id, state)

    def cells(self, covered: Iterable[tuple[str, bool]]) -> None:
        assert self._demand is not None
        for cell, now_covered in covered:
            before = self._covered.get(cell)
            if before is None or before == now_covered:
                continue
            workers = self._demand.demand[cell]
            sign = 1.0 if now_covered else -1.0
            for key in (ALL, self._demand.district_of_cell[cell]):
                self._demand_covered[key] += sign * workers
            self._covered[cell] = now_covered

    def alerts(self, alerts: Iterable[Alert]) -> None:
        for alert in alerts:
            if alert.status is AlertStatus.open:
                self._open_alerts[alert.alert_id] = alert
            else:
                self._open_alerts.pop(alert.alert_id, None)

    def visits(self, by_station: dict[str, int]) -> bool:
        """Replace the visit counts; returns whether they changed."""
        if by_station == self._visits:
            return False
        assert self.runtime.registry is not None
        self._visits = by_station
        self._visits_by_sub = defaultdict(Counter)
        for station_id, n in by_station.items():
            if station_id not in self.runtime.registry:
                continue
            station = self.runtime.registry[station_id]
            for key in (ALL, station.district):
                self._visits_by_sub[key][station.subdistrict or ""] += n
        return True

    def kpis(self, district: str | None) -> Kpis:
        states = self._states[district]
        demand = self._demand_total[district]
        covered = max(0.0, self._demand_covered[district])
        alerts = Counter(
            a.kind for a in self._open_alerts.values() if district is ALL or a.district == district
        )
        visits = self._visits_by_sub[district]
        return Kpis(
            district=district,
            stations_total=sum(states.values()),
            stations_by_state={s: states[s] for s in StationState},
            demand_workers=round(demand, 1),
            demand_covered_workers=round(covered, 1),
            demand_covered_pct=round(100.0 * covered / demand, 2) if demand else 0.0,
            open_alerts_by_kind={k: alerts[k] for k in AlertKind},
            visits_today=sum(visits.values()),
            visits_today_by_subdistrict=dict(visits),
        )
