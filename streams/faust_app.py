"""The distributed runtime: the same processors, as Faust streams over Kafka topics and tables.

Three thin stages, each partitioned by its own key:

- stations (the event topics and the clock, by station_id): `StationSteps` over the station's
  table slot; publishes the station record (compacted), coverage deltas re-keyed by zone and
  station alerts, and archives each event with what became of it, together with the records,
  in one store transaction per batch. What cannot be read goes to the dead-letter topic.
- zones (coverage deltas, by zone): `ZoneSteps` over the zone's slot; publishes zone alerts and
  the zone's coverage summary (compacted).
- store writer: alerts (from both stages) into the store, idempotently.

Time is deterministic: an event is processed at the instant the API accepted it (its
received-at header), so a replay or a restarted worker computes what the first run did. Ticks
(silence, overload windows, grace periods) arrive on the clock topic: each worker's timer
publishes them for its own partitions (worker_clock=wall), or whoever drives the clock does
(worker_clock=topic: tests and replays). A zone partition ticks to time T once every station
partition has sent its deltas up to T, so it never judges a zone on half a tick.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import groupby
from typing import Any, cast

import faust
from faust.serializers.codecs import Codec
from faust.types import EventT, StreamT
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from geo.coverage import CoverageIndex
from geo.demand import DemandLayer
from schemas.alerts import Alert, AlertEvent, AlertKind, alert_key
from schemas.events import Event
from schemas.geography import DemandCell
from schemas.lifecycle import StationChange
from schemas.state import CoverageDelta, EventStatus, StationRecord, StationStateChanged
from store.repositories import ArchivedEvent
from store.unit_of_work import Store
from streams import metrics
from streams import topics as t
from streams.alerts import AlertBook
from streams.collector import tune_worker_collector
from streams.consumer_lag import ConsumerLag, Lags
from streams.coverage import ZoneCoverage
from streams.coverage_map import zone_summary
from streams.eager_delivery import deliver_eagerly
from streams.embedded import StationRegistry
from streams.faust_acks import Done, gate_acks
from streams.fetch_gate import gate_fetches
from streams.pipeline import StationOutcome, StationSteps, ZoneSteps
from streams.slots import (
    StationSlot,
    ZoneSlot,
    dedupe_horizon,
    dump_station_slot,
    dump_zone_slot,
    load_station_slot,
    load_zone_slot,
)
from streams.wire import (
    DemandReplaced,
    Tick,
    TimedDelta,
    WireError,
    ZoneMessage,
    read_event,
    retired_marker,
)
from streams.world import World
from waystation.settings import Settings

log = logging.getLogger(__name__)

HEARTBEAT_FRACTION = 0.2  # consumer heartbeat interval as a share of the session timeout
RAW = "raw"
MS_PER_S = 1000.0


class _StationSlotCodec(Codec):
    def _dumps(self, obj: Any) -> bytes:
        return dump_station_slot(obj)

    def _loads(self, s: bytes) -> Any:
        return load_station_slot(s)


class _ZoneSlotCodec(Codec):
    def _dumps(self, obj: Any) -> bytes:
        return dump_zone_slot(obj)

    def _loads(self, s: bytes) -> Any:
        return load_zone_slot(s)


class _JsonCodec(Codec):
    """Plain JSON for small bookkeeping values."""

    def _dumps(self, obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    def _loads(self, s: bytes) -> Any:
        return json.loads(s)


def _header(message: Any, name: str) -> bytes | None:
    """One header's value (the last, if repeated): looked up, not collected, per event."""
    raw = message.headers or ()
    if not isinstance(raw, list | tuple):  # a mapping (a Faust-made message)
        return cast(Mapping[str, bytes], raw).get(name)
    found = None
    for key, value in raw:
        if key == name:
            found = value
    return found


Message = tuple[str, bytes | None, bytes, int | None, list[tuple[str, bytes]] | None]
"""topic, key, value, partition (None: by key), headers"""


