"""One waystation API process: store, runtime, ingest and (optionally) the simulator, started
and stopped together.

Embedded (WAYSTATION_BROKER_URL unset): the runtime processes what the ingest archives.
Distributed (set): the ingest produces to Kafka and Faust workers process; the runtime here is
a read replica that follows what the workers write to the store.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime

from demo.simulator import Simulator
from schemas.api import Health
from schemas.geography import DemandCell
from services.history import HistoryRecorder
from services.ingest import EventSink, Ingest
from services.kafka_sink import KafkaSink
from services.privacy import worker_ref_secret
from services.station_tally import take_tally
from services.step_follower import StepFollower
from services.visit_rollup_process import VisitRollupProcess
from services.visit_stats import VisitRollupFollower
from services.webhooks import WebhookDispatcher
from store.database import held_in_memory
from store.unit_of_work import Store
from streams.clock import Clock, SystemClock
from streams.embedded import EmbeddedRuntime, ProcessorBusyError
from waystation.settings import Settings

log = logging.getLogger(__name__)


class StoreStations:
    """The ingest's view of the registry: which station ids exist. Every change to the
    registry is written to its change log (imports and retirements, from this server or from
    the CLI), so this holds every station id and reads them all again only when the log's
    head has moved. The head is read at most every `cache_seconds`. An id it does not hold
    is read on its own each time, so a station added a moment ago elsewhere is known at once.
    (A read for every post was a fifth of a single-event post's cost.)"""

    def __init__(
        self,
        store: Store,
        cache_seconds: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._ids: frozenset[str] = frozenset()
        self._head: int | None = None  # the change log's last sequence number, as last read
        self._head_read_at = -math.inf

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        self._follow_log()
        held = self._ids
        known = {i for i in ids if i in held}
        missing = set(ids) - known
        if not missing:
            return known
        # A read-only snapshot: it must not queue behind the writers for SQLite's write lock.
        with self.store.transaction(readonly=True) as tx:
            return known | tx.stations.existing_ids(missing)

    def forget(self) -> None:
        """Read every id again at the next look-up (the registry was changed here)."""
        self._head = None
        self._head_read_at = -math.inf

    def _follow_log(self) -> None:
        now = self._monotonic()
        if now - self._head_read_at < self.cache_seconds:
            return
        with self.store.transaction(readonly=True) as tx:
            head = tx.station_changes.last_seq()
            if head != self._head:
                self._ids = frozenset(tx.stations.ids())
        self._head, self._head_read_at = head, now


class LedgerWatermarks:
    """When the embedded runtime last heard from each station (for `late` answers)."""

    def __init__(self, runtime: EmbeddedRuntime) -> None:
        self.runtime = runtime

    def last_heard(self, ids: Sequence[str]) -> dict[str, datetime]:
        pipeline = self.runtime.pipeline
        if pipeline is None:
            return {}
        # Read without holding the processor still: ingest must never queue behind a batch.
        # Each look-up is one dict read of an immutable record; at worst a record applied a
        # moment later is missed and the answer says `accepted` where `late` was due.
        records = pipeline.ledger.records
        heard = {i: record.last_heard_at for i in ids if (record := records.get(i)) is not None}
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
        secret = worker_ref_secret(settings)
        self.runtime = EmbeddedRuntime(
            self.store,
            settings,
            self.clock,
            autotick=autotick,
            follow_store=settings.distributed,
        )
        self.kafka = KafkaSink(settings, self.store, self.clock) if settings.distributed else None
        sink: EventSink = self.kafka or self.runtime
        self.stations = StoreStations(self.store, settings.ingest_station_cache_seconds)
        self.ingest = Ingest(
            sink=sink,
            stations=self.stations,
            settings=settings,
            secret=secret,
            watermarks=LedgerWatermarks(self.runtime),
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
        self.visit_counting: VisitRollupProcess | StepFollower = (
            VisitRollupProcess(settings)
            if settings.visit_rollups_in_own_process
            and not held_in_memory(settings.resolved_database_url)
            else self.visit_rollups.in_a_thread()
        )
        self.started = False
        self._published_seq = 0  # the last registry change handed to the workers
        self._publishing = threading.Lock()

    def registry_changed(self) -> None:
        """Stations were written through the registry's audit log: apply the changes now
        (embedded), or hand them to the workers on the station-changes topic (distributed;
        this process's read replica follows them too)."""
        self.stations.forget()
        if self.kafka is not None:
            with self._publishing:
                with self.store.transaction(readonly=True) as tx:
                    changes = tx.station_changes.all_after(self._published_seq)
                self.kafka.publish_station_changes([change for _, change in changes])
                if changes:
                    self._published_seq = changes[-1][0]
        if self.started:
            self.runtime.apply_station_changes()

    def replace_demand(self, cells: Sequence[DemandCell]) -> None:
        """A new demand layer: stored and live in this process; in distributed mode the
        workers are told to load it too."""
        self.runtime.replace_demand(cells)
        if self.kafka is not None:
            self.kafka.announce_demand()

    def start(self) -> None:
        with self.store.transaction(readonly=True) as tx:
            self._published_seq = tx.station_changes.last_seq()
        self.runtime.start()
        self.webhooks.start(self.runtime)
        self.history.start()
        self.visit_counting.start(self.runtime)
        if self.simulator is not None:
            self.simulator.start()
        self.started = True

    def health(self) -> Health:
        """`lagging` when the processor is behind: the oldest unapplied event is older than
        `lagging_after_seconds`, or the backlog is full (posts are being refused). The counts
        are left out while the processor holds the live state longer than
        `health_read_timeout_seconds`. Counts come
        from the same tally as every other view once the system has started."""
        lag = self.runtime.lag
        if not self.started:
            with self.store.transaction(readonly=True) as tx:
                return Health(
                    status="starting",
                    queue_depth=self.runtime.queue_depth,
                    lag_events=lag.events,
                    lag_seconds=round(lag.seconds, 3),
                    stations=tx.stations.count(),
                    open_alerts=tx.alerts.count_open_by_kind(),
                )
        behind = (
            lag.seconds > self.settings.lagging_after_seconds
            or lag.events >= self.settings.max_unapplied_events
        )
        try:
            tally = take_tally(self.runtime, self.settings.health_read_timeout_seconds)
        except ProcessorBusyError:  # a health check answers; it does not queue behind
            return Health(
                status="lagging" if behind else "ok",
                queue_depth=self.runtime.queue_depth,
                lag_events=lag.events,
                lag_seconds=round(lag.seconds, 3),
                stations=None,
                open_alerts=None,
            )
        return Health(
            status="lagging" if behind else "ok",
            queue_depth=self.runtime.queue_depth,
            lag_events=lag.events,
            lag_seconds=round(lag.seconds, 3),
            stations=tally.stations_total(),
            open_alerts=tally.open_alerts_by_kind(),
        )

    def stop(self) -> None:
        if self.simulator is not None:
            self.simulator.stop()
        self.webhooks.stop()
        self.history.stop()
        self.visit_counting.stop()
        self.runtime.stop()
        if self.kafka is not None:
            self.kafka.close()
        self.store.close()
        self.started = False
        log.info("stopped cleanly")
