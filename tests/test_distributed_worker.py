"""Faust workers on a real Apache Kafka broker: poison messages go to the dead-letter topic
with their reason while their neighbours are processed; a worker killed with SIGKILL and
started again loses no acknowledged event and counts no visit twice; what the stages write
to the store is idempotent."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from schemas.alerts import AlertEvent, AlertKind, AlertStatus
from schemas.state import EventStatus
from store.unit_of_work import Store
from streams import topics as t
from streams.clock import ManualClock
from streams.faust_app import StoreWriter
from tests.conftest import T0, EventFactory, minutes, settings_for
from tests.kafka_harness import Wire, WorkerProcess, broker_settings
from tests.runtimes import Distributed, Embedded
from tools.kafka_broker import Cluster
from waystation.settings import Settings

VISITS_BEFORE_CRASH = 60
VISITS_WHILE_DOWN = 25
OUTCOME_WAIT_S = 60
NEVER_COMMIT_S = 3600.0  # the first worker dies before it commits anything


@pytest.fixture
def distributed(tmp_path: Path, clock: ManualClock, kafka: Cluster) -> Iterator[Distributed]:
    base = settings_for(tmp_path / "distributed")
    running = Distributed(broker_settings(base, kafka.bootstrap), clock, tmp_path / "worker.log")
    try:
        yield running
    finally:
        running.close()


def test_poison_messages_go_to_dead_letter_with_their_reason(
    distributed: Distributed, event: EventFactory
) -> None:
    topic = t.EVENT_TOPICS["check_in"]
    key = b"T-0001"  # one partition: the bad messages sit between the good ones
    poison = {
        "malformed JSON": b'{"event_id": ',
        "schema_version": json.dumps(event(schema_version=2)).encode(),
        "unknown station 'T-4040'": json.dumps(event(station_id="T-4040")).encode(),
    }
    first = json.dumps(event(station_id="T-0001")).encode()
    last = json.dumps(event(station_id="T-0001", payload={"status": "closed"})).encode()
    for value in (first, *poison.values(), last):
        distributed.wire.produce_raw(topic, key, value)
    distributed.wire.drain()

    dead = distributed.wire.read(t.DEAD_LETTER)
    assert [r.value for r in dead] == list(poison.values()), "original bytes kept"
    originals = [r for r in distributed.wire.read(topic) if r.value in poison.values()]
    for letter, original, reason in zip(dead, originals, poison, strict=True):
        assert letter.headers[t.DEAD_LETTER_TOPIC] == topic.encode()
        assert letter.headers[t.DEAD_LETTER_PARTITION] == str(original.partition).encode()
        assert letter.headers[t.DEAD_LETTER_OFFSET] == str(original.offset).encode()
        assert reason in letter.headers[t.DEAD_LETTER_REASON].decode()
    with distributed.store.transaction() as tx:
        record = tx.records.load_all()["T-0001"]
        assert tx.events.count(status=EventStatus.applied) == 2
    assert record.check_in_status is not None
    assert record.check_in_status.value == "closed", "the message after the poison was applied"


def _wait_for_archive(store: Store, count: int) -> None:
    deadline = time.monotonic() + OUTCOME_WAIT_S
    while True:
        with store.transaction(readonly=True) as tx:
            if tx.events.count() >= count:
                return
        assert time.monotonic() < deadline, "the worker did not process the events"
        time.sleep(0.2)


def _uncommitted_events(wire: Wire) -> int:
    """Messages on the event topics the workers' group has not committed."""
    topics = set(t.EVENT_TOPICS.values())
    return sum(n for tp, n in wire.lag().items() if tp.topic in topics)


