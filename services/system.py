"""One waystation API process: store, runtime, ingest and (optionally) the simulator, started
and stopped together.

Embedded (WAYSTATION_BROKER_URL unset): the runtime processes what the ingest archives.
Distributed (set): the ingest produces to Kafka and Faust workers process; the runtime here is
a read replica that follows what the workers write to the store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from demo.simulator import Simulator
from services.history import HistoryRecorder
from services.ingest import EventSink, Ingest
from services.kafka_sink import KafkaSink
from services.privacy import load_or_create_secret
from services.visit_stats import VisitRollupFollower
from services.webhooks import WebhookDispatcher
from store.unit_of_work import Store
from streams.clock import Clock, SystemClock
from streams.embedded import EmbeddedRuntime
from waystation.settings import Settings

log = logging.getLogger(__name__)


class StoreStations:
    """The ingest's view of the registry: which station ids exist."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        with self.store.transaction() as tx:
            return tx.stations.existing_ids(ids)


class LedgerWatermarks:
    """When the embedded runtime last heard from each station (for `late` answers)."""

    def __init__(self, runtime: EmbeddedRuntime) -> None:
        self.runtime = runtime

    def last_heard(self, ids: Sequence[str]) -> dict[str, datetime]:
        if self.runtime.pipeline is None:
            return {}
        with self.runtime.reading() as pipeline:
            records = pipeline.ledger.records
            heard = {i: records[i].last_heard_at for i in ids if i in records}
        return {i: at for i, at in heard.items() if at is not None}


class EmbeddedSystem:
    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        autotick: bool = True,
        simulate: bool | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.store = Store.open(settings.resolved_database_url)
        secret = (
            settings.worker_ref_secret.get_secret_value().encode()
            if settings.worker_ref_secret
            else load_or_create_secret(settings.data_dir)
        )
        self.runtime = EmbeddedRuntime(
            self.store,
            settings,
            self.clock,
            autotick=autotick,
            follow_store=settings.distributed,
        )
        self.kafka = KafkaSink(settings, self.clock) if settings.distributed else None
        sink: EventSink = self.kafka or self.runtime
        self.ingest = Ingest(
            sink=sink,
            stations=StoreStations(self.store),
            settings=settings,
            secret=secret,
            watermarks=None if settings.distributed else LedgerWatermarks(self.runtime),
        )
        wants_simulator = settings.simulate if simulate is None else simulate
        self.simulator = (
            Simulator(self.runtime, settings, self.clock, submit=sink.submit)
            if wants_simulator
            else None
        )
        self.webhooks = WebhookDispatcher(self.store, settings, self.clock)
        self.history = HistoryRecorder(self.runtime, settings, self.clock)
        self.visit_rollups = VisitRollupFollower(self.store, settings)
        self.started = False

    def start(self) -> None:
        self.runtime.start()
        self.webhooks.start(self.runtime)
        self.history.start()
        self.visit_rollups.start(self.runtime)
        if self.simulator is not None:
            self.simulator.start()
        self.started = True

    def stop(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()
        self.webhooks.stop()
        self.history.stop()
        self.visit_rollups.stop()
        self.runtime.stop()
        if self.kafka is not None:
            self.kafka.close()
        self.store.close()
        self.started = False
        log.info("stopped cleanly")
