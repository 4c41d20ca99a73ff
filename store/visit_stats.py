"""Daily visit rollups: added to as visits are archived, read per area and period. Visits
are counted on the station's current district and subdistrict."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, func, literal, select
from sqlalchemy.orm import Session

from schemas.visit_stats import StatsArea, StatsPeriod, VisitStats
from store.database import dialect_insert
from store.tables import StationRow, VisitDayRow, VisitDayServiceRow, VisitDayWorkerRow

MONTH_CHARS = 7  # YYYY-MM of a YYYY-MM-DD day
WHOLE = "*"  # the period or area label of a total


class VisitRollups:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        visits: Mapping[tuple[str, str, str], tuple[int, int]],
        services: Mapping[tuple[str, str, str], int],
        workers: set[tuple[str, str, int]],
    ) -> None:
        """Adds (day, station, worker kind) -> (visits, people), (day, station, service) ->
        uses, and (day, station, worker key) presences to the rollups."""
        if visits:
            table = VisitDayRow.__table__
            stmt = dialect_insert(self._session, table)
            stmt = stmt.on_conflict_do_update(
                index_elements=["day", "station_id", "worker_kind"],
                set_={
                    "visits": table.c.visits + stmt.excluded.visits,
                    "people": table.c.people + stmt.excluded.people,
                },
            )
            rows = [
                {"day": d, "station_id": s, "worker_kind": k, "visits": v, "people": p}
                for (d, s, k), (v, p) in visits.items()
            ]
            self._session.execute(stmt, rows)
        if services:
            table = VisitDayServiceRow.__table__
            stmt = dialect_insert(self._session, table)
            stmt = stmt.on_conflict_do_update(
                index_elements=["day", "station_id", "service"],
                set_={"uses": table.c.uses + stmt.excluded.uses},
            )
            rows = [
                {"day": d, "station_id": s, "service": k, "uses": n}
                for (d, s, k), n in services.items()
            ]
            self._session.execute(stmt, rows)
        if workers:
            stmt = dialect_insert(self._session, VisitDayWorkerRow.__table__)
            stmt = stmt.on_conflict_do_nothing(index_elements=["day", "station_id", "worker"])
            rows = [{"day": d, "station_id": s, "worker": w} for d, s, w in workers]
            self._session.execute(stmt, rows)

    def stats(
        self, district: str, start: str, end: str, period: StatsPeriod | None, by: StatsArea | None
    ) -> list[VisitStats]:
        """Per period and area within [start, end] (days); None for either: the whole of it."""
        found: dict[tuple[str, str], dict[str, Any]] = defaultdict(
            lambda: {"visits": 0, "people": 0, "distinct_workers": 0, "kinds": {}, "services": {}}
        )
        for model, extra in (
            (VisitDayRow, ("worker_kind", "visits", "people")),
            (VisitDayServiceRow, ("service", "uses")),
        ):
            p, a = _period(model.day, period), _area(by)
            columns = [p, a, getattr(model, extra[0])]
            sums = [func.sum(getattr(model, name)) for name in extra[1:]]
            stmt = (
                select(*columns, *sums)
                .join(StationRow, StationRow.station_id == model.station_id)
                .where(StationRow.district == district, model.day.between(start, end))
                .group_by(*columns)
            )
            for row in self._session.execute(stmt):
                entry = found[(row[0], row[1])]
                if model is VisitDayRow:
                    entry["kinds"][row[2]] = int(row[3])
                    entry["visits"] += int(row[3])
                    entry["people"] += int(row[4])
                else:
                    entry["services"][row[2]] = int(row[3])
        for when, area, n in self._distinct(district, start, end, period, by):
            found[(when, area)]["distinct_workers"] = n
        return [
            VisitStats(
                period=when,
                area=area,
                visits=e["visits"],
                people=e["people"],
                distinct_workers=e["distinct_workers"],
                by_worker_kind=dict(sorted(e["kinds"].items())),
                services_used=dict(sorted(e["services"].items())),
            )
            for (when, area), e in sorted(found.items())
        ]

    def distinct_workers(self, district: str, start: str, end: str) -> int:
        """Distinct workers over the whole district and range (not a sum: people move)."""
        found = self._distinct(district, start, end, None, None)
        return found[0][2] if found else 0

    def _distinct(
        self, district: str, start: str, end: str, period: StatsPeriod | None, by: StatsArea | None
    ) -> list[tuple[str, str, int]]:
        p, a = _period(VisitDayWorkerRow.day, period), _area(by)
        stmt = (
            select(p, a, func.count(func.distinct(VisitDayWorkerRow.worker)))
            .join(StationRow, StationRow.station_id == VisitDayWorkerRow.station_id)
            .where(StationRow.district == district, VisitDayWorkerRow.day.between(start, end))
            .group_by(p, a)
        )
        return [(when, area, int(n)) for when, area, n in self._session.execute(stmt)]


def _period(day: Any, period: StatsPeriod | None) -> ColumnElement[str]:
    if period is StatsPeriod.day:
        return day
    if period is StatsPeriod.month:
        return func.substr(day, 1, MONTH_CHARS)
    return literal(WHOLE)


def _area(by: StatsArea | None) -> ColumnElement[str]:
    if by is StatsArea.station:
        return StationRow.station_id
    if by is StatsArea.subdistrict:
        return func.coalesce(StationRow.subdistrict, "")
    if by is StatsArea.district:
        return StationRow.district
    return literal(WHOLE)
