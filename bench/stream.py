"""Stream throughput of the distributed runtime on a real Apache Kafka broker
(tools/kafka_broker.py), side by side in one run with Faust's own floor, the transport's ceiling
and the embedded runtime fed the same events.

Setup: the sample district (`generate_sample_city`, seed 7) in a SQLite store; the same events
(every station checks in and reports, then visits, health checks and state changes for random
stations all through: closing and reopening, amenities going out of service and coming back)
are put on the event topics: before Faust's floor and the transport's ceiling read them, and
once they are ready for the workers (below). Every run starts from fresh topics.

- `stream.faust.events_per_s`: one `waystation worker` process, started on empty topics. The
  events go on the topics once the worker is in its group and the group is stable; the clock
  starts just before the first of them (start-up and recovery are not counted, every event's
  processing is) and stops only when every stage has caught up: every event archived in the
  store, and no lag left on any topic the worker reads (events, clock, coverage deltas, and
  the store writer's alerts). Also reported: the share of that time the worker's process ran
  on a core (its CPU time over the wall time).
- `stream.faust.two_workers.events_per_s`: the same with two worker processes sharing the
  partitions (on the same two cores), the events put on the topics once both are in the
  group: filled before, the first worker to be ready took every partition and worked alone
  until the second joined and a rebalance split them.
- `stream.faust_noop.events_per_s`: a Faust agent that reads the same topics and does nothing
  (bench/faust_noop.py): Faust's floor, and the yardstick for what our state and logic cost.
  It runs on the worker's consumer, with its eager delivery (streams/eager_delivery.py), so
  that the floor is that of what the worker runs on: stock Faust spends about 20 µs more on
  every message.
- `stream.aiokafka_ceiling.events_per_s`: an AIOKafkaConsumer with the same fetch settings,
  assigned every event partition, reading to the end and doing nothing with what it reads.
- `stream.embedded.same_input.events_per_s`: the embedded runtime over the same events,
  submitted in batches of 500 and drained (archived durably, processed, saved).
- `stream.faust.end_to_end_p99_ms`: the API (`waystation run` in distributed mode, in a process
  of its own as deployed, its replica following the store) and one worker; events are posted
  at 1,000 per second, and every so often one of them closes or reopens a probe station: the
  time from posting it until the API pushes the change on its live feed (`/v1/live`, the
  dashboard's), with the coverage of the cells it moved.
- Throughput (one worker, two workers, Faust's floor, the transport's ceiling) is the median
  of ROUNDS rounds, every round on fresh topics and a fresh store, with one worker, the floor
  and the ceiling side by side in each round; each result's detail lists every round.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kafka import KafkaAdminClient, KafkaConsumer
from kafka import TopicPartition as SyncTopicPartition

from bench.api_process import running_api
from bench.results import Result
from demo.sample_city import ALL_DAY, WITHIN_OPENING_HOURS, generate_sample_city
from schemas.auth import Role
from schemas.events import EVENT_ADAPTER, Event
from schemas.stations import StationState
from services.auth import issue_key
from services.bootstrap import load_city
from services.broker_topics import create_topics
from services.dashboard_data import STATE_INDEX
from services.system import EmbeddedSystem
from store.repositories import canonical_json
from store.unit_of_work import Store
from streams import topics as t
from streams.clock import ManualClock
from tools import kafka_broker
from waystation.settings import Settings

SEED = 7
STATIONS = 2300
QUICK_STATIONS = 300
EVENTS = 20_000
QUICK_EVENTS = 2000
PARTITIONS = 4
FETCH_MAX_WAIT_MS = 50
COMMIT_INTERVAL_S = 0.2  # the caught-up check reads committed offsets
EMBEDDED_BATCH = 500
OUTCOME_TIMEOUT_S = 600
CAUGHT_UP_POLL_S = 0.05
STALLED_S = 30  # no lag left and nothing more archived for this long: events were lost
CONSUMER_POLL_MS = 500
NOOP_TIMEOUT_S = 300
T0 = WITHIN_OPENING_HOURS
SPREAD_S = 300  # events occur over the five minutes before T0
VISIT_SHARE = 0.6
HEALTH_SHARE = 0.25  # the rest are check-ins (closing, reopening)
OUTAGE_SHARE = 0.2  # of health checks: a critical amenity out of service
END_TO_END_RATE_PER_S = 1000
END_TO_END_S = 20
# Throughput rounds, each on fresh topics and a fresh store: the rates reported are each
# measure's median round (single runs of the same code spread by a tenth here).
ROUNDS = 3
QUICK_ROUNDS = 1
QUICK_END_TO_END_S = 8
END_TO_END_BATCH = 50  # events per POST: 20 POSTs a second
PROBE_EVERY_S = 0.5
WARMUP_S = 3.0
SINK_WAIT_S = 0.05  # the store writer's batch wait during the latency run
PROBE_TIMEOUT_S = 30
API_FOLLOW_S = 0.1  # how often the API's replica follows the store (its tick interval)
END_TO_END_TARGET_MS = 1000.0
FAUST_TARGET_PER_S = 5000.0
VS_NOOP_TARGET = 0.5
STARTUP_S = 120
WORKER_INPUTS = (
    *t.EVENT_TOPICS.values(),
    t.CLOCK,
    t.COVERAGE_DELTAS,
    t.ALERTS,
)

OK = {"drinking_water": "ok", "rest_seats": "ok"}
OUTAGE = {"drinking_water": "out_of_service", "rest_seats": "ok"}


def _events(station_ids: list[str], count: int) -> list[Event]:
    """Every station opens and reports; then a mix with state changes all through."""
    rng = random.Random(SEED)
    items: list[dict[str, Any]] = []
    for station_id in station_ids:
        items.append({"type": "check_in", "station_id": station_id, "payload": {"status": "open"}})
        items.append(
            {"type": "health_check", "station_id": station_id, "payload": {"amenities": OK}}
        )
    closed: set[str] = set()
    while len(items) < count:
        station_id = rng.choice(station_ids)
        roll = rng.random()
        if roll < VISIT_SHARE:
            payload: dict[str, Any] = {"worker_kind": "courier", "source": "qr_scan"}
            items.append({"type": "visit", "station_id": station_id, "payload": payload})
        elif roll < VISIT_SHARE + HEALTH_SHARE:
            amenities = OUTAGE if rng.random() < OUTAGE_SHARE else OK
            payload = {"amenities": amenities}
            items.append({"type": "health_check", "station_id": station_id, "payload": payload})
        else:
            status = "open" if station_id in closed else "closed"
            closed.symmetric_difference_update({station_id})
            items.append(
                {"type": "check_in", "station_id": station_id, "payload": {"status": status}}
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


def _fresh(cluster: kafka_broker.Cluster, settings: Settings) -> None:
    """No topics but the ones `settings` needs, new and empty."""
    cluster.delete_topics()
    create_topics(settings)


async def _fill(bootstrap: str, events: list[Event]) -> float:
    """Put `events` on their topics as the API would; returns the wall-clock time (s) just
    before the first was sent (encoding them and starting the producer come before it)."""
    received = [(t.RECEIVED_AT, T0.isoformat().encode())]
    messages = [
        (t.EVENT_TOPICS[event.type], canonical_json(event).encode(), event.station_id.encode())
        for event in events
    ]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        first = time.time()
        for topic, value, key in messages:
            await producer.send(topic, value, key=key, headers=received)
        await producer.flush()
    finally:
        await producer.stop()
    return first


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


def _noop(root: Path, bootstrap: str, count: int) -> float:
    out = root / "noop.json"
    wait_ms = str(FETCH_MAX_WAIT_MS)
    log = (root / "noop.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.faust_noop", bootstrap, str(count), str(out), wait_ms],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + NOOP_TIMEOUT_S
        while not out.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the no-op Faust agent did not finish: see {root}/noop.log")
            time.sleep(CAUGHT_UP_POLL_S)
        span = json.loads(out.read_text(encoding="utf-8"))
        return (count - 1) / max(span["last"] - span["first"], 1e-3)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


class Progress:
    """How far the workers are: events archived, and lag on every topic they read."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store.open(settings.resolved_database_url)
        self.admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        self.offsets = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
        parts = range(settings.broker_partitions)
        self.wanted = [SyncTopicPartition(name, p) for name in WORKER_INPUTS for p in parts]

    def archived(self) -> int:
        with self.store.transaction(readonly=True) as tx:
            return tx.events.count()

    def lag(self) -> int:
        group = self.settings.worker_app_id
        committed = self.admin.list_group_offsets({group: self.wanted}).get(group, {})
        ends = self.offsets.end_offsets(self.wanted)
        total = 0
        for tp in self.wanted:
            done = committed[tp].offset if tp in committed else 0
            total += max(ends[tp] - max(done, 0), 0)
        return total

    def close(self) -> None:
        self.admin.close()
        self.offsets.close()
        self.store.close()


