"""The distributed runtime: the same processors, as Faust streams over Kafka topics and tables.

Three thin stages, each partitioned by its own key:

- stations (the event topics and the clock, by station_id): `StationSteps` over the station's
  table slot; publishes the station record (compacted), coverage deltas re-keyed by zone,
  station alerts, and each event's outcome. What cannot be read goes to the dead-letter topic.
- zones (coverage deltas, by zone): `ZoneSteps` over the zone's slot; publishes zone alerts and
  the zone's coverage summary (compacted).
- store writer: station records, alerts and event outcomes into the store, idempotently.

Time is deterministic: an event is processed at the instant the API accepted it (its
received-at header), so a replay or a restarted worker computes what the first run did. Ticks
(silence, overload windows, grace periods) arrive on the clock topic: each worker's timer
publishes them for its own partitions (worker_clock=wall), or whoever drives the clock does
(worker_clock=topic: tests and replays). A zone partition ticks to time T once every station
partition has sent its deltas up to T, so it never judges a zone on half a tick.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import faust
from faust.serializers.codecs import Codec
from faust.types import EventT, StreamT

from geo.coverage import CoverageIndex
from schemas.alerts import Alert, AlertEvent, AlertKind, alert_key
from schemas.events import EVENT_ADAPTER, Event
from schemas.lifecycle import StationChange
from schemas.state import CoverageDelta, StationRecord, StationStateChanged
from store.repositories import ArchivedEvent, canonical_json
from store.unit_of_work import Store
from streams import topics as t
from streams.alerts import AlertBook
from streams.coverage import ZoneCoverage
from streams.coverage_map import zone_summary
from streams.embedded import StationRegistry
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
    Outcome,
    Tick,
    WireError,
    ZoneMessage,
    read_event,
    retired_marker,
    retired_station,
)
from streams.world import World
from waystation.settings import Settings

log = logging.getLogger(__name__)

HEARTBEAT_FRACTION = 0.2  # consumer heartbeat interval as a share of the session timeout
RAW = "raw"


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
        import json

        return json.dumps(obj, separators=(",", ":")).encode()

    def _loads(self, s: bytes) -> Any:
        import json

        return json.loads(s)


def _headers(message: Any) -> dict[str, bytes]:
    raw = message.headers or {}
    items = raw.items() if isinstance(raw, Mapping) else raw
    return {str(k): v for k, v in items}


class Sender:
    """Where stages publish; the app's topics with bytes in and out."""

    def __init__(self, app: faust.App) -> None:
        self.topics = {
            name: app.topic(name, key_serializer=RAW, value_serializer=RAW)
            for name in (
                t.STATION_STATE,
                t.COVERAGE_DELTAS,
                t.ZONE_COVERAGE,
                t.ALERTS,
                t.OUTCOMES,
                t.DEAD_LETTER,
                t.CLOCK,
            )
        }

    async def send(
        self,
        topic: str,
        key: str | bytes | None,
        value: bytes,
        *,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        encoded = key.encode() if isinstance(key, str) else key
        await self.topics[topic].send(
            key=encoded, value=value, partition=partition, headers=headers
        )

    async def dead_letter(self, message: Any, reason: str) -> None:
        log.warning(
            "dead letter from %s[%d]@%d: %s",
            message.topic,
            message.partition,
            message.offset,
            reason,
        )
        await self.send(
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

    async def alerts(self, events: Iterable[AlertEvent]) -> None:
        for event in events:
            await self.send(t.ALERTS, event.alert.key, event.model_dump_json().encode())


class StationStage:
    """Station-keyed processing over one table slot per station."""

    def __init__(
        self,
        settings: Settings,
        world: World,
        registry: StationRegistry,
        slots: Any,
        sender: Sender,
    ) -> None:
        self.settings = settings
        self.world = world
        self.registry = registry
        self.slots = slots
        self.sender = sender
        self.supply_ratios: dict[str, float] = {}
        self.by_partition: dict[int, set[str]] = defaultdict(set)
        for station_id in registry:
            self._own(station_id)

    def _own(self, station_id: str) -> None:
        partition = t.partition_for(station_id, self.settings.broker_partitions)
        self.by_partition[partition].add(station_id)

    async def process(self, event: EventT) -> None:
        message = event.message
        if message.topic == t.CLOCK:
            tick = Tick.model_validate_json(message.value)
            await self.tick(message.partition, tick.at)
            return
        if message.topic == t.STATION_CHANGES:
            await self.change(StationChange.model_validate_json(message.value))
            return
        try:
            parsed = read_event(message.value)
        except WireError as exc:
            await self.sender.dead_letter(message, str(exc))
            return
        if parsed.station_id not in self.registry:
            await self.sender.dead_letter(message, f"unknown station {parsed.station_id!r}")
            return
        received = _headers(message).get(t.RECEIVED_AT)
        now = datetime.fromisoformat(received.decode()) if received else datetime.now(UTC)
        self._own(parsed.station_id)
        await self.handle(parsed, now)

    async def handle(self, event: Event, now: datetime) -> None:
        station_id = event.station_id
        slot = self.slots.get(station_id) or StationSlot(station_id)
        event_id = str(event.event_id)
        if event_id in slot.seen:  # a copy: a client's retry, or a replay after a crash
            await self._outcome(event, now, None)
            return
        steps, state = self._steps(slot)
        produced = steps.handle(event, now)
        slot.seen[event_id] = event.occurred_at
        await self._publish(produced, now)
        await self._outcome(event, now, produced.applied)
        await self._save(slot, state, now)

    async def change(self, change: StationChange) -> None:
        """A registry change, at the instant it was made (the registry here follows it)."""
        slot = self.slots.get(change.station_id) or StationSlot(change.station_id)
        steps, state = self._steps(slot)
        produced = steps.change(change, change.at)
        if change.new is None:
            self.by_partition[
                t.partition_for(change.station_id, self.settings.broker_partitions)
            ].discard(change.station_id)
        else:
            self._own(change.station_id)
        await self._publish(produced, change.at)
        await self._save(slot, state, change.at)

    async def tick(self, partition: int, now: datetime) -> None:
        for change in self.registry.refresh():  # changed while another worker owned them
            if change.new is not None:
                self._own(change.station_id)
        for station_id in sorted(self.by_partition.get(partition, ())):
            slot = self.slots.get(station_id) or StationSlot(station_id)
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
            await self._publish(produced, now)
            if before != after:
                await self._save(slot, state, now)
        marker = ZoneMessage(at=now, tick_from=partition).model_dump_json().encode()
        for zone_partition in range(self.settings.broker_partitions):
            await self.sender.send(
                t.COVERAGE_DELTAS, f"tick-{partition}", marker, partition=zone_partition
            )

    def _steps(self, slot: StationSlot) -> tuple[StationSteps, dict[str, dict[str, Any]]]:
        state: dict[str, dict[str, Any]] = {
            "records": {slot.station_id: slot.record} if slot.record else {},
            "visits": {slot.station_id: list(slot.window)} if slot.window else {},
            "alerts": dict(slot.alerts),
        }
        steps = StationSteps(
            settings=self.settings,
            demand=self.world.demand,
            registry=self.registry,
            catchments=self.world.catchments,
            records=state["records"],
            alerts=state["alerts"],
            visits=state["visits"],
            supply_ratios=self.supply_ratios,
        )
        return steps, state

    async def _save(
        self, slot: StationSlot, state: dict[str, dict[str, Any]], now: datetime
    ) -> None:
        record: StationRecord | None = state["records"].get(slot.station_id)
        if record is not None and record != slot.record:
            await self.sender.send(
                t.STATION_STATE, slot.station_id, record.model_dump_json().encode()
            )
        elif record is None and slot.record is not None:  # retired
            await self.sender.send(
                t.STATION_STATE, slot.station_id, retired_marker(slot.station_id)
            )
        settings = self.settings
        slot.forget_before(
            dedupe_horizon(now, settings.overload_window_minutes, settings.allowed_lateness_minutes)
        )
        self.slots[slot.station_id] = StationSlot(
            station_id=slot.station_id,
            record=record,
            window=state["visits"].get(slot.station_id, []),
            alerts=state["alerts"],
            seen=slot.seen,
        )

    async def _publish(self, produced: StationOutcome, now: datetime) -> None:
        for item in produced.emitted:
            if isinstance(item, CoverageDelta):
                value = ZoneMessage(at=now, delta=item).model_dump_json().encode()
                await self.sender.send(t.COVERAGE_DELTAS, item.zone, value)
            elif isinstance(item, AlertEvent):
                await self.sender.alerts([item])
            else:
                assert isinstance(item, StationStateChanged)

    async def _outcome(self, event: Event, now: datetime, status: Any) -> None:
        outcome = Outcome(body=canonical_json(event), received_at=now, status=status)
        await self.sender.send(t.OUTCOMES, event.station_id, outcome.model_dump_json().encode())


class ZoneStage:
    """Zone-keyed processing over one table slot per zone, and a clock per zone partition."""

    def __init__(
        self, settings: Settings, world: World, slots: Any, clocks: Any, sender: Sender
    ) -> None:
        self.settings = settings
        self.world = world
        self.slots = slots
        self.clocks = clocks
        self.sender = sender
        self.by_partition: dict[int, list[str]] = defaultdict(list)
        for zone in sorted(world.demand.cells_of_zone):
            self.by_partition[t.partition_for(zone, settings.broker_partitions)].append(zone)

    async def process(self, event: EventT) -> None:
        message = ZoneMessage.model_validate_json(event.message.value)
        if message.delta is not None:
            await self.apply(message.delta, message.at)
        if message.tick_from is not None:
            await self.tick(event.message.partition, message.tick_from, message.at)

    def _slot(self, zone: str) -> ZoneSlot:
        found = self.slots.get(zone)
        if found is not None:
            return found
        index = CoverageIndex(self.settings.degraded_coverage_weight)
        return ZoneSlot(coverage=ZoneCoverage(zone=zone, index=index))

    def _steps(self, slot: ZoneSlot) -> tuple[ZoneSteps, dict[str, Alert]]:
        zone = slot.coverage.zone
        alerts = {slot.alert.key: slot.alert} if slot.alert else {}
        steps = ZoneSteps(
            settings=self.settings,
            demand=self.world.demand,
            zones={zone: slot.coverage},
            alerts=alerts,
        )
        return steps, alerts

    async def apply(self, delta: CoverageDelta, now: datetime) -> None:
        slot = self._slot(delta.zone)
        steps, alerts = self._steps(slot)
        _, events = steps.apply(delta, now)
        await self._finish(slot, steps, alerts, events)

    async def judge(self, zone: str, now: datetime) -> None:
        slot = self._slot(zone)
        steps, alerts = self._steps(slot)
        events = steps.judge(steps.zone_book.assess(zone), now)
        await self._finish(slot, steps, alerts, events)

    async def _finish(
        self,
        slot: ZoneSlot,
        steps: ZoneSteps,
        alerts: dict[str, Alert],
        events: Sequence[AlertEvent],
    ) -> None:
        zone = slot.coverage.zone
        await self.sender.alerts(events)
        summary = zone_summary(steps.zone_book, zone)
        await self.sender.send(t.ZONE_COVERAGE, zone, summary.model_dump_json().encode())
        key = alert_key(AlertKind.zone_underserved, zone)
        self.slots[zone] = ZoneSlot(coverage=slot.coverage, alert=alerts.get(key))

    async def tick(self, partition: int, source: int, at: datetime) -> None:
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
                    await self.judge(zone, effective)
            await self._advance_alerts(partition, effective)
            ticked = effective
        self.clocks[str(partition)] = {
            "sources": sources,
            "ticked": ticked.isoformat() if ticked else None,
        }

    async def _advance_alerts(self, partition: int, now: datetime) -> None:
        parts = self.settings.broker_partitions
        for zone, slot in sorted(self.slots.items(), key=lambda item: item[0]):
            if slot.alert is None or t.partition_for(zone, parts) != partition:
                continue
            alerts = {slot.alert.key: slot.alert}
            events = AlertBook(alerts, self.settings).on_tick(now)
            if events:
                await self.sender.alerts(events)
                self.slots[zone] = ZoneSlot(
                    coverage=slot.coverage, alert=alerts.get(slot.alert.key)
                )


class StoreWriter:
    """Station records, alerts and event outcomes into the store. Every write is an upsert by
    its natural key (station_id, alert_id, event_id), so a replayed message writes nothing
    twice; within a partition messages arrive in order, so the last write is the newest."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def records(self, values: Sequence[bytes]) -> None:
        latest: dict[str, StationRecord | None] = {}
        for value in values:
            retired = retired_station(value)
            if retired is not None:
                latest[retired] = None
                continue
            record = StationRecord.model_validate_json(value)
            latest[record.station_id] = record
        with self.store.transaction() as tx:
            tx.records.save_many(r for r in latest.values() if r is not None)
            tx.records.remove_many(sid for sid, r in latest.items() if r is None)

    def alerts(self, values: Sequence[bytes]) -> None:
        latest: dict[str, Alert] = {}
        for value in values:
            alert = AlertEvent.model_validate_json(value).alert
            latest[alert.alert_id] = alert
        with self.store.transaction() as tx:
            tx.alerts.save_many(latest.values())

    def outcomes(self, values: Sequence[bytes]) -> None:
        archived: list[ArchivedEvent] = []
        for value in values:
            outcome = Outcome.model_validate_json(value)
            if outcome.status is None:
                continue  # a copy; the first one is archived
            event = EVENT_ADAPTER.validate_json(outcome.body, strict=True, context={})
            archived.append(
                ArchivedEvent.from_event(
                    event, received_at=outcome.received_at, status=outcome.status
                )
            )
        if archived:
            with self.store.transaction() as tx:
                tx.events.append(archived)


def canonical_bytes(event: Event) -> bytes:
    """An event as it travels on its topic: the archive's canonical JSON."""
    return canonical_json(event).encode("utf-8")


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
    app = faust.App(
        settings.worker_app_id,
        broker=[f"kafka://{server}" for server in settings.bootstrap_servers],
        store="memory://",
        topic_allow_declare=False,
        topic_disable_leader=True,
        topic_partitions=parts,
        topic_replication_factor=settings.broker_replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session,
        broker_heartbeat_interval=session * HEARTBEAT_FRACTION,
        broker_commit_interval=settings.worker_commit_interval_seconds,
        producer_acks=-1,
        web_enabled=True,
        web_bind=settings.worker_web_host,
        web_host=settings.worker_web_host,
        web_port=settings.worker_web_port,
    )
    _cap_fetch_wait(settings.worker_fetch_max_wait_ms)
    sender = Sender(app)
    station_slots = _table(app, t.STATION_SLOTS, _StationSlotCodec(), load_station_slot)
    zone_slots = _table(app, t.ZONE_SLOTS, _ZoneSlotCodec(), load_zone_slot)
    zone_clocks = _table(app, t.ZONE_CLOCKS, _JsonCodec(), None)
    station_stage = StationStage(settings, world, registry, station_slots, sender)
    zone_stage = ZoneStage(settings, world, zone_slots, zone_clocks, sender)
    writer = StoreWriter(store)

    station_input = app.topic(
        *t.EVENT_TOPICS.values(),
        t.STATION_CHANGES,
        t.CLOCK,
        key_serializer=RAW,
        value_serializer=RAW,
    )
    zone_input = app.topic(t.COVERAGE_DELTAS, key_serializer=RAW, value_serializer=RAW)

    @app.agent(station_input)
    async def stations(stream: StreamT) -> None:
        async for event in stream.events():
            await station_stage.process(event)

    @app.agent(zone_input)
    async def zones(stream: StreamT) -> None:
        async for event in stream.events():
            await zone_stage.process(event)

    batch = settings.worker_sink_batch_max_messages
    within = settings.worker_sink_batch_wait_seconds
    for topic_name, write in (
        (t.STATION_STATE, writer.records),
        (t.ALERTS, writer.alerts),
        (t.OUTCOMES, writer.outcomes),
    ):
        _sink(app, topic_name, write, batch, within)

    if settings.worker_clock == "wall":

        @app.timer(interval=settings.tick_interval_seconds)
        async def clock() -> None:
            tick = Tick(at=datetime.now(UTC)).model_dump_json().encode()
            for tp in app.assignor.assigned_actives():
                if tp.topic == t.CLOCK:
                    await sender.send(t.CLOCK, None, tick, partition=tp.partition)

    return app


def _cap_fetch_wait(max_wait_ms: int) -> None:
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


def _table(app: faust.App, name: str, codec: Codec, recover: Callable[[Any], Any] | None) -> Any:
    """A table whose values are written through `codec` and kept as live objects in the
    memory store. Faust takes a table's serializers from its value type, and recovery from
    the changelog decodes JSON whatever the table says: `recover` turns that back into the
    object, so a restarted worker holds what the one before it held."""
    table = app.Table(name, partitions=app.conf.topic_partitions)
    table.key_serializer = "json"
    table.value_serializer = codec
    if recover is not None:
        table._to_value = lambda value: recover(value) if isinstance(value, bytes | dict) else value
    return table


def _sink(app: faust.App, topic: str, write: Any, batch: int, within: float) -> None:
    source = app.topic(topic, key_serializer=RAW, value_serializer=RAW)

    async def sink(stream: StreamT) -> None:
        async for values in stream.take(batch, within=within):
            write(values)

    app.agent(source, name=f"store-writer-{topic}")(sink)
