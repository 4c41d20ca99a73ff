"""Distributed mode as an operator meets it: the API produces to the broker and answers 503
with Retry-After when it cannot; `waystation topics create` and `waystation replay`; the API
replica follows what the workers write; docker-compose.yml sets only known settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from services.cli import app as cli
from services.system import EmbeddedSystem
from store.repositories import ArchivedEvent
from streams import topics as t
from streams.clock import ManualClock
from streams.mock_cluster import MockCluster
from tests.conftest import T0, EventFactory, free_port, load, serve, tiny_city
from tests.kafka_harness import Wire, broker_settings, cluster_for, environment
from waystation.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


@pytest.fixture
def cluster(settings: Settings) -> Iterator[MockCluster]:
    with cluster_for(settings) as running:
        yield running


def distributed_system(settings: Settings, clock: ManualClock) -> EmbeddedSystem:
    system = EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)
    load(system, tiny_city(settings))
    system.start()
    return system


def test_api_answers_after_the_broker_acknowledged(
    settings: Settings, cluster: MockCluster, clock: ManualClock, event: EventFactory
) -> None:
    distributed = broker_settings(settings, cluster.bootstrap)
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


def test_topics_create_is_skipped_where_the_broker_cannot(
    settings: Settings, cluster: MockCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment(broker_settings(settings, cluster.bootstrap)).items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(cli, ["topics", "create"])
    assert result.exit_code == 0, result.output
    assert "Skipped" in result.output
    assert "does not support CreateTopics" in result.output
    assert t.DEAD_LETTER in result.output


def test_replay_refeeds_the_archive_as_accepted(
    settings: Settings, cluster: MockCluster, monkeypatch: pytest.MonkeyPatch, event: EventFactory
) -> None:
    from schemas.events import EVENT_ADAPTER
    from store.unit_of_work import Store

    distributed = broker_settings(settings, cluster.bootstrap)
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
