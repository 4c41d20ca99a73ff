"""Ingest's view of which stations exist: every id is held until the registry's change log
moves (checked at most every cache time), missing ones are read again every time, and a
change through this server is seen at once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from geo.crs import Datum
from services.station_import import StationImporter
from services.system import EmbeddedSystem, StoreStations
from store.unit_of_work import Store
from streams.clock import ManualClock
from tests.conftest import make_station, settings_for

CACHE_S = 10.0
AT = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
IMPORT_STATIONS = 1_500  # over one page (1,000) of the registry log


def test_ids_are_read_again_once_the_change_log_moved_and_the_cache_time_passed(
    tmp_path: Path,
) -> None:
    """Changes made behind its back (another process writing the registry's change log): a
    new station is known at once, a retired one is refused once the cache time has passed."""
    store = Store.open(settings_for(tmp_path).resolved_database_url)
    now_s = [0.0]
    stations = StoreStations(store, CACHE_S, monotonic=lambda: now_s[0])
    with store.transaction() as tx:
        tx.station_changes.write([make_station("T-0001", 39.95, 116.48)], actor="cli", at=AT)
    assert stations.existing_ids(["T-0001", "T-0002"]) == {"T-0001"}

    with store.transaction() as tx:
        tx.station_changes.write([make_station("T-0002", 39.96, 116.49)], actor="cli", at=AT)
        tx.station_changes.retire("T-0001", actor="cli", at=AT)
    now_s[0] = CACHE_S - 0.1
    assert stations.existing_ids(["T-0001", "T-0002"]) == {"T-0001", "T-0002"}
    now_s[0] = CACHE_S
    assert stations.existing_ids(["T-0001", "T-0002"]) == {"T-0002"}


def test_ids_are_not_read_again_while_the_change_log_stands_still(tmp_path: Path) -> None:
    store = Store.open(settings_for(tmp_path).resolved_database_url)
    now_s = [0.0]
    stations = StoreStations(store, CACHE_S, monotonic=lambda: now_s[0])
    with store.transaction() as tx:
        tx.station_changes.write([make_station("T-0001", 39.95, 116.48)], actor="cli", at=AT)
    assert stations.existing_ids(["T-0001"]) == {"T-0001"}
    with store.transaction() as tx:  # not through the log: only the log says what changed
        tx.stations.remove("T-0001")
    now_s[0] = 100 * CACHE_S
    assert stations.existing_ids(["T-0001"]) == {"T-0001"}, "the log did not move"


def test_a_retirement_through_the_server_is_seen_at_once(
    tmp_path: Path, clock: ManualClock
) -> None:
    system = EmbeddedSystem(
        settings_for(tmp_path, ingest_station_cache_seconds=3600.0),
        clock=clock,
        autotick=False,
        simulate=False,
    )
    with system.store.transaction() as tx:
        tx.stations.upsert_many([make_station("T-0001", 39.95, 116.48)])
    assert system.stations.existing_ids(["T-0001"]) == {"T-0001"}
    with system.store.transaction() as tx:
        tx.stations.remove("T-0001")
    system.registry_changed()
    assert system.stations.existing_ids(["T-0001"]) == set()


def test_an_import_larger_than_a_page_of_the_log_reaches_the_runtime_whole(
    tmp_path: Path, clock: ManualClock
) -> None:
    """Stations imported through the server in one burst, more than one page of the registry
    log: every one is in the running processor's registry, not only the first page."""
    system = EmbeddedSystem(settings_for(tmp_path), clock=clock, autotick=False, simulate=False)
    system.start()
    try:
        importer = StationImporter(system.store, system.registry_changed)
        items = [
            make_station(f"I-{i:05d}", 39.9 + i * 1e-5, 116.4).model_dump(mode="json")
            for i in range(IMPORT_STATIONS)
        ]
        assert importer.add(items, Datum.wgs84).imported == IMPORT_STATIONS
        with system.runtime.reading() as pipeline:
            assert len(pipeline.registry) == IMPORT_STATIONS
    finally:
        system.stop()
