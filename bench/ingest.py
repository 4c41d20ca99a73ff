"""HTTP ingest benchmarks: events per second and request latency through the real server
over loopback, as station operators' systems post them.

`waystation demo --no-simulate` (the real server, embedded runtime, SQLite with
synchronous=FULL, sample city of SAMPLE_STATIONS stations, no simulator) in its own process.
The load comes from this process: plain HTTP/1.1 keep-alive connections on asyncio streams
(a light client, so that the load generator takes as little of the machine's CPU as it can),
each posting its next request as soon as the previous one is answered. Bodies are made beforehand.

- single: SINGLE_CLIENTS connections, one event per request;
- batch500: BATCH_CLIENTS connections, 500 events per request.

Both loads run ROUNDS times, each round on a fresh server (a round's visits fill the stations'
overload windows, which would slow the next round down): the rate reported is the median
round's, the p99 is over every round's requests. A single round's rate moved by up to a fifth
between runs of unchanged code.

Every answer must be a 2xx with every event accepted; a run that sees anything else fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from bench.api_process import running_api
from bench.light_http import Connection
from bench.results import Result

SAMPLE_STATIONS = 2000
SINGLE_CLIENTS = 32
SINGLE_EVENTS = 10_000
QUICK_SINGLE_EVENTS = 2000
BATCH_CLIENTS = 8
BATCH_EVENTS = 500
BATCH_REQUESTS = 120
QUICK_BATCH_REQUESTS = 16
WARMUP_REQUESTS = 64  # single events posted before timing (connections, caches)
ROUNDS = 3
QUICK_ROUNDS = 1

REQUEST_TIMEOUT_S = 60.0
# The bench posts with one key from every client: the per-key rate limit is lifted for it.
RATE_LIMIT_PER_MINUTE = 100_000_000
RATE_LIMIT_BURST = 10_000_000

# Targets
SINGLE_EVENTS_PER_S_TARGET = 2000.0
SINGLE_P99_TARGET_MS = 50.0
BATCH_EVENTS_PER_S_TARGET = 15_000.0
BATCH_P99_TARGET_MS = 1000.0


@dataclass(frozen=True)
class Load:
    events: int
    wall_s: float
    latencies_ms: np.ndarray


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(data_dir: Path) -> Iterator[tuple[int, str, list[str]]]:
    """`waystation demo --no-simulate` on a free port: yields the port, an admin key and the
    station ids."""
    port = _free_port()
    env = {
        **os.environ,
        "WAYSTATION_DATA_DIR": str(data_dir),
        "WAYSTATION_API_PORT": str(port),
        "WAYSTATION_SIMULATE": "false",
        "WAYSTATION_SAMPLE_STATIONS": str(SAMPLE_STATIONS),
        "WAYSTATION_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT_PER_MINUTE),
        "WAYSTATION_RATE_LIMIT_BURST": str(RATE_LIMIT_BURST),
    }
    url = f"http://127.0.0.1:{port}"
    with running_api(["demo", "--no-simulate"], env, url, healthy=_demo_loaded):
        keys = json.loads((data_dir / "demo-keys.json").read_text())
        key = keys["admin"]["key"]
        with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
            answer = client.get(
                "/v1/stations",
                params={"limit": SAMPLE_STATIONS},
                headers={"Authorization": f"Bearer {key}"},
            )
        stations = [s["station"]["station_id"] for s in answer.json()["stations"]]
        yield port, key, stations


def _demo_loaded(answer: httpx.Response) -> bool:
    return bool(answer.json()["status"] == "ok")


def _visit(station_id: str, at: str) -> dict[str, object]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": "visit",
        "station_id": station_id,
        "occurred_at": at,
        "payload": {"worker_kind": "courier", "party_size": 1, "source": "qr_scan"},
    }


def bodies(stations: list[str], requests: int, per_request: int, seed: int) -> list[bytes]:
    """Request bodies: single events (JSON objects) or batches (arrays)."""
    rng = np.random.default_rng(seed)
    at = datetime.now(UTC).isoformat()
    made = []
    for _ in range(requests):
        picks = rng.integers(0, len(stations), size=per_request).tolist()
        events = [_visit(stations[i], at) for i in picks]
        made.append(json.dumps(events[0] if per_request == 1 else events).encode())
    return made


async def _client(
    port: int, key: str, work: asyncio.Queue[bytes], latencies: list[float], accepted: list[int]
) -> None:
    connection = await Connection.open(port)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    try:
        while True:
            try:
                body = work.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            answer = await connection.request("POST", "/v1/events", headers, body)
            latencies.append((time.perf_counter() - started) * 1e3)
            if answer.status not in (200, 202):
                raise RuntimeError(f"answered {answer.status}: {answer.body[:300]!r}")
            accepted.append(json.loads(answer.body)["accepted"])
    finally:
        connection.close()


def post_all(port: int, key: str, requests: list[bytes], clients: int) -> Load:
    """Post every body over `clients` connections; returns the load's numbers."""

    async def main() -> Load:
        work: asyncio.Queue[bytes] = asyncio.Queue()
        for body in requests:
            work.put_nowait(body)
        latencies: list[float] = []
        accepted: list[int] = []
        started = time.perf_counter()
        await asyncio.gather(
            *(_client(port, key, work, latencies, accepted) for _ in range(clients))
        )
        return Load(sum(accepted), time.perf_counter() - started, np.array(latencies))

    return asyncio.run(main())


