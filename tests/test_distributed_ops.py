"""Distributed mode as an operator meets it, on a real Kafka broker: the API produces to the
broker and answers 503 with Retry-After when it cannot, also while the broker restarts, and
nothing it acknowledged is lost; `waystation replay`; the API replica follows what the workers
write; docker-compose.yml sets only known settings and runs the tests' Kafka."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from schemas.alerts import AlertKind
from schemas.state import EventStatus
from services.broker_topics import create_topics
from services.cli import app as cli
from services.system import EmbeddedSystem
from store.repositories import ArchivedEvent
from streams import topics as t
from streams.clock import ManualClock
from tests.conftest import (
    T0,
    EventFactory,
    free_port,
    kafka_cluster,
    load,
    minutes,
    serve,
    settings_for,
    tiny_city,
)
from tests.kafka_harness import Wire, WorkerProcess, broker_settings, environment
from tools import kafka_broker
from tools.kafka_broker import Cluster
from waystation.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
RESTART_VISITS_BEFORE = 20
RESTART_VISITS_AFTER = 24  # with the refused one retried: 45, over 10 seats x 4 visitors
RESTART_ACK_TIMEOUT_S = 2.0
RESTART_RETRY_AFTER_S = 3
CLIENT_RETRY_S = 0.5  # a test's client retries sooner than Retry-After asks
CLIENT_GIVE_UP_S = 90


def distributed_system(settings: Settings, clock: ManualClock) -> EmbeddedSystem:
    system = EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)
    load(system, tiny_city(settings))
    system.start()
    return system


def test_api_answers_after_the_broker_acknowledged(
    settings: Settings, kafka: Cluster, clock: ManualClock, event: EventFactory
) -> None:
    distributed = broker_settings(settings, kafka.bootstrap)
    create_topics(distributed)
    system = distributed_system(distributed, clock)
    wire = Wire(distributed)
    try:
        with serve(system) as live:
            sent = event("check_in")
            answer = live.client.post("/v1/events", json=sent)
            assert answer.status_code == 202, answer.text
            on_topic = wire.read(t.EVENT_TOPICS["check_in"])
            assert [json.loads(r.value)["event_id"] for r in on_topic] == [sent["event_id"]]
            assert on_topic[0].key == b"T-0001"
            assert on_topic[0].headers[t.RECEIVED_AT] == T0.isoformat().encode()
            with system.store.transaction() as tx:
                assert tx.events.count() == 0, "in distributed mode the workers archive"
    finally:
        wire.close()
        system.stop()


def test_an_event_older_than_the_workers_last_report_is_answered_late(
    settings: Settings, kafka: Cluster, clock: ManualClock, event: EventFactory
) -> None:
    """The API's replica knows when the workers last heard from a station: an event older
    than that by more than the allowed lateness is answered `late` (202: on the broker and
    archived by the workers, never applied), as the embedded runtime answers it."""
    from schemas.events import CheckInStatus
    from schemas.state import StationRecord

    distributed = broker_settings(settings, kafka.bootstrap)
    create_topics(distributed)
    system = distributed_system(distributed, clock)
    wire = Wire(distributed)
    try:
        heard = StationRecord(
            station_id="T-0001", check_in_status=CheckInStatus.open, check_in_at=T0
        )
        with system.store.transaction() as tx:  # as the workers' store writer saves it
            tx.records.save_many([heard])
        system.runtime.refresh()
        allowed = timedelta(minutes=distributed.allowed_lateness_minutes)
        stale = event("visit", occurred_at=T0 - allowed - timedelta(minutes=1))
        fresh = event("visit", occurred_at=T0 - allowed + timedelta(minutes=1))
        answer = system.ingest.handle([stale, fresh], clock.now())
        assert [(o.result.value, o.status) for o in answer.results] == [
            ("late", 202),
            ("accepted", 202),
        ]
        assert answer.late == 1
        on_topic = wire.read(t.EVENT_TOPICS["visit"])
        assert sorted(json.loads(r.value)["event_id"] for r in on_topic) == sorted(
            [stale["event_id"], fresh["event_id"]]
        )
    finally:
        wire.close()
        system.stop()


def test_unreachable_broker_gives_503_with_retry_after(
    settings: Settings, clock: ManualClock, event: EventFactory
) -> None:
    nowhere = settings.model_copy(
        update={
            "broker_url": f"kafka://127.0.0.1:{free_port()}",
            "broker_ack_timeout_seconds": 1.0,
            "broker_retry_after_seconds": 7,
        }
    )
    system = distributed_system(nowhere, clock)
    try:
        with serve(system) as live:
            answer = live.client.post("/v1/events", json=[event("check_in")])
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "7"
            assert answer.headers["content-type"] == "application/problem+json"
    finally:
        system.stop()


def test_broker_restart_mid_stream_refuses_with_503_and_loses_nothing_acknowledged(
    tmp_path: Path, clock: ManualClock, event: EventFactory
) -> None:
    """The broker stops while a station posts visits one by one: the API answers 503 with
    Retry-After, the client retries, and after the restart every event the API answered
    202 for is archived and counted once, by a worker that rode out the outage."""
    with kafka_cluster("restart") as broker:
        distributed = broker_settings(
            settings_for(tmp_path),
            broker.bootstrap,
            broker_ack_timeout_seconds=RESTART_ACK_TIMEOUT_S,
            broker_retry_after_seconds=RESTART_RETRY_AFTER_S,
        )
        create_topics(distributed)
        system = distributed_system(distributed, clock)
        worker = WorkerProcess(distributed, tmp_path / "worker.log")
        wire = Wire(distributed)
        acknowledged: list[str] = []
        try:
            with serve(system) as live:

                def post(item: dict[str, object]) -> httpx.Response:
                    answer = live.client.post("/v1/events", json=item)
                    if answer.status_code == 202:
                        acknowledged.append(str(item["event_id"]))
                    return answer

                def post_until_accepted(item: dict[str, object]) -> None:
                    deadline = time.monotonic() + CLIENT_GIVE_UP_S
                    while (answer := post(item)).status_code == 503:
                        assert time.monotonic() < deadline, "the API never recovered"
                        time.sleep(CLIENT_RETRY_S)
                    assert answer.status_code == 202, answer.text

                wire.tick(clock.now())
                opening = [event("check_in"), event("health_check")]
                for item in opening + [event("visit") for _ in range(RESTART_VISITS_BEFORE)]:
                    assert post(item).status_code == 202
                broker.stop_node(1)
                refused = event("visit")
                answer = post(refused)
                assert answer.status_code == 503, answer.text
                assert answer.headers["retry-after"] == str(RESTART_RETRY_AFTER_S)
                assert answer.headers["content-type"] == "application/problem+json"
                broker.start_node(1)
                for item in [refused] + [event("visit") for _ in range(RESTART_VISITS_AFTER)]:
                    post_until_accepted(item)
                wire.drain()
                clock.advance(minutes(6))
                wire.tick(clock.now())
                wire.drain()
            assert worker.process.poll() is None, f"the worker died:\n{worker.log()}"
            with system.store.transaction() as tx:
                archived = tx.events.count(status=EventStatus.applied)
                alerts = tx.alerts.list(limit=100)
        finally:
            wire.close()
            worker.stop()
            system.stop()
    visitors = 1 + RESTART_VISITS_BEFORE + RESTART_VISITS_AFTER
    assert len(acknowledged) == len(set(acknowledged)) == len(opening) + visitors
    assert archived == len(acknowledged), "an acknowledged event was lost or counted twice"
    overloaded = [a for a in alerts if a.kind is AlertKind.station_overloaded]
    assert len(overloaded) == 1
    assert overloaded[0].evidence.detail.startswith(f"{visitors} visitors")


def test_replica_follows_what_the_workers_wrote(settings: Settings, clock: ManualClock) -> None:
    from schemas.events import CheckInStatus
    from schemas.state import StationRecord
    from schemas.stations import StationState

    distributed = settings.model_copy(update={"broker_url": "kafka://127.0.0.1:9"})
    system = distributed_system(distributed, clock)
    try:
        runtime = system.runtime
        with runtime.reading() as pipeline:
            assert not any(
                z.index.is_covered(c)
                for z in pipeline.zone_book.zones.values()
                for c in pipeline.zone_book.demand.demand
            )
        opened = StationRecord(
            station_id="T-0001",
            check_in_status=CheckInStatus.open,
            check_in_at=T0,
            state=StationState.available,
            state_since=T0,
            state_reason="open and reporting",
        )
        with system.store.transaction() as tx:
            tx.records.save_many([opened])
        runtime.refresh()
        with runtime.reading() as pipeline:
            assert pipeline.ledger.records["T-0001"] == opened
            book = pipeline.zone_book
            assert any(
                z.index.is_covered(c) for z in book.zones.values() for c in book.demand.demand
            )
        with system.store.transaction() as tx:
            assert tx.records.load_all()["T-0001"] == opened, "the replica writes nothing"
    finally:
        system.stop()


def test_replay_refeeds_the_archive_as_accepted(
    settings: Settings, kafka: Cluster, monkeypatch: pytest.MonkeyPatch, event: EventFactory
) -> None:
    from schemas.events import EVENT_ADAPTER
    from store.unit_of_work import Store

    distributed = broker_settings(settings, kafka.bootstrap)
    create_topics(distributed)
    for name, value in environment(distributed).items():
        monkeypatch.setenv(name, value)
    events = [event("visit"), event("check_in"), event("health_check", station_id="T-0002")]
    store = Store.open(distributed.resolved_database_url)
    with store.transaction() as tx:
        tx.events.append(
            [
                ArchivedEvent.from_event(EVENT_ADAPTER.validate_json(json.dumps(e)), received_at=T0)
                for e in events
            ]
        )
    store.close()
    result = runner.invoke(cli, ["replay", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "Replayed 3 events" in result.output
    wire = Wire(distributed)
    try:
        found = {
            json.loads(r.value)["event_id"]: r
            for topic in t.EVENT_TOPICS.values()
            for r in wire.read(topic)
        }
    finally:
        wire.close()
    assert set(found) == {e["event_id"] for e in events}
    assert {r.headers[t.RECEIVED_AT] for r in found.values()} == {T0.isoformat().encode()}


def test_compose_sets_only_known_settings() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"kafka", "postgis", "api", "prometheus", "grafana"} <= set(services)
    workers = [name for name, s in services.items() if "worker" in str(s.get("command", ""))]
    assert len(workers) == 2
    known = {f"WAYSTATION_{name.upper()}" for name in Settings.model_fields}
    for name, service in services.items():
        environment_ = service.get("environment", {})
        names = (
            set(environment_)
            if isinstance(environment_, dict)
            else {item.split("=", 1)[0] for item in environment_}
        )
        unknown = {n for n in names if n.startswith("WAYSTATION_")} - known
        assert not unknown, f"{name} sets unknown settings: {sorted(unknown)}"
        assert "healthcheck" in service, f"{name} has no health check"
    for name in ("api", *workers):
        assert "WAYSTATION_BROKER_URL" in services[name]["environment"]
        assert "WAYSTATION_DATABASE_URL" in services[name]["environment"]


def test_compose_runs_the_kafka_the_tests_run() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{kafka_broker.KAFKA_VERSION}"
    environment_ = kafka["environment"]
    assert environment_["KAFKA_PROCESS_ROLES"] == "broker,controller"
    created = kafka_broker.TEST_SETTINGS["auto.create.topics.enable"]
    assert environment_["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == created
    volume = kafka["volumes"][0].split(":", 1)[1]
    assert environment_["KAFKA_LOG_DIRS"] == volume, "the broker's data on its volume"


def test_image_lets_its_user_write_the_data_dir_compose_gives() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    user = re.search(r"^USER (\S+)$", dockerfile, re.MULTILINE)
    assert user is not None, "the image runs as a user of its own"
    for name, service in compose["services"].items():
        data_dir = (service.get("environment") or {}).get("WAYSTATION_DATA_DIR")
        if data_dir is None:
            continue
        assert f"mkdir -p {data_dir}" in dockerfile, f"{name}: {data_dir} is not in the image"
        assert f"chown {user.group(1)} {data_dir}" in dockerfile, f"{name}: {data_dir} not writable"