class Sender:
    """Where stages publish. A stage's steps only queue what they produce (`send`); `flush`
    hands a whole batch to the producer and waits until the broker has it, so that a batch's
    output is durable before the table slots that say it was done are written."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self.pending: list[Message] = []

    def send(
        self,
        topic: str,
        key: str | bytes | None,
        value: bytes,
        *,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        encoded = key.encode() if isinstance(key, str) else key
        self.pending.append((topic, encoded, value, partition, headers))

    async def flush(self) -> None:
        """Raises when the broker refused any of it, so that the batch is not marked done."""
        pending, self.pending = self.pending, []
        producer = self.app.producer
        sent = [
            await producer.send(topic, key, value, partition, None, headers)
            for topic, key, value, partition, headers in pending
        ]
        if pending:
            await producer.flush()
            await asyncio.gather(*sent)

    def dead_letter(self, message: Any, reason: str) -> None:
        metrics.DEAD_LETTERS.labels(message.topic).inc()
        log.warning(
            "dead letter from %s[%d]@%d: %s",
            message.topic,
            message.partition,
            message.offset,
            reason,
        )
        self.send(
            t.DEAD_LETTER,
            message.key,
            message.value if message.value is not None else b"",
            headers=[
                (t.DEAD_LETTER_TOPIC, message.topic.encode()),
                (t.DEAD_LETTER_PARTITION, str(message.partition).encode()),
                (t.DEAD_LETTER_OFFSET, str(message.offset).encode()),
                (t.DEAD_LETTER_REASON, reason.encode()),
            ],
        )

    def alerts(self, events: Iterable[AlertEvent]) -> None:
        for event in events:
            self.send(t.ALERTS, event.alert.key, event.model_dump_json().encode())


class DemandFollower:
    """The world a stage works in, with the demand layer the store holds now. A stage asks it
    to `refresh` on each DemandReplaced marker; `first_time` tells whether a partition has yet
    to act on the layer now loaded (each partition acts once per layer, whichever worker
    owns it then)."""

    def __init__(self, store: Store, world: World) -> None:
        self.store = store
        self.world = world
        self.version = demand_version(self._load())
        self.acted: dict[int, str] = {}

    def _load(self) -> list[DemandCell]:
        with self.store.transaction(readonly=True) as tx:
            return list(tx.demand.load())

    def refresh(self) -> World:
        cells = self._load()
        version = demand_version(cells)
        if version != self.version:
            world = self.world
            demand = DemandLayer.build(world.grid, cells)
            self.world = World(grid=world.grid, demand=demand, catchments=world.catchments)
            self.version = version
            log.info("demand layer replaced: %d cells", len(cells))
        return self.world

    def first_time(self, partition: int) -> bool:
        if self.acted.get(partition) == self.version:
            return False
        self.acted[partition] = self.version
        return True


def demand_version(cells: Sequence[DemandCell]) -> str:
    """A digest of a demand layer: equal layers, equal digests."""
    text = json.dumps([c.model_dump(mode="json") for c in cells], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class StationStage:
    """Station-keyed processing over one table slot per station.

    A batch of messages (events and ticks, each partition in order) runs through the pure
    steps in one go over a working copy of the slots it touches; then its output is sent, its
    events and the records it changed are written to the store in one transaction, and each
    touched slot is written once (one changelog message per station per batch). The stage
    archives what it decided itself: a round trip through a topic to a writer would cost two
    more message operations and a parse for every event."""

    def __init__(
        self,
        settings: Settings,
        world: World,
        registry: StationRegistry,
        slots: BatchTable,
        sender: Sender,
        follower: DemandFollower,
        writer: StoreWriter,
    ) -> None:
        self.settings = settings
        self.world = world
        self.follower = follower
        self.registry = registry
        self.slots = slots
        self.sender = sender
        self.writer = writer
        self.archive: list[ArchivedEvent] = []  # this batch's first sightings, with their status
        self.deltas: dict[str, list[TimedDelta]] = {}  # by zone, in order, not yet queued
        self.supply_ratios: dict[str, float] = {}
        self.by_partition: dict[int, set[str]] = defaultdict(set)
        self.working: dict[str, StationSlot] = {}
        self.published: dict[str, StationRecord | None] = {}  # record as of the batch's start
        self.partition_of: dict[str, int] = {}  # where each working slot's input came from
        self.handled: list[tuple[str, str]] = []  # (event type, what became of it) this batch
        self.registry_behind = False  # partitions assigned since the log was last read
        self.steps: StationSteps | None = None  # moved from slot to slot (`_steps`)
        for station_id in registry:
            self._own(station_id)

    def _own(self, station_id: str) -> None:
        partition = t.partition_for(station_id, self.settings.broker_partitions)
        self.by_partition[partition].add(station_id)

    def partitions_assigned(self) -> None:
        """A rebalance gave this worker its partitions: stations on those it did not own
        may have changed while another worker did, which only that worker applied."""
        self.registry_behind = True

    async def run(self, batch: Sequence[EventT]) -> None:
        started = time.perf_counter()
        if self.registry_behind:  # before the first message from a partition taken over
            self.registry_behind = False
            self.follow_registry()
        for event in batch:
            self.process(event)
        await self.finish()
        metrics.record_processed(self.handled, time.perf_counter() - started)
        self.handled.clear()

    def process(self, event: EventT) -> None:
        message = event.message
        if message.topic == t.CLOCK:
            if message.key == t.DEMAND_KEY:
                replaced = DemandReplaced.model_validate_json(message.value)
                self.demand_replaced(message.partition, replaced.at)
                return
            tick = Tick.model_validate_json(message.value)
            self.tick(message.partition, tick.at)
            return
        if message.topic == t.STATION_CHANGES:
            self.change(StationChange.model_validate_json(message.value), message.partition)
            return
        try:
            parsed = read_event(message.value)
        except WireError as exc:
            self.sender.dead_letter(message, str(exc))
            return
        if parsed.station_id not in self.registry:
            self.sender.dead_letter(message, f"unknown station {parsed.station_id!r}")
            return
        received = _header(message, t.RECEIVED_AT)
        now = datetime.fromisoformat(received.decode()) if received else datetime.now(UTC)
        self._own(parsed.station_id)
        self.partition_of[parsed.station_id] = message.partition
        self.handle(parsed, now, message.value.decode())

    def handle(self, event: Event, now: datetime, body: str) -> None:
        """`body`: the event's canonical JSON, as it came off its topic."""
        slot = self._slot(event.station_id)
        event_id = str(event.event_id)
        if event_id in slot.seen:  # a copy: a client's retry, or a replay after a crash
            return  # archived with the batch that first saw it
        steps, state = self._steps(slot)
        produced = steps.handle(event, now)
        applied = produced.applied or EventStatus.applied
        self.handled.append((event.type.value, applied.value))
        slot.seen.add(event_id, event.occurred_at.timestamp())
        self._publish(produced, now)
        self.archive.append(ArchivedEvent.from_body(event, body, received_at=now, status=applied))
        self._save(slot, state, now)

    def change(self, change: StationChange, partition: int) -> None:
        """A registry change, at the instant it was made (the registry here follows it)."""
        self.partition_of[change.station_id] = partition
        slot = self._slot(change.station_id)
        steps, state = self._steps(slot)
        produced = steps.change(change, change.at)
        # A retired station stays on its partition's ticks until its open alerts resolve.
        self._own(change.station_id)
        self._publish(produced, change.at)
        self._save(slot, state, change.at)

    def follow_registry(self) -> None:
        """Take the registry changes logged since the last look (those made while another
        worker owned the station). A move or a seats change alters a station's supply ratio:
        it is worked out again, not taken from what this worker computed before."""
        for change in self.registry.refresh():
            self.supply_ratios.pop(change.station_id, None)
            if change.new is not None:
                self._own(change.station_id)

    def tick(self, partition: int, now: datetime) -> None:
        self.follow_registry()
        for station_id in sorted(self.by_partition.get(partition, ())):
            self.partition_of[station_id] = partition
            slot = self._slot(station_id)
            steps, state = self._steps(slot)
            produced = steps.register([station_id], now)
            produced.extend(steps.tick(now))
            produced.emitted.extend(steps.alert_book.on_tick(now))
            before = (slot.record, slot.window, slot.alerts)
            after = (
                state["records"].get(station_id),
                state["visits"].get(station_id, []),
                state["alerts"],
            )
            self._publish(produced, now)
            if before != after:
                self._save(slot, state, now)
            if not state["alerts"] and station_id not in self.registry:
                self.by_partition[partition].discard(station_id)  # retired, nothing open
        self._queue_deltas()  # a tick marker vouches for every delta before it
        marker = ZoneMessage(at=now, tick_from=partition).model_dump_json().encode()
        for zone_partition in range(self.settings.broker_partitions):
            self.sender.send(
                t.COVERAGE_DELTAS, f"tick-{partition}", marker, partition=zone_partition
            )

    def demand_replaced(self, partition: int, at: datetime) -> None:
        """Load the new demand layer; move the partition's stations through coverage again
        with their supply ratios on it (2SFCA step one depends on demand), as the embedded
        runtime's rebuild does; and tell every zone partition to rejudge its zones."""
        world = self.follower.refresh()
        if world is not self.world:
            self.world = world
            self.steps = None  # made again on the new layer (`_steps`)
            self.supply_ratios.clear()
        if self.follower.first_time(partition):
            for station_id in sorted(self.by_partition.get(partition, ())):
                known = self.working.get(station_id) or self.slots.get(station_id)
                if known is None or known.record is None or station_id not in self.registry:
                    continue  # not heard from: nothing in coverage to move
                self.partition_of[station_id] = partition
                slot = self._slot(station_id)
                steps, state = self._steps(slot)
                again = StationStateChanged(
                    station_id=station_id,
                    old=None,
                    new=slot.record.state,
                    at=slot.record.state_since or at,
                    reason=slot.record.state_reason,
                )
                self._publish(steps.propagate(again, at), at)
                self._save(slot, state, at)
        self._queue_deltas()
        marker = ZoneMessage(at=at, demand_replaced=True).model_dump_json().encode()
        for zone_partition in range(self.settings.broker_partitions):
            self.sender.send(
                t.COVERAGE_DELTAS, f"demand-{partition}", marker, partition=zone_partition
            )

    async def finish(self) -> None:
        """Output and the store first, then the slots: a worker that dies in between replays
        the batch, whose effects downstream and in the store are idempotent; one that dies
        before never said it was done."""
        self._queue_deltas()
        changed: dict[str, StationRecord | None] = {}
        for station_id, slot in self.working.items():
            before = self.published.get(station_id)
            if slot.record is not None and slot.record is not before and slot.record != before:
                changed[station_id] = slot.record
                self.sender.send(t.STATION_STATE, station_id, slot.record_json().encode())
            elif slot.record is None and before is not None:  # retired
                changed[station_id] = None
                self.sender.send(t.STATION_STATE, station_id, retired_marker(station_id))
        await self.sender.flush()
        # In a thread: while the store commits (an fsync), the loop goes on fetching and
        # handing out messages, and other stages run.
        await asyncio.to_thread(self.writer.settle, changed, self.archive)
        self.archive = []
        for station_id, slot in self.working.items():
            self.slots.keep(self.partition_of[station_id], station_id, slot)
        await self.slots.write()
        self.working.clear()
        self.published.clear()
        self.partition_of.clear()

    def _slot(self, station_id: str) -> StationSlot:
        found = self.working.get(station_id)
        if found is None:
            found = self.slots.get(station_id) or StationSlot(station_id)
            self.working[station_id] = found
            self.published[station_id] = found.record
        return found

    def _steps(self, slot: StationSlot) -> tuple[StationSteps, dict[str, dict[str, Any]]]:
        state: dict[str, dict[str, Any]] = {
            "records": {slot.station_id: slot.record} if slot.record else {},
            "visits": {slot.station_id: list(slot.window)} if slot.window else {},
            "alerts": dict(slot.alerts),
        }
        steps = self.steps
        if steps is None:  # none yet on this world
            steps = self.steps = StationSteps(
                settings=self.settings,
                demand=self.world.demand,
                registry=self.registry,
                catchments=self.world.catchments,
                records=state["records"],
                alerts=state["alerts"],
                visits=state["visits"],
                supply_ratios=self.supply_ratios,
            )
        else:
            steps.bind(state["records"], state["alerts"], state["visits"])
        return steps, state

    def _save(self, slot: StationSlot, state: dict[str, dict[str, Any]], now: datetime) -> None:
        settings = self.settings
        slot.forget_before(
            dedupe_horizon(now, settings.overload_window_minutes, settings.allowed_lateness_minutes)
        )
        self.working[slot.station_id] = StationSlot(
            station_id=slot.station_id,
            record=state["records"].get(slot.station_id),
            window=state["visits"].get(slot.station_id, []),
            alerts=state["alerts"],
            seen=slot.seen,
            encoded=slot.encoded,
        )

    def _publish(self, produced: StationOutcome, now: datetime) -> None:
        for item in produced.emitted:
            if isinstance(item, CoverageDelta):
                self.deltas.setdefault(item.zone, []).append(TimedDelta(at=now, delta=item))
            elif isinstance(item, AlertEvent):
                self.sender.alerts([item])
            else:
                assert isinstance(item, StationStateChanged)

    def _queue_deltas(self) -> None:
        """Each zone's deltas so far as one message: a batch's state changes reach a zone
        in one read, not one per delta."""
        for zone, deltas in self.deltas.items():
            message = ZoneMessage(at=deltas[-1].at, deltas=deltas)
            self.sender.send(t.COVERAGE_DELTAS, zone, message.model_dump_json().encode())
        self.deltas.clear()


