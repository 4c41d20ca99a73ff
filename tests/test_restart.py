"""Restarting the server (the real command, as a process: `waystation demo --no-simulate`,
which serves like `waystation run` on the sample city it loads first) loses no acknowledged
event and comes back with the same station states, coverage and open alerts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from schemas.opening_hours import parse_opening_hours
from schemas.state import EventStatus
from services.demo_keys import DEMO_KEYS_FILE
from store.unit_of_work import Store
from tests.conftest import free_port
from waystation.settings import Settings

STARTUP_TIMEOUT_S = 60
DISTRICT_TIME = ZoneInfo(Settings().timezone)
STOP_TIMEOUT_S = 30
SAMPLE_STATIONS = 300


class RunningSystem:
    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "WAYSTATION_DATA_DIR": str(data_dir),
            "WAYSTATION_API_PORT": str(self.port),
            "WAYSTATION_SAMPLE_STATIONS": str(SAMPLE_STATIONS),
            "WAYSTATION_ALERT_OPEN_GRACE_MINUTES": "0",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "demo", "--no-simulate"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"waystation run exited: {self.process.stderr.read()!r}")
            try:
                if self.client.get("/healthz").json()["status"] == "ok":
                    # The first start writes one demo key per role; the admin one reads all.
                    keys = json.loads((data_dir / DEMO_KEYS_FILE).read_text())
                    self.client.headers["Authorization"] = f"Bearer {keys['admin']['key']}"
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("waystation run did not become healthy")
            time.sleep(0.2)

    def settle(self) -> None:
        """Wait until everything acknowledged has been processed."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while self.client.get("/healthz").json()["queue_depth"] > 0:
            assert time.monotonic() < deadline, "the queue never drained"
            time.sleep(0.1)
        time.sleep(0.3)  # the batch being processed when the queue emptied

    def snapshot(self) -> dict[str, Any]:
        self.settle()
        stations = self.client.get("/v1/stations", params={"limit": 5000}).json()["stations"]
        coverage = self.client.get("/v1/coverage").json()
        alerts = self.client.get("/v1/alerts", params={"status": "open"}).json()["alerts"]
        return {
            "states": {s["station"]["station_id"]: s["state"] for s in stations},
            "covered": sorted(
                f["id"] for f in coverage["features"] if f["properties"]["status"] == "covered"
            ),
            "summary": coverage["summary"],
            "open_alerts": sorted(a["alert_id"] for a in alerts),
        }

    def interrupt(self) -> int:
        """Ctrl-C, as a user would."""
        self.client.close()
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=STOP_TIMEOUT_S)

    def kill(self) -> None:
        self.client.close()
        self.process.kill()
        self.process.wait(timeout=STOP_TIMEOUT_S)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "var"


def events_for(station_ids: list[str], kind: str) -> list[dict[str, Any]]:
    payloads = {
        "check_in": {"status": "open"},
        "health_check": {"amenities": {"drinking_water": "ok"}, "next_check_in_seconds": 300},
        "visit": {"worker_kind": "courier", "source": "qr_scan"},
    }
    now = datetime.now(UTC).isoformat()
    return [
        {
            "event_id": str(uuid.uuid4()),
            "type": kind,
            "station_id": station_id,
            "occurred_at": now,
            "payload": payloads[kind],
        }
        for station_id in station_ids
    ]


def opened_state(opening_hours: str | None, at: datetime) -> str:
    """What a station that checked in open is at `at`: the servers here run on the wall
    clock, and a station outside its opening hours is closed whatever it reported."""
    if opening_hours is None or parse_opening_hours(opening_hours).is_open(
        at.astimezone(DISTRICT_TIME)
    ):
        return "available"
    return "closed"


def test_restart_restores_state_and_loses_no_acknowledged_event(data_dir: Path) -> None:
    first = RunningSystem(data_dir)
    try:
        listed = first.client.get("/v1/stations").json()["stations"]
        ids = [s["station"]["station_id"] for s in listed]
        hours = {s["station"]["station_id"]: s["station"]["opening_hours"] for s in listed}
        assert len(ids) == SAMPLE_STATIONS
        opened = ids[: SAMPLE_STATIONS // 2]
        answer = first.client.post("/v1/events", json=events_for(opened, "check_in"))
        assert answer.json()["accepted"] == len(opened)
        closed = ids[:10]
        closing = events_for(closed, "check_in")
        for item in closing:
            item["payload"] = {"status": "closed"}
        first.client.post("/v1/events", json=closing)
        before = first.snapshot()
    finally:
        assert first.interrupt() == 0, "Ctrl-C must stop waystation run cleanly"

    assert set(before["states"].values()) >= {"available", "closed", "silent"}
    assert before["open_alerts"], "the sample city with most stations silent has gaps"

    second = RunningSystem(data_dir)
    try:
        assert second.snapshot() == before
        # Acknowledged, then the process dies before (or while) processing them.
        late_batch = events_for(ids[SAMPLE_STATIONS // 2 :], "check_in")
        late_batch += events_for(ids[:50], "visit")
        answer = second.client.post("/v1/events", json=late_batch)
        assert answer.status_code == 200
        assert answer.json()["accepted"] == len(late_batch)
    finally:
        second.kill()

    store = Store.open(f"sqlite:///{data_dir / 'waystation.db'}")
    try:
        with store.transaction() as tx:
            stored = {e.event_id for e in (tx.events.get(i["event_id"]) for i in late_batch) if e}
    finally:
        store.close()
    assert stored == {i["event_id"] for i in late_batch}, "an acknowledged event was lost"

    third = RunningSystem(data_dir)
    try:
        looked = datetime.now(UTC)
        after = third.snapshot()
        revived = ids[SAMPLE_STATIONS // 2 :]
        for station_id in revived:  # open, unless the wall clock is outside its opening hours
            allowed = {opened_state(hours[station_id], at) for at in (looked, datetime.now(UTC))}
            assert after["states"][station_id] in allowed, station_id
        assert all(after["states"][s] == "closed" for s in closed)
        assert len(after["covered"]) > len(before["covered"])
    finally:
        assert third.interrupt() == 0

    store = Store.open(f"sqlite:///{data_dir / 'waystation.db'}")
    try:
        with store.transaction() as tx:
            assert tx.events.count(status=EventStatus.pending) == 0
            assert tx.events.count() == len(opened) + len(closed) + len(late_batch)
    finally:
        store.close()
