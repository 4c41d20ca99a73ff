"""Repositories: the only code that reads and writes the tables.

Each repository works inside the Session of its unit of work and speaks in schema models, never
in rows. Bulk writes go through single multi-row statements so that a batch of a thousand
events or a few thousand station records costs one round trip, not one per row.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar

import h3
from pydantic import BaseModel
from shapely.geometry import Point, Polygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Text, and_, bindparam, cast, delete, func, insert, select, update
from sqlalchemy.orm import Session

from schemas.alerts import Alert, AlertEvidence, AlertKind, AlertStatus
from schemas.events import EVENT_ADAPTER, Event, EventType
from schemas.geography import DemandCell
from schemas.state import EventStatus, StationRecord
from schemas.stations import Station, StationState
from store.database import dialect_insert, executemany_direct, upsert
from store.spatial import degree_box, geodesic_m, on_postgis, pg_geography, pg_point
from store.tables import (
    AlertRow,
    DemandCellRow,
    EventRow,
    MetaRow,
    StationRecordRow,
    StationRow,
    SubdistrictRow,
)

IN_CHUNK = 10_000
"""Most values bound in one IN (...) list: SQLite allows 32,766 variables per statement."""
STATION_WRITE_CHUNK = 2000  # 12 columns a row: under SQLite's variable limit per statement

_T = TypeVar("_T")


def _chunks(values: Iterable[_T], size: int = IN_CHUNK) -> Iterator[list[_T]]:
    chunk: list[_T] = []
    for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _json_in_utc(model: BaseModel) -> dict[str, Any]:
    """`model_dump(mode="json")` with every top-level datetime in UTC; naive ones are refused."""
    data = model.model_dump(mode="json")
    for name, value in model.__dict__.items():  # the fields, without pydantic's iteration
        if isinstance(value, datetime):
            offset = value.utcoffset()
            if offset is None:
                raise ValueError(f"{type(model).__name__}.{name} is a naive datetime")
            if offset:
                data[name] = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return data


def _json_text_in_utc(model: BaseModel) -> str:
    """`_json_in_utc` as JSON text. When every top-level datetime is in UTC already (as the
    runtime's are) pydantic's serializer writes the same times, several times faster than
    dumping to a dict and then to text."""
    for name, value in model.__dict__.items():
        if isinstance(value, datetime):
            offset = value.utcoffset()
            if offset is None:
                raise ValueError(f"{type(model).__name__}.{name} is a naive datetime")
            if offset:
                return json.dumps(_json_in_utc(model))
    return model.model_dump_json()


# --- stations -------------------------------------------------------------------------------


class StationRepository:
    """The station registry."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def upsert_many(self, stations: Iterable[Station]) -> int:
        """Insert stations or replace them whole by station_id; returns the number written."""
        rows = [
            {
                "station_id": s.station_id,
                "name": s.name,
                "kind": s.kind.value,
                "district": s.district,
                "subdistrict": s.subdistrict,
                "lon": s.lon,
                "lat": s.lat,
                "capacity": s.capacity,
                "amenities": [a.value for a in s.amenities],
                "opening_hours": s.opening_hours,
                "operator": s.operator,
                "stops": [stop.model_dump(mode="json") for stop in s.stops] or None,
                "geom": Point(s.lon, s.lat),
            }
            for s in stations
        ]
        written = 0
        for chunk in _chunks(rows, STATION_WRITE_CHUNK):
            written += upsert(self._session, StationRow.__table__, chunk, key=["station_id"])
        return written

    def get(self, station_id: str) -> Station | None:
        row = self._session.get(StationRow, station_id)
        return _station(row) if row is not None else None

    def districts(self) -> list[str]:
        stmt = select(StationRow.district).distinct().order_by(StationRow.district)
        return list(self._session.scalars(stmt))

    def list(self, *, district: str | None = None, subdistrict: str | None = None) -> list[Station]:
        stmt = select(StationRow).order_by(StationRow.station_id)
        if district is not None:
            stmt = stmt.where(StationRow.district == district)
        if subdistrict is not None:
            stmt = stmt.where(StationRow.subdistrict == subdistrict)
        return [_station(row) for row in self._session.scalars(stmt)]

    def within(self, lat: float, lon: float, radius_m: float) -> list[Station]:
        """Stations within `radius_m` of the point on the ellipsoid (PostGIS: ST_DWithin on
        geography; SQLite: a lon/lat box, then geodesic distances), by station_id."""
        if on_postgis(self._session):
            near = func.ST_DWithin(
                pg_geography(StationRow.geom), pg_geography(pg_point(lat, lon)), radius_m
            )
            stmt = select(StationRow).where(near).order_by(StationRow.station_id)
            return [_station(row) for row in self._session.scalars(stmt)]
        min_lon, min_lat, max_lon, max_lat = degree_box(lat, lon, radius_m)
        stmt = (
            select(StationRow)
            .where(
                and_(
                    StationRow.lat.between(min_lat, max_lat),
                    StationRow.lon.between(min_lon, max_lon),
                )
            )
            .order_by(StationRow.station_id)
        )
        rows = list(self._session.scalars(stmt))
        if not rows:
            return []
        distances = geodesic_m(lat, lon, [r.lat for r in rows], [r.lon for r in rows])
        return [_station(r) for r, d in zip(rows, distances, strict=True) if d <= radius_m]

    def existing_ids(self, ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(set(ids)):
            stmt = select(StationRow.station_id).where(StationRow.station_id.in_(chunk))
            found.update(self._session.scalars(stmt))
        return found

    def ids(self) -> set[str]:
        return set(self._session.scalars(select(StationRow.station_id)))

    def count(self) -> int:
        return self._session.scalar(select(func.count()).select_from(StationRow)) or 0

    def remove(self, station_id: str) -> None:
        """Take a station out of the registry (retirement: its audit log keeps it)."""
        self._session.execute(delete(StationRow).where(StationRow.station_id == station_id))

    def areas_of_each(self) -> dict[str, tuple[str, str | None]]:
        """Every registered station's district and subdistrict, without loading whole
        stations (a city's counts are taken from this at every scrape and live update)."""
        stmt = select(StationRow.station_id, StationRow.district, StationRow.subdistrict)
        return {
            row.station_id: (row.district, row.subdistrict) for row in self._session.execute(stmt)
        }


def _station(row: StationRow) -> Station:
    return Station(
        station_id=row.station_id,
        name=row.name,
        kind=row.kind,
        district=row.district,
        subdistrict=row.subdistrict,
        lat=row.lat,
        lon=row.lon,
        capacity=row.capacity,
        amenities=tuple(row.amenities),
        opening_hours=row.opening_hours,
        operator=row.operator,
        stops=tuple(row.stops or ()),
    )


# --- events ---------------------------------------------------------------------------------


class AppendOutcome(StrEnum):
    accepted = "accepted"
    duplicate = "duplicate"  # same event_id, same content: a retry
    conflict = "conflict"  # same event_id, different content: the stored event stands


# Made once: json.dumps with options builds a new encoder on every call.
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(event: Event) -> str:
    """The canonical text of a validated event: sorted keys, no spaces, UTF-8 kept."""
    return _CANONICAL_ENCODER.encode(event.model_dump(mode="json"))


def content_hash(body: str) -> str:
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


class ArchivedVisit(NamedTuple):
    """An archived visit as the visit rollups read it: the time is read from the body they
    parse anyway, since converting the column back to a datetime cost as much as the rest
    of the read."""

    seq: int
    station_id: str
    body: str  # canonical JSON of the validated event


@dataclass(frozen=True)
class ArchivedEvent:
    seq: int | None  # assigned by the archive on append (monotonic ingest order)
    event_id: str  # UUID text
    type: str
    station_id: str
    occurred_at: datetime
    received_at: datetime
    body: str  # canonical JSON of the validated event
    content_hash: str  # sha256 hex of body
    status: str  # an EventStatus
    # The validated event the body was made from, when this process made it: spares the
    # processor parsing and validating the body again.
    event: Event | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_event(
        cls, event: Event, *, received_at: datetime, status: str = EventStatus.pending
    ) -> ArchivedEvent:
        """The archive entry of a validated event, with its canonical body and hash."""
        return cls.from_body(event, canonical_json(event), received_at=received_at, status=status)

    @classmethod
    def from_body(
        cls,
        event: Event,
        body: str,
        *,
        received_at: datetime,
        status: str = EventStatus.pending,
    ) -> ArchivedEvent:
        """The archive entry of an event read from `body`, its canonical JSON as every writer
        of the event topics sends it (the API, a replay of the archive): encoding the event
        again would only give the same text."""
        return cls(
            seq=None,
            event_id=str(event.event_id),
            type=event.type.value,
            station_id=event.station_id,
            occurred_at=event.occurred_at,
            received_at=received_at,
            body=body,
            content_hash=content_hash(body),
            status=status,
            event=event,
        )

    def to_event(self) -> Event:
        """The event again, from its body. It was checked on ingest; the clock is not re-applied
        (only the calendar's own range is: the processors judge plausibility themselves)."""
        if self.event is not None:
            return self.event
        context = {
            "now": self.received_at,
            "max_future_skew": timedelta.max,
            "earliest_occurred_at": datetime.min.replace(tzinfo=UTC),
        }
        return EVENT_ADAPTER.validate_json(self.body, strict=True, context=context)


_EVENT_COLUMNS = (
    "event_id",
    "type",
    "station_id",
    "occurred_at",
    "received_at",
    "body",
    "content_hash",
    "status",
)


class EventArchive:
    """Every accepted event, in ingest order; append-only apart from each event's status."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def append(self, events: Sequence[ArchivedEvent]) -> list[AppendOutcome]:
        """Archive new events; one outcome per input, in order.

        An event_id already stored, or earlier in the same call, gives `duplicate` when the
        content hash matches and `conflict` when it does not; the stored event is never touched.
        """
        for e in events:
            _check_status(e.status)
        known = self._hashes({e.event_id for e in events})
        outcomes: list[AppendOutcome] = []
        new_rows: list[tuple[Any, ...]] = []  # values of _EVENT_COLUMNS
        new_at: dict[str, int] = {}  # event_id -> index in outcomes
        for e in events:
            stored = known.get(e.event_id)
            if stored is None:
                known[e.event_id] = e.content_hash
                new_at[e.event_id] = len(outcomes)
                outcomes.append(AppendOutcome.accepted)
                new_rows.append(tuple(getattr(e, name) for name in _EVENT_COLUMNS))
            elif stored == e.content_hash:
                outcomes.append(AppendOutcome.duplicate)
            else:
                outcomes.append(AppendOutcome.conflict)
        if not new_rows:
            return outcomes
        table = EventRow.__table__
        if self._session.get_bind().dialect.name == "sqlite":
            # A SQLite unit of work holds the write lock from before the lookup: nothing can
            # have come in since, so the rows go through the driver as they are, sparing
            # SQLAlchemy's per-row work on the ingest path.
            stmt = insert(table).values({name: bindparam(name) for name in _EVENT_COLUMNS})
            types = {name: table.c[name].type for name in ("occurred_at", "received_at")}
            executemany_direct(self._session, stmt, _EVENT_COLUMNS, types, new_rows)
            return outcomes

        # Another transaction may have stored some of these ids since the lookup (PostgreSQL
        # under READ COMMITTED). Those rows are skipped by the database and their outcome
        # decided against what it holds.
        stmt = (
            dialect_insert(self._session, table)
            .on_conflict_do_nothing(index_elements=["event_id"])
            .returning(table.c.event_id)
        )
        inserted = set(
            self._session.scalars(
                stmt, [dict(zip(_EVENT_COLUMNS, row, strict=True)) for row in new_rows]
            )
        )
        raced = [event_id for event_id in new_at if event_id not in inserted]
        if raced:
            theirs = self._hashes(raced)
            for event_id in raced:
                i = new_at[event_id]
                same = theirs.get(event_id) == events[i].content_hash
                outcomes[i] = AppendOutcome.duplicate if same else AppendOutcome.conflict
                # Later copies in this call were judged against our hash; judge them again.
                for j in range(i + 1, len(events)):
                    if events[j].event_id == event_id:
                        same = theirs.get(event_id) == events[j].content_hash
                        outcomes[j] = AppendOutcome.duplicate if same else AppendOutcome.conflict
        return outcomes

    def _hashes(self, event_ids: Iterable[str]) -> dict[str, str]:
        hashes: dict[str, str] = {}
        for chunk in _chunks(event_ids):
            stmt = select(EventRow.event_id, EventRow.content_hash).where(
                EventRow.event_id.in_(chunk)
            )
            hashes.update((event_id, digest) for event_id, digest in self._session.execute(stmt))
        return hashes

    def pending(self, limit: int = 1000) -> list[ArchivedEvent]:
        """Events not processed yet, oldest ingest first."""
        stmt = (
            select(*_ARCHIVED_COLUMNS)
            .where(EventRow.status == EventStatus.pending.value)
            .order_by(EventRow.seq)
            .limit(limit)
        )
        return [ArchivedEvent(*row) for row in self._session.execute(stmt)]

    def after(self, seq: int, limit: int = 1000) -> list[ArchivedEvent]:
        """Events archived after `seq` (0: from the first), in ingest order: a page of a replay."""
        stmt = (
            select(*_ARCHIVED_COLUMNS).where(EventRow.seq > seq).order_by(EventRow.seq).limit(limit)
        )
        return [ArchivedEvent(*row) for row in self._session.execute(stmt)]

    def visits_after(self, seq: int, limit: int = 1000) -> list[ArchivedVisit]:
        """Visits archived after `seq`, in ingest order, with only what the visit rollups read:
        a page for their follower, which skips every other kind of event anyway."""
        stmt = (
            select(EventRow.seq, EventRow.station_id, EventRow.body)
            .where(EventRow.seq > seq, EventRow.type == EventType.visit.value)
            .order_by(EventRow.seq)
            .limit(limit)
        )
        return [ArchivedVisit(*row) for row in self._session.execute(stmt)]

    def mark(self, statuses: Mapping[str, str]) -> None:
        """Set the status of events by event_id (the only change the archive allows).

        One UPDATE per status and chunk of ids, not one per event: a processed batch is
        thousands of events with nearly all the same status, and each statement run costs
        the caller the interpreter's time to bind and the database's to plan it."""
        by_status: dict[str, list[str]] = defaultdict(list)
        for event_id, status in statuses.items():
            by_status[_check_status(status)].append(event_id)
        table = EventRow.__table__
        for status, event_ids in sorted(by_status.items()):
            for chunk in _chunks(event_ids):
                self._session.execute(
                    update(table).where(table.c.event_id.in_(chunk)).values(status=status)
                )

    def with_status(
        self, status: str, *, station_id: str | None = None, limit: int = 1000
    ) -> list[ArchivedEvent]:
        """Events of one status (e.g. `failed`), oldest ingest first, optionally one station's."""
        stmt = select(EventRow).where(EventRow.status == _check_status(status))
        if station_id is not None:
            stmt = stmt.where(EventRow.station_id == station_id)
        return [
            _archived(row)
            for row in self._session.scalars(stmt.order_by(EventRow.seq).limit(limit))
        ]

    def discard_failed(
        self, *, event_ids: Collection[str] | None = None, station_id: str | None = None
    ) -> list[str]:
        """Mark failed events `discarded` (all, some ids, or one station's); returns their ids.
        Events of any other status are left alone."""
        stmt = select(EventRow.event_id).where(EventRow.status == EventStatus.failed.value)
        if station_id is not None:
            stmt = stmt.where(EventRow.station_id == station_id)
        found = list(self._session.scalars(stmt.order_by(EventRow.seq)))
        if event_ids is not None:
            wanted = set(event_ids)
            found = [event_id for event_id in found if event_id in wanted]
        self.mark(dict.fromkeys(found, EventStatus.discarded.value))
        return found

    def get(self, event_id: str) -> ArchivedEvent | None:
        row = self._session.scalar(select(EventRow).where(EventRow.event_id == event_id))
        return _archived(row) if row is not None else None

    def count(self, *, status: str | None = None) -> int:
        stmt = select(func.count()).select_from(EventRow)
        if status is not None:
            stmt = stmt.where(EventRow.status == _check_status(status))
        return self._session.scalar(stmt) or 0

    def count_by_type_since(
        self,
        since: datetime,
        *,
        type: str | None = None,
        station_ids: Collection[str] | None = None,
    ) -> int:
        """Events that occurred at or after `since`, optionally of one type and some stations.

        An empty `station_ids` means no stations (0); None means every station.
        """
        stmt = select(func.count()).select_from(EventRow).where(EventRow.occurred_at >= since)
        if type is not None:
            stmt = stmt.where(EventRow.type == type)
        if station_ids is None:
            return self._session.scalar(stmt) or 0
        return sum(
            self._session.scalar(stmt.where(EventRow.station_id.in_(chunk))) or 0
            for chunk in _chunks(set(station_ids))
        )

    def count_by_station_since(self, since: datetime, *, type: str) -> dict[str, int]:
        """Events of one type that occurred at or after `since`, counted per station."""
        stmt = (
            select(EventRow.station_id, func.count())
            .where(EventRow.occurred_at >= since, EventRow.type == type)
            .group_by(EventRow.station_id)
        )
        return {row.station_id: row[1] for row in self._session.execute(stmt)}

    def applied_since(self, since: datetime, *, type: str) -> list[ArchivedEvent]:
        """Applied events of one type that occurred at or after `since`, in event-time order:
        what a restarted runtime needs to rebuild its trailing windows."""
        stmt = (
            select(EventRow)
            .where(
                EventRow.occurred_at >= since,
                EventRow.type == type,
                EventRow.status == EventStatus.applied.value,
            )
            .order_by(EventRow.occurred_at, EventRow.seq)
        )
        return [_archived(row) for row in self._session.scalars(stmt)]

    def for_station(self, station_id: str, limit: int = 20) -> list[ArchivedEvent]:
        """A station's events, latest occurred_at first."""
        stmt = (
            select(EventRow)
            .where(EventRow.station_id == station_id)
            .order_by(EventRow.occurred_at.desc(), EventRow.seq.desc())
            .limit(limit)
        )
        return [_archived(row) for row in self._session.scalars(stmt)]


def _check_status(status: str) -> str:
    try:
        return EventStatus(status).value
    except ValueError:
        known = ", ".join(s.value for s in EventStatus)
        raise ValueError(f"unknown event status {status!r}; expected one of {known}") from None


# ArchivedEvent's fields in order, read as plain rows: building ORM objects for a page of
# events cost more than reading it (the visit rollups read back every event archived).
_ARCHIVED_COLUMNS = (
    EventRow.seq,
    EventRow.event_id,
    EventRow.type,
    EventRow.station_id,
    EventRow.occurred_at,
    EventRow.received_at,
    EventRow.body,
    EventRow.content_hash,
    EventRow.status,
)


def _archived(row: EventRow) -> ArchivedEvent:
    return ArchivedEvent(
        seq=row.seq,
        event_id=row.event_id,
        type=row.type,
        station_id=row.station_id,
        occurred_at=row.occurred_at,
        received_at=row.received_at,
        body=row.body,
        content_hash=row.content_hash,
        status=row.status,
    )


# --- station records ------------------------------------------------------------------------


class StationRecordRepository:
    """The ledger's latest knowledge of each station, saved so a restart resumes from it."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def save_many(self, records: Iterable[StationRecord]) -> None:
        """Insert or replace these records (the last one of a station wins). The processor
        saves up to thousands after every batch, so each goes to the driver as plain values,
        its JSON made by pydantic's serializer (see `executemany_direct`)."""
        table = StationRecordRow.__table__
        rows = {
            record.station_id: (
                record.station_id,
                record.state.value,
                record.state_since,
                _json_text_in_utc(record),
            )
            for record in records
        }
        if not rows:
            return
        names = ("b_station_id", "b_state", "b_state_since", "b_record")
        columns = ("station_id", "state", "state_since", "record")
        stmt = dialect_insert(self._session, table).values(
            {column: bindparam(name) for column, name in zip(columns, names, strict=True)}
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["station_id"],
            set_={column: stmt.excluded[column] for column in columns[1:]},
        )
        types = {"b_state_since": table.c.state_since.type}  # the record is JSON text already
        executemany_direct(self._session, stmt, names, types, rows.values())

    def remove_many(self, station_ids: Iterable[str]) -> None:
        """Forget retired stations' records."""
        for chunk in _chunks(set(station_ids)):
            self._session.execute(
                delete(StationRecordRow).where(StationRecordRow.station_id.in_(chunk))
            )

    def load_all(self) -> dict[str, StationRecord]:
        stmt = select(StationRecordRow.record).order_by(StationRecordRow.station_id)
        records = (StationRecord.model_validate(data) for data in self._session.scalars(stmt))
        return {r.station_id: r for r in records}

    def texts(self) -> dict[str, str]:
        """Each station's record as its stored JSON text, undecoded: a reader that follows
        the table compares texts and decodes only the records that changed."""
        stmt = select(StationRecordRow.station_id, cast(StationRecordRow.record, Text))
        return dict(self._session.execute(stmt).tuples().all())

    def counts_by_state(
        self, *, station_ids: Collection[str] | None = None
    ) -> dict[StationState, int]:
        """Stations per state, every state a key. An empty `station_ids` counts nothing."""
        counts = dict.fromkeys(StationState, 0)
        stmt = select(StationRecordRow.state, func.count()).group_by(StationRecordRow.state)
        if station_ids is None:
            statements = [stmt]
        else:
            statements = [
                stmt.where(StationRecordRow.station_id.in_(chunk))
                for chunk in _chunks(set(station_ids))
            ]
        for statement in statements:
            for state, n in self._session.execute(statement):
                counts[StationState(state)] += n
        return counts


# --- alerts ---------------------------------------------------------------------------------

_ACTIVE = (AlertStatus.pending.value, AlertStatus.open.value)


class AlertRepository:
    """Alerts and their lifecycle, one row per alert."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def save_many(self, alerts: Iterable[Alert]) -> None:
        alerts_list = list(alerts)
        rows = [
            {
                "alert_id": a.alert_id,
                "kind": a.kind.value,
                "subject": a.subject,
                "district": a.district,
                "status": a.status.value,
                "condition_since": a.condition_since,
                "clear_since": a.clear_since,
                "opened_at": a.opened_at,
                "updated_at": a.updated_at,
                "resolved_at": a.resolved_at,
                "evidence": a.evidence.model_dump(mode="json"),
            }
            for a in alerts_list
        ]
        if not rows:
            return
        places = self._places(alerts_list)
        for row in rows:
            row["geom"] = places.get(row["alert_id"])
        upsert(self._session, AlertRow.__table__, rows, key=["alert_id"])

    def _places(self, alerts: Sequence[Alert]) -> dict[str, BaseGeometry]:
        """Where each alert is: the station's point, or the zone's outline (a subdistrict,
        or an H3 cell), so that planners can map alerts."""
        places: dict[str, BaseGeometry] = {}
        stations = {a.subject for a in alerts if a.kind is not AlertKind.zone_underserved}
        points: dict[str, BaseGeometry] = {}
        for chunk in _chunks(stations):
            stmt = select(StationRow.station_id, StationRow.lon, StationRow.lat).where(
                StationRow.station_id.in_(chunk)
            )
            points.update((sid, Point(lon, lat)) for sid, lon, lat in self._session.execute(stmt))
        zones = {a.subject for a in alerts if a.kind is AlertKind.zone_underserved}
        outlines: dict[str, BaseGeometry] = {}
        if zones - {z for z in zones if h3.is_valid_cell(z)}:
            stmt = select(SubdistrictRow.name, SubdistrictRow.district, SubdistrictRow.geom)
            for name, district, geom in self._session.execute(stmt):
                outlines.setdefault(f"{district}/{name}" if district else name, geom)
        for a in alerts:
            if a.kind is not AlertKind.zone_underserved:
                place = points.get(a.subject)
            elif h3.is_valid_cell(a.subject):
                place = Polygon([(lon, lat) for lat, lon in h3.cell_to_boundary(a.subject)])
            else:
                place = outlines.get(a.subject)
            if place is not None:
                places[a.alert_id] = place
        return places

    def load_active(self) -> list[Alert]:
        """Alerts pending or open: what the alert processor resumes from."""
        stmt = select(AlertRow).where(AlertRow.status.in_(_ACTIVE)).order_by(AlertRow.alert_id)
        return [_alert(row) for row in self._session.scalars(stmt)]

    def list(
        self,
        *,
        status: AlertStatus | None = None,
        kind: AlertKind | None = None,
        district: str | None = None,
        limit: int = 500,
    ) -> list[Alert]:
        """Latest updated first. Pending alerts (still in their grace period) are only listed
        when asked for with status=pending."""
        stmt = select(AlertRow).order_by(AlertRow.updated_at.desc(), AlertRow.alert_id)
        if status is None:
            stmt = stmt.where(AlertRow.status != AlertStatus.pending.value)
        else:
            stmt = stmt.where(AlertRow.status == AlertStatus(status).value)
        if kind is not None:
            stmt = stmt.where(AlertRow.kind == AlertKind(kind).value)
        if district is not None:
            stmt = stmt.where(AlertRow.district == district)
        return [_alert(row) for row in self._session.scalars(stmt.limit(limit))]

    def get(self, alert_id: str) -> Alert | None:
        row = self._session.get(AlertRow, alert_id)
        return _alert(row) if row is not None else None

    def count_open_by_kind(self) -> dict[AlertKind, int]:
        counts = dict.fromkeys(AlertKind, 0)
        stmt = (
            select(AlertRow.kind, func.count())
            .where(AlertRow.status == AlertStatus.open.value)
            .group_by(AlertRow.kind)
        )
        for kind, n in self._session.execute(stmt):
            counts[AlertKind(kind)] = n
        return counts


def _alert(row: AlertRow) -> Alert:
    return Alert(
        alert_id=row.alert_id,
        kind=AlertKind(row.kind),
        subject=row.subject,
        district=row.district,
        status=AlertStatus(row.status),
        condition_since=row.condition_since,
        clear_since=row.clear_since,
        opened_at=row.opened_at,
        updated_at=row.updated_at,
        resolved_at=row.resolved_at,
        evidence=AlertEvidence.model_validate(row.evidence),
    )


# --- geography ------------------------------------------------------------------------------


class DemandRepository:
    """The demand layer; loaded whole and replaced whole."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def replace(self, cells: Iterable[DemandCell]) -> int:
        """Replace the whole layer; returns the number of cells stored."""
        rows = {c.cell: c.model_dump() for c in cells}  # a repeated cell: the last one wins
        self._session.execute(delete(DemandCellRow))
        if rows:
            self._session.execute(insert(DemandCellRow.__table__), list(rows.values()))
        return len(rows)

    def load(self) -> list[DemandCell]:
        stmt = select(DemandCellRow).order_by(DemandCellRow.cell)
        return [
            DemandCell(
                cell=row.cell,
                demand_workers=row.demand_workers,
                district=row.district,
                subdistrict=row.subdistrict,
            )
            for row in self._session.scalars(stmt)
        ]

    def count(self) -> int:
        return self._session.scalar(select(func.count()).select_from(DemandCellRow)) or 0


# --- meta -----------------------------------------------------------------------------------


class MetaRepository:
    """Small key/value facts about the deployment, e.g. "sample_city_seed"."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, key: str) -> str | None:
        return self._session.scalar(select(MetaRow.value).where(MetaRow.key == key))

    def set(self, key: str, value: str) -> None:
        upsert(self._session, MetaRow.__table__, [{"key": key, "value": value}], key=["key"])
