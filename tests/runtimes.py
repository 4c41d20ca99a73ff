"""The two runtimes side by side for tests: the embedded system, and a distributed one (a
worker process on the Kafka broker, fed through the API's Kafka sink), on one manual clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from schemas.alerts import AlertEvent
from services.broker_topics import create_topics
from services.ingest import Ingest
from services.kafka_sink import KafkaSink
from services.system import EmbeddedSystem, StoreStations
from store.station_changes import StationChangeLog
from store.unit_of_work import Store
from streams import topics as t
from streams.clock import ManualClock
from streams.coverage_map import zone_summary
from streams.pipeline import StepOutcome
from streams.wire import ZoneSummary
from tests.conftest import TinyCity, load, tiny_city
from tests.kafka_harness import Wire, WorkerProcess
from waystation.settings import Settings

SECRET = b"parity-test-secret"

RegistryWrite = Callable[[StationChangeLog, datetime], object]
"""A registry change as an admin makes it: update, retire or reactivate through the log."""


class Embedded:
    def __init__(
        self, settings: Settings, clock: ManualClock, *, city: TinyCity | None = None
    ) -> None:
        self.clock = clock
        self.system = EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)
        load(self.system, city or tiny_city(settings))
        self.alerts: list[AlertEvent] = []
        self.system.runtime.listeners.append(self._heard)
        self.system.start()
        self.ingest = Ingest(
            sink=self.system.runtime,
            stations=StoreStations(self.system.store),
            settings=settings,
            secret=SECRET,
        )

    def _heard(self, outcome: StepOutcome) -> None:
        self.alerts.extend(outcome.alert_events)

    def post(self, items: list[Any]) -> None:
        self.ingest.handle(items, self.clock.now())
        self.system.runtime.drain()

    def raw(self, topic: str, key: bytes, value: bytes) -> None:
        """What a producer other than the API might put on a topic: the API refuses it."""
        try:
            item = json.loads(value)
        except json.JSONDecodeError:
            return
        answer = self.ingest.handle([item], self.clock.now())
        assert answer.rejected == 1

    def tick(self) -> None:
        self.system.runtime.tick()

    def change(self, write: RegistryWrite) -> None:
        with self.system.store.transaction() as tx:
            write(tx.station_changes, self.clock.now())
        self.system.registry_changed()

    def zones(self) -> dict[str, ZoneSummary]:
        pipeline = self.system.runtime.pipeline
        assert pipeline is not None
        book = pipeline.zone_book
        # Every zone with demand, and every zone a station reached (the workers publish a
        # summary for each zone a delta came to, with demand or not).
        zones = set(book.demand.cells_of_zone) | set(book.zones)
        return {zone: zone_summary(book, zone) for zone in sorted(zones)}


class Distributed:
    def __init__(
        self,
        settings: Settings,
        clock: ManualClock,
        log: Path,
        *,
        drain: bool = True,
        city: TinyCity | None = None,
    ) -> None:
        self.clock = clock
        self.settings = settings
        self.store = Store.open(settings.resolved_database_url)
        city = city or tiny_city(settings)
        with self.store.transaction() as tx:
            tx.stations.upsert_many(city.stations)
            tx.demand.replace(city.demand)
        self.log = log
        create_topics(settings)
        self.worker = WorkerProcess(settings, log)
        self.wire = Wire(settings)
        self.sink = KafkaSink(settings, self.store, clock)
        self.ingest = Ingest(
            sink=self.sink, stations=StoreStations(self.store), settings=settings, secret=SECRET
        )
        self.published_seq = 0
        self.wire.tick(clock.now())  # the embedded runtime's start: register, judge every zone
        if drain:
            self.wire.drain()

    def post(self, items: list[Any]) -> None:
        self.ingest.handle(items, self.clock.now())
        self.wire.drain()

    def raw(self, topic: str, key: bytes, value: bytes) -> None:
        self.wire.produce_raw(topic, key, value)
        self.wire.drain()

    def tick(self) -> None:
        self.wire.tick(self.clock.now())
        self.wire.drain()

    def change(self, write: RegistryWrite) -> None:
        """As the API does in distributed mode: the log in the store, then the topic."""
        with self.store.transaction() as tx:
            write(tx.station_changes, self.clock.now())
            made = tx.station_changes.after(self.published_seq)
        self.sink.publish_station_changes([change for _, change in made])
        self.published_seq = made[-1][0] if made else self.published_seq
        self.wire.drain()

    def zones(self) -> dict[str, ZoneSummary]:
        latest = self.wire.latest(t.ZONE_COVERAGE)
        return {k.decode(): ZoneSummary.model_validate_json(v) for k, v in latest.items()}

    def alerts(self) -> list[AlertEvent]:
        return [AlertEvent.model_validate_json(r.value) for r in self.wire.read(t.ALERTS)]

    def close(self) -> None:
        self.worker.stop()
        self.sink.close()
        self.wire.close()
        self.store.close()