def _cpu_seconds(pid: int) -> float:
    """CPU time (user and system, every thread) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _faust(
    root: Path, settings: Settings, events: list[Event], workers: int
) -> tuple[float, float]:
    """Events/s, and the share of the timed span that the workers' processes ran on a core
    (CPU time over wall time, per worker). The events go on the topics only once every worker
    is in the group and it is stable, and the clock starts just before the first is sent:
    start-up and recovery are not counted, every event's processing is. (Started on filled
    topics, the first worker to be ready took every partition and worked alone until a
    rebalance; and timed from its first output, a worker's first batch was left out of the
    span while its events were counted.)"""
    from tests.kafka_harness import Wire, WorkerProcess  # the same worker the tests run

    count = len(events)
    running = [WorkerProcess(settings, root / f"worker-{i}.log") for i in range(workers)]
    pids = [worker.process.pid for worker in running]
    progress = Progress(settings)
    try:
        wire = Wire(settings)
        try:
            wire.wait_for_members(workers, running)
        finally:
            wire.close()
        idle_cpu = sum(_cpu_seconds(pid) for pid in pids)  # ready, waiting for events
        started = asyncio.run(_fill(",".join(settings.bootstrap_servers), events))
        deadline = time.monotonic() + OUTCOME_TIMEOUT_S
        idle_since, last = time.monotonic(), -1
        while (archived := progress.archived()) < count or progress.lag() > 0:
            now = time.monotonic()
            if archived != last or progress.lag() > 0:
                idle_since, last = now, archived
            elif now - idle_since > STALLED_S:
                raise RuntimeError(
                    f"the workers caught up but archived only {archived} of {count} events"
                )
            if now > deadline:
                raise TimeoutError(f"{archived} of {count} archived in time")
            time.sleep(CAUGHT_UP_POLL_S)
        span = max(time.time() - started, 1e-3)
        cpu = sum(_cpu_seconds(pid) for pid in pids) - idle_cpu
        return count / span, cpu / (workers * span)
    finally:
        progress.close()
        for worker in running:
            worker.stop()


def _city_store(settings: Settings, city: Any) -> None:
    store = Store.open(settings.resolved_database_url)
    load_city(store, city)
    store.close()


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


@contextmanager
def _api(settings: Settings, log_path: Path) -> Iterator[httpx.Client]:
    """`waystation run` (distributed mode) in a process of its own, as deployed, on a free
    loopback port, with an admin key: the load generator and the live-feed reader here must not
    share the API's interpreter."""
    from tests.kafka_harness import environment

    store = Store.open(settings.resolved_database_url)
    try:
        issued = issue_key(store, role=Role.admin, now=datetime.now(UTC))
    finally:
        store.close()
    port = kafka_broker.free_port()
    env = environment(settings.model_copy(update={"api_host": "127.0.0.1", "api_port": port}))
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {issued.secret}"}
    with (
        running_api(["run"], env, url, log_path=log_path),
        httpx.Client(base_url=url, headers=headers, timeout=PROBE_TIMEOUT_S) as client,
    ):
        yield client


