"""The client is handed only records Faust will take: of partitions active, while the flow
runs, at the moment the client hands them over. Never all partitions for an empty set, and a
record held back stays where it was, to be handed over once its partition flows again."""

from __future__ import annotations

import asyncio
from collections.abc import Set
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from streams.fetch_gate import FlowingPartitions, gate_fetches
from tools.kafka_broker import Cluster

INPUT = TopicPartition("waystation.events.visit", 0)
CHANGELOG = TopicPartition("waystation-station-slots-changelog", 1)
TIMEOUT_S = 0.01
FETCH_TIMEOUT_S = 1.0
FETCH_ROUNDS = 20  # each waits at most FETCH_TIMEOUT_S for a record
TOPIC = "fetch-gate"
RECORDS_PER_PARTITION = 3


class _ThreadedConsumer:
    """Faust's consumer as far as a fetch goes: the thread asks about the partitions it was
    given only once the event loop has moved on (one loop turn here)."""

    def __init__(self) -> None:
        self.flow_active = True
        self.asked: list[Any] = []

    async def _getmany(self, active_partitions: Set[TopicPartition] | None, timeout: float) -> Any:
        await asyncio.sleep(0)  # the request crosses to the consumer's thread
        self.asked.append(active_partitions)
        return {}


class _Transport:
    Consumer: type[_ThreadedConsumer] = _ThreadedConsumer


class _App:
    def __init__(self) -> None:
        self.transport = _Transport()


def _gated_consumer() -> _ThreadedConsumer:
    app = _App()
    gate_fetches(app)  # type: ignore[arg-type]  # only its transport is used
    return app.transport.Consumer()


async def _fetch_while_a_rebalance_pauses_all(consumer: _ThreadedConsumer) -> Any:
    active = {INPUT, CHANGELOG}
    fetch = asyncio.ensure_future(consumer._getmany(active, TIMEOUT_S))
    await asyncio.sleep(0)
    active.clear()
    await fetch
    (asked,) = consumer.asked
    return asked


def test_the_stock_consumer_hands_the_client_an_empty_set() -> None:
    """The hazard: the client reads an empty set as every partition (the real client below)."""
    asked = asyncio.run(_fetch_while_a_rebalance_pauses_all(_ThreadedConsumer()))
    assert not asked


def test_the_gated_consumer_hands_the_client_nothing_paused_and_never_an_empty_set() -> None:
    asked = asyncio.run(_fetch_while_a_rebalance_pauses_all(_gated_consumer()))
    assert asked, "the client would read it as every partition"
    assert INPUT not in asked
    assert CHANGELOG not in asked


def test_a_partition_flows_while_active_and_the_flow_runs() -> None:
    consumer = _ThreadedConsumer()
    active = {INPUT}
    flowing = FlowingPartitions(consumer, active)
    assert INPUT in flowing
    assert CHANGELOG not in flowing
    active.add(CHANGELOG)  # a recovery resumes the changelog
    assert CHANGELOG in flowing
    consumer.flow_active = False  # a rebalance stops the flow
    assert INPUT not in flowing
    assert CHANGELOG not in flowing


def test_the_client_hands_over_only_flowing_partitions_and_keeps_the_rest(
    kafka: Cluster,
) -> None:
    """On the real client and broker, with the fetch call Faust's consumer thread makes: an
    empty set hands over every partition; the gate hands over the active one only, and the
    other's records, held back, come from its first offset once it is active."""
    partitions = [TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)]
    admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
    try:
        admin.create_topics([NewTopic(TOPIC, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
    try:
        for tp in partitions:
            for _ in range(RECORDS_PER_PARTITION):
                producer.send(TOPIC, b"record", partition=tp.partition).get(timeout=10)
    finally:
        producer.close()

    async def fetch_until(
        client: AIOKafkaConsumer, asked: Any, wanted: set[Any]
    ) -> dict[Any, list[int]]:
        """Fetch through `asked` until every partition of `wanted` has all its records, and
        a while longer, so that records of any other partition would show too."""
        got: dict[Any, list[int]] = {}
        for _ in range(FETCH_ROUNDS):
            records = await client._fetcher.fetched_records(asked, timeout=FETCH_TIMEOUT_S)
            for tp, batch in records.items():
                got.setdefault(tp, []).extend(record.offset for record in batch)
            complete = {tp for tp, offsets in got.items() if len(offsets) == RECORDS_PER_PARTITION}
            if complete >= wanted:
                await asyncio.sleep(FETCH_TIMEOUT_S)  # time for anything else to be fetched
                for tp, batch in (await client._fetcher.fetched_records(asked)).items():
                    got.setdefault(tp, []).extend(record.offset for record in batch)
                return got
        raise AssertionError(f"fetched only {got} in {FETCH_ROUNDS} rounds")

    async def main() -> tuple[dict[Any, list[int]], ...]:
        client = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
        await client.start()
        try:
            client.assign(partitions)
            await client.seek_to_beginning()
            everything = await fetch_until(client, frozenset(), set(partitions))
            await client.seek_to_beginning()
            owner = _ThreadedConsumer()
            active = {partitions[0]}
            flowing = FlowingPartitions(owner, active)
            first = await fetch_until(client, flowing, {partitions[0]})
            active.add(partitions[1])
            second = await fetch_until(client, flowing, {partitions[1]})
            return everything, first, second
        finally:
            await client.stop()

    everything, first, second = asyncio.run(main())
    offsets = list(range(RECORDS_PER_PARTITION))
    assert everything == dict.fromkeys(partitions, offsets)
    assert first == {partitions[0]: offsets}
    assert second == {partitions[1]: offsets}
