"""Real broker, real workers: Apache Kafka (tools/kafka_broker.py) with every waystation topic
made by `waystation topics create`'s code, `waystation worker` processes against it, and ways
to feed and read the topics."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from streams import topics as t
from streams.wire import Tick
from tests.conftest import free_port
from waystation.settings import Settings

WORKER_READY_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30  # over the workers' shutdown deadline
DRAIN_TIMEOUT_S = 90
DRAIN_POLL_S = 0.15
STATUS_LINE_CHARS = 160  # of a worker's last log line, in a failure message
DRAIN_STABLE_CHECKS = 2
DRAIN_IDLE_S = 4.5  # well over the commit interval, fetch wait, recovery
READ_TIMEOUT_MS = 3000
TEST_PARTITIONS = 2
COMMIT_INTERVAL_S = 0.2
INPUT_TOPICS = (
    *t.EVENT_TOPICS.values(),
    t.STATION_CHANGES,
    t.CLOCK,
    t.COVERAGE_DELTAS,
    t.ALERTS,
)


_app_ids = itertools.count(1)


def broker_settings(settings: Settings, bootstrap: str, **overrides: Any) -> Settings:
    """`settings` pointed at the broker, with a clock that only the tests move, and an
    application id (consumer group, changelog topics) no earlier test on the broker used."""
    values = {
        **settings.model_dump(),
        "broker_url": f"kafka://{bootstrap}",
        "broker_partitions": TEST_PARTITIONS,
        "worker_app_id": f"waystation-test-{os.getpid()}-{next(_app_ids)}",
        "worker_clock": "topic",
        "worker_commit_interval_seconds": COMMIT_INTERVAL_S,
        "broker_session_timeout_seconds": 6.0,
        "worker_sink_batch_wait_seconds": 0.05,
        "worker_fetch_max_wait_ms": 50,
        **overrides,
    }
    return Settings(**values)


def environment(settings: Settings) -> dict[str, str]:
    """The settings as WAYSTATION_* variables, for a worker process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAYSTATION_")}
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        env[f"WAYSTATION_{name.upper()}"] = text
    env["WAYSTATION_DATABASE_URL"] = settings.resolved_database_url
    return env


