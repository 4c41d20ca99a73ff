"""SIGKILL of a real `waystation run` while many clients post and their events are group
committed: no acknowledged event is lost, none is stored or processed twice, and clients that
retry everything after the restart are answered duplicate for what was stored."""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.state import EventStatus
from store.unit_of_work import Store
from tests.test_restart import SAMPLE_STATIONS, RunningSystem

CLIENTS = 16
LOAD_S = 3.0
MIN_ACKED = 200
BATCH_SIZES = (1, 1, 1, 5, 20)  # mostly single events, as station apps post them
CLIENT_TIMEOUT_S = 10.0
JOIN_TIMEOUT_S = 30.0
RETRY_BATCH = 500


def visit(station_id: str) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "visit",
        "station_id": station_id,
        "occurred_at": datetime.now(UTC).isoformat(),
        "payload": {"worker_kind": "courier", "source": "qr_scan"},
    }


class Client(threading.Thread):
    """Posts until the server goes away; remembers what it sent and what was acknowledged."""

    def __init__(self, url: str, headers: dict[str, str], stations: list[str], seed: int) -> None:
        super().__init__(daemon=True)
        self.http = httpx.Client(base_url=url, headers=headers, timeout=CLIENT_TIMEOUT_S)
        self.stations = stations
        self.rng = random.Random(seed)
        self.sent: list[dict[str, Any]] = []
        self.acked: set[str] = set()
        self.refused = 0

    def run(self) -> None:
        try:
            while True:
                size = self.rng.choice(BATCH_SIZES)
                bodies = [visit(self.rng.choice(self.stations)) for _ in range(size)]
                self.sent.extend(bodies)
                payload: Any = bodies if size > 1 else bodies[0]
                answer = self.http.post("/v1/events", json=payload)
                if answer.status_code in (429, 503):  # told to come back later
                    self.refused += 1
                    continue
                assert answer.status_code in (200, 202), answer.text
                for outcome in answer.json()["results"]:
                    if outcome["result"] in ("accepted", "duplicate"):
                        self.acked.add(outcome["event_id"])
        except httpx.HTTPError:
            return  # the server was killed
        finally:
            self.http.close()


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def archive(data_dir: Path) -> tuple[dict[str, str], int]:
    """Event id -> status of every archived event, and the number of rows."""
    store = Store.open(f"sqlite:///{data_dir / 'waystation.db'}")
    try:
        with store.transaction(readonly=True) as tx:
            rows = tx.events.after(0, limit=10**9)
    finally:
        store.close()
    return {row.event_id: row.status for row in rows}, len(rows)


def test_sigkill_during_group_committed_ingest_loses_and_doubles_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One key posts for every client here: lift its rate limit out of the way.
    monkeypatch.setenv("WAYSTATION_RATE_LIMIT_PER_MINUTE", "10000000")
    monkeypatch.setenv("WAYSTATION_RATE_LIMIT_BURST", "1000000")
    data_dir = tmp_path / "var"
    first = RunningSystem(data_dir)
    stations = [
        s["station"]["station_id"]
        for s in first.client.get("/v1/stations", params={"limit": SAMPLE_STATIONS}).json()[
            "stations"
        ]
    ]
    headers = dict(first.client.headers)
    clients = [Client(first.url, headers, stations, seed) for seed in range(CLIENTS)]
    for client in clients:
        client.start()
    time.sleep(LOAD_S)
    deadline = time.monotonic() + JOIN_TIMEOUT_S
    while sum(len(c.acked) for c in clients) < MIN_ACKED and time.monotonic() < deadline:
        time.sleep(0.1)
    grouped = first.client.get("/metrics").text
    first.process.kill()  # SIGKILL: no shutdown of any kind
    first.process.wait(timeout=JOIN_TIMEOUT_S)
    first.client.close()
    for client in clients:
        client.join(JOIN_TIMEOUT_S)
        assert not client.is_alive()

    acked = set().union(*(c.acked for c in clients))
    sent = {b["event_id"]: b for c in clients for b in c.sent}
    assert len(acked) >= MIN_ACKED, "the load never got going"
    posts = metric(grouped, "waystation_committed_posts_total")
    groups = metric(grouped, "waystation_commit_groups_total")
    assert groups > 0
    assert posts > groups, f"posts did not share commits ({posts} in {groups})"

    stored, rows = archive(data_dir)
    assert acked <= stored.keys(), f"{len(acked - stored.keys())} acknowledged events lost"
    assert rows == len(stored), "an event was stored twice"
    assert stored.keys() <= sent.keys()
    pending_at_kill = sum(status == EventStatus.pending for status in stored.values())

    # The clients retry everything they sent, as they would after an error or no answer.
    second = RunningSystem(data_dir)
    try:
        answered: dict[str, str] = {}
        bodies = list(sent.values())
        for start in range(0, len(bodies), RETRY_BATCH):
            answer = second.client.post("/v1/events", json=bodies[start : start + RETRY_BATCH])
            assert answer.status_code == 200, answer.text
            answered.update((o["event_id"], o["result"]) for o in answer.json()["results"])
        second.settle()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        while second.client.get("/healthz").json()["lag_events"]:
            assert time.monotonic() < deadline, "the restarted runtime never caught up"
            time.sleep(0.1)
        processed = metric(second.client.get("/metrics").text, "waystation_events_processed_total")
    finally:
        assert second.interrupt() == 0

    assert all(answered[event_id] == "duplicate" for event_id in stored)
    newly = [event_id for event_id, result in answered.items() if result == "accepted"]
    assert set(newly) == sent.keys() - stored.keys()
    # Each event is processed once: what was pending at the kill, and what was new now.
    assert processed == pending_at_kill + len(newly), (processed, pending_at_kill, len(newly))
    final, rows = archive(data_dir)
    assert rows == len(sent) == len(final)
    assert not [s for s in final.values() if s == EventStatus.pending]
