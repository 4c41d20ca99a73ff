"""Coverage history: every `history_interval_minutes` a point per district and subdistrict
(coverage share, uncovered demand, stations by state, open alerts), measured from the live
state with the same tally every other view counts from; 5-minute points are folded into
hourly ones after `history_fine_hours`. Also what the API serves for trend charts."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

from schemas.alerts import AlertKind
from schemas.history import History, HistoryPoint, HistoryRange
from services.station_tally import Tally, take_tally
from services.step_follower import StepFollower
from store.history import average
from store.unit_of_work import Store
from streams.clock import Clock
from streams.embedded import EmbeddedRuntime
from waystation.settings import Settings

HOUR_S = 3600
DISTRICT_WIDE = ""  # the subdistrict under which a whole district's points are kept
RANGES = {
    HistoryRange.day: timedelta(hours=24),
    HistoryRange.week: timedelta(days=7),
    HistoryRange.month: timedelta(days=30),
}


def bucket(at: datetime, interval_s: int) -> datetime:
    return datetime.fromtimestamp(at.timestamp() // interval_s * interval_s, tz=UTC)


def measure(
    runtime: EmbeddedRuntime, tally: Tally, at: datetime
) -> list[tuple[str, str, HistoryPoint]]:
    """One point per district and per subdistrict, from the live state."""
    demand: defaultdict[tuple[str, str], float] = defaultdict(float)
    covered: defaultdict[tuple[str, str], float] = defaultdict(float)
    with runtime.reading():
        layer = runtime.demand
        for cell, workers in layer.demand.items():
            district = layer.district_of_cell[cell]
            reached = runtime.coverage_map.view(cell).covered
            for area in (
                (district, DISTRICT_WIDE),
                (district, layer.subdistrict_of_cell[cell] or ""),
            ):
                demand[area] += workers
                if reached:
                    covered[area] += workers
    alerts: defaultdict[tuple[str, str], int] = defaultdict(int)
    for alert in tally.open_alerts:
        if alert.district is None:
            continue
        alerts[(alert.district, DISTRICT_WIDE)] += 1
        if alert.kind is AlertKind.zone_underserved:
            sub = alert.subject.partition("/")[2]
        else:
            sub = tally.subdistrict_of(alert.subject) or ""
        if sub:
            alerts[(alert.district, sub)] += 1
    areas = set(demand) | {(d, DISTRICT_WIDE) for d, _ in tally.areas.values()}
    areas |= {(d, s) for d, s in tally.areas.values() if s}
    points = []
    for district, sub in sorted(areas):
        if sub == DISTRICT_WIDE:
            states = tally.stations_by_state(district)
        else:
            states = tally.stations_by_state_in(district, sub)
        total = demand[(district, sub)]
        reached = covered[(district, sub)]
        points.append(
            (
                district,
                sub,
                HistoryPoint(
                    at=at,
                    coverage_pct=round(100.0 * reached / total, 2) if total else 0.0,
                    demand_workers=round(total, 1),
                    uncovered_demand_workers=round(total - reached, 1),
                    stations_by_state={s: float(n) for s, n in states.items()},
                    open_alerts=float(alerts[(district, sub)]),
                ),
            )
        )
    return points


class HistoryRecorder:
    def __init__(self, runtime: EmbeddedRuntime, settings: Settings, clock: Clock) -> None:
        self.runtime = runtime
        self.store: Store = runtime.store
        self.settings = settings
        self.clock = clock
        self.interval_s = round(settings.history_interval_minutes * 60)
        self._last: datetime | None = None
        self._follower = StepFollower(
            "waystation-history",
            self.record_due,
            self.interval_s,
            "recording a history point failed; the next one is tried",
        )

    def start(self) -> None:
        self._follower.start(self.runtime)

    def stop(self) -> None:
        self._follower.stop()

    def record_due(self) -> bool:
        """Records the current interval's point unless it has one; returns whether it did."""
        at = bucket(self.clock.now(), self.interval_s)
        if self._last is not None and at <= self._last:
            return False
        points = measure(self.runtime, take_tally(self.runtime), at)
        fine_before = bucket(at - timedelta(hours=self.settings.history_fine_hours), HOUR_S)
        with self.store.transaction() as tx:
            tx.history.record(self.interval_s, points)
            tx.history.fold(self.interval_s, HOUR_S, fine_before)
            tx.history.prune(at - timedelta(days=self.settings.history_retention_days))
        self._last = at
        return True


def history(
    store: Store,
    settings: Settings,
    district: str,
    subdistrict: str | None,
    span: HistoryRange,
    now: datetime,
) -> History:
    """An area's points over `span`: as recorded for 24 h, hourly for longer spans."""
    fine_s = round(settings.history_interval_minutes * 60)
    with store.transaction(readonly=True) as tx:
        found = tx.history.points(district, subdistrict or DISTRICT_WIDE, now - RANGES[span])
    if span is HistoryRange.day:
        interval_s = fine_s
        points = [p for _, p in found]
    else:
        interval_s = max(fine_s, HOUR_S)
        hours: defaultdict[datetime, list[HistoryPoint]] = defaultdict(list)
        for _, point in found:
            hours[bucket(point.at, interval_s)].append(point)
        points = [average(at, pts) for at, pts in sorted(hours.items())]
    return History(
        district=district,
        subdistrict=subdistrict,
        range=span,
        interval_seconds=interval_s,
        points=points,
    )
