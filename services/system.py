"""One waystation API process: store, runtime, ingest and (optionally) the simulator, started
and stopped together.

Embedded (WAYSTATION_BROKER_URL unset): the runtime processes what the ingest archives.
Distributed (set): the ingest produces to Kafka and Faust workers process; the runtime here is
a read replica that follows what the workers write to the store.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from schemas.geography import DemandCell
from services.ingest import EventSink, Ingest
from services.kafka_sink import KafkaSink
from services.privacy import load_or_create_secret
from services.simulator import Simulator
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
        self.kafka = KafkaSink(settings, self.store, self.clock) if settings.distributed else None
        sink: EventSink = self.kafka or self.runtime
        self.ingest = Ingest(
            sink=sink, stations=StoreStations(self.store), settings=settings, secret=secret
        )
        wants_simulator = settings.simulate if simulate is None else simulate
        self.simulator = (
            Simulator(self.runtime, settings, self.clock, sink=sink) if wants_simulator else None
        )
        self.started = False

    def replace_demand(self, cells: Sequence[DemandCell]) -> None:
        """A new demand layer: stored and live in this process; in distributed mode the
        workers are told to load it too."""
        self.runtime.replace_demand(cells)
        if self.kafka is not None:
            self.kafka.announce_demand()

    def start(self) -> None:
        self.runtime.start()
        if self.simulator is not None:
            self.simulator.start()
        self.started = True

    def stop(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()
        self.runtime.stop()
        if self.kafka is not None:
            self.kafka.close()
        self.store.close()
        self.started = False
        log.info("stopped cleanly")