class LiveFeed:
    """The API's live updates for a district (server-sent events), read in a thread: when
    each station state change arrived, with the cells it moved (the coverage change)."""

    def __init__(self, base_url: str, headers: dict[str, str], district: str) -> None:
        self.seen: queue.Queue[tuple[str, int, float]] = queue.Queue()
        self.client = httpx.Client(base_url=base_url, headers=headers, timeout=None)
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(district,), daemon=True)
        self.thread.start()
        if not self.ready.wait(STARTUP_S):
            raise RuntimeError("the live feed did not start")

    def _read(self, district: str) -> None:
        with (
            contextlib.suppress(httpx.HTTPError),
            self.client.stream("GET", "/v1/live", params={"district": district}) as answer,
        ):
            kind = ""
            for line in answer.iter_lines():
                if line.startswith("event:"):
                    kind = line.removeprefix("event:").strip()
                    self.ready.set()
                elif line.startswith("data:") and kind == "update":
                    at = time.monotonic()
                    for change in json.loads(line.removeprefix("data:"))["stations"]:
                        self.seen.put((change["id"], change["state"], at))

    def wait_for(self, station_id: str, state: StationState) -> float:
        """When the API pushed `station_id` in `state` (monotonic seconds)."""
        wanted = (station_id, STATE_INDEX[state])
        deadline = time.monotonic() + PROBE_TIMEOUT_S
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"the API never showed {station_id} {state.value}")
            with contextlib.suppress(queue.Empty):
                station, index, at = self.seen.get(timeout=left)
                if (station, index) == wanted:
                    return at

    def close(self) -> None:
        self.client.close()
        self.thread.join(timeout=10)


