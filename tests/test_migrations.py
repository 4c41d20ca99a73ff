"""Migrations on both backends: a database made before migrations existed (tables, no
alembic_version) is adopted and upgraded with nothing lost; `waystation db downgrade` and
`upgrade` go back and forth with the data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from shapely.geometry import Point, box, mapping
from typer.testing import CliRunner

from schemas.alerts import AlertKind
from schemas.geography import BoundaryLevel
from schemas.stations import StationState
from services.cli import app
from store import migrate
from store.admin import database_revision, downgrade_database, upgrade_database
from store.database import make_engine
from store.tables import AlertRow, StationRow
from store.unit_of_work import Store

T0 = datetime(2025, 6, 2, 0, 0, tzinfo=UTC)
SQUARE = box(116.40, 39.90, 116.50, 40.00)
EVENT_BODY = '{"event_id":"00000000-0000-0000-0000-000000000001"}'


def legacy_database(url: str) -> None:
    """The schema as `create_schema` made it before migrations (the baseline revision, which
    reproduces it exactly, without alembic_version), holding one of everything."""
    upgrade_database(url, migrate.BASELINE)
    engine = make_engine(url)
    meta = sa.MetaData()
    tables = {
        name: sa.Table(name, meta, autoload_with=engine)
        for name in (
            "stations",
            "events",
            "station_records",
            "alerts",
            "demand_cells",
            "boundaries",
            "meta",
        )
    }
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE alembic_version"))
        conn.execute(
            tables["stations"].insert(),
            [
                {
                    "station_id": f"CY-000{i}",
                    "name": f"Station {i}",
                    "kind": "warm_station",
                    "district": "Chaoyang",
                    "subdistrict": "Wangjing",
                    "lon": 116.45 + i / 100,
                    "lat": 39.95,
                    "capacity": 8,
                    "amenities": ["drinking_water"],
                    "opening_hours": None,
                    "operator": None,
                }
                for i in (1, 2)
            ],
        )
        conn.execute(
            tables["events"].insert(),
            [
                {
                    "event_id": "00000000-0000-0000-0000-000000000001",
                    "type": "visit",
                    "station_id": "CY-0001",
                    "occurred_at": T0,
                    "received_at": T0,
                    "body": EVENT_BODY,
                    "content_hash": "0" * 64,
                    "status": "applied",
                }
            ],
        )
        conn.execute(
            tables["station_records"].insert(),
            [
                {
                    "station_id": "CY-0001",
                    "state": "available",
                    "state_since": T0,
                    "record": {"station_id": "CY-0001", "state": "available"},
                }
            ],
        )
        conn.execute(
            tables["alerts"].insert(),
            [
                {
                    "alert_id": "station_silent:CY-0002:1",
                    "kind": "station_silent",
                    "subject": "CY-0002",
                    "district": "Chaoyang",
                    "status": "open",
                    "condition_since": T0,
                    "clear_since": None,
                    "opened_at": T0,
                    "updated_at": T0,
                    "resolved_at": None,
                    "evidence": {"detail": "no heartbeat", "stations": ["CY-0002"]},
                }
            ],
        )
        conn.execute(
            tables["demand_cells"].insert(),
            [{"cell": "8931aa42813ffff", "demand_workers": 12.5, "district": "Chaoyang"}],
        )
        conn.execute(
            tables["boundaries"].insert(),
            [
                {
                    "name": "Chaoyang",
                    "level": "district",
                    "parent": None,
                    "geometry": mapping(SQUARE),
                },
                {
                    "name": "Wangjing",
                    "level": "subdistrict",
                    "parent": "Chaoyang",
                    "geometry": mapping(SQUARE),
                },
            ],
        )
        conn.execute(tables["meta"].insert(), [{"key": "sample_city_seed", "value": "7"}])
    engine.dispose()


def assert_everything_is_there(store: Store) -> None:
    with store.transaction() as tx:
        assert [s.station_id for s in tx.stations.list()] == ["CY-0001", "CY-0002"]
        assert tx.stations.get("CY-0002").lon == pytest.approx(116.47)
        archived = tx.events.get("00000000-0000-0000-0000-000000000001")
        assert archived is not None
        assert archived.body == EVENT_BODY
        assert archived.occurred_at == T0
        assert tx.records.counts_by_state()[StationState.available] == 1
        alerts = tx.alerts.list()
        assert [a.alert_id for a in alerts] == ["station_silent:CY-0002:1"]
        assert alerts[0].kind is AlertKind.station_silent
        assert alerts[0].evidence.stations == ("CY-0002",)
        assert [c.cell for c in tx.demand.load()] == ["8931aa42813ffff"]
        assert tx.meta.get("sample_city_seed") == "7"
        districts = tx.boundaries.list(level=BoundaryLevel.district)
        subdistricts = tx.boundaries.list(level=BoundaryLevel.subdistrict)
        assert [(b.name, b.parent) for b in districts] == [("Chaoyang", None)]
        assert [(b.name, b.parent) for b in subdistricts] == [("Wangjing", "Chaoyang")]
        assert districts[0].geometry["type"] == "MultiPolygon"
        assert tx.boundaries.containing(39.95, 116.45, level=BoundaryLevel.district) == ["Chaoyang"]


def test_a_database_from_before_migrations_is_adopted_and_loses_nothing(
    database_url: str,
) -> None:
    legacy_database(database_url)
    assert database_revision(database_url) is None
    store = Store.open(database_url)
    try:
        assert migrate.revision_of(store.engine) == migrate.head_revision()
        assert_everything_is_there(store)
        with store.transaction() as tx:
            # Geometry was made from the old lon/lat, and the open alert placed at its station.
            point = tx.session.scalar(
                sa.select(StationRow.geom).where(StationRow.station_id == "CY-0002")
            )
            place = tx.session.scalar(sa.select(AlertRow.geom))
        assert point == Point(116.47, 39.95)
        assert place == point
    finally:
        store.close()


def test_db_downgrade_and_upgrade_commands_keep_the_data(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    legacy_database(database_url)
    Store.open(database_url).close()
    monkeypatch.setenv("WAYSTATION_DATABASE_URL", database_url)
    runner = CliRunner()

    down = runner.invoke(app, ["db", "downgrade", migrate.BASELINE])
    assert down.exit_code == 0, down.output
    assert database_revision(database_url) == migrate.BASELINE
    engine = make_engine(database_url)
    with engine.connect() as conn:
        tables = set(sa.inspect(conn).get_table_names())
        outlines = conn.execute(sa.text("SELECT name, level FROM boundaries ORDER BY id")).all()
    engine.dispose()
    assert "districts" not in tables
    assert "coverage_cells" not in tables
    assert [tuple(row) for row in outlines] == [
        ("Chaoyang", "district"),
        ("Wangjing", "subdistrict"),
    ]

    current = runner.invoke(app, ["db", "current"])
    assert current.output.strip() == migrate.BASELINE
    up = runner.invoke(app, ["db", "upgrade"])
    assert up.exit_code == 0, up.output
    assert database_revision(database_url) == migrate.head_revision()
    store = Store.open(database_url)
    try:
        assert_everything_is_there(store)
    finally:
        store.close()


def test_downgrade_to_base_removes_every_table_and_upgrade_rebuilds_them(
    database_url: str,
) -> None:
    assert upgrade_database(database_url) == migrate.head_revision()
    assert downgrade_database(database_url, "base") is None
    engine = make_engine(database_url)
    with engine.connect() as conn:
        left = set(sa.inspect(conn).get_table_names()) - {"alembic_version", "spatial_ref_sys"}
    engine.dispose()
    assert left == set()
    assert upgrade_database(database_url) == migrate.head_revision()
