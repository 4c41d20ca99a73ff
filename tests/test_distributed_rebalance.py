"""Rebalances under load on the real broker: events keep flowing through the API's Kafka sink
while workers join (two, then three share the partitions) and one is SIGKILLed. Every
acknowledged event must be archived exactly once, and station states, alerts and zone
coverage must equal the embedded runtime's for the same input.

The small scenarios elsewhere send a handful of events between membership changes; losses
that need a batch in flight at the moment a partition moves only show with a steady stream
over many stations and every partition."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import Any

from geo.catchment import CircleCatchments
from geo.grid import Grid
from schemas.geography import DemandCell
from streams import topics as t
from streams.clock import ManualClock
from tests.conftest import (
    CELL_DEMAND_WORKERS,
    CENTRE,
    DISTRICT,
    EventFactory,
    TinyCity,
    make_station,
    minutes,
    settings_for,
)
from tests.kafka_harness import WorkerProcess, broker_settings
from tests.runtimes import Distributed, Embedded
from tools.kafka_broker import Cluster
from waystation.settings import Settings

SEED = 10
PARTITIONS = 4
STATIONS = 16  # on every partition of every event topic
STATION_SPACING_DEG = 0.02
ROUND_EVENTS = 40
ROUND_PAUSE_S = 0.05
MAX_ROUNDS = 400  # bounds the flow if the main thread fails before it stops it
AFTER_KILL_ROUNDS = 10
ARCHIVE_WAIT_S = 90
ARCHIVE_POLL_S = 0.5
KILL_AFTER_S = 2.0  # let the three workers run a little before one dies


def spread_city(settings: Settings) -> TinyCity:
    """STATIONS stations on a grid around the centre, demand in every cell they reach."""
    grid = Grid(settings.grid_resolution, settings.zone_resolution)
    catchments = CircleCatchments(grid, settings.catchment_radius_m)
    side = int(STATIONS**0.5)
    stations = tuple(
        make_station(
            f"T-{i + 1:04d}",
            CENTRE[0] + (i // side) * STATION_SPACING_DEG,
            CENTRE[1] + (i % side) * STATION_SPACING_DEG,
        )
        for i in range(STATIONS)
    )
    cells = sorted(set().union(*(catchments.cells(s.lat, s.lon) for s in stations)))
    demand = tuple(
        DemandCell(cell=c, demand_workers=CELL_DEMAND_WORKERS, district=DISTRICT) for c in cells
    )
    return TinyCity(stations=stations, demand=demand)


class Flow(threading.Thread):
    """Posts rounds of events to the distributed runtime until told to stop; keeps every
    round it posted (all acknowledged) to give the embedded runtime the same input."""

    def __init__(self, distributed: Distributed, event: EventFactory, city: TinyCity) -> None:
        super().__init__(daemon=True)
        self.distributed = distributed
        self.event = event
        self.ids = [s.station_id for s in city.stations]
        self.rng = random.Random(SEED)
        self.rounds: list[list[dict[str, Any]]] = []
        self.refused: list[Any] = []
        self.stopping = threading.Event()
        self.failure: BaseException | None = None

    def round(self) -> list[dict[str, Any]]:
        items = []
        for _ in range(ROUND_EVENTS):
            station_id = self.rng.choice(self.ids)
            draw = self.rng.random()
            if draw < 0.6:
                items.append(self.event("visit", station_id=station_id))
            elif draw < 0.9:
                items.append(self.event("health_check", station_id=station_id))
            else:
                status = self.rng.choice(("open", "paused"))
                payload = {"status": status, "seats_available": 4, "staffed": True}
                items.append(self.event("check_in", station_id=station_id, payload=payload))
        return items

    def post(self, items: list[dict[str, Any]]) -> None:
        answer = self.distributed.ingest.handle(items, self.distributed.clock.now())
        if answer.accepted != len(items):
            self.refused.append(answer)
        self.rounds.append(items)

    def run(self) -> None:
        try:
            opening = []
            for station_id in self.ids:
                opening.append(self.event("check_in", station_id=station_id))
                opening.append(self.event("health_check", station_id=station_id))
            self.post(opening)
            while not self.stopping.is_set() and len(self.rounds) < MAX_ROUNDS:
                self.post(self.round())
                time.sleep(ROUND_PAUSE_S)
        except BaseException as exc:  # reported by the test, not lost in the thread
            self.failure = exc

    def stop_after(self, rounds: int) -> None:
        target = len(self.rounds) + rounds
        deadline = time.monotonic() + ARCHIVE_WAIT_S
        while len(self.rounds) < target and self.is_alive() and time.monotonic() < deadline:
            time.sleep(ROUND_PAUSE_S)
        self.stopping.set()
        self.join(timeout=ARCHIVE_WAIT_S)


def wait_for_archive(distributed: Distributed, count: int) -> int:
    """The archive's size once it reaches `count`, or what it holds when the wait ends."""
    deadline = time.monotonic() + ARCHIVE_WAIT_S
    while True:
        with distributed.store.transaction(readonly=True) as tx:
            archived = tx.events.count()
        if archived >= count or time.monotonic() > deadline:
            return archived
        time.sleep(ARCHIVE_POLL_S)


