"""The embedded runtime: the processors in one process, events through an in-process queue,
state persisted to the store after every batch. Nothing else to install.

An event is acknowledged once it is in the archive (status `pending`); processing marks it
and saves the state it produced in one transaction, so a crash at any point either replays
the event on restart or has already saved everything it caused. Posts share that durability:
the ones that arrive while a transaction commits are committed together in the next one
(group commit, one fsync for many requests). How many acknowledged events may wait for the
processor is bounded (`max_unapplied_events`): beyond it a post is refused whole.

Coverage lives in memory. For planners' SQL the runtime also keeps a snapshot of it in the
store (`coverage_cells`): written whole at start and when the demand layer changes, then, by
a writer of its own off the processing path, only the cells whose count, status or access
score changed.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from geo.catchment import Catchments
from geo.demand import DemandLayer
from geo.grid import Grid
from schemas.alerts import Alert, AlertStatus
from schemas.events import Event, EventType, VisitEvent
from schemas.geography import Boundary, BoundaryLevel, DemandCell
from schemas.lifecycle import StationChange
from schemas.state import EventStatus, StationRecord
from schemas.stations import Station
from store.repositories import AppendOutcome, ArchivedEvent
from store.unit_of_work import Store
from streams import metrics
from streams.backlog import Backlog, Lag, commit_wait_s, turn_taken
from streams.clock import Clock, SystemClock
from streams.collector import tune_collector
from streams.coverage import ZoneCoverage
from streams.coverage_map import CellView, CoverageMap
from streams.coverage_snapshot import CoverageSnapshotWriter
from streams.group_commit import GroupCommit
from streams.overload import VisitWindow
from streams.pipeline import Pipeline, StepOutcome
from streams.world import build_catchments, build_grid
from waystation.settings import Settings

log = logging.getLogger(__name__)


class ProcessorBusyError(Exception):
    """The live state could not be read in time: the processor held it (a long batch, or
    stuck), which a health check reports instead of waiting."""


_STOP_TIMEOUT_S = 30.0


class _Tick:
    pass


class _Refresh:
    pass


class _RegistryChanges:
    pass


@dataclass(frozen=True)
class _Marker:
    done: threading.Event


@dataclass(frozen=True)
class _ReplaceDemand:
    cells: tuple[DemandCell, ...]


_STOP = object()


class TrackedDict(dict[str, StationRecord]):
    """A dict that remembers which keys were written or removed, so only those are saved."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.dirty: set[str] = set()
        self.removed: set[str] = set()

    def __setitem__(self, key: str, value: StationRecord) -> None:
        super().__setitem__(key, value)
        self.dirty.add(key)
        self.removed.discard(key)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.dirty.discard(key)
        self.removed.add(key)

    def take_dirty(self) -> list[StationRecord]:
        taken = [self[k] for k in sorted(self.dirty) if k in self]
        self.dirty.clear()
        return taken

    def take_removed(self) -> list[str]:
        taken = sorted(self.removed)
        self.removed.clear()
        return taken


class StationRegistry(MutableMapping[str, Station]):
    """Registered stations, loaded once and topped up from the store when a station imported
    while the runtime runs is first seen. A known station changes only when the processor
    applies its registry change (`Pipeline.change`), so coverage always knows what it counted.
    `change_seq` is the last registry change the loaded definitions include."""

    def __init__(self, store: Store) -> None:
        self._store = store
        with store.transaction() as tx:
            self.change_seq = tx.station_changes.last_seq()
            self._stations = {s.station_id: s for s in tx.stations.list()}

    def __setitem__(self, station_id: str, station: Station) -> None:
        self._stations[station_id] = station

    def refresh(self) -> list[StationChange]:
        """Take the registry changes logged since the last ones (a worker that did not apply
        them itself: another worker owned the station then); returns them."""
        with self._store.transaction(readonly=True) as tx:
            changes = tx.station_changes.all_after(self.change_seq)
        for seq, change in changes:
            if change.new is None:
                self._stations.pop(change.station_id, None)
            else:
                self._stations[change.station_id] = change.new
            self.change_seq = seq
        return [change for _, change in changes]

    def __delitem__(self, station_id: str) -> None:
        del self._stations[station_id]

    def __getitem__(self, station_id: str) -> Station:
        found = self._stations.get(station_id)
        if found is None:
            with self._store.transaction() as tx:
                found = tx.stations.get(station_id)
            if found is None:
                raise KeyError(station_id)
            self._stations[station_id] = found
        return found

    def __contains__(self, station_id: object) -> bool:
        if station_id in self._stations:  # every event asks: answer known ones directly
            return True
        try:
            self[station_id]  # type: ignore[index]
        except KeyError:
            return False
        return True

    def get(self, station_id: str, default: Station | None = None) -> Station | None:
        found = self._stations.get(station_id)
        if found is not None:
            return found
        try:
            return self[station_id]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[str]:
        return iter(self._stations)

    def __len__(self) -> int:
        return len(self._stations)