class ZoneStage:
    """Zone-keyed processing over one table slot per zone, and a clock per zone partition.

    Like the station stage, a batch of deltas and tick markers runs over a working copy of the
    zones it touches; each touched zone's summary is published and its slot written once per
    batch, not once per delta."""

    def __init__(
        self,
        settings: Settings,
        world: World,
        slots: BatchTable,
        clocks: BatchTable,
        sender: Sender,
        follower: DemandFollower,
    ) -> None:
        self.settings = settings
        self.slots = slots
        self.clocks = clocks
        self.sender = sender
        self.follower = follower
        self.working: dict[str, ZoneSlot] = {}
        self.partition_of: dict[str, int] = {}
        self._enter(world)

    def _enter(self, world: World) -> None:
        self.world = world
        self.steps: ZoneSteps | None = None  # moved from slot to slot (`_steps`)
        self.by_partition: dict[int, list[str]] = defaultdict(list)
        for zone in sorted(world.demand.cells_of_zone):
            self.by_partition[t.partition_for(zone, self.settings.broker_partitions)].append(zone)

    async def run(self, batch: Sequence[EventT]) -> None:
        for event in batch:
            self.process(event)
        await self.finish()

    def process(self, event: EventT) -> None:
        message = ZoneMessage.model_validate_json(event.message.value)
        for zone, deltas in groupby(message.deltas, key=lambda timed: timed.delta.zone):
            self.partition_of[zone] = event.message.partition
            self.apply(zone, deltas)
        if message.tick_from is not None:
            self.tick(event.message.partition, message.tick_from, message.at)
        if message.demand_replaced:
            self.demand_replaced(event.message.partition, message.at)

    def demand_replaced(self, partition: int, at: datetime) -> None:
        """Judge every zone of the partition again on the new demand layer (its cells'
        underserved flags are derived from demand); a zone the layer no longer has resolves."""
        world = self.follower.refresh()
        if world is not self.world:
            self._enter(world)
        if not self.follower.first_time(partition):
            return
        parts = self.settings.broker_partitions
        held = set(self.slots.keys()) | set(self.working)
        zones = set(self.by_partition.get(partition, ()))
        zones |= {zone for zone in held if t.partition_for(zone, parts) == partition}
        for zone in sorted(zones):
            self.partition_of[zone] = partition
            coverage = self._slot(zone).coverage
            coverage.underserved.clear()
            coverage.judged = False
            self.judge(zone, at)

    async def finish(self) -> None:
        for zone, slot in self.working.items():
            steps, _ = self._steps(slot)
            summary = zone_summary(steps.zone_book, zone)
            self.sender.send(t.ZONE_COVERAGE, zone, summary.model_dump_json().encode())
        await self.sender.flush()
        for zone, slot in self.working.items():
            self.slots.keep(self.partition_of[zone], zone, slot)
        await self.slots.write()
        await self.clocks.write()
        self.working.clear()
        self.partition_of.clear()

    def _slot(self, zone: str) -> ZoneSlot:
        found = self.working.get(zone) or self.slots.get(zone)
        if found is None:
            index = CoverageIndex(self.settings.degraded_coverage_weight)
            found = ZoneSlot(coverage=ZoneCoverage(zone=zone, index=index))
        self.working[zone] = found
        return found

    def _steps(self, slot: ZoneSlot) -> tuple[ZoneSteps, dict[str, Alert]]:
        zone = slot.coverage.zone
        alerts = {slot.alert.key: slot.alert} if slot.alert else {}
        steps = self.steps
        if steps is None:  # none yet on this world
            steps = self.steps = ZoneSteps(
                settings=self.settings,
                demand=self.world.demand,
                zones={zone: slot.coverage},
                alerts=alerts,
            )
        else:
            steps.bind({zone: slot.coverage}, alerts)
        return steps, alerts

    def apply(self, zone: str, deltas: Iterable[TimedDelta]) -> None:
        """A zone's deltas, in order (a message holds one zone's, from one station batch):
        its slot and steps are looked up once for them all."""
        slot = self._slot(zone)
        steps, alerts = self._steps(slot)
        for timed in deltas:
            _, events = steps.apply(timed.delta, timed.at)
            self.sender.alerts(events)
        self._keep_alert(slot, alerts)

    def judge(self, zone: str, now: datetime) -> None:
        slot = self._slot(zone)
        steps, alerts = self._steps(slot)
        self.sender.alerts(steps.judge(steps.zone_book.assess(zone), now))
        self._keep_alert(slot, alerts)

    def _keep_alert(self, slot: ZoneSlot, alerts: dict[str, Alert]) -> None:
        """The zone's working slot with the underserved alert its steps left."""
        zone = slot.coverage.zone
        key = alert_key(AlertKind.zone_underserved, zone)
        self.working[zone] = ZoneSlot(coverage=slot.coverage, alert=alerts.get(key))

    def tick(self, partition: int, source: int, at: datetime) -> None:
        clock = self.clocks.get(str(partition)) or {"sources": {}, "ticked": None}
        sources: dict[str, str] = dict(clock["sources"])
        if source >= self.settings.broker_partitions:
            return
        previous = sources.get(str(source))
        if previous is None or datetime.fromisoformat(previous) < at:
            sources[str(source)] = at.isoformat()
        ticked = datetime.fromisoformat(clock["ticked"]) if clock["ticked"] else None
        effective: datetime | None = None
        if len(sources) == self.settings.broker_partitions:
            effective = min(datetime.fromisoformat(v) for v in sources.values())
        if effective is not None and (ticked is None or effective > ticked):
            if ticked is None:  # the first tick: judge every zone, even those no station reaches
                for zone in self.by_partition.get(partition, ()):
                    self.partition_of[zone] = partition
                    self.judge(zone, effective)
            self._advance_alerts(partition, effective)
            ticked = effective
        clock = {"sources": sources, "ticked": ticked.isoformat() if ticked else None}
        self.clocks.keep(partition, str(partition), clock)

    def _advance_alerts(self, partition: int, now: datetime) -> None:
        parts = self.settings.broker_partitions
        zones = sorted(set(self.slots.keys()) | set(self.working))
        for zone in zones:
            slot = self.working.get(zone) or self.slots.get(zone)
            if slot is None or slot.alert is None or t.partition_for(zone, parts) != partition:
                continue
            alerts = {slot.alert.key: slot.alert}
            events = AlertBook(alerts, self.settings).on_tick(now)
            if events:
                self.sender.alerts(events)
                self.partition_of[zone] = partition
                self.working[zone] = ZoneSlot(
                    coverage=slot.coverage, alert=alerts.get(slot.alert.key)
                )


