"""The tests' Kafka (tools/kafka_broker.py): the jars are fetched once and then never again, a
node stopped and started again keeps what it acknowledged, and the broker makes no topic that
`waystation topics create` did not."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError

from tests.conftest import kafka_cluster
from tools import kafka_broker
from tools.kafka_broker import Cluster

READ_TIMEOUT_MS = 10_000
MESSAGES = 5


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """The storage tool reads an id starting with "-" as an option: such a draw is redrawn."""
    dash = uuid.UUID(bytes=b"\xf8" + bytes(15))  # base64 of 0b111110... starts with "-"
    plain = uuid.UUID(bytes=bytes(range(16)))
    assert base64.urlsafe_b64encode(dash.bytes).startswith(b"-")
    draws = iter([dash, dash, plain])
    monkeypatch.setattr(kafka_broker.uuid, "uuid4", lambda: next(draws))
    found = kafka_broker.new_cluster_id()
    assert found == base64.urlsafe_b64encode(plain.bytes).rstrip(b"=").decode()
    assert len(base64.urlsafe_b64decode(found + "==")) == 16


def test_cached_jars_are_used_without_calling_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    libs = kafka_broker.libs_dir()
    assert tmp_path in libs.parents
    libs.mkdir(parents=True)
    (libs / kafka_broker.COMPLETE_MARKER).touch()

    def no_maven(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"mvn called: {args}")

    monkeypatch.setattr(subprocess, "run", no_maven)
    assert kafka_broker.fetch_jars() == libs


def test_the_version_comes_from_the_environment_with_jars_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(kafka_broker.VERSION_ENV, raising=False)
    assert kafka_broker.kafka_version() == kafka_broker.KAFKA_VERSION
    default_libs = kafka_broker.libs_dir()
    monkeypatch.setenv(kafka_broker.VERSION_ENV, "4.4.0")
    assert kafka_broker.kafka_version() == "4.4.0"
    assert kafka_broker.cache_root().name == "kafka-4.4.0"
    assert kafka_broker.libs_dir() != default_libs, "each version keeps jars of its own"
    monkeypatch.setattr(kafka_broker.shutil, "which", lambda program: f"/usr/bin/{program}")
    commands: list[list[str]] = []

    def recording_maven(command: list[str], **kwargs: object) -> None:
        commands.append(command)

    monkeypatch.setattr(subprocess, "run", recording_maven)
    assert kafka_broker.fetch_jars() == kafka_broker.libs_dir()
    assert "-Dkafka.version=4.4.0" in commands[0]
    assert kafka_broker.jars_present()


def test_an_interrupted_download_is_never_taken_for_the_jars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(kafka_broker.shutil, "which", lambda program: f"/usr/bin/{program}")

    def failing_maven(command: list[str], **kwargs: object) -> None:
        scratch = Path(next(a for a in command if a.startswith("-DoutputDirectory=")).split("=")[1])
        (scratch / "half-a-jar.jar").write_bytes(b"PK")
        raise subprocess.CalledProcessError(1, command)

    monkeypatch.setattr(subprocess, "run", failing_maven)
    with pytest.raises(subprocess.CalledProcessError):
        kafka_broker.fetch_jars()
    assert not kafka_broker.jars_present()
    assert not kafka_broker.libs_dir().exists()
    assert not list(kafka_broker.cache_root().iterdir()), "the scratch directory is removed"


def test_a_restarted_node_keeps_what_it_acknowledged() -> None:
    with kafka_cluster("restart-keeps") as cluster:  # its own: the run's broker stays up
        _restart_keeps(cluster)


def _restart_keeps(cluster: Cluster) -> None:
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        admin.create_topics({"kept": {"num_partitions": 1, "replication_factor": 1}})
        admin.wait_for_topics(["kept"])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
    for i in range(MESSAGES):
        producer.send("kept", value=b"%d" % i).get(timeout=10)
    producer.close()
    port = cluster.node(1).port
    cluster.stop_node(1)
    assert not cluster.node(1).running
    cluster.start_node(1)
    assert cluster.node(1).port == port
    consumer = KafkaConsumer(
        bootstrap_servers=cluster.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=READ_TIMEOUT_MS,
    )
    try:
        consumer.assign([TopicPartition("kept", 0)])
        values = [message.value for _, message in zip(range(MESSAGES), consumer, strict=False)]
    finally:
        consumer.close()
    assert values == [b"%d" % i for i in range(MESSAGES)]


def test_topics_are_never_created_on_the_fly(kafka: Cluster) -> None:
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, max_block_ms=2000)
    try:
        with pytest.raises(KafkaError):
            producer.send("nobody.made.this", value=b"x").get(timeout=5)
    finally:
        producer.close(timeout=0)
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        assert "nobody.made.this" not in admin.list_topics()
    finally:
        admin.close()