def lost(distributed: Distributed, missing: list[str]) -> str:
    """Where the missing events stopped: their place on the event topics, and the lag."""
    wanted = set(missing)
    inputs: dict[str, tuple[str, int, int]] = {}
    for topic in t.EVENT_TOPICS.values():
        for record in distributed.wire.read(topic):
            event_id = json.loads(record.value)["event_id"]
            if event_id in wanted:
                inputs[event_id] = (topic, record.partition, record.offset)
    return (
        f"lag {distributed.wire.lag()}; "
        f"inputs at {sorted(inputs[i] for i in missing if i in inputs)[:20]}"
    )


def test_workers_join_and_one_dies_under_a_steady_stream(
    tmp_path: Path, kafka: Cluster, clock: ManualClock, event: EventFactory
) -> None:
    city = spread_city(settings_for(tmp_path))
    embedded = Embedded(settings_for(tmp_path / "embedded"), clock, city=city)
    settings = broker_settings(
        settings_for(tmp_path / "distributed"), kafka.bootstrap, broker_partitions=PARTITIONS
    )
    distributed = Distributed(settings, clock, tmp_path / "worker-1.log", city=city)
    first = distributed.worker
    joined: list[WorkerProcess] = []
    flow = Flow(distributed, event, city)
    try:
        flow.start()
        joined.append(WorkerProcess(settings, tmp_path / "worker-2.log"))  # two share
        joined.append(WorkerProcess(settings, tmp_path / "worker-3.log"))  # three share
        time.sleep(KILL_AFTER_S)
        first.kill()  # mid-stream, mid-batch: no commit, no flush, no leaving the group
        distributed.wire.wait_for_members(len(joined), [first, *joined])
        flow.stop_after(AFTER_KILL_ROUNDS)
        assert flow.failure is None, flow.failure
        assert not flow.refused, f"the API refused events: {flow.refused[:3]}"
        assert all(w.process.poll() is None for w in joined), "a surviving worker died"

        sent = [item for items in flow.rounds for item in items]
        distributed.wire.drain()
        archived = wait_for_archive(distributed, len(sent))
        with distributed.store.transaction(readonly=True) as tx:
            missing = [i["event_id"] for i in sent if tx.events.get(i["event_id"]) is None]
        assert not missing, (
            f"{len(missing)} of {len(sent)} never archived: {lost(distributed, missing)}"
        )
        assert archived == len(sent), "an event archived twice"

        for items in flow.rounds:
            embedded.post(items)
        clock.advance(minutes(1))
        embedded.tick()
        distributed.tick()
        with embedded.system.store.transaction() as tx:
            expected_records = tx.records.load_all()
            expected_alerts = {a.alert_id: a for a in tx.alerts.list(limit=1000)}
        deadline = time.monotonic() + ARCHIVE_WAIT_S
        while True:  # the store writer follows the last tick's records and alerts
            with distributed.store.transaction() as tx:
                records = tx.records.load_all()
                alerts = {a.alert_id: a for a in tx.alerts.list(limit=1000)}
            if (records, alerts) == (expected_records, expected_alerts):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(ARCHIVE_POLL_S)
        assert records == expected_records
        assert alerts == expected_alerts
        assert distributed.zones() == embedded.zones()
    finally:
        flow.stopping.set()
        for worker in joined:
            worker.stop()
        distributed.close()
        embedded.system.stop()
