"""The embedded runtime's own promises: bad luck in one event does not stop the others, and a
station imported while the runtime runs is picked up."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest

from schemas.events import parse_event
from schemas.state import EventStatus
from services.system import EmbeddedSystem
from streams import metrics
from streams.clock import ManualClock
from tests.conftest import CENTRE, EventFactory, make_station, minutes


def submit(system: EmbeddedSystem, clock: ManualClock, *bodies: dict[str, Any]) -> None:
    events = [parse_event(json.dumps(b), now=clock.now()) for b in bodies]
    system.runtime.submit(events)
    system.runtime.drain()


def status_of(system: EmbeddedSystem, event_id: str) -> str:
    with system.store.transaction() as tx:
        archived = tx.events.get(event_id)
    assert archived is not None
    return archived.status


def test_an_event_that_breaks_processing_is_set_aside(
    system: EmbeddedSystem, clock: ManualClock, event: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = system.runtime.pipeline
    assert pipeline is not None
    poison, good = event("check_in", "T-0001"), event("check_in", "T-0002")
    original = pipeline.handle

    def handle(incoming: Any, now: Any) -> Any:
        if str(incoming.event_id) == poison["event_id"]:
            raise RuntimeError("boom")
        return original(incoming, now)

    monkeypatch.setattr(pipeline, "handle", handle)
    submit(system, clock, poison, good)
    assert status_of(system, poison["event_id"]) == EventStatus.failed
    assert status_of(system, good["event_id"]) == EventStatus.applied
    assert pipeline.ledger.records["T-0002"].state.value == "available"


def test_station_imported_while_running_is_picked_up(
    system: EmbeddedSystem, clock: ManualClock, event: EventFactory
) -> None:
    newcomer = make_station("T-0003", CENTRE[0] + 0.05, CENTRE[1])
    with system.store.transaction() as tx:
        tx.stations.upsert_many([newcomer])
    body = event("check_in", "T-0003")
    submit(system, clock, body)
    assert status_of(system, body["event_id"]) == EventStatus.applied
    assert system.runtime.pipeline is not None
    assert system.runtime.pipeline.ledger.records["T-0003"].state.value == "available"


def test_stale_and_late_events_are_archived_without_effect(
    system: EmbeddedSystem, clock: ManualClock, event: EventFactory
) -> None:
    opened = event("check_in", occurred_at=clock.now())
    earlier_close = event(
        "check_in", payload={"status": "closed"}, occurred_at=clock.now() - minutes(10)
    )
    ancient = event(
        "check_in", payload={"status": "closed"}, occurred_at=clock.now() - minutes(24 * 60)
    )
    submit(system, clock, opened, earlier_close, ancient)
    assert status_of(system, earlier_close["event_id"]) == EventStatus.stale
    assert status_of(system, ancient["event_id"]) == EventStatus.late
    assert system.runtime.pipeline is not None
    assert system.runtime.pipeline.ledger.records["T-0001"].state.value == "available"


def test_what_start_built_is_kept_out_of_full_collections_until_stop(
    system: EmbeddedSystem,
) -> None:
    runtime = system.runtime
    assert runtime.pipeline is not None
    records = runtime.pipeline.ledger.records
    assert gc.get_freeze_count() > 0
    # Frozen objects are in no generation: no collection walks the live state.
    assert not any(tracked is records for tracked in gc.get_objects())
    runtime.stop()
    assert gc.get_freeze_count() == 0
    assert any(tracked is records for tracked in gc.get_objects())


def test_processed_events_are_counted_once_each_by_type_and_outcome(
    system: EmbeddedSystem, clock: ManualClock, event: EventFactory
) -> None:
    def counted(event_type: str, applied: str) -> float:
        return metrics.EVENTS_PROCESSED.labels(event_type, applied)._value.get()

    def observed() -> float:
        return sum(
            sample.value
            for sample in metrics.PROCESSING_SECONDS.collect()[0].samples
            if sample.name.endswith("_count")
        )

    before = {
        "check_in": counted("check_in", "applied"),
        "visit": counted("visit", "applied"),
        "stale": counted("check_in", "stale"),
        "observed": observed(),
    }
    opened = event("check_in", occurred_at=clock.now())
    earlier = event("check_in", payload={"status": "closed"}, occurred_at=clock.now() - minutes(5))
    visits = [event("visit", occurred_at=clock.now()) for _ in range(3)]
    submit(system, clock, opened, earlier, *visits)
    assert counted("check_in", "applied") - before["check_in"] == 1
    assert counted("check_in", "stale") - before["stale"] == 1
    assert counted("visit", "applied") - before["visit"] == len(visits)
    assert observed() - before["observed"] == 2 + len(visits)
