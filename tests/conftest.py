"""Shared fixtures: a small city and an embedded system on a temporary store, with a clock
that moves only when a test says so; stores on both backends (SQLite, and PostGIS in a private
cluster under var/ that a test run starts once and stops at its end); an Apache Kafka broker
under var/ for the distributed runtime, also started once per run."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.browser import chromium
from geo.catchment import CircleCatchments
from geo.grid import Grid
from schemas.auth import Role
from schemas.geography import DemandCell
from schemas.stations import Amenity, Station, StationKind
from services.app import create_app
from services.auth import issue_key
from services.server import Server
from services.system import EmbeddedSystem
from store.unit_of_work import Store
from streams.clock import ManualClock
from tools import kafka_broker
from tools.postgis_cluster import Cluster, install_command, missing_packages
from waystation.settings import Settings

T0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
DISTRICT = "Test District"
CENTRE = (39.95, 116.48)  # lat, lon
CELL_DEMAND_WORKERS = 5.0
SERVER_START_TIMEOUT_S = 10


def make_station(station_id: str, lat: float, lon: float, **extra: Any) -> Station:
    fields: dict[str, Any] = {
        "station_id": station_id,
        "name": f"Station {station_id}",
        "kind": StationKind.warm_station,
        "district": DISTRICT,
        "subdistrict": "North",
        "lat": lat,
        "lon": lon,
        "capacity": 10,
        "amenities": (Amenity.drinking_water, Amenity.rest_seats, Amenity.phone_charging),
    }
    fields.update(extra)
    return Station(**fields)


@dataclass(frozen=True)
class TinyCity:
    """Two stations 5 km apart, demand in every cell either of them reaches."""

    stations: tuple[Station, ...]
    demand: tuple[DemandCell, ...]


def tiny_city(settings: Settings) -> TinyCity:
    grid = Grid(settings.grid_resolution, settings.zone_resolution)
    catchments = CircleCatchments(grid, settings.catchment_radius_m)
    stations = (
        make_station("T-0001", *CENTRE),
        make_station("T-0002", CENTRE[0], CENTRE[1] + 0.06),
    )
    cells = sorted(set().union(*(catchments.cells(s.lat, s.lon) for s in stations)))
    demand = tuple(
        DemandCell(cell=c, demand_workers=CELL_DEMAND_WORKERS, district=DISTRICT) for c in cells
    )
    return TinyCity(stations=stations, demand=demand)


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "var",
        "simulate": False,
        "alert_open_grace_minutes": 5,
        "alert_resolve_grace_minutes": 5,
        "heartbeat_interval_seconds": 300,
        "silence_missed_heartbeats": 2,
        "zone_uncovered_demand_workers": 20,
        # A counting process costs each system a second to start and stop; its own tests
        # (test_visit_rollup_process.py) and the servers started as `waystation demo` run it.
        "visit_rollups_in_own_process": False,
    }
    values.update(overrides)
    return Settings(**values)


def load(system: EmbeddedSystem, city: TinyCity) -> None:
    with system.store.transaction() as tx:
        tx.stations.upsert_many(city.stations)
        tx.demand.replace(city.demand)


BACKENDS = ("sqlite", "postgis")


@pytest.fixture(scope="session")
def postgis_cluster() -> Iterator[Cluster]:
    """One private PostGIS cluster for the whole run. Missing packages skip the PostGIS runs on a
    developer's machine but fail them under CI=true; a cluster that does not start fails."""
    missing = missing_packages()
    if missing:
        message = f"PostGIS is not installed; as root: {install_command(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    cluster = Cluster("test")
    try:
        cluster.start()
    except Exception as exc:
        cluster.stop()
        pytest.fail(f"the PostGIS test cluster did not start: {exc}")
    yield cluster
    cluster.stop()


def start_kafka(name: str, *, nodes: int = 1) -> kafka_broker.Cluster:
    """A started Kafka cluster in var/kafka/<name>. Missing java or mvn skips the test on a
    developer's machine but fails it under CI=true; a broker that does not start fails."""
    missing = kafka_broker.missing_packages()
    if missing:
        message = f"Kafka needs java and mvn; as root: {kafka_broker.install_command(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    cluster = kafka_broker.Cluster(name, nodes=nodes)
    try:
        return cluster.start()
    except Exception as exc:
        cluster.stop()
        pytest.fail(f"the Kafka test broker did not start: {exc}")