def _body(kind: str, station_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "schema_version": 1,
        "station_id": station_id,
        "occurred_at": datetime.now(UTC).isoformat(),
        "payload": payload,
    }


def _visit(station_id: str) -> dict[str, Any]:
    return _body("visit", station_id, {"worker_kind": "courier", "source": "qr_scan"})


def _check_in(station_id: str, status: str) -> dict[str, Any]:
    return _body("check_in", station_id, {"status": status})


def _opening(station_id: str) -> list[dict[str, Any]]:
    return [_check_in(station_id, "open"), _body("health_check", station_id, {"amenities": OK})]


def _post(client: httpx.Client, items: list[dict[str, Any]], most: int) -> None:
    for i in range(0, len(items), most):
        answer = client.post("/v1/events", json=items[i : i + most])
        answer.raise_for_status()
        if answer.json()["rejected"]:
            raise RuntimeError(f"events rejected: {answer.text[:500]}")


class Load:
    """Visits posted to the API at END_TO_END_RATE_PER_S from a thread of its own, so that
    waiting for a probe never slows the offered load."""

    def __init__(self, client: httpx.Client, station_ids: list[str], most: int) -> None:
        self.client = httpx.Client(
            base_url=client.base_url, headers=client.headers, timeout=PROBE_TIMEOUT_S
        )
        self.station_ids = station_ids
        self.most = most
        self.stopping = threading.Event()
        self.sent = 0
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        rng = random.Random(SEED)
        while not self.stopping.is_set():
            batch = [_visit(rng.choice(self.station_ids)) for _ in range(END_TO_END_BATCH)]
            _post(self.client, batch, self.most)
            self.sent += len(batch)
            pause = self.started + self.sent / END_TO_END_RATE_PER_S - time.monotonic()
            if pause > 0:
                self.stopping.wait(pause)

    def stop(self) -> float:
        """Stop; returns the rate the API actually took the visits at (events/s)."""
        self.stopping.set()
        self.thread.join(timeout=30)
        self.client.close()
        return self.sent / (time.monotonic() - self.started)