def test_sigkill_loses_nothing_acknowledged_and_counts_no_visit_twice(
    tmp_path: Path, clock: ManualClock, event: EventFactory, kafka: Cluster
) -> None:
    def visits(n: int) -> list[dict[str, Any]]:
        return [event("visit", station_id="T-0001") for _ in range(n)]

    opening = [event("check_in", station_id="T-0001"), event("health_check", station_id="T-0001")]
    first_wave, second_wave = visits(VISITS_BEFORE_CRASH), visits(VISITS_WHILE_DOWN)

    reference = Embedded(settings_for(tmp_path / "embedded"), clock)  # never interrupted
    try:
        for items in (opening, first_wave, second_wave):
            reference.post(items)
        clock.advance(minutes(6))
        reference.tick()
        with reference.system.store.transaction() as tx:
            expected_records = tx.records.load_all()
            expected_alerts = {a.alert_id: a for a in tx.alerts.list(limit=1000)}
    finally:
        reference.system.stop()
    clock.advance(minutes(-6))

    base = settings_for(tmp_path / "distributed")
    settings = broker_settings(base, kafka.bootstrap)
    doomed = settings.model_copy(update={"worker_commit_interval_seconds": NEVER_COMMIT_S})
    run = Distributed(doomed, clock, tmp_path / "worker.log", drain=False)
    try:
        run.ingest.handle(opening, clock.now())
        run.ingest.handle(first_wave, clock.now())
        _wait_for_archive(run.store, len(opening) + len(first_wave))
        run.worker.kill()
        answer = run.ingest.handle(second_wave, clock.now())  # the broker still acks
        assert answer.accepted == len(second_wave)
        sent = len(opening) + len(first_wave) + len(second_wave)
        assert _uncommitted_events(run.wire) == sent, (
            "the restarted worker must read again what it processed but never committed"
        )

        run.worker = WorkerProcess(settings, tmp_path / "worker-2.log")
        run.settings = settings
        run.wire.drain()
        clock.advance(minutes(6))
        run.tick()

        with run.store.transaction() as tx:
            records = tx.records.load_all()
            alerts = {a.alert_id: a for a in tx.alerts.list(limit=1000)}
            archived = tx.events.count(status=EventStatus.applied)
            everything = tx.events.count()
        assert archived == everything == sent, "an acknowledged event was lost"
        assert records == expected_records
        assert alerts == expected_alerts
        overloaded = [a for a in alerts.values() if a.kind is AlertKind.station_overloaded]
        assert [a.status for a in overloaded] == [AlertStatus.open]
        visitors = VISITS_BEFORE_CRASH + VISITS_WHILE_DOWN
        assert overloaded[0].evidence.detail.startswith(f"{visitors} visitors")
    finally:
        run.close()


def test_what_the_stages_store_is_written_once_however_often_replayed(
    tmp_path: Path, event: EventFactory
) -> None:
    settings: Settings = settings_for(tmp_path)
    store = Store.open(settings.resolved_database_url)
    from schemas.events import EVENT_ADAPTER
    from store.repositories import ArchivedEvent
    from tests.conftest import make_station

    with store.transaction() as tx:
        tx.stations.upsert_many([make_station("T-0001", 39.95, 116.48)])
    parsed = EVENT_ADAPTER.validate_json(json.dumps(event("visit")))
    archived = ArchivedEvent.from_event(parsed, received_at=T0, status=EventStatus.applied)
    from schemas.alerts import Alert, AlertEvidence, AlertTransition
    from schemas.state import StationRecord

    record = StationRecord(station_id="T-0001", state_since=T0)
    alert = Alert(
        alert_id="a-1",
        kind=AlertKind.station_silent,
        subject="T-0001",
        status=AlertStatus.open,
        condition_since=T0,
        updated_at=T0,
        evidence=AlertEvidence(detail="quiet"),
    )
    opened = AlertEvent(transition=AlertTransition.opened, alert=alert)
    writer = StoreWriter(store)
    for _ in range(2):  # the second pass is a replay of the same batch and messages
        writer.settle({"T-0001": record}, [archived])
        writer.alerts([opened.model_dump_json().encode()] * 2)
    with store.transaction() as tx:
        assert tx.records.load_all() == {"T-0001": record}
        assert tx.alerts.list(limit=10) == [alert]
        assert tx.events.count(status=EventStatus.applied) == 1
    writer.settle({"T-0001": None}, [])  # retired
    with store.transaction() as tx:
        assert tx.records.load_all() == {}
        assert tx.events.count() == 1
    store.close()
