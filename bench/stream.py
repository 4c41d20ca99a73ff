"""Stream throughput of the distributed runtime: events per second through a Faust worker on
a real Apache Kafka broker (tools/kafka_broker.py), against a bare aiokafka consumer
loop reading the same topics (the transport's ceiling) and against the embedded runtime fed
the same events, all measured in one run.

Setup: the sample district (`generate_sample_city`, seed 7) in a SQLite store; the same
events (every station checks in and reports, then visits and health checks for random
stations, seeded) are put on the event topics before anything reads them.

- `stream.faust.events_per_s`: one `waystation worker` process, started after the topics
  are filled; events over the time between the first and the last event outcome it publishes
  (so start-up and recovery are not counted; the zone stage and the store writer run in the
  same process meanwhile).
- `stream.aiokafka_ceiling.events_per_s`: an AIOKafkaConsumer with the same fetch settings,
  assigned every event partition, reading to the end and doing nothing with what it reads.
- `stream.embedded.same_input.events_per_s`: the embedded runtime over the same events,
  submitted in batches of 500 and drained (archived durably, processed, saved). Named apart
  from `stream.embedded.events_per_s` (bench.embedded), whose input differs.
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.results import Result
from demo.sample_city import WITHIN_OPENING_HOURS, generate_sample_city
from schemas.events import EVENT_ADAPTER, Event
from services.bootstrap import load_city
from services.broker_topics import create_topics
from services.system import EmbeddedSystem
from store.repositories import canonical_json
from store.unit_of_work import Store
from streams import topics as t
from streams.clock import ManualClock
from streams.wire import Outcome
from tools.kafka_broker import Cluster
from waystation.settings import Settings

SEED = 7
STATIONS = 2300
QUICK_STATIONS = 300
EVENTS = 20_000
QUICK_EVENTS = 2000
PARTITIONS = 4
FETCH_MAX_WAIT_MS = 50
EMBEDDED_BATCH = 500
WORKER_READY_TIMEOUT_S = 120
OUTCOME_TIMEOUT_S = 600
CONSUMER_POLL_MS = 500
T0 = WITHIN_OPENING_HOURS
SPREAD_S = 300  # events occur over the five minutes before T0


def _events(station_ids: list[str], count: int) -> list[Event]:
    rng = random.Random(SEED)
    ok = {"drinking_water": "ok", "rest_seats": "ok"}
    items: list[dict[str, Any]] = []
    for station_id in station_ids:
        items.append({"type": "check_in", "station_id": station_id, "payload": {"status": "open"}})
        items.append(
            {"type": "health_check", "station_id": station_id, "payload": {"amenities": ok}}
        )
    while len(items) < count:
        station_id = rng.choice(station_ids)
        if rng.random() < 0.7:
            payload = {"worker_kind": "courier", "source": "qr_scan"}
            items.append({"type": "visit", "station_id": station_id, "payload": payload})
        else:
            items.append(
                {"type": "health_check", "station_id": station_id, "payload": {"amenities": ok}}
            )
    events = []
    for i, item in enumerate(items[:count]):
        at = T0 - timedelta(seconds=SPREAD_S * (1 - i / count))
        body = {**item, "event_id": str(uuid.UUID(int=rng.getrandbits(128))), "schema_version": 1}
        body["occurred_at"] = at.isoformat()
        events.append(EVENT_ADAPTER.validate_json(json.dumps(body)))
    return events


def _settings(root: Path, **extra: Any) -> Settings:
    return Settings(
        data_dir=root,
        simulate=False,
        broker_partitions=PARTITIONS,
        worker_fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        **extra,
    )


async def _fill(bootstrap: str, events: list[Event]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    received = T0.isoformat().encode()
    try:
        for event in events:
            await producer.send(
                t.EVENT_TOPICS[event.type],
                canonical_json(event).encode(),
                key=event.station_id.encode(),
                headers=[(t.RECEIVED_AT, received)],
            )
        await producer.flush()
    finally:
        await producer.stop()


async def _ceiling(bootstrap: str, count: int) -> float:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=FETCH_MAX_WAIT_MS)
    await consumer.start()
    try:
        tps = [
            TopicPartition(name, p) for name in t.EVENT_TOPICS.values() for p in range(PARTITIONS)
        ]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        started = time.perf_counter()
        while seen < count:
            batches = await consumer.getmany(timeout_ms=CONSUMER_POLL_MS)
            seen += sum(len(messages) for messages in batches.values())
        return count / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def _outcome_span(bootstrap: str, count: int) -> tuple[float, float]:
    """Broker timestamps (s) of the first and the count-th distinct outcome."""
    consumer = AIOKafkaConsumer(
        t.OUTCOMES,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )
    await consumer.start()
    try:
        stamps: list[int] = []
        deadline = time.monotonic() + OUTCOME_TIMEOUT_S
        while len(stamps) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(stamps)} of {count} outcomes")
            batches = await consumer.getmany(timeout_ms=CONSUMER_POLL_MS)
            for messages in batches.values():
                for message in messages:
                    if Outcome.model_validate_json(message.value).status is not None:
                        stamps.append(message.timestamp)
        stamps.sort()
        return stamps[0] / 1000.0, stamps[count - 1] / 1000.0
    finally:
        await consumer.stop()


def _faust(root: Path, settings: Settings, events: list[Event]) -> tuple[float, float]:
    from tests.kafka_harness import WorkerProcess  # the same worker process the tests run

    with Cluster("bench") as cluster:
        running = settings.model_copy(
            update={"broker_url": f"kafka://{cluster.bootstrap}", "worker_clock": "topic"}
        )
        create_topics(running)
        asyncio.run(_fill(cluster.bootstrap, events))
        ceiling = asyncio.run(_ceiling(cluster.bootstrap, len(events)))
        worker = WorkerProcess(running, root / "worker.log")
        try:
            first, last = asyncio.run(_outcome_span(cluster.bootstrap, len(events)))
        finally:
            worker.stop()
    return (len(events) - 1) / max(last - first, 1e-3), ceiling


def _embedded(root: Path, settings: Settings, events: list[Event], city: Any) -> float:
    system = EmbeddedSystem(settings, clock=ManualClock(T0), autotick=False, simulate=False)
    load_city(system.store, city)
    system.start()
    try:
        started = time.perf_counter()
        for i in range(0, len(events), EMBEDDED_BATCH):
            system.runtime.submit(events[i : i + EMBEDDED_BATCH])
        system.runtime.drain(timeout=OUTCOME_TIMEOUT_S)
        return len(events) / (time.perf_counter() - started)
    finally:
        system.stop()


def run(quick: bool) -> list[Result]:
    stations = QUICK_STATIONS if quick else STATIONS
    count = QUICK_EVENTS if quick else EVENTS
    city = generate_sample_city(seed=SEED, stations=stations)
    events = _events(sorted(s.station_id for s in city.stations), count)
    root = Path(tempfile.mkdtemp(prefix="waystation-bench-stream-"))
    try:
        faust_dir, embedded_dir = root / "faust", root / "embedded"
        faust_dir.mkdir()
        faust_settings = _settings(faust_dir)
        store = Store.open(faust_settings.resolved_database_url)
        load_city(store, city)
        store.close()
        faust_rate, ceiling_rate = _faust(faust_dir, faust_settings, events)
        embedded_rate = _embedded(embedded_dir, _settings(embedded_dir), events, city)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    detail = f"{count:,} events, {stations:,} stations, {PARTITIONS} partitions, one worker."
    return [
        Result(
            "stream.faust.events_per_s",
            faust_rate,
            "per_s",
            about="Events through one Faust worker on the broker (station stage outcomes).",
            detail=detail,
        ),
        Result(
            "stream.aiokafka_ceiling.events_per_s",
            ceiling_rate,
            "per_s",
            about="A bare aiokafka consumer reading the same event topics: the transport's "
            "ceiling.",
            detail=detail,
        ),
        Result(
            "stream.embedded.same_input.events_per_s",
            embedded_rate,
            "per_s",
            about="The embedded runtime over the same events: archived, processed, saved.",
            detail=detail,
        ),
        Result(
            "stream.faust.vs_aiokafka_ceiling",
            faust_rate,
            "per_s",
            baseline="stream.aiokafka_ceiling.events_per_s",
            ratio=faust_rate / ceiling_rate,
            about="Faust's rate over the bare consumer's (above 1: Faust is faster).",
        ),
        Result(
            "stream.faust.vs_embedded",
            faust_rate,
            "per_s",
            baseline="stream.embedded.same_input.events_per_s",
            ratio=faust_rate / embedded_rate,
            about="Faust's rate over the embedded runtime's on the same events.",
        ),
    ]