def _end_to_end(root: Path, settings: Settings, city: Any, seconds: float) -> tuple[float, float]:
    """p99 (ms) from posting a state change to the API pushing it, with the cells it moved;
    and the rate (events/s) at which the API took the load."""
    from tests.kafka_harness import WorkerProcess

    worker_settings = settings.model_copy(
        update={"worker_clock": "wall", "worker_sink_batch_wait_seconds": SINK_WAIT_S}
    )
    worker = WorkerProcess(worker_settings, root / "worker-e2e.log")
    api_settings = settings.model_copy(
        update={"tick_interval_seconds": API_FOLLOW_S, "simulate": False}
    )
    latencies: list[float] = []
    taken = 0.0
    try:
        with _api(api_settings, root / "api-e2e.log") as client:
            stations = sorted(city.stations, key=lambda s: s.station_id)
            # The workers' clock is the wall clock here: a probe open at any hour, so that
            # opening hours never close it whenever the benchmark runs.
            probe = next(s for s in stations if s.opening_hours == ALL_DAY)
            others = [s.station_id for s in stations if s is not probe]
            feed = LiveFeed(str(client.base_url), dict(client.headers), probe.district)
            try:
                most = settings.batch_max_events
                _post(client, [e for s in stations for e in _opening(s.station_id)], most)
                feed.wait_for(probe.station_id, StationState.available)
                load = Load(client, others, most)
                try:
                    time.sleep(WARMUP_S)  # the openings' backlog is worked off first
                    closed = False
                    deadline = time.monotonic() + seconds
                    while time.monotonic() < deadline:
                        closed = not closed
                        change = _check_in(probe.station_id, "closed" if closed else "open")
                        posted = time.monotonic()
                        _post(client, [change], most)
                        state = StationState.closed if closed else StationState.available
                        try:
                            seen = feed.wait_for(probe.station_id, state)
                        except TimeoutError:
                            # The change did not show within the probe's limit: count it at
                            # the limit (the p99 is then at least that: a miss, recorded as
                            # one) and stop probing, since every later probe waits behind it.
                            latencies.append(PROBE_TIMEOUT_S * 1e3)
                            break
                        latencies.append((seen - posted) * 1e3)
                        time.sleep(PROBE_EVERY_S)
                finally:
                    taken = load.stop()
            finally:
                feed.close()
    finally:
        worker.stop()
    if not latencies:
        raise RuntimeError("no probe was measured")
    return float(np.percentile(latencies, 99)), taken


def _throughput(
    cluster: kafka_broker.Cluster, root: Path, city: Any, events: list[Event], workers: int
) -> dict[str, float]:
    """Events/s through `workers` workers on fresh topics; with one worker, also Faust's floor
    and the transport's ceiling on the same events (topics filled before they start)."""
    run_dir = root / f"faust-{workers}"
    run_dir.mkdir(parents=True)
    settings = _settings(
        run_dir,
        broker_url=cluster.url,
        worker_clock="topic",
        worker_commit_interval_seconds=COMMIT_INTERVAL_S,
    )
    _city_store(settings, city)
    _fresh(cluster, settings)
    rates = {}
    if workers == 1:  # on topics filled before they start reading, from their first event
        asyncio.run(_fill(cluster.bootstrap, events))
        rates["ceiling"] = asyncio.run(_ceiling(cluster.bootstrap, len(events)))
        rates["noop"] = _noop(run_dir, cluster.bootstrap, len(events))
        _fresh(cluster, settings)  # the workers start on empty topics (`_faust`)
    rates[f"workers_{workers}"], rates[f"busy_{workers}"] = _faust(
        run_dir, settings, events, workers
    )
    return rates


def _rounds(
    cluster: kafka_broker.Cluster,
    root: Path,
    city: Any,
    events: list[Event],
    workers: int,
    rounds: int,
) -> dict[str, list[float]]:
    """`_throughput`'s measures, one value per round."""
    found: dict[str, list[float]] = {}
    for round_ in range(rounds):
        measured = _throughput(cluster, root / f"round-{round_}", city, events, workers)
        for name, value in measured.items():
            found.setdefault(name, []).append(value)
    return found


def _each_round(values: list[float]) -> str:
    return f" The median of {len(values)} round(s): " + ", ".join(f"{v:,.0f}" for v in values) + "."


def _latency(
    cluster: kafka_broker.Cluster, root: Path, city: Any, seconds: float
) -> tuple[float, float]:
    run_dir = root / "end-to-end"
    run_dir.mkdir()
    settings = _settings(run_dir, broker_url=cluster.url)
    _city_store(settings, city)
    _fresh(cluster, settings)
    return _end_to_end(run_dir, settings, city, seconds)


