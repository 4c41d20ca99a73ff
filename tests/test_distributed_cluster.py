"""The distributed runtime on a 3-node Kafka cluster: `waystation topics create` makes every
topic with its partitions, three replicas and compaction where the design says; two and then
three workers share the partitions, one joining and one killed while events flow, and the
results are still the embedded runtime's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
from typer.testing import CliRunner

from services.cli import app as cli
from streams import topics as t
from streams.clock import ManualClock
from tests.conftest import EventFactory, kafka_cluster, minutes, settings_for
from tests.kafka_harness import WorkerProcess, broker_settings, environment
from tests.runtimes import Distributed, Embedded
from tools.kafka_broker import Cluster

NODES = 3
PARTITIONS = 4  # more than one worker's share
OVERLOAD_VISITS = 45  # above 10 seats x 4 visitors per seat
ARCHIVE_WAIT_S = 60
ARCHIVE_POLL_S = 0.5
METADATA_WAIT_S = 30  # every broker's metadata cache learns of new topics, not all at once
runner = CliRunner()


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with kafka_cluster("three", nodes=NODES) as running:
        yield running


def described_when_whole(
    admin: KafkaAdminClient, names: list[str], partitions: int
) -> dict[str, dict[str, Any]]:
    """The topics as the broker answering describes them, once it reports all `partitions`
    of each: `topics create` waits on one broker, and the next request may reach another
    whose metadata cache has not caught up yet."""
    deadline = time.monotonic() + METADATA_WAIT_S
    while True:
        described = {d["name"]: d for d in admin.describe_topics(names)}
        whole = all(len(described.get(n, {}).get("partitions") or []) == partitions for n in names)
        if whole or time.monotonic() > deadline:
            return described
        time.sleep(ARCHIVE_POLL_S)


def topic_configs(admin: KafkaAdminClient, names: list[str]) -> dict[str, dict[str, str]]:
    """The settings each topic was made with (those that differ from the broker's defaults)."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    found = admin.describe_configs(resources)["topic"]
    return {name: {key: entry["value"] for key, entry in found[name].items()} for name in names}


def test_topics_create_on_three_brokers(
    tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = broker_settings(
        settings_for(tmp_path),
        cluster.bootstrap,
        broker_partitions=PARTITIONS,
        broker_replication_factor=NODES,
    )
    for name, value in environment(settings).items():
        monkeypatch.setenv(name, value)
    first = runner.invoke(cli, ["topics", "create"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(cli, ["topics", "create"])
    assert again.exit_code == 0, again.output
    assert "created" not in again.output, "a second run leaves the topics as they are"

    specs = t.topic_specs(settings)
    names = [spec.name for spec in specs]
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        described = described_when_whole(admin, names, PARTITIONS)
        configs = topic_configs(admin, names)
    finally:
        admin.close()
    # The design's compacted topics: station state, zone coverage, the tables' changelogs.
    compacted = {t.STATION_STATE, t.ZONE_COVERAGE}
    compacted |= {t.changelog_topic(settings, table) for table in t.TABLES}
    assert {spec.name for spec in specs if spec.compacted} == compacted
    for name in names:
        partitions = described[name]["partitions"]
        assert len(partitions) == PARTITIONS, name
        assert all(len(p["replica_nodes"]) == NODES for p in partitions), name
        policy = configs[name]["cleanup.policy"]
        assert policy == ("compact" if name in compacted else "delete"), name
    retention_hours = settings.broker_event_retention_hours
    assert configs[t.ALERTS]["retention.ms"] == str(int(retention_hours * 3_600_000))


def test_workers_join_and_die_while_events_flow_with_the_same_results(
    tmp_path: Path, cluster: Cluster, clock: ManualClock, event: EventFactory
) -> None:
    embedded = Embedded(settings_for(tmp_path / "embedded"), clock)
    settings = broker_settings(
        settings_for(tmp_path / "distributed"),
        cluster.bootstrap,
        broker_partitions=PARTITIONS,
        broker_replication_factor=NODES,
    )
    distributed = Distributed(settings, clock, tmp_path / "worker-1.log")
    first = distributed.worker
    joined: list[WorkerProcess] = []
    both = (embedded, distributed)

    def flow(items: list[dict[str, Any]]) -> None:
        """Into both runtimes; the distributed one is not waited for."""
        embedded.post(items)
        distributed.ingest.handle(items, clock.now())

    def tick_after(n: float) -> None:
        distributed.wire.drain()  # ticks and events travel on different topics
        clock.advance(minutes(n))
        for runtime in both:
            runtime.tick()

    try:
        flow([event("check_in", station_id="T-0001"), event("health_check", station_id="T-0001")])
        joined.append(WorkerProcess(settings, tmp_path / "worker-2.log"))  # rebalance: 2 share
        flow([event("check_in", station_id="T-0002"), event("health_check", station_id="T-0002")])
        flow([event("visit", station_id="T-0001") for _ in range(OVERLOAD_VISITS // 2)])
        joined.append(WorkerProcess(settings, tmp_path / "worker-3.log"))  # and now 3
        flow([event("visit", station_id="T-0001") for _ in range(OVERLOAD_VISITS // 2 + 1)])
        first.kill()  # mid-stream: what it did since its last commit, others do again
        distributed.wire.wait_for_members(len(joined), [first, *joined])
        flow([event("visit", station_id="T-0002") for _ in range(5)])
        tick_after(6)  # the overload alert opens
        flow([event("health_check", station_id="T-0002")])
        tick_after(6)  # T-0001 silent: its zone goes uncovered
        flow([event("health_check", station_id="T-0002")])
        tick_after(6)  # the silent and underserved alerts open
        flow([event("check_in", station_id="T-0001"), event("health_check", station_id="T-0001")])
        flow([event("health_check", station_id="T-0002")])
        tick_after(6)

        assert all(w.process.poll() is None for w in joined), "a surviving worker died"
        with embedded.system.store.transaction() as tx:
            expected_records = tx.records.load_all()
            expected_alerts = {a.alert_id: a for a in tx.alerts.list(limit=1000)}
            expected_archived = tx.events.count()
        # A quiet lag ends a drain (see Wire.drain), so the archive may still be filling:
        # wait for it, bounded, so that a real loss still fails below.
        deadline = time.monotonic() + ARCHIVE_WAIT_S
        while time.monotonic() < deadline:
            with distributed.store.transaction() as tx:
                if tx.events.count() >= expected_archived:
                    break
            time.sleep(ARCHIVE_POLL_S)
        distributed.wire.drain()
        with distributed.store.transaction() as tx:
            records = tx.records.load_all()
            alerts = {a.alert_id: a for a in tx.alerts.list(limit=1000)}
            archived = tx.events.count()
        assert records == expected_records
        assert archived == expected_archived, "an acknowledged event was lost"
        assert alerts == expected_alerts
        kinds = {a.kind.value for a in expected_alerts.values()}
        assert {"station_overloaded", "station_silent"} <= kinds
        assert distributed.zones() == embedded.zones()
    finally:
        for worker in joined:
            worker.stop()
        distributed.close()
        embedded.system.stop()
