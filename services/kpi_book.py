"""The dashboard's KPIs kept current from the runtime's step outcomes, district by district,
without a pass over the city's 200,000 cells for every batch.

Demand covered and visits are kept here; station counts and open alerts come from a `Tally`
(the numbers every other view shows too). Every update is idempotent (it records what is true
now, not a difference), so reading a state newer than the outcome being applied is harmless.
Used by the live hub's thread only; the hub invalidates the book while nobody listens, since
it then stops applying outcomes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from geo.demand import DemandLayer
from schemas.dashboard import Kpis
from services.station_tally import Tally
from streams.embedded import EmbeddedRuntime

ALL = None  # the key under which totals over every district are kept


class KpiBook:
    def __init__(self, runtime: EmbeddedRuntime) -> None:
        self.runtime = runtime
        self._demand: DemandLayer | None = None
        self._stale = False
        self._covered: dict[str, bool] = {}
        self._demand_total: Counter[str | None] = Counter()
        self._demand_covered: Counter[str | None] = Counter()
        self._visits: dict[str, int] = {}
        self._visits_by_sub: defaultdict[str | None, Counter[str]] = defaultdict(Counter)

    @property
    def ready(self) -> bool:
        return not self._stale and self._demand is self.runtime.demand

    @property
    def demand_changed(self) -> bool:
        """Built once, on a demand layer since replaced (what a dashboard shows is void)."""
        return self._demand is not None and self._demand is not self.runtime.demand

    def invalidate(self) -> None:
        """Outcomes are going unapplied: rebuild at the next use."""
        self._stale = True

    def rebuild(self) -> None:
        """Everything from the live state: at the first use, when the demand changes and
        after outcomes went unapplied."""
        runtime = self.runtime
        with runtime.reading():
            demand = runtime.demand
            covered = {c: runtime.coverage_map.view(c).covered for c in demand.demand}
        self._demand = demand
        self._covered = covered
        self._demand_total = Counter()
        self._demand_covered = Counter()
        for cell, workers in demand.demand.items():
            for key in (ALL, demand.district_of_cell[cell]):
                self._demand_total[key] += workers
                if covered[cell]:
                    self._demand_covered[key] += workers
        self._stale = False

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

    def kpis(self, district: str | None, tally: Tally) -> Kpis:
        demand = self._demand_total[district]
        covered = max(0.0, self._demand_covered[district])
        visits = self._visits_by_sub[district]
        return Kpis(
            district=district,
            stations_total=tally.stations_total(district),
            stations_by_state=tally.stations_by_state(district),
            demand_workers=round(demand, 1),
            demand_covered_workers=round(covered, 1),
            demand_covered_pct=round(100.0 * covered / demand, 2) if demand else 0.0,
            open_alerts_by_kind=tally.open_alerts_by_kind(district),
            visits_today=sum(visits.values()),
            visits_today_by_subdistrict=dict(visits),
        )
