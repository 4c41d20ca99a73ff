"""The map snapshot keeps a district's cells and stations between requests: after every kind
of change (a check-in, a closure, silence, a station added to the registry) the kept
document must equal one built from nothing."""

from __future__ import annotations

import json
from typing import Any

from services.dashboard_data import DashboardData
from services.system import EmbeddedSystem
from streams.clock import ManualClock
from tests.conftest import DISTRICT, EventFactory, LiveServer, make_station, minutes

SILENT_AFTER_MINUTES = 600  # beyond any heartbeat interval of the test settings


def snapshot(data: DashboardData) -> dict[str, Any]:
    return json.loads(data.snapshot_json(DISTRICT, seq=0))


def fresh(system: EmbeddedSystem) -> dict[str, Any]:
    return snapshot(DashboardData(system.runtime, system.settings, system.clock))


def settle(live: LiveServer, events: list[dict[str, Any]]) -> None:
    if events:
        answer = live.client.post("/v1/events", json=events)
        assert answer.status_code in (200, 202), answer.text
    live.system.runtime.drain()
    live.system.runtime.tick()
    live.system.runtime.drain()


def test_kept_snapshot_equals_a_fresh_one_after_each_change(
    live: LiveServer, event: EventFactory, clock: ManualClock
) -> None:
    system = live.system
    kept = DashboardData(system.runtime, system.settings, system.clock)
    before = snapshot(kept)
    assert before == fresh(system)

    settle(live, [event("check_in", "T-0001"), event("check_in", "T-0002")])
    opened = snapshot(kept)
    assert opened == fresh(system)
    assert opened["cells"]["covered"] != before["cells"]["covered"]  # the cells were read again

    settle(live, [event("check_in", "T-0001", payload={"status": "closed", "seats_available": 0})])
    closed = snapshot(kept)
    assert closed == fresh(system)
    assert closed["stations"]["state"] != opened["stations"]["state"]

    clock.advance(minutes(SILENT_AFTER_MINUTES))
    settle(live, [])
    silent = snapshot(kept)
    assert silent == fresh(system)
    assert silent["kpis"]["stations_by_state"] != closed["kpis"]["stations_by_state"]

    newcomer = make_station("T-0099", 39.95, 116.45, name="Newcomer")
    with system.store.transaction() as tx:
        tx.station_changes.write([newcomer], actor="test", at=system.clock.now())
    system.runtime.apply_station_changes()
    settle(live, [])
    grown = snapshot(kept)
    assert grown == fresh(system)
    assert "T-0099" in grown["stations"]["id"]
