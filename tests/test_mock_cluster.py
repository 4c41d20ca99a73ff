"""The tests' broker: librdkafka's mock cluster in its own process speaks the Kafka protocol to
both client libraries the project uses, and refuses CreateTopics as the operations expect."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import IncompatibleBrokerVersion

from streams.mock_cluster import MockCluster

CONSUME_TIMEOUT_MS = 10_000
MESSAGES = 5


@pytest.fixture(scope="module")
def cluster() -> Iterator[MockCluster]:
    with MockCluster(topics=[("spike.a", 2)]) as running:
        yield running


def test_kafka_python_round_trip(cluster: MockCluster) -> None:
    producer = KafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all")
    for i in range(MESSAGES):
        producer.send("spike.a", key=b"k", value=b"%d" % i).get(timeout=10)
    producer.close()
    consumer = KafkaConsumer(
        "spike.a",
        bootstrap_servers=cluster.bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=CONSUME_TIMEOUT_MS,
        group_id="round-trip",
    )
    values = [message.value for _, message in zip(range(MESSAGES), consumer, strict=False)]
    consumer.close()
    assert values == [b"%d" % i for i in range(MESSAGES)]


def test_topics_made_on_request_and_idempotent_aiokafka(cluster: MockCluster) -> None:
    cluster.create_topics([("spike.b", 3)])

    async def round_trip() -> list[bytes]:
        producer = AIOKafkaProducer(
            bootstrap_servers=cluster.bootstrap, enable_idempotence=True, acks="all"
        )
        await producer.start()
        for i in range(MESSAGES):
            await producer.send_and_wait("spike.b", b"%d" % i, key=b"same")
        await producer.stop()
        consumer = AIOKafkaConsumer(
            "spike.b", bootstrap_servers=cluster.bootstrap, auto_offset_reset="earliest"
        )
        await consumer.start()
        got: list[bytes] = []
        while len(got) < MESSAGES:
            batches = await consumer.getmany(timeout_ms=CONSUME_TIMEOUT_MS)
            assert batches, "nothing arrived"
            got += [m.value for messages in batches.values() for m in messages]
        await consumer.stop()
        return got

    assert asyncio.run(round_trip()) == [b"%d" % i for i in range(MESSAGES)]


def test_no_create_topics_over_the_wire(cluster: MockCluster) -> None:
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    with pytest.raises(IncompatibleBrokerVersion):
        admin.create_topics([NewTopic("spike.c", 1, 1)])
    admin.close()