class StoreWriter:
    """What the stages decided, into the store. Every write is an upsert by its natural key
    (station_id, alert_id) or first-wins (event_id), so a replayed batch writes nothing twice;
    a station's records come from its one owner, in order, so the last write is the newest."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def settle(
        self, records: Mapping[str, StationRecord | None], archived: Sequence[ArchivedEvent]
    ) -> None:
        """A station batch's events, with what became of them, and the records it changed
        (None: retired), in one transaction."""
        if not records and not archived:
            return
        with self.store.transaction() as tx:
            tx.records.save_many(r for r in records.values() if r is not None)
            tx.records.remove_many(sid for sid, r in records.items() if r is None)
            if archived:
                tx.events.append(archived)

    def alerts(self, values: Sequence[bytes]) -> None:
        latest: dict[str, Alert] = {}
        for value in values:
            alert = AlertEvent.model_validate_json(value).alert
            latest[alert.alert_id] = alert
        with self.store.transaction() as tx:
            tx.alerts.save_many(latest.values())


def build_app(settings: Settings, *, store: Store | None = None) -> faust.App:
    """A Faust app with every stage, over the registry and demand layer in the store."""
    if not settings.broker_url:
        raise ValueError("the distributed runtime needs WAYSTATION_BROKER_URL")
    store = store or Store.open(settings.resolved_database_url)
    registry = StationRegistry(store)
    world = World.load(store, settings)
    world.catchments.many([(s.lat, s.lon) for s in (registry[i] for i in registry)])
    parts = settings.broker_partitions
    session = settings.broker_session_timeout_seconds
    worker_dir = settings.data_dir / "worker"  # Faust's own files; not the working directory
    worker_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.worker_app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers],
        store="memory://",
        datadir=str(worker_dir / "{conf.name}"),
        topic_allow_declare=False,
        topic_disable_leader=True,
        topic_partitions=parts,
        topic_replication_factor=settings.broker_replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session,
        broker_heartbeat_interval=session * HEARTBEAT_FRACTION,
        broker_commit_interval=settings.worker_commit_interval_seconds,
        producer_acks=-1,
        producer_linger=settings.worker_producer_linger_ms / MS_PER_S,
        producer_max_batch_size=settings.worker_producer_batch_max_bytes,
        web_enabled=True,
        web_bind=settings.worker_web_host,
        web_host=settings.worker_web_host,
        web_port=settings.worker_web_port,
    )
    cap_fetch_wait(settings.worker_fetch_max_wait_ms)
    deliver_eagerly(app)
    gate_fetches(app)
    done = Done()
    gate_acks(
        app,
        done,
        {spec.name for spec in t.topic_specs(settings) if spec.compacted},
        settings.worker_stall_check_seconds,
    )
    station_slots = _table(app, t.STATION_SLOTS, _StationSlotCodec(), load_station_slot)
    zone_slots = _table(app, t.ZONE_SLOTS, _ZoneSlotCodec(), load_zone_slot)
    zone_clocks = _table(app, t.ZONE_CLOCKS, _JsonCodec(), None)
    writer = StoreWriter(store)
    station_stage = StationStage(
        settings, world, registry, station_slots, Sender(app), DemandFollower(store, world), writer
    )
    zone_stage = ZoneStage(
        settings, world, zone_slots, zone_clocks, Sender(app), DemandFollower(store, world)
    )

    @app.on_partitions_assigned.connect
    def registry_after_rebalance(sender: faust.App, assigned: Any, **kwargs: Any) -> None:
        # Sent once the group has synced: every earlier owner has stopped, and whatever
        # changes it applied are in the store's log (written before their message). The new
        # partitions stay paused until their tables are recovered, so this comes first.
        station_stage.partitions_assigned()

    station_input = app.topic(
        *t.EVENT_TOPICS.values(),
        t.STATION_CHANGES,
        t.CLOCK,
        key_serializer=RAW,
        value_serializer=RAW,
    )
    zone_input = app.topic(t.COVERAGE_DELTAS, key_serializer=RAW, value_serializer=RAW)

    most, wait = settings.worker_batch_max_events, settings.worker_batch_wait_seconds

    @app.agent(station_input)
    async def stations(stream: StreamT) -> None:
        async for batch in stream.take_events(most, within=wait):
            await station_stage.run(batch)
            done.mark(batch)  # output on the broker; slots go out before any commit

    @app.agent(zone_input)
    async def zones(stream: StreamT) -> None:
        async for batch in stream.take_events(most, within=wait):
            await zone_stage.run(batch)
            done.mark(batch)

    batch = settings.worker_sink_batch_max_messages
    within = settings.worker_sink_batch_wait_seconds
    _sink(app, t.ALERTS, writer.alerts, batch, within, done)

    _export_metrics(app)

    if settings.worker_clock == "wall":

        @app.timer(interval=settings.tick_interval_seconds)
        async def clock() -> None:
            tick = Tick(at=datetime.now(UTC)).model_dump_json().encode()
            for tp in app.assignor.assigned_actives():
                if tp.topic == t.CLOCK:
                    await app.producer.send(t.CLOCK, None, tick, tp.partition, None, None)

    # The world just loaded lives as long as the worker.
    tune_worker_collector(settings.worker_gc_middle_passes_per_full)
    return app


def _export_metrics(app: faust.App) -> None:
    """Prometheus metrics on the worker's web server (GET /metrics): the processing counters
    and latency, dead letters, and consumer lag per partition it owns."""
    own = CollectorRegistry()
    own.register(ConsumerLag(lambda: consumer_lags(app)))

    @app.page("/metrics")
    async def prometheus_metrics(web: Any, request: Any) -> Any:
        body = generate_latest(REGISTRY) + generate_latest(own)
        response = web.bytes(body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST  # with its version and charset
        return response


def consumer_lags(app: faust.App) -> Lags:
    """Each partition an agent of this worker reads: its end offset less what the worker has
    committed there. Table changelogs are read only to recover, never committed: left out."""
    consumer = app.consumer
    committed = app.monitor.tp_committed_offsets
    changelogs = app.tables.changelog_topics
    found = {}
    for tp in consumer.assignment():
        if tp.topic in changelogs:
            continue
        end = consumer.highwater(tp) or 0
        found[(tp.topic, tp.partition)] = max(end - (committed.get(tp) or 0), 0)
    return found


def cap_fetch_wait(max_wait_ms: int) -> None:
    """Faust hard-codes a 1.5 s fetch wait. Kafka answers a waiting fetch as soon as data
    arrives; the tests' mock broker waits it out, which would add the full wait to every hop
    between stages. The setting makes the wait configurable (this process only)."""
    from faust.transport.drivers import aiokafka as driver

    base = driver.aiokafka.AIOKafkaConsumer

    class _Consumer(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["fetch_max_wait_ms"] = min(
                kwargs.get("fetch_max_wait_ms", max_wait_ms), max_wait_ms
            )
            super().__init__(*args, **kwargs)

    driver.aiokafka.AIOKafkaConsumer = _Consumer


class BatchTable:
    """A table as a stage uses it: read from memory, and written from a batch, each value
    into the table's memory at once and onto its changelog straight through the producer
    when the batch is done. Faust's own write path (`table[key] = value`) takes the
    changelog partition from the event being iterated, which a batch of many events has
    not got, and wraps every write in a future and a buffer of its own: a tenth of a
    worker's time went there. The partition a key's input came from is its changelog
    partition. Nothing waits for the broker here: Faust flushes the producer before it
    commits an offset, so a batch's slots are on the broker before the batch counts as
    done."""

    def __init__(self, app: faust.App, table: Any) -> None:
        self.app = app
        self.table = table
        self.topic = table.changelog_topic.get_topic_name()
        self.codec: Codec = table.value_serializer
        self.pending: list[tuple[int, str, Any]] = []

    def get(self, key: str) -> Any:
        return self.table.get(key)

    def keys(self) -> Iterable[str]:
        return self.table.keys()

    def keep(self, partition: int, key: str, value: Any) -> None:
        self.table.data[key] = value
        self.pending.append((partition, key, value))

    async def write(self) -> None:
        pending, self.pending = self.pending, []
        producer = self.app.producer
        for partition, key, value in pending:
            encoded_key = json.dumps(key).encode()  # the table's key serializer: JSON
            await producer.send(
                self.topic, encoded_key, self.codec.dumps(value), partition, None, None
            )


def _table(
    app: faust.App, name: str, codec: Codec, recover: Callable[[Any], Any] | None
) -> BatchTable:
    """A table whose values are written through `codec` and kept as live objects in the
    memory store. Faust takes a table's serializers from its value type, and recovery from
    the changelog decodes JSON whatever the table says: `recover` turns that back into the
    object, so a restarted worker holds what the one before it held."""
    table = app.Table(name, partitions=app.conf.topic_partitions)
    table.key_serializer = "json"
    table.value_serializer = codec
    if recover is not None:
        table._to_value = lambda value: recover(value) if isinstance(value, bytes | dict) else value
    return BatchTable(app, table)


def _sink(app: faust.App, topic: str, write: Any, batch: int, within: float, done: Done) -> None:
    source = app.topic(topic, key_serializer=RAW, value_serializer=RAW)

    async def sink(stream: StreamT) -> None:
        async for events in stream.take_events(batch, within=within):
            await asyncio.to_thread(write, [event.message.value for event in events])
            done.mark(events)  # only once the store transaction holding them has committed

    app.agent(source, name=f"store-writer-{topic}")(sink)
