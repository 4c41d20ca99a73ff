"""Distributed mode answers as the embedded runtime does: a retried event is `duplicate`, an
event_id reused with other content is refused with 409, and a replaced demand layer takes
effect live on every worker. On the real Kafka broker, next to the embedded runtime."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from schemas.geography import DemandCell
from store.receipts import EventReceipts
from store.repositories import AppendOutcome
from store.unit_of_work import Store
from streams import topics as t
from streams.clock import ManualClock
from tests.conftest import T0, EventFactory, settings_for, tiny_city
from tests.kafka_harness import WorkerProcess, broker_settings
from tests.runtimes import Distributed, Embedded
from tools.kafka_broker import Cluster

DEMAND_FACTOR = 3.0  # the new layer: every cell's demand times this
CONCURRENT_COPIES = 8


@pytest.fixture
def runtimes(
    tmp_path: Path, clock: ManualClock, kafka: Cluster
) -> Iterator[tuple[Embedded, Distributed]]:
    embedded = Embedded(settings_for(tmp_path / "embedded"), clock)
    base = settings_for(tmp_path / "distributed")
    distributed = Distributed(
        broker_settings(base, kafka.bootstrap), clock, tmp_path / "worker-1.log"
    )
    try:
        yield embedded, distributed
    finally:
        distributed.close()
        embedded.system.stop()


def answers(runtime: Embedded | Distributed, items: list[dict[str, Any]]) -> list[tuple[str, int]]:
    response = runtime.ingest.handle(items, runtime.clock.now())
    return [(o.result.value, o.status) for o in response.results]


def test_retry_is_duplicate_and_reused_id_is_refused(
    runtimes: tuple[Embedded, Distributed], event: EventFactory
) -> None:
    embedded, distributed = runtimes
    opening = event("check_in", station_id="T-0001")
    reused = {**opening, "payload": {"status": "closed"}}
    batch = [event("visit", station_id="T-0001"), event("visit", station_id="T-0002")]
    script = [[opening], [opening], [reused], [batch[0], reused, batch[0], batch[1]], batch]
    expected = [
        [("accepted", 202)],
        [("duplicate", 200)],
        [("rejected", 409)],
        [("accepted", 202), ("rejected", 409), ("duplicate", 200), ("accepted", 202)],
        [("duplicate", 200), ("duplicate", 200)],
    ]
    seen_embedded = [answers(embedded, items) for items in script]
    seen_distributed = [answers(distributed, items) for items in script]
    assert seen_embedded == expected
    assert seen_distributed == expected
    conflict = distributed.ingest.handle([reused], distributed.clock.now()).results[0]
    assert conflict.errors[0].field == "event_id"

    distributed.wire.drain()
    produced = [
        json.loads(r.value)["event_id"]
        for topic in t.EVENT_TOPICS.values()
        for r in distributed.wire.read(topic)
    ]
    assert sorted(produced) == sorted([opening["event_id"], *(e["event_id"] for e in batch)])
    with distributed.store.transaction() as tx:
        archived = tx.events.count()
        record = tx.records.load_all()["T-0001"]
    assert archived == 3
    assert record.check_in_status is not None
    assert record.check_in_status.value == "open", "the reused id's content never applied"


def test_the_same_new_event_posted_at_once_is_accepted_once(
    runtimes: tuple[Embedded, Distributed], event: EventFactory
) -> None:
    """Posts waiting together are handed to the broker as one group, judged against each
    other: of copies of one new event posted at the same moment (a client's hasty retries),
    one is accepted and produced, the rest are duplicates; other content under its id, 409."""
    _, distributed = runtimes
    opening = event("check_in", station_id="T-0001")
    reused = {**opening, "payload": {"status": "closed"}}
    posts = [[opening]] * CONCURRENT_COPIES + [[reused]]
    start = threading.Barrier(len(posts))

    def post(items: list[dict[str, Any]]) -> tuple[str, int]:
        start.wait()
        return answers(distributed, items)[0]

    with ThreadPoolExecutor(len(posts)) as pool:
        seen = list(pool.map(post, posts))
    copies, other = seen[:-1], seen[-1]
    assert seen.count(("accepted", 202)) == 1, seen
    if other == ("accepted", 202):  # the other content came first: every copy conflicts
        assert copies == [("rejected", 409)] * CONCURRENT_COPIES
    else:
        assert other == ("rejected", 409)
        assert sorted(copies) == [("accepted", 202)] + [("duplicate", 200)] * (
            CONCURRENT_COPIES - 1
        )
    distributed.wire.drain()
    produced = [
        json.loads(r.value)["event_id"]
        for topic in t.EVENT_TOPICS.values()
        for r in distributed.wire.read(topic)
    ]
    assert produced == [opening["event_id"]], "produced once"


def test_failed_produce_records_nothing(tmp_path: Path) -> None:
    """An id is remembered only once the broker has it: judged twice before recording, it is
    new both times; recorded, it is a duplicate (or a conflict with other content)."""
    store = Store.open(f"sqlite:///{tmp_path / 'receipts.db'}")
    try:
        with store.transaction() as tx:
            receipts: EventReceipts = tx.receipts
            assert receipts.judge([("a", "1")]) == [AppendOutcome.accepted]
            assert receipts.judge([("a", "1")]) == [AppendOutcome.accepted]
        with store.transaction() as tx:
            tx.receipts.record([("a", "1")], T0)
            tx.receipts.record([("a", "2")], T0)  # the first content stays
        with store.transaction() as tx:
            assert tx.receipts.judge([("a", "1"), ("a", "2"), ("b", "1"), ("b", "1")]) == [
                AppendOutcome.duplicate,
                AppendOutcome.conflict,
                AppendOutcome.accepted,
                AppendOutcome.duplicate,
            ]
    finally:
        store.close()


def worker_metrics(worker: WorkerProcess) -> dict[str, list[Any]]:
    """What a worker's /metrics page shows, by family name (its port is in its environment)."""
    environ = Path(f"/proc/{worker.process.pid}/environ").read_bytes().split(b"\0")
    port = next(
        v.split(b"=", 1)[1] for v in environ if v.startswith(b"WAYSTATION_WORKER_WEB_PORT=")
    )
    answer = httpx.get(f"http://127.0.0.1:{port.decode()}/metrics", timeout=10)
    answer.raise_for_status()
    return {f.name: f.samples for f in text_string_to_metric_families(answer.text)}


def test_replaced_demand_takes_effect_on_every_worker(
    tmp_path: Path, runtimes: tuple[Embedded, Distributed], event: EventFactory
) -> None:
    embedded, distributed = runtimes
    second = WorkerProcess(distributed.settings, tmp_path / "worker-2.log")
    try:
        for runtime in (embedded, distributed):
            runtime.post(
                [
                    event(kind, station_id=station_id)
                    for station_id in ("T-0001", "T-0002")
                    for kind in ("check_in", "health_check")
                ]
            )
        before = distributed.zones()
        assert before == embedded.zones()

        city = tiny_city(distributed.settings)
        more = [
            DemandCell(
                cell=c.cell,
                demand_workers=c.demand_workers * DEMAND_FACTOR,
                district=c.district,
            )
            for c in city.demand
        ]
        embedded.system.replace_demand(more)
        with distributed.store.transaction() as tx:
            tx.demand.replace(more)
        distributed.sink.announce_demand()  # what EmbeddedSystem.replace_demand does
        distributed.wire.drain()

        after = distributed.zones()
        assert after == embedded.zones()
        assert after.keys() == before.keys()
        for zone, summary in after.items():
            assert summary.demand_workers == pytest.approx(
                before[zone].demand_workers * DEMAND_FACTOR
            )
        logs = [distributed.worker.log_path, second.log_path]
        loaded = [b"demand layer replaced" in path.read_bytes() for path in logs]
        assert loaded == [True, True], "each worker loaded the new layer"
        lagging = [
            worker_metrics(w)["waystation_consumer_lag_messages"]
            for w in (distributed.worker, second)
        ]
        owned = {(s.labels["topic"], s.labels["partition"]) for samples in lagging for s in samples}
        clock_partitions = {p for topic, p in owned if topic == t.CLOCK}
        assert clock_partitions == {"0", "1"}, "each partition has one owner exporting its lag"
        left = {(s.labels["topic"], s.labels["partition"]): s.value for x in lagging for s in x}
        assert not any(left.values()), left
    finally:
        second.stop()
