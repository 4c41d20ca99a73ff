"""The registry's audit log: each write of a station, as a versioned change with who, when,
old and new. Writing a station through `StationChangeLog.write` is the one way the registry
changes while the system runs, so the log and the `stations` table never disagree."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from schemas.lifecycle import StationAction, StationChange, action_for
from schemas.stations import Station
from store.repositories import StationRepository
from store.tables import StationChangeRow


class StationChangeLog:
    def __init__(self, session: Session) -> None:
        self._session = session
        self._stations = StationRepository(session)

    def write(
        self, stations: Iterable[Station], *, actor: str, at: datetime
    ) -> list[tuple[int, StationChange]]:
        """Add or update stations; a station whose definition did not change writes nothing.
        Returns the changes made, with their sequence numbers."""
        made: list[tuple[int, StationChange]] = []
        changed: list[Station] = []
        for station in stations:
            old = self._stations.get(station.station_id)
            if old == station:
                continue
            made.append(self._append(station.station_id, old, station, actor=actor, at=at))
            changed.append(station)
        self._stations.upsert_many(changed)
        return made

    def retire(self, station_id: str, *, actor: str, at: datetime) -> tuple[int, StationChange]:
        """Take a station out of the registry; its last definition stays in the log, from
        which it can be reactivated. KeyError: no such active station."""
        old = self._stations.get(station_id)
        if old is None:
            raise KeyError(station_id)
        made = self._append(station_id, old, None, actor=actor, at=at)
        self._stations.remove(station_id)
        return made

    def reactivate(self, station_id: str, *, actor: str, at: datetime) -> tuple[int, StationChange]:
        """Bring a retired station back as it was when retired. KeyError: never retired (or
        active now)."""
        last = self.latest(station_id)
        if last is None or last.action is not StationAction.retired or last.old is None:
            raise KeyError(station_id)
        made = self._append(station_id, None, last.old, actor=actor, at=at)
        self._stations.upsert_many([last.old])
        return made

    def _append(
        self,
        station_id: str,
        old: Station | None,
        new: Station | None,
        *,
        actor: str,
        at: datetime,
    ) -> tuple[int, StationChange]:
        version = self._version(station_id)
        change = StationChange(
            change_id=uuid.uuid4(),
            station_id=station_id,
            version=version + 1,
            action=action_for(old, new, ever_seen=version > 0),
            actor=actor,
            at=at,
            old=old,
            new=new,
        )
        row = StationChangeRow(
            change_id=str(change.change_id),
            station_id=station_id,
            version=change.version,
            action=change.action.value,
            actor=actor,
            at=at,
            old=old.model_dump(mode="json") if old is not None else None,
            new=new.model_dump(mode="json") if new is not None else None,
        )
        self._session.add(row)
        self._session.flush()
        return row.seq, change

    def _version(self, station_id: str) -> int:
        stmt = select(func.max(StationChangeRow.version)).where(
            StationChangeRow.station_id == station_id
        )
        return self._session.scalar(stmt) or 0

    def latest(self, station_id: str) -> StationChange | None:
        stmt = (
            select(StationChangeRow)
            .where(StationChangeRow.station_id == station_id)
            .order_by(StationChangeRow.version.desc())
            .limit(1)
        )
        row = self._session.scalars(stmt).first()
        return _change(row) if row is not None else None

    def history(self, station_id: str) -> list[StationChange]:
        stmt = (
            select(StationChangeRow)
            .where(StationChangeRow.station_id == station_id)
            .order_by(StationChangeRow.version)
        )
        return [_change(row) for row in self._session.scalars(stmt)]

    def after(self, seq: int, limit: int = 1000) -> list[tuple[int, StationChange]]:
        """Changes in the order they were made, after sequence number `seq`."""
        stmt = (
            select(StationChangeRow)
            .where(StationChangeRow.seq > seq)
            .order_by(StationChangeRow.seq)
            .limit(limit)
        )
        return [(row.seq, _change(row)) for row in self._session.scalars(stmt)]

    def all_after(self, seq: int) -> list[tuple[int, StationChange]]:
        """Every change after `seq`, read a page at a time: an import of thousands of
        stations is one burst of changes, and every one of them must be followed."""
        found: list[tuple[int, StationChange]] = []
        while page := self.after(seq):
            found += page
            seq = page[-1][0]
        return found

    def last_seq(self) -> int:
        return self._session.scalar(select(func.max(StationChangeRow.seq))) or 0


def _change(row: StationChangeRow) -> StationChange:
    return StationChange(
        change_id=uuid.UUID(row.change_id),
        station_id=row.station_id,
        version=row.version,
        action=StationAction(row.action),
        actor=row.actor,
        at=row.at,
        old=Station.model_validate(row.old) if row.old is not None else None,
        new=Station.model_validate(row.new) if row.new is not None else None,
    )
