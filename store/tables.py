"""Table definitions: one set for SQLite (embedded) and PostgreSQL + PostGIS (production).

Geometries are WGS84 (`GeometryColumn`): PostGIS `geometry` columns with GiST indexes on
PostgreSQL, WKB on SQLite. Stations also keep plain lon/lat floats, which the SQLite store uses
as a bounding-box prefilter. Every time is stored in UTC through `UTCDateTime`. The schema is
made and changed by the Alembic migrations in `store/migrations`, which these classes mirror.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from schemas.alert_actions import WEBHOOK_SECRET_MAX_CHARS
from store.geometry import GeometryColumn

ID_LENGTH = 64  # station ids: see schemas.stations.STATION_ID_PATTERN
NAME_LENGTH = 200
AREA_LENGTH = 100  # district and subdistrict names
ENUM_LENGTH = 32
MONTH_LENGTH = 7  # YYYY-MM
HASH_LENGTH = 64  # sha256, hex
ZONE_LENGTH = 2 * AREA_LENGTH + 1  # "district/subdistrict", or an H3 index
ADDRESS_LENGTH = 500

# A 64-bit sequence on PostgreSQL; on SQLite only INTEGER PRIMARY KEY aliases the rowid.
Sequence64 = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, always written in UTC and always read back as aware UTC.

    SQLite keeps no offset, so the value is stored as naive UTC there; PostgreSQL stores a
    `timestamptz`. Naive datetimes are refused rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} cannot be stored: give an offset")
        utc = value.astimezone(UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


def gist(name: str, *expressions: Any) -> Index:
    """A GiST index, made on PostgreSQL only (SQLite has no use for an index on WKB)."""
    return Index(name, *expressions, postgresql_using="gist").ddl_if(dialect="postgresql")


class StationRow(Base):
    """The station registry."""

    __tablename__ = "stations"

    station_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    kind: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    district: Mapped[str] = mapped_column(String(AREA_LENGTH))
    subdistrict: Mapped[str | None] = mapped_column(String(AREA_LENGTH))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    capacity: Mapped[int] = mapped_column(Integer)
    amenities: Mapped[list[Any]] = mapped_column(JSON)
    opening_hours: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    operator: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    # A mobile unit's tour: [{name, lat, lon, start, end}], in time order; null otherwise.
    stops: Mapped[list[Any] | None] = mapped_column(JSON)
    geom: Mapped[BaseGeometry | None] = mapped_column(GeometryColumn("POINT"), deferred=True)

    __table_args__ = (
        Index("ix_stations_district_subdistrict", "district", "subdistrict"),
        gist("ix_stations_geom", "geom"),
        # Distances in metres (ST_DWithin on geography) use this one.
        gist("ix_stations_geog", func.geography(geom)),
    )


class EventRow(Base):
    """The event archive: every accepted event, append-only apart from `status`.

    `seq` is the ingest order. No foreign key to `stations`: the archive records what was
    accepted and must never be blocked or rewritten by changes to the registry. Reads go by
    station and time (`ix_events_station_occurred`); README.md ("Partitioning the event
    archive") tells how to split it by month on PostgreSQL.
    """

    __tablename__ = "events"

    seq: Mapped[int] = mapped_column(Sequence64, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    station_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    body: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        Index("ux_events_event_id", "event_id", unique=True),
        Index("ix_events_station_occurred", "station_id", "occurred_at"),
        Index("ix_events_status_seq", "status", "seq"),
        Index("ix_events_type_occurred", "type", "occurred_at"),
    )


class StationRecordRow(Base):
    """The ledger's latest knowledge of each station, as JSON, with its state for queries."""

    __tablename__ = "station_records"

    station_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    state_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)


class AlertRow(Base):
    """Alerts, current and past, one row per alert."""

    __tablename__ = "alerts"

    alert_id: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    kind: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    subject: Mapped[str] = mapped_column(String(ID_LENGTH))
    district: Mapped[str | None] = mapped_column(String(AREA_LENGTH), index=True)
    status: Mapped[str] = mapped_column(String(16))
    condition_since: Mapped[datetime] = mapped_column(UTCDateTime)
    clear_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The zone's outline for zone alerts, the station's location for station alerts.
    geom: Mapped[BaseGeometry | None] = mapped_column(GeometryColumn("GEOMETRY"), deferred=True)

    __table_args__ = (
        Index("ix_alerts_status_updated", "status", "updated_at"),
        Index("ix_alerts_kind_status", "kind", "status"),
        gist("ix_alerts_geom", "geom"),
    )


class DemandCellRow(Base):
    """The demand layer: expected outdoor workers per grid cell."""

    __tablename__ = "demand_cells"

    cell: Mapped[str] = mapped_column(String(15), primary_key=True)
    demand_workers: Mapped[float] = mapped_column(Float)
    district: Mapped[str] = mapped_column(String(AREA_LENGTH), index=True)
    subdistrict: Mapped[str | None] = mapped_column(String(AREA_LENGTH))


