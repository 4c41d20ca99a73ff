"""The endpoints behind the dashboard: the key's scope, the compact map snapshot, outlines,
a station's recent events, and the live stream (pushed updates, scoped by district, a resync
for a stream that falls behind, and streams that end with the server)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from schemas.auth import Role
from schemas.geography import Boundary, BoundaryLevel
from services.app import SECURITY_HEADERS, content_security_policy
from services.live import KEEPALIVE, RESYNC, Subscription
from services.system import EmbeddedSystem
from tests.conftest import DISTRICT, EventFactory, LiveServer, as_key, bearer, issue, serve

STREAM_TIMEOUT_S = 10.0
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[116.4, 39.9], [116.6, 39.9], [116.6, 40.0], [116.4, 40.0], [116.4, 39.9]]],
}


def test_whoami_names_the_keys_districts(live: LiveServer) -> None:
    union = issue(live.system, Role.union, districts=[DISTRICT])
    with as_key(live, union) as client:
        me = client.get("/v1/me").json()
    assert me["role"] == "union"
    assert me["districts"] == [DISTRICT]
    assert me["all_districts"] is False
    assert me["timezone"] == "Asia/Shanghai"
    assert me["basemap_tile_url"] is None


def test_map_snapshot_is_columnar_and_consistent(live: LiveServer, event: EventFactory) -> None:
    live.client.post("/v1/events", json=[event("check_in"), event("health_check")])
    live.system.runtime.drain()
    union = issue(live.system, Role.union, districts=[DISTRICT])
    with as_key(live, union) as client:
        response = client.get("/v1/map", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    snapshot = response.json()
    assert snapshot["district"] == DISTRICT
    stations, cells = snapshot["stations"], snapshot["cells"]
    assert stations["id"] == ["T-0001", "T-0002"]
    states = [snapshot["states"][i] for i in stations["state"]]
    assert states == ["available", "silent"]
    assert all(len(column) == len(cells["id"]) for column in cells.values())
    covered = [snapshot["statuses"][s] == "covered" for s in cells["status"]]
    assert any(covered)
    assert not all(covered)
    kpis = snapshot["kpis"]
    assert kpis["stations_total"] == 2
    assert kpis["stations_by_state"]["available"] == 1
    coverage = live.client.get("/v1/coverage").json()["summary"]
    assert kpis["demand_covered_pct"] == coverage["demand_covered_pct"]


def test_operators_get_no_map(live: LiveServer) -> None:
    operator = issue(live.system, Role.operator, stations=["T-0001"])
    with as_key(live, operator) as client:
        assert client.get("/v1/map").status_code == 403
        assert client.get("/v1/boundaries").status_code == 403
        assert client.get("/v1/live").status_code == 403


def test_boundaries_are_scoped_by_district(live: LiveServer) -> None:
    with live.system.store.transaction() as tx:
        tx.boundaries.replace(
            [
                Boundary(name=DISTRICT, level=BoundaryLevel.district, geometry=SQUARE),
                Boundary(
                    name="North", level=BoundaryLevel.subdistrict, parent=DISTRICT, geometry=SQUARE
                ),
                Boundary(name="Elsewhere", level=BoundaryLevel.district, geometry=SQUARE),
            ]
        )
    union = issue(live.system, Role.union, districts=[DISTRICT])
    with as_key(live, union) as client:
        names = {f["properties"]["name"] for f in client.get("/v1/boundaries").json()["features"]}
        assert names == {DISTRICT, "North"}
        assert client.get("/v1/boundaries", params={"district": "Elsewhere"}).status_code in (
            403,
            404,
        )
    everything = live.client.get("/v1/boundaries").json()["features"]
    assert {f["properties"]["name"] for f in everything} == {DISTRICT, "North", "Elsewhere"}


def test_station_events_newest_first_without_worker_refs(
    live: LiveServer, event: EventFactory
) -> None:
    visit = event(
        "visit",
        payload={
            "worker_kind": "courier",
            "party_size": 1,
            "source": "qr_scan",
            "worker_ref": "rider-1",
        },
    )
    live.client.post("/v1/events", json=[event("check_in"), visit])
    live.system.runtime.drain()
    found = live.client.get("/v1/stations/T-0001/events").json()["events"]
    assert {e["type"] for e in found} == {"check_in", "visit"}
    assert all("worker_ref" not in e["payload"] for e in found)
    assert live.client.get("/v1/stations/NOPE/events").status_code == 404
    other = issue(live.system, Role.union, districts=["Another District"])
    with as_key(live, other) as client:
        hidden = client.get("/v1/stations/T-0001/events")
        missing = client.get("/v1/stations/T-0009/events")
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["errors"] == missing.json()["errors"]


class Stream:
    """An SSE reader on a thread, collecting (event, data) pairs."""

    def __init__(self, url: str, key: str) -> None:
        self.messages: list[tuple[str, Any]] = []
        self.ended = threading.Event()
        self.opened = threading.Event()
        self._client = httpx.Client(base_url=url, headers=bearer(key), timeout=None)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with self._client.stream("GET", "/v1/live") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                self.opened.set()
                name, data = "", ""
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        name = line[len("event: ") :]
                    elif line.startswith("data: "):
                        data = line[len("data: ") :]
                    elif line == "" and name:
                        self.messages.append((name, json.loads(data)))
                        name, data = "", ""
        except httpx.HTTPError:
            pass
        finally:
            self.ended.set()

    def wait_for(self, predicate: Any) -> tuple[str, Any]:
        deadline = time.monotonic() + STREAM_TIMEOUT_S
        while time.monotonic() < deadline:
            for message in list(self.messages):
                if predicate(message):
                    return message
            time.sleep(0.02)
        raise AssertionError(f"no such message; got {[m[0] for m in self.messages]}")

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def stream_of(live: LiveServer) -> Iterator[Any]:
    opened: list[Stream] = []

    def open_stream(key: str) -> Stream:
        stream = Stream(live.url, key)
        assert stream.opened.wait(STREAM_TIMEOUT_S)
        stream.wait_for(lambda m: m[0] == "hello")
        opened.append(stream)
        return stream

    yield open_stream
    for stream in opened:
        stream.close()


def test_updates_are_pushed_and_scoped(
    live: LiveServer, event: EventFactory, stream_of: Any
) -> None:
    own = stream_of(issue(live.system, Role.union, districts=[DISTRICT]))
    outsider = stream_of(issue(live.system, Role.union, districts=["Another District"]))
    live.client.post("/v1/events", json=[event("check_in"), event("health_check")])
    live.system.runtime.drain()

    def opened(message: tuple[str, Any]) -> bool:
        return message[0] == "update" and any(s["id"] == "T-0001" for s in message[1]["stations"])

    _, update = own.wait_for(opened)
    assert update["stations"][0]["state"] == 0  # available
    assert any(c["covered"] for c in update["cells"])
    assert update["kpis"]["stations_by_state"]["available"] == 1
    assert update["seq"] > 0
    time.sleep(0.3)
    assert not any(opened(m) for m in outsider.messages), "another district's update leaked"


def test_a_stream_that_falls_behind_is_told_to_resync() -> None:
    async def scenario() -> list[str | None]:
        sub = Subscription(DISTRICT, asyncio.get_running_loop(), bound=3)
        for n in range(4):  # nobody reads: the fourth overflows the bound
            sub.offer(f"update {n}")
        sub.offer("update 4")
        received = [await sub.next(idle_s=0.05) for _ in range(3)]
        sub.end()
        received.append(await sub.next(idle_s=0.05))
        return received

    first, second, idle, ended = asyncio.run(scenario())
    assert first == RESYNC, "what it held was dropped for a resync"
    assert second == "update 4", "updates after the resync still arrive"
    assert idle == KEEPALIVE
    assert ended is None


def test_streams_end_when_the_server_stops(system: EmbeddedSystem) -> None:
    with serve(system) as server:
        stream = Stream(server.url, issue(system, Role.union, districts=[DISTRICT]))
        assert stream.opened.wait(STREAM_TIMEOUT_S)
        started = time.monotonic()
    assert stream.ended.wait(STREAM_TIMEOUT_S)
    assert time.monotonic() - started < STREAM_TIMEOUT_S
    stream.close()


def test_a_basemap_widens_the_image_policy_to_its_origin_only() -> None:
    assert content_security_policy(None) == SECURITY_HEADERS["Content-Security-Policy"]
    policy = content_security_policy("https://{s}.tiles.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://*.tiles.example.org;" in policy
    assert policy.startswith("default-src 'self';")
    assert "script-src" not in policy
