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

from store.geometry import GeometryColumn

ID_LENGTH = 64  # station ids: see schemas.stations.STATION_ID_PATTERN
NAME_LENGTH = 200
AREA_LENGTH = 100  # district and subdistrict names
ENUM_LENGTH = 32
HASH_LENGTH = 64  # sha256, hex
ZONE_LENGTH = 2 * AREA_LENGTH + 1  # "district/subdistrict", or an H3 index

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


class EventReceiptRow(Base):
    """Event ids the API has handed to the broker (distributed mode), with their content hash:
    what it checks before producing, so that a retry is answered `duplicate` and an id reused
    with other content is refused, as the embedded runtime's archive does. The archive itself
    is written later, by the workers."""

    __tablename__ = "event_receipts"

    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