class DistrictRow(Base):
    """District outlines. `id` keeps the order they were imported in."""

    __tablename__ = "districts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(AREA_LENGTH), index=True)
    geom: Mapped[BaseGeometry] = mapped_column(GeometryColumn("MULTIPOLYGON"))

    __table_args__ = (gist("ix_districts_geom", "geom"),)


class SubdistrictRow(Base):
    """Subdistrict outlines, with the district they belong to when the file said."""

    __tablename__ = "subdistricts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(AREA_LENGTH))
    district: Mapped[str | None] = mapped_column(String(AREA_LENGTH))
    geom: Mapped[BaseGeometry] = mapped_column(GeometryColumn("MULTIPOLYGON"))

    __table_args__ = (
        Index("ix_subdistricts_district_name", "district", "name"),
        gist("ix_subdistricts_geom", "geom"),
    )


class CoverageCellRow(Base):
    """The last saved coverage of each demand cell, for planners and gap-report queries.

    The live map is in memory; the runtime writes a cell here when its count or status
    changes. `lon`/`lat` (the centre) serve SQLite as a bounding-box prefilter.
    """

    __tablename__ = "coverage_cells"

    cell: Mapped[str] = mapped_column(String(15), primary_key=True)
    district: Mapped[str] = mapped_column(String(AREA_LENGTH), index=True)
    subdistrict: Mapped[str | None] = mapped_column(String(AREA_LENGTH))
    zone: Mapped[str] = mapped_column(String(ZONE_LENGTH), index=True)
    demand_workers: Mapped[float] = mapped_column(Float)
    coverage_count: Mapped[int] = mapped_column(Integer)
    access_score: Mapped[float] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    geom: Mapped[BaseGeometry] = mapped_column(GeometryColumn("POLYGON"))
    centre: Mapped[BaseGeometry] = mapped_column(GeometryColumn("POINT"))

    __table_args__ = (
        Index("ix_coverage_cells_lat_lon", "lat", "lon"),
        gist("ix_coverage_cells_geom", "geom"),
        gist("ix_coverage_cells_centre", "centre"),
        gist("ix_coverage_cells_centre_geog", func.geography(centre)),
    )


