"""Parity: one scripted scenario through the embedded runtime and through Faust workers on a
real Apache Kafka broker gives the same station states, coverage and alert sequence.

Both runtimes follow the same manual clock: the embedded one reads it, the distributed one is
handed it by the API (each event's received-at header) and by ticks on the clock topic, so
every step happens at the same instant in both. The broker keeps no order across partitions,
so the alert sequence is compared in time order (then by alert key and transition); the
scenario changes one station per step, so no zone sees two stations move at one instant.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.alerts import AlertEvent
from streams import topics as t
from streams.clock import ManualClock
from tests.conftest import T0, EventFactory, minutes, settings_for
from tests.kafka_harness import broker_settings
from tests.runtimes import Distributed, Embedded
from tools.kafka_broker import Cluster

OVERLOAD_VISITS = 45  # above 10 seats x 4 visitors per seat


@pytest.fixture
def runtimes(
    tmp_path: Path, clock: ManualClock, kafka: Cluster
) -> Iterator[tuple[Embedded, Distributed, ManualClock]]:
    embedded = Embedded(settings_for(tmp_path / "embedded"), clock)
    base = settings_for(tmp_path / "distributed")
    distributed = Distributed(
        broker_settings(base, kafka.bootstrap), clock, tmp_path / "worker.log"
    )
    try:
        yield embedded, distributed, clock
    finally:
        distributed.close()
        embedded.system.stop()


def sequence(events: list[AlertEvent]) -> list[tuple[str, str, str, str]]:
    return sorted(
        (e.alert.updated_at.isoformat(), e.alert.key, e.transition.value, e.model_dump_json())
        for e in events
    )


def test_same_states_coverage_and_alerts(
    runtimes: tuple[Embedded, Distributed, ManualClock], event: EventFactory
) -> None:
    embedded, distributed, clock = runtimes
    both = (embedded, distributed)

    def post(items: list[dict[str, Any]]) -> None:
        for runtime in both:
            runtime.post(items)

    def tick_after(n: float) -> None:
        clock.advance(minutes(n))
        for runtime in both:
            runtime.tick()

    opening = event("check_in", station_id="T-0001")
    post([opening, event("health_check", station_id="T-0001")])
    post([event("check_in", station_id="T-0002"), event("health_check", station_id="T-0002")])
    post([opening])  # a client's retry: no second effect
    post([event("visit", station_id="T-0001") for _ in range(OVERLOAD_VISITS)])
    bad = {
        "malformed": b'{"event_id": "oops", ',
        "version": json.dumps(event("visit", station_id="T-0001", schema_version=2)).encode(),
        "unknown": json.dumps(event("visit", station_id="T-9999")).encode(),
    }
    for value in bad.values():
        for runtime in both:
            runtime.raw(t.EVENT_TOPICS["visit"], b"T-0001", value)
    tick_after(6)  # the overload alert opens
    post([event("health_check", station_id="T-0002")])
    tick_after(6)  # T-0001 silent: its cells and zone go uncovered
    post([event("health_check", station_id="T-0002")])
    late = event("check_in", station_id="T-0002", occurred_at=T0 - minutes(120))
    late["payload"] = {"status": "closed"}
    post([late])  # beyond the allowed lateness: archived, never applied
    tick_after(6)  # silent and underserved alerts open
    post([event("check_in", station_id="T-0001"), event("health_check", station_id="T-0001")])
    post([event("health_check", station_id="T-0002")])
    closing = event("check_in", station_id="T-0002")
    closing["payload"] = {"status": "closed"}
    post([closing])
    tick_after(6)
    post([event("health_check", station_id="T-0001")])
    tick_after(6)  # windows and grace periods run out

    with embedded.system.store.transaction() as tx:
        embedded_records = tx.records.load_all()
        embedded_alerts = {a.alert_id: a for a in tx.alerts.list(limit=1000)}
    with distributed.store.transaction() as tx:
        distributed_records = tx.records.load_all()
        distributed_alerts = {a.alert_id: a for a in tx.alerts.list(limit=1000)}
    assert distributed_records == embedded_records
    states = {sid: r.state.value for sid, r in embedded_records.items()}
    assert states == {"T-0001": "available", "T-0002": "closed"}, embedded_records

    embedded_zones = embedded.zones()
    assert distributed.zones() == embedded_zones
    assert any(z.uncovered_demand_workers for z in embedded_zones.values())
    assert any(z.cells_covered for z in embedded_zones.values())

    distributed_alerts_seen = distributed.alerts()
    assert sequence(distributed_alerts_seen) == sequence(embedded.alerts)
    kinds = {(e.alert.kind.value, e.transition.value) for e in embedded.alerts}
    assert kinds >= {
        ("station_overloaded", "opened"),
        ("station_silent", "opened"),
        ("station_silent", "resolved"),
        ("zone_underserved", "opened"),
    }
    assert distributed_alerts == embedded_alerts

    dead = distributed.wire.read(t.DEAD_LETTER)
    reasons = [r.headers[t.DEAD_LETTER_REASON].decode() for r in dead]
    assert len(dead) == len(bad)
    assert reasons[0].startswith("malformed JSON")
    assert "schema_version" in reasons[1]
    assert "unknown station 'T-9999'" in reasons[2]
