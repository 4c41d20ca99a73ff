"""Coverage history: points per area, kept at 5 minutes, then folded into hourly points."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from schemas.history import HistoryPoint
from schemas.stations import StationState
from store.database import upsert
from store.tables import CoverageHistoryRow

STATE_COLUMNS = {state: state.value for state in StationState}


def _row(
    district: str, subdistrict: str, interval_s: int, point: HistoryPoint
) -> dict[str, object]:
    return {
        "district": district,
        "subdistrict": subdistrict,
        "interval_s": interval_s,
        "at": point.at,
        "coverage_pct": point.coverage_pct,
        "demand_workers": point.demand_workers,
        "uncovered_demand_workers": point.uncovered_demand_workers,
        "open_alerts": point.open_alerts,
        **{
            column: point.stations_by_state.get(state, 0.0)
            for state, column in STATE_COLUMNS.items()
        },
    }


def _point(row: CoverageHistoryRow) -> HistoryPoint:
    return HistoryPoint(
        at=row.at,
        coverage_pct=row.coverage_pct,
        demand_workers=row.demand_workers,
        uncovered_demand_workers=row.uncovered_demand_workers,
        stations_by_state={s: getattr(row, c) for s, c in STATE_COLUMNS.items()},
        open_alerts=row.open_alerts,
    )


class HistoryRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def record(self, interval_s: int, points: Iterable[tuple[str, str, HistoryPoint]]) -> None:
        """Points as (district, subdistrict or "" for the district, point); a second point
        for the same area and time replaces the first."""
        rows = [_row(d, s, interval_s, p) for d, s, p in points]
        if rows:
            upsert(
                self._session,
                CoverageHistoryRow.__table__,
                rows,
                key=["district", "subdistrict", "interval_s", "at"],
            )

    def points(
        self, district: str, subdistrict: str, since: datetime, interval_s: int | None = None
    ) -> list[tuple[int, HistoryPoint]]:
        """(interval_s, point) of an area since `since`, oldest first."""
        stmt = (
            select(CoverageHistoryRow)
            .where(CoverageHistoryRow.district == district)
            .where(CoverageHistoryRow.subdistrict == subdistrict)
            .where(CoverageHistoryRow.at >= since)
            .order_by(CoverageHistoryRow.at, CoverageHistoryRow.interval_s)
        )
        if interval_s is not None:
            stmt = stmt.where(CoverageHistoryRow.interval_s == interval_s)
        return [(row.interval_s, _point(row)) for row in self._session.scalars(stmt)]

    def fold(self, fine_s: int, coarse_s: int, before: datetime) -> int:
        """Folds `fine_s` points older than `before` into `coarse_s` averages (whole coarse
        intervals only); returns how many fine points went."""
        stmt = (
            select(CoverageHistoryRow)
            .where(CoverageHistoryRow.interval_s == fine_s)
            .where(CoverageHistoryRow.at < before)
        )
        groups: defaultdict[tuple[str, str, datetime], list[HistoryPoint]] = defaultdict(list)
        for row in self._session.scalars(stmt):
            start = datetime.fromtimestamp(
                row.at.timestamp() // coarse_s * coarse_s, tz=row.at.tzinfo
            )
            groups[(row.district, row.subdistrict, start)].append(_point(row))
        folded = [(d, s, average(start, pts)) for (d, s, start), pts in groups.items()]
        self.record(coarse_s, folded)
        gone = self._session.execute(
            delete(CoverageHistoryRow)
            .where(CoverageHistoryRow.interval_s == fine_s)
            .where(CoverageHistoryRow.at < before)
        )
        return gone.rowcount or 0

    def prune(self, before: datetime) -> None:
        self._session.execute(delete(CoverageHistoryRow).where(CoverageHistoryRow.at < before))


def average(at: datetime, points: list[HistoryPoint]) -> HistoryPoint:
    n = len(points)
    return HistoryPoint(
        at=at,
        coverage_pct=sum(p.coverage_pct for p in points) / n,
        demand_workers=sum(p.demand_workers for p in points) / n,
        uncovered_demand_workers=sum(p.uncovered_demand_workers for p in points) / n,
        stations_by_state={
            s: sum(p.stations_by_state.get(s, 0.0) for p in points) / n for s in StationState
        },
        open_alerts=sum(p.open_alerts for p in points) / n,
    )