def _result_pair(
    name: str, loads: list[Load], targets: tuple[float, float], about: str
) -> list[Result]:
    rate_target, p99_target = targets
    rates = [load.events / load.wall_s for load in loads]
    lat = np.concatenate([load.latencies_ms for load in loads])
    each = ", ".join(f"{load.events:,} in {load.wall_s:.2f} s" for load in loads)
    detail = (
        f"This run, {len(loads)} round(s): events accepted {each} "
        f"({', '.join(f'{r:,.0f}' for r in rates)} events/s); over all {lat.size:,} requests "
        f"latency median {np.median(lat):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms, max "
        f"{lat.max():.1f} ms."
    )
    return [
        Result(
            f"ingest.http.{name}.events_per_s",
            float(np.median(rates)),
            "per_s",
            target=rate_target,
            about=about + " Value: events accepted over the wall time, the median round's; "
            "higher is better.",
            detail=detail,
        ),
        Result(
            f"ingest.http.{name}.p99_ms",
            float(np.percentile(lat, 99)),
            "ms",
            target=p99_target,
            about="99th percentile of the request latencies above (sent until answered), "
            "every round's requests together.",
        ),
    ]


def run(quick: bool) -> list[Result]:
    single_events = QUICK_SINGLE_EVENTS if quick else SINGLE_EVENTS
    batch_requests = QUICK_BATCH_REQUESTS if quick else BATCH_REQUESTS
    setup = (
        "`waystation demo --no-simulate` (embedded runtime, SQLite with WAL and "
        "synchronous=FULL: each "
        f"answer only after its events are durable), the sample city of {SAMPLE_STATIONS:,} "
        "stations, no simulator, in its own process on loopback; visits for random stations "
        "posted by an admin key (rate limit lifted for the run), each connection posting its "
        "next request as soon as the previous one is answered (HTTP/1.1 keep-alive)."
    )
    single: list[Load] = []
    batch: list[Load] = []
    for _ in range(QUICK_ROUNDS if quick else ROUNDS):
        with (
            tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp,
            running_server(Path(tmp) / "var") as (port, key, stations),
        ):
            post_all(port, key, bodies(stations, WARMUP_REQUESTS, 1, seed=1), SINGLE_CLIENTS)
            single.append(
                post_all(port, key, bodies(stations, single_events, 1, seed=2), SINGLE_CLIENTS)
            )
            batch.append(
                post_all(
                    port, key, bodies(stations, batch_requests, BATCH_EVENTS, seed=3), BATCH_CLIENTS
                )
            )
    rounds = f"{len(single)} round(s), each on a fresh server: "
    return _result_pair(
        "single",
        single,
        (SINGLE_EVENTS_PER_S_TARGET, SINGLE_P99_TARGET_MS),
        f"Single events over HTTP: {setup} {rounds}{SINGLE_CLIENTS} connections, one event "
        f"per request, {single_events:,} requests.",
    ) + _result_pair(
        "batch500",
        batch,
        (BATCH_EVENTS_PER_S_TARGET, BATCH_P99_TARGET_MS),
        f"Batches over HTTP: {setup} {rounds}{BATCH_CLIENTS} connections, {BATCH_EVENTS} "
        f"events per request, {batch_requests} requests.",
    )