def run(quick: bool) -> list[Result]:
    stations = QUICK_STATIONS if quick else STATIONS
    count = QUICK_EVENTS if quick else EVENTS
    city = generate_sample_city(seed=SEED, stations=stations)
    events = _events(sorted(s.station_id for s in city.stations), count)
    root = Path(tempfile.mkdtemp(prefix="waystation-bench-stream-"))
    try:
        with kafka_broker.Cluster("bench-stream") as cluster:
            rounds = QUICK_ROUNDS if quick else ROUNDS
            measured = _rounds(cluster, root, city, events, 1, rounds)
            seconds = QUICK_END_TO_END_S if quick else END_TO_END_S
            p99, taken = _latency(cluster, root, city, seconds)
            measured |= _rounds(cluster, root, city, events, 2, rounds)
        embedded_dir = root / "embedded"
        measured["embedded"] = [_embedded(embedded_dir, _settings(embedded_dir), events, city)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    rates = {name: float(np.median(values)) for name, values in measured.items()}
    detail = f"{count:,} events, {stations:,} stations, {PARTITIONS} partitions."
    one = rates["workers_1"]
    return [
        Result(
            "stream.faust.events_per_s",
            one,
            "per_s",
            target=FAUST_TARGET_PER_S,
            about="Events through one Faust worker on the broker, until every stage has caught "
            "up and every event is archived.",
            detail=f"{detail}{_each_round(measured['workers_1'])} From just before the first "
            f"event was put on the topics to the end, the worker's process ran on a core "
            f"{rates['busy_1']:.0%} of the time (its CPU time, every thread, over the wall "
            "time; the median of the rounds).",
        ),
        Result(
            "stream.faust.two_workers.events_per_s",
            rates["workers_2"],
            "per_s",
            about="The same with two worker processes sharing the partitions, the events put "
            "on the topics once both are in the group.",
            detail=detail + _each_round(measured["workers_2"]),
        ),
        Result(
            "stream.faust_noop.events_per_s",
            rates["noop"],
            "per_s",
            about="A Faust agent reading the same topics and doing nothing, on the worker's "
            "consumer (eager delivery): Faust's floor.",
            detail=detail + _each_round(measured["noop"]),
        ),
        Result(
            "stream.aiokafka_ceiling.events_per_s",
            rates["ceiling"],
            "per_s",
            about="A bare aiokafka consumer reading the same event topics: the transport's "
            "ceiling.",
            detail=detail + _each_round(measured["ceiling"]),
        ),
        Result(
            "stream.embedded.same_input.events_per_s",
            rates["embedded"],
            "per_s",
            about="The embedded runtime over the same events: archived, processed, saved.",
            detail=detail,
        ),
        Result(
            "stream.faust.vs_faust_noop",
            one,
            "per_s",
            baseline="stream.faust_noop.events_per_s",
            ratio=one / rates["noop"],
            about=f"Our worker's rate over Faust's floor (above 1 impossible; the ratio's target "
            f"is {VS_NOOP_TARGET:g}).",
        ),
        Result(
            "stream.faust.vs_aiokafka_ceiling",
            one,
            "per_s",
            baseline="stream.aiokafka_ceiling.events_per_s",
            ratio=one / rates["ceiling"],
            about="Our worker's rate over the bare consumer's.",
        ),
        Result(
            "stream.faust.vs_embedded",
            one,
            "per_s",
            baseline="stream.embedded.same_input.events_per_s",
            ratio=one / rates["embedded"],
            about="Our worker's rate over the embedded runtime's on the same events.",
        ),
        Result(
            "stream.faust.end_to_end_p99_ms",
            p99,
            "ms",
            target=END_TO_END_TARGET_MS,
            about=f"A state change posted to the API until the API's live feed pushes it with "
            f"the coverage it moved, with "
            f"{END_TO_END_RATE_PER_S:,} events/s offered (one worker, its store writer waiting "
            f"at most {SINK_WAIT_S:g} s to fill a batch; the API's replica follows the store "
            f"every {API_FOLLOW_S:g} s).",
            detail=f"{stations:,} stations; the API took the load at {taken:,.0f} events/s.",
        ),
    ]