class ApiKeyRow(Base):
    """API keys: only a hash of each secret is kept, so a leaked database leaks no key.
    `districts` null means every district; `stations` are those an operator posts for."""

    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    role: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    label: Mapped[str] = mapped_column(String(NAME_LENGTH), default="")
    districts: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    stations: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class MetaRow(Base):
    """Small key/value facts about the deployment."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class StationChangeRow(Base):
    """The registry's audit log: every create, update, retirement and reactivation of a
    station, with who made it, when, and the definition before and after (JSON; null where
    the station did not exist). `seq` is the order the processors apply them in."""

    __tablename__ = "station_changes"

    seq: Mapped[int] = mapped_column(Sequence64, primary_key=True, autoincrement=True)
    change_id: Mapped[str] = mapped_column(String(36))
    station_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    version: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    actor: Mapped[str] = mapped_column(String(NAME_LENGTH))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    old: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    new: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("ux_station_changes_change_id", "change_id", unique=True),
        Index("ux_station_changes_station_version", "station_id", "version", unique=True),
    )


class ScanTokenRow(Base):
    """Each station's current QR poster generation: a poster signed for an older generation
    is revoked. No row means generation 1."""

    __tablename__ = "scan_tokens"

    station_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer)
    rotated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ScenarioRow(Base):
    """A planner's saved what-if: its changes, re-run against the live state on demand (the
    results are never stored: they go stale as soon as a station changes)."""

    __tablename__ = "planning_scenarios"

    scenario_id: Mapped[int] = mapped_column(Sequence64, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    district: Mapped[str | None] = mapped_column(String(AREA_LENGTH), nullable=True)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(ID_LENGTH))

    __table_args__ = (Index("ix_planning_scenarios_district", "district"),)


class GeocodeRow(Base):
    """Answers of the configured geocoder, so that an address is looked up once. A miss is
    kept too (no coordinates), so a bad address is not asked about again and again."""

    __tablename__ = "geocode_cache"

    geocoder: Mapped[str] = mapped_column(String(ENUM_LENGTH), primary_key=True)
    address: Mapped[str] = mapped_column(String(ADDRESS_LENGTH), primary_key=True)
    lat: Mapped[float | None] = mapped_column(Float, nullable=True)  # WGS84
    lon: Mapped[float | None] = mapped_column(Float, nullable=True)
    looked_up_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AlertActionRow(Base):
    """What people did about an alert, in order: acknowledged, assigned, noted."""

    __tablename__ = "alert_actions"

    seq: Mapped[int] = mapped_column(Sequence64, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    action: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    by_key_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    by_label: Mapped[str] = mapped_column(String(NAME_LENGTH))
    assignee: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    note: Mapped[str | None] = mapped_column(Text)


class WebhookRow(Base):
    """Where a district's alerts are sent. The secret signs posts, so it is kept as is: one we
    generated, or a group robot's own (DingTalk's are longer than a hash)."""

    __tablename__ = "webhooks"

    webhook_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    district: Mapped[str] = mapped_column(String(AREA_LENGTH), index=True)
    url: Mapped[str] = mapped_column(Text)
    flavour: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    secret: Mapped[str] = mapped_column(String(WEBHOOK_SECRET_MAX_CHARS))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(NAME_LENGTH))


class WebhookDeliveryRow(Base):
    """The delivery log: one row per alert transition and webhook, written before the first
    attempt so that a restart retries what was not delivered."""

    __tablename__ = "webhook_deliveries"

    delivery_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    alert_id: Mapped[str] = mapped_column(String(NAME_LENGTH))
    transition: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),)


class CoverageHistoryRow(Base):
    """One point of an area's coverage history: a district (`subdistrict` empty) or one of
    its subdistricts, every `interval_s` seconds (5-minute points, hourly once older)."""

    __tablename__ = "coverage_history"

    district: Mapped[str] = mapped_column(String(AREA_LENGTH), primary_key=True)
    subdistrict: Mapped[str] = mapped_column(String(AREA_LENGTH), primary_key=True)
    interval_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    coverage_pct: Mapped[float] = mapped_column(Float)
    demand_workers: Mapped[float] = mapped_column(Float)
    uncovered_demand_workers: Mapped[float] = mapped_column(Float)
    available: Mapped[float] = mapped_column(Float)
    degraded: Mapped[float] = mapped_column(Float)
    closed: Mapped[float] = mapped_column(Float)
    silent: Mapped[float] = mapped_column(Float)
    open_alerts: Mapped[float] = mapped_column(Float)


DAY_LENGTH = 10  # YYYY-MM-DD, the local day of the district's time zone


class VisitDayRow(Base):
    """Visits per local day, station and worker kind, added up as events are archived."""

    __tablename__ = "visit_days"

    day: Mapped[str] = mapped_column(String(DAY_LENGTH), primary_key=True)
    station_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    worker_kind: Mapped[str] = mapped_column(String(ENUM_LENGTH), primary_key=True)
    visits: Mapped[int] = mapped_column(Integer)
    people: Mapped[int] = mapped_column(Integer)


class VisitDayServiceRow(Base):
    """Services used per local day and station (health screening, charging...)."""

    __tablename__ = "visit_day_services"

    day: Mapped[str] = mapped_column(String(DAY_LENGTH), primary_key=True)
    station_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    service: Mapped[str] = mapped_column(String(ENUM_LENGTH), primary_key=True)
    uses: Mapped[int] = mapped_column(Integer)


class VisitDayWorkerRow(Base):
    """Which (hashed) workers visited a station on a day, so that distinct workers can be
    counted over any area and period without the archive. `worker` is the first 64 bits of
    the keyed hash (a collision among millions of workers is a one in 10^7 chance): an
    integer counts distinct several times faster than 64 hex characters. Never shown."""

    __tablename__ = "visit_day_workers"

    day: Mapped[str] = mapped_column(String(DAY_LENGTH), primary_key=True)
    station_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    worker: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class VisitMonthWorkerRow(Base):
    """Which (hashed) workers visited a subdistrict ('' for none) of a district in a local
    month, on the area each station was in when its visits were counted: a month's distinct
    workers per subdistrict or district read these, where the station-day presences need a
    distinct over every presence of the month. `VisitMonthStationRow` tells whether those
    areas are still the stations' areas."""

    __tablename__ = "visit_month_workers"
    # SQLite: the key is the row, one b-tree to add to instead of a table and its index.
    __table_args__ = {"sqlite_with_rowid": False}

    month: Mapped[str] = mapped_column(String(MONTH_LENGTH), primary_key=True)
    district: Mapped[str] = mapped_column(String(AREA_LENGTH), primary_key=True)
    subdistrict: Mapped[str] = mapped_column(String(AREA_LENGTH), primary_key=True)
    worker: Mapped[int] = mapped_column(BigInteger, primary_key=True)


class VisitMonthStationRow(Base):
    """The area each station's workers of a month were counted in (district null: the
    station was not in the registry). Where it is no longer the station's area, the month's
    workers are read from the daily rollups until they are recounted."""

    __tablename__ = "visit_month_stations"

    month: Mapped[str] = mapped_column(String(MONTH_LENGTH), primary_key=True)
    station_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    district: Mapped[str | None] = mapped_column(String(AREA_LENGTH))
    subdistrict: Mapped[str] = mapped_column(String(AREA_LENGTH))


class EventReceiptRow(Base):
    """Event ids the API has handed to the broker (distributed mode), with their content hash:
    what it checks before producing, so that a retry is answered `duplicate` and an id reused
    with other content is refused, as the embedded runtime's archive does. The archive itself
    is written later, by the workers."""

    __tablename__ = "event_receipts"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