class WorkerProcess:
    """`waystation worker` as a child process; its log goes to a file next to the store."""

    def __init__(self, settings: Settings, log_path: Path, *, module: str = "services.cli") -> None:
        """`module`: what `python -m` runs, with the argument `worker`."""
        self.log_path = log_path
        env = environment(settings.model_copy(update={"worker_web_port": free_port()}))
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, "worker"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + WORKER_READY_TIMEOUT_S
        while b"Ready" not in log_path.read_bytes():
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited:\n{self.log()}")
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"the worker did not become ready:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def status(self) -> str:
        """One line for a failure message: running or its exit code, and its last log line."""
        code = self.process.poll()
        lines = self.log_path.read_text(errors="replace").strip().splitlines() or [""]
        state = "running" if code is None else f"exited {code}"
        return f"{self.log_path.name} {state}, last said {lines[-1][:STATUS_LINE_CHARS]!r}"

    def kill(self) -> None:
        """SIGKILL: no chance to commit, flush or leave the group."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)
        self._log.close()

    def stop(self, *, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM, then SIGKILL if it has not exited within `timeout_s`; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]


class Wire:
    """Clients of the broker for a test: raw produce, ticks, drain, and reading topics."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.servers = settings.bootstrap_servers
        self.producer = KafkaProducer(bootstrap_servers=self.servers, acks="all")
        self.admin = KafkaAdminClient(bootstrap_servers=self.servers)
        self.offsets = KafkaConsumer(bootstrap_servers=self.servers)

    def close(self) -> None:
        self.producer.close()
        self.admin.close()
        self.offsets.close()

    def produce_raw(
        self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        self.producer.send(topic, key=key, value=value, headers=list(headers)).get(timeout=10)

    def tick(self, at: datetime) -> None:
        value = Tick(at=at).model_dump_json().encode()
        for partition in range(self.settings.broker_partitions):
            self.producer.send(t.CLOCK, value=value, partition=partition).get(timeout=10)

    def drain(self) -> None:
        """Wait until the workers have processed everything on their inputs: no lag between
        the group's committed offsets and the ends of the topics, or (see below) a lag that
        stays exactly the same, in a stable group whose members do not change, for longer
        than the broker takes to notice a dead worker."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        # A killed worker stays a member of a "Stable" group until its session times out, and
        # nothing moves meanwhile: an idle spell shorter than that proves nothing.
        idle_s = max(DRAIN_IDLE_S, self.settings.broker_session_timeout_seconds + DRAIN_IDLE_S)
        previous: tuple[dict[TopicPartition, int], frozenset[str] | None] | None = None
        same = 0
        still_since = time.monotonic()
        while True:
            try:
                lag: dict[TopicPartition, int] | str = self.lag()
                seen = (lag, self.member_ids()) if isinstance(lag, dict) else None
            except KafkaError as exc:  # a broker restarting: the clients reconnect
                lag, seen = f"no answer: {exc}", None
            if seen is None or seen != previous:
                same, still_since = 0, time.monotonic()
            else:
                same += 1
            previous = seen
            # A Faust worker that takes a partition over (a restart, a rebalance) may never
            # commit it when its only messages were read before its offsets were set: they are
            # processed and archived, only the commit waits for the partition's next message.
            stable = seen is not None and seen[1] is not None
            if (lag == {} and same >= DRAIN_STABLE_CHECKS) or (
                stable and time.monotonic() - still_since >= idle_s
            ):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers did not catch up: {lag}")
            time.sleep(DRAIN_POLL_S)

    def member_ids(self) -> frozenset[str] | None:
        """Who is in the group once it is stable; None while it rebalances."""
        group = self.settings.worker_app_id
        found = self.admin.describe_groups([group]).get(group, {})
        if found.get("group_state") != "Stable":
            return None
        return frozenset(m.get("member_id", "") for m in found.get("members", []))

    def members(self) -> int | None:
        """The workers in the group once it is stable; None while it rebalances."""
        ids = self.member_ids()
        return None if ids is None else len(ids)

    def wait_for_members(self, count: int, workers: Sequence[WorkerProcess]) -> None:
        """Until the group is stable with `count` workers: after one was killed, until the
        broker has noticed (a session timeout) and handed its partitions to the others. On
        a timeout, says what became of each of `workers`."""
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while (found := self.members()) != count:
            if time.monotonic() > deadline:
                seen = "; ".join(worker.status() for worker in workers)
                raise TimeoutError(f"the group has {found} workers, not {count}: {seen}")
            time.sleep(DRAIN_POLL_S)

    def lag(self) -> dict[TopicPartition, int]:
        """Messages on the workers' inputs not yet committed by their group, by partition."""
        parts = range(self.settings.broker_partitions)
        wanted = [TopicPartition(topic, p) for topic in INPUT_TOPICS for p in parts]
        group = self.settings.worker_app_id
        committed = self.admin.list_group_offsets({group: wanted}).get(group, {})
        ends = self.offsets.end_offsets(wanted)
        lag = {}
        for tp in wanted:
            done = committed[tp].offset if tp in committed else 0
            if ends[tp] > max(done, 0):
                lag[tp] = ends[tp] - max(done, 0)
        return lag

    def read(self, topic: str) -> list[Record]:
        """Everything on a topic, partition by partition, in offset order."""
        consumer = KafkaConsumer(
            bootstrap_servers=self.servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=READ_TIMEOUT_MS,
        )
        try:
            tps = [TopicPartition(topic, p) for p in range(self.settings.broker_partitions)]
            ends = consumer.end_offsets(tps)
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            found: list[Record] = []
            while any(consumer.position(tp) < ends[tp] for tp in tps):
                for batch in consumer.poll(timeout_ms=READ_TIMEOUT_MS).values():
                    found += [
                        Record(
                            m.topic,
                            m.partition,
                            m.offset,
                            m.key,
                            m.value,
                            dict(m.headers or []),
                        )
                        for m in batch
                    ]
            return sorted(found, key=lambda r: (r.partition, r.offset))
        finally:
            consumer.close()

    def latest(self, topic: str) -> dict[bytes, bytes]:
        """A compacted topic's view: the last value of each key."""
        return {r.key: r.value for r in self.read(topic) if r.key is not None}