@contextmanager
def kafka_cluster(name: str, *, nodes: int = 1) -> Iterator[kafka_broker.Cluster]:
    """A Kafka cluster of the test's own: for tests that stop brokers or need three."""
    cluster = start_kafka(name, nodes=nodes)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def kafka_session() -> Iterator[kafka_broker.Cluster]:
    """One single-node Kafka broker for the whole run; tests take it through `kafka`."""
    with kafka_cluster("session") as cluster:
        yield cluster


@pytest.fixture
def kafka(kafka_session: kafka_broker.Cluster) -> kafka_broker.Cluster:
    """The run's Kafka broker with no topics left from an earlier test (each test makes its
    own with `waystation topics create`'s code; consumer groups differ by application id)."""
    kafka_session.delete_topics()
    return kafka_session


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A new, empty database on the backend under test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'waystation.db'}"
    cluster: Cluster = request.getfixturevalue("postgis_cluster")
    return cluster.create_database()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url)
    yield opened
    opened.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path)


@contextmanager
def tiny_system(settings: Settings, clock: ManualClock) -> Iterator[EmbeddedSystem]:
    """A started embedded system over the tiny city, stopped on exit."""
    built = EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)
    load(built, tiny_city(settings))
    built.start()
    try:
        yield built
    finally:
        built.stop()


@pytest.fixture
def system(settings: Settings, clock: ManualClock) -> Iterator[EmbeddedSystem]:
    """A started embedded system over the tiny city; the clock only moves when told to."""
    with tiny_system(settings, clock) as built:
        yield built


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    system: EmbeddedSystem
    client: httpx.Client


def issue(system: EmbeddedSystem, role: Role, **scope: Any) -> str:
    """A new API key for `role` (with districts= or stations= scope); returns the secret."""
    return issue_key(system.store, role=role, now=system.clock.now(), **scope).secret


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def as_key(live: LiveServer, key: str) -> httpx.Client:
    """A client of the live server that sends this key (close it, or use it in a `with`)."""
    return httpx.Client(base_url=live.url, timeout=10, headers=bearer(key))


@contextmanager
def serve(system: EmbeddedSystem) -> Iterator[LiveServer]:
    """The real HTTP server on a free loopback port, in a thread; its client holds an admin
    key (tests of roles and scopes make their own)."""
    port = free_port()
    server = Server(
        create_app(system, manage_lifecycle=False), host="127.0.0.1", port=port, log_level="warning"
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    try:
        admin = bearer(issue(system, Role.admin))
        with httpx.Client(base_url=url, timeout=10, headers=admin) as client:
            yield LiveServer(url=url, system=system, client=client)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def served_tiny_city(settings: Settings, clock: ManualClock) -> Iterator[LiveServer]:
    """`tiny_system` behind the real HTTP server, for tests that need their own settings."""
    with tiny_system(settings, clock) as system, serve(system) as server:
        yield server


@pytest.fixture
def live(system: EmbeddedSystem) -> Iterator[LiveServer]:
    with serve(system) as server:
        yield server


EventFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def event(clock: ManualClock) -> EventFactory:
    """Builds a valid event as JSON-ready data; keyword arguments override fields."""

    def build(
        type: str = "check_in",
        station_id: str = "T-0001",
        payload: dict[str, Any] | None = None,
        occurred_at: datetime | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        defaults = {
            "check_in": {"status": "open", "seats_available": 8, "staffed": True},
            "health_check": {
                "amenities": {"drinking_water": "ok", "rest_seats": "ok"},
                "next_check_in_seconds": 300,
            },
            "visit": {"worker_kind": "courier", "party_size": 1, "source": "qr_scan"},
        }
        body: dict[str, Any] = {
            "event_id": str(uuid.uuid4()),
            "type": type,
            "schema_version": 1,
            "station_id": station_id,
            "occurred_at": (occurred_at or clock.now()).isoformat(),
            "payload": defaults[type] if payload is None else payload,
        }
        body.update(fields)
        return body

    return build


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One chromium per test module; under CI=true a chromium that cannot start fails the test."""
    try:
        with chromium() as launched:
            yield launched
    except Exception as exc:  # no playwright, no chromium, or it cannot start
        message = f"chromium could not start: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