class EmbeddedRuntime:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        clock: Clock | None = None,
        *,
        autotick: bool = True,
        follow_store: bool = False,
    ) -> None:
        """`follow_store`: a read replica for the API of the distributed runtime. It processes
        no events and writes nothing; each tick it takes the station records and alerts the
        workers wrote to the store, and keeps coverage current from them."""
        self.follow_store = follow_store
        self.store = store
        self.settings = settings
        self.clock = clock or SystemClock()
        self.autotick = autotick
        self.grid = Grid(settings.grid_resolution, settings.zone_resolution)
        self.lock = threading.RLock()
        self.listeners: list[Callable[[StepOutcome], None]] = []
        self._queue: queue.Queue[object] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.pipeline: Pipeline | None = None
        self.registry: StationRegistry | None = None
        self._followed: dict[str, tuple[str, StationRecord | None]] = {}  # text, as adopted
        self.backlog = Backlog(settings.max_unapplied_events, settings.backlog_retry_after_seconds)
        self._commits: GroupCommit[ArchivedEvent, AppendOutcome] = GroupCommit(
            self._commit_group,
            max_items=settings.group_commit_max_events,
            after_commit=self._queue_accepted,
        )
        self.snapshot = CoverageSnapshotWriter(
            store,
            read=self._views,
            stamp=lambda views, at: self.coverage_map.snapshot(views, at),
            now=self.clock.now,
            coalesce_s=settings.coverage_snapshot_coalesce_seconds,
        )

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Load state, rebuild coverage, replay what was acknowledged but not processed."""
        self.registry = StationRegistry(self.store)
        with self.store.transaction() as tx:
            self.grid = self._grid(tx.boundaries.list(level=BoundaryLevel.subdistrict))
            demand = DemandLayer.build(self.grid, tx.demand.load())
            records = TrackedDict(tx.records.load_all())
            alerts = {a.key: a for a in tx.alerts.load_active() if a.status is AlertStatus.open}
            pending = tx.events.pending(limit=10**9)
            window_start = self.clock.now() - timedelta(
                minutes=self.settings.overload_window_minutes
            )
            recent_visits = tx.events.applied_since(window_start, type=EventType.visit.value)
        self._install(demand, records, alerts, visits={}, catchments=self._catchments())
        assert self.pipeline is not None
        with self.lock:
            now = self.clock.now()
            for archived in recent_visits:
                visit = archived.to_event()
                assert isinstance(visit, VisitEvent)
                self.pipeline.visit_windows.record(visit, now)
            outcome = self.pipeline.restore(now)
        self._save(outcome, {}, whole_snapshot=True)
        self.backlog.admit(len(pending), reserved=False)
        for archived in pending:
            self._queue.put(archived)
        metrics.UNAPPLIED_EVENTS.set_function(lambda: self.backlog.lag().events)
        metrics.LAG_SECONDS.set_function(lambda: self.backlog.lag().seconds)
        tune_collector(self.settings.gc_young_threshold_objects)
        self.snapshot.start()
        if self.follow_store:
            self._queue.put(_Refresh())
        worker = threading.Thread(target=self._work, name="waystation-processor", daemon=True)
        self._threads = [worker]
        if self.autotick:
            ticker = threading.Thread(target=self._tick_loop, name="waystation-clock", daemon=True)
            self._threads.append(ticker)
        for thread in self._threads:
            thread.start()
        log.info(
            "embedded runtime started: %d stations, %d demand cells, %d events to replay",
            len(self.registry),
            len(demand.demand),
            len(pending),
        )

    def _install(
        self,
        demand: DemandLayer,
        records: MutableMapping[str, StationRecord],
        alerts: MutableMapping[str, Alert],
        visits: MutableMapping[str, VisitWindow],
        catchments: Catchments,
    ) -> None:
        """A pipeline over the given state; coverage starts empty and is rebuilt by restore."""
        assert self.registry is not None
        self.demand = demand
        self.zones: dict[str, ZoneCoverage] = {}
        self.pipeline = Pipeline(
            settings=self.settings,
            demand=demand,
            registry=self.registry,
            catchments=catchments,
            records=records,
            zones=self.zones,
            alerts=alerts,
            visits=visits,
        )
        self.coverage_map = CoverageMap(self.zones, demand, self.pipeline.zone_book)

    def replace_demand(self, cells: Sequence[DemandCell]) -> None:
        """Store a new demand layer, then rebuild coverage and access on it (2SFCA supply
        ratios depend on demand). Waits until the new layer is live."""
        with self.store.transaction() as tx:
            tx.demand.replace(cells)
        self._queue.put(_ReplaceDemand(tuple(cells)))
        self.drain()

    def _grid(self, subdistricts: list[Boundary]) -> Grid:
        return build_grid(self.settings, subdistricts)

    def _catchments(self) -> Catchments:
        return build_catchments(self.settings, self.grid)

    def stop(self) -> None:
        """Finish what is queued, then stop. Safe to call twice."""
        if not self._threads:
            return
        self._stopping.set()
        self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=_STOP_TIMEOUT_S)
        self._threads = []
        self.snapshot.stop(_STOP_TIMEOUT_S)
        gc.unfreeze()  # what this runtime built may be collected once it is let go

    # writing -------------------------------------------------------------------------------

    def submit(self, events: Sequence[Event]) -> list[AppendOutcome]:
        """Archive events durably (together with whatever other posts are waiting), then
        queue the accepted ones. Returns one outcome each.

        Raises BacklogFullError when the events would take the backlog past its limit, and
        CommitExpiredError when their turn to be committed did not come in time (within
        `commit_wait_seconds`, and before the request's REQUEST_DEADLINE): in both cases
        nothing of them was stored."""
        if not events:
            return []
        wait_s = self._commit_wait_s()
        archived = self._archived(events)
        with self._reserved(len(archived)):
            return self._commits.submit(archived, wait_s)

    async def submit_async(self, events: Sequence[Event]) -> list[AppendOutcome]:
        """`submit` for a request on the event loop, which serves others while it waits."""
        if not events:
            return []
        wait_s = self._commit_wait_s()
        archived = self._archived(events)
        with self._reserved(len(archived)):
            return await self._commits.submit_async(archived, wait_s)

    def _commit_wait_s(self) -> float:
        settings = self.settings
        return commit_wait_s(settings.commit_wait_seconds, settings.backlog_retry_after_seconds)

    def _archived(self, events: Sequence[Event]) -> list[ArchivedEvent]:
        now = self.clock.now()
        return [ArchivedEvent.from_event(event, received_at=now) for event in events]

    @contextmanager
    def _reserved(self, count: int) -> Iterator[None]:
        """Room in the backlog for `count` events while they are committed; given back when
        nothing of them was stored."""
        self.backlog.reserve(count)
        try:
            with turn_taken(self.settings.backlog_retry_after_seconds):
                yield
        except BaseException:
            self.backlog.release(count)
            raise
        metrics.COMMITTED_POSTS.inc()

    def _commit_group(self, archived: list[ArchivedEvent]) -> list[AppendOutcome]:
        with self.store.transaction() as tx:
            return tx.events.append(archived)

    def _queue_accepted(self, archived: list[ArchivedEvent], outcomes: list[AppendOutcome]) -> None:
        """Committed: the accepted events go to the processor, in commit order."""
        pairs = zip(archived, outcomes, strict=True)
        accepted = [item for item, outcome in pairs if outcome is AppendOutcome.accepted]
        self.backlog.admit(len(accepted))
        self.backlog.release(len(archived) - len(accepted))
        metrics.COMMIT_GROUPS.inc()
        for item in accepted:
            self._queue.put(item)

    @property
    def lag(self) -> Lag:
        """Events acknowledged and not yet applied, and the age of the oldest."""
        return self.backlog.lag()

    def tick(self) -> None:
        """Re-evaluate the clock now and wait until that is done (tests, manual clocks)."""
        self._queue.put(_Tick())
        self.drain()

    def drain(self, timeout: float = 30.0) -> None:
        """Wait until everything queued so far is processed and saved, the planners' coverage
        snapshot included."""
        marker = _Marker(threading.Event())
        self._queue.put(marker)
        if not marker.done.wait(timeout):
            raise TimeoutError("the processor did not catch up in time")

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    @contextmanager
    def reading(self, timeout_s: float | None = None) -> Iterator[Pipeline]:
        """Hold the processor still while reading live state; with `timeout_s`, a processor
        busy for longer raises ProcessorBusyError instead of keeping the reader waiting."""
        assert self.pipeline is not None, "start() first"
        if not self.lock.acquire(timeout=-1 if timeout_s is None else timeout_s):
            raise ProcessorBusyError(f"the processor held its state over {timeout_s:g} s")
        try:
            yield self.pipeline
        finally:
            self.lock.release()

    # the processor thread ----------------------------------------------------------------

    def _tick_loop(self) -> None:
        while not self._stopping.wait(self.settings.tick_interval_seconds):
            self._queue.put(_Refresh() if self.follow_store else _Tick())

    def _work(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < self.settings.processor_batch_max_events:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in items)
            try:
                self._process([i for i in items if i is not _STOP])
            except Exception:  # one bad batch must not kill the processor
                log.exception("processing a batch failed; its events stay pending")
            if stop:
                return

    def _process(self, items: list[object]) -> None:
        assert self.pipeline is not None
        started = time.perf_counter()
        outcome = StepOutcome()
        statuses: dict[str, EventStatus] = {}
        markers: list[_Marker] = []
        processed: list[tuple[str, EventStatus]] = []
        rebuilt = False
        with self.lock:
            for item in items:
                if isinstance(item, _Marker):
                    markers.append(item)
                elif isinstance(item, _Refresh):
                    outcome.extend(self._follow_registry())
                    outcome.extend(self._follow())
                elif isinstance(item, _RegistryChanges):
                    outcome.extend(self._follow_registry())
                elif isinstance(item, _Tick):
                    outcome.extend(self._follow_registry())
                    outcome.extend(self.pipeline.tick(self.clock.now()))
                elif isinstance(item, _ReplaceDemand):
                    outcome.extend(self._rebuild(item.cells))
                    rebuilt = True
                elif isinstance(item, ArchivedEvent):
                    status = self._apply(item, outcome)
                    statuses[item.event_id] = status
                    processed.append((item.type, status))
        try:
            self._save(outcome, statuses, whole_snapshot=rebuilt)
        finally:
            # Saved, or set aside until a restart replays them: either way no longer waiting.
            self.backlog.applied(len(processed))
        elapsed = time.perf_counter() - started
        metrics.record_processed(processed, elapsed)
        for marker in markers:
            self.snapshot.flush_then(marker.done)
        for listener in self.listeners:
            listener(outcome)

    def apply_station_changes(self) -> None:
        """Apply the registry changes written to the store since the last ones, and wait
        until that is done (the clock also picks them up: a CLI import in another process)."""
        self._queue.put(_RegistryChanges())
        self.drain()

    def _follow_registry(self) -> StepOutcome:
        """Registry changes from the store's audit log, in the order they were made."""
        assert self.pipeline is not None
        assert self.registry is not None
        outcome = StepOutcome()
        with self.store.transaction(readonly=True) as tx:
            changes = tx.station_changes.all_after(self.registry.change_seq)
        now = self.clock.now()
        for seq, change in changes:
            outcome.extend(self.pipeline.change(change, now))
            self.registry.change_seq = seq
        return outcome

    def refresh(self) -> None:
        """Follow the store now and wait until that is done (a replica; tests)."""
        self._queue.put(_Refresh())
        self.drain()

    def _follow(self) -> StepOutcome:
        """Adopt what the workers stored since the last look. Records are compared as their
        stored text and only those that changed are decoded: the replica follows every tick,
        and decoding every station's record each time would starve the API it serves."""
        assert self.pipeline is not None
        with self.store.transaction(readonly=True) as tx:
            texts = tx.records.texts()
            alerts = {a.key: a for a in tx.alerts.load_active()}
        now = self.clock.now()
        outcome = StepOutcome()
        current = self.pipeline.ledger.records
        followed = self._followed
        for station_id in sorted(texts):
            text = texts[station_id]
            last = followed.get(station_id)
            if last is not None and last[0] == text and current.get(station_id) is last[1]:
                continue  # as adopted last time, and nothing here has replaced it since
            record = StationRecord.model_validate_json(text)
            if record != current.get(station_id):
                outcome.extend(self.pipeline.adopt(record, now))
            followed[station_id] = (text, current.get(station_id))
        for gone in [sid for sid in current if sid not in texts]:
            del current[gone]  # a retired station's record, removed by the workers
            followed.pop(gone, None)
        book = self.pipeline.alert_book.alerts
        book.clear()
        book.update(alerts)
        outcome.alert_events.clear()  # the workers decide alerts; this replica only reads
        return outcome

    def _rebuild(self, cells: Sequence[DemandCell]) -> StepOutcome:
        old = self.pipeline
        assert old is not None
        self._install(
            DemandLayer.build(self.grid, cells),
            old.ledger.records,
            old.alert_book.alerts,
            old.visit_windows.windows,
            old.catchments,
        )
        assert self.pipeline is not None
        return self.pipeline.restore(self.clock.now())

    def _apply(self, item: ArchivedEvent, outcome: StepOutcome) -> EventStatus:
        """One event through the pipeline; an event that makes it raise is set aside as
        failed instead of stopping the processor or holding back its neighbours."""
        assert self.pipeline is not None
        try:
            step = self.pipeline.handle(item.to_event(), self.clock.now())
        except Exception:
            log.exception("event %s failed in processing; archived as failed", item.event_id)
            return EventStatus.failed
        outcome.extend(step)
        return step.applied or EventStatus.applied

    def _touched_cells(self, outcome: StepOutcome) -> set[str]:
        """Cells whose saved snapshot may be out of date: those that flipped and those in the
        catchments of the stations that changed state (call with the lock)."""
        assert self.pipeline is not None
        assert self.registry is not None
        touched = set(outcome.flipped_cells) | outcome.touched_cells
        for change in outcome.station_changes:
            station = self.registry.get(change.station_id)
            if station is not None:
                touched |= self.pipeline.catchments.cells(station.lat, station.lon)
        return touched

    def _views(self, cells: Collection[str] | None) -> list[CellView]:
        """Live views of these demand cells (None: all of them), read under the lock."""
        with self.lock:
            demand = self.demand.demand
            wanted = demand.keys() if cells is None else [c for c in cells if c in demand]
            return [self.coverage_map.view(cell) for cell in sorted(wanted)]

    def _save(
        self, outcome: StepOutcome, statuses: Mapping[str, str], *, whole_snapshot: bool = False
    ) -> None:
        assert self.pipeline is not None
        with self.lock:
            records = self.pipeline.ledger.records
            dirty = records.take_dirty() if isinstance(records, TrackedDict) else []
            removed = records.take_removed() if isinstance(records, TrackedDict) else []
            touched = set() if whole_snapshot else self._touched_cells(outcome)
        if not self.follow_store:
            # A read replica keeps only the planners' coverage snapshot (which only a process
            # holding all zones can compute): the workers own records, alerts and events.
            alerts: dict[str, Alert] = {}
            for event in outcome.alert_events:
                alerts[event.alert.alert_id] = event.alert  # the last step of each alert wins
                metrics.ALERT_TRANSITIONS.labels(event.alert.kind, event.transition).inc()
            with self.store.transaction() as tx:
                tx.records.save_many(dirty)
                tx.records.remove_many(removed)
                tx.alerts.save_many(alerts.values())
                if statuses:
                    tx.events.mark(statuses)
        if whole_snapshot:
            self.snapshot.replace_all()
        elif touched:
            self.snapshot.touch(touched)
