"""Ingest's view of which stations exist: found ids are trusted for a while, missing ones are
read again every time, and a change through this server is seen at once."""

from __future__ import annotations

from pathlib import Path

from services.system import EmbeddedSystem, StoreStations
from store.unit_of_work import Store
from streams.clock import ManualClock
from tests.conftest import make_station, settings_for

CACHE_S = 10.0


def test_found_ids_are_trusted_for_the_cache_time_and_missing_ones_read_again(
    tmp_path: Path,
) -> None:
    store = Store.open(settings_for(tmp_path).resolved_database_url)
    now_s = [0.0]
    stations = StoreStations(store, CACHE_S, monotonic=lambda: now_s[0])
    with store.transaction() as tx:
        tx.stations.upsert_many([make_station("T-0001", 39.95, 116.48)])
    assert stations.existing_ids(["T-0001", "T-0002"]) == {"T-0001"}

    with store.transaction() as tx:  # added and retired behind its back
        tx.stations.upsert_many([make_station("T-0002", 39.96, 116.49)])
        tx.stations.remove("T-0001")
    now_s[0] = CACHE_S - 0.1
    assert stations.existing_ids(["T-0001", "T-0002"]) == {"T-0001", "T-0002"}
    now_s[0] = CACHE_S
    assert stations.existing_ids(["T-0001", "T-0002"]) == {"T-0002"}


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
