"""Dashboard benchmarks, in headless chromium against a real server with a city loaded:
the time to first render, and the time from an event posted to the update on screen.

Scale: `generate_sample_city(seed=7, stations=20000, area_km2=15000)` (about 200,000 demand
cells), every station but one in twenty opened first so that the map has coverage to show;
`--quick`: 2,000 stations on 1,500 km2.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.browser import VIEWPORT, chromium
from bench.results import Result
from demo.sample_city import ALL_DAY, DISTRICT_NAME, SampleCity, generate_sample_city
from schemas.auth import Role
from services.app import create_app
from services.auth import issue_key
from services.bootstrap import load_city
from services.server import Server
from services.system import EmbeddedSystem
from waystation.settings import Settings

SEED = 7
CITY_STATIONS = 20_000
CITY_AREA_KM2 = 15_000.0
QUICK_STATIONS = 2000
QUICK_AREA_KM2 = 1500.0
LEFT_SILENT_EVERY = 20  # one station in twenty never reports
POST_BATCH_EVENTS = 1000

RENDERS = 3  # page loads; the median is reported
QUICK_RENDERS = 1
UPDATES = 10  # stations closed and reopened: two timed updates each
QUICK_UPDATES = 3

FIRST_RENDER_TARGET_MS = 2000.0
LIVE_UPDATE_TARGET_MS = 1000.0
SERVER_START_TIMEOUT_S = 30.0
RENDER_TIMEOUT_MS = 120_000
UPDATE_TIMEOUT_MS = 30_000
HTTP_TIMEOUT_S = 120.0


def envelope(kind: str, station_id: str, now: datetime, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "schema_version": 1,
        "station_id": station_id,
        "occurred_at": now.isoformat(),
        "payload": payload,
    }


def check_in(station_id: str, now: datetime, status: str) -> dict[str, Any]:
    return envelope(
        "check_in", station_id, now, {"status": status, "seats_available": 5, "staffed": True}
    )


@contextmanager
def served(
    city: SampleCity, data_dir: Path, **overrides: Any
) -> Iterator[tuple[str, EmbeddedSystem]]:
    """The city served over HTTP on a free port; `overrides` change the settings."""
    settings = Settings(
        **overrides,
        data_dir=data_dir,
        simulate=False,
        demo_keys=False,
        rate_limit_per_minute=1_000_000,
        rate_limit_burst=100_000,
        request_timeout_seconds=600,
        heartbeat_interval_seconds=86_400,  # nothing goes silent while the benchmark runs
    )
    system = EmbeddedSystem(settings, simulate=False)
    load_city(system.store, city)
    system.start()
    port_probe = httpx.URL(f"http://{settings.api_host}")
    server = Server(
        create_app(system, manage_lifecycle=False),
        host=port_probe.host,
        port=0,
        log_level="warning",
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{port_probe.host}:{port}", system
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        system.stop()


def open_stations(client: httpx.Client, city: SampleCity, now: datetime) -> int:
    events = [
        check_in(s.station_id, now, "open")
        for n, s in enumerate(city.stations)
        if n % LEFT_SILENT_EVERY
    ]
    for start in range(0, len(events), POST_BATCH_EVENTS):
        answer = client.post("/v1/events", json=events[start : start + POST_BATCH_EVENTS])
        answer.raise_for_status()
    return len(events)


def log(message: str) -> None:
    print(f"  bench.dashboard: {message}", flush=True)


STAGES = (  # the page's performance marks, in order (services/static/js/dashboard.js)
    "map-requested",
    "map-received",
    "map-decoded",
    "outlines-drawn",
    "cells-drawn",
    "stations-drawn",
    "panel-filled",
    "rendered",
)


def stage_ms(page: Any) -> dict[str, float]:
    """Milliseconds each stage of the last render took, from the mark before it."""
    marks = page.evaluate(
        "names => names.map(n => performance.getEntriesByName('dashboard-' + n)[0]?.startTime)",
        list(STAGES),
    )
    return {
        name: round(marks[n] - marks[n - 1])
        for n, name in enumerate(STAGES)
        if n and marks[n] is not None and marks[n - 1] is not None
    }


def first_render_ms(page: Any, url: str, key: str, renders: int) -> list[float]:
    """Navigation start to the page's `dashboard-rendered` mark: snapshot fetched, decoded,
    projected, drawn."""
    page.goto(url)
    page.get_by_label("API 密钥").fill(key)
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector("body[data-rendered]", state="attached", timeout=RENDER_TIMEOUT_MS)
    times = []
    for _ in range(renders):
        page.reload()  # the key stays in sessionStorage: this is a cold render, signed in
        page.wait_for_selector("body[data-rendered]", state="attached", timeout=RENDER_TIMEOUT_MS)
        times.append(
            page.evaluate("performance.getEntriesByName('dashboard-rendered')[0].startTime")
        )
    return times


def live_update_ms(
    page: Any, client: httpx.Client, system: EmbeddedSystem, station_ids: list[str]
) -> list[float]:
    """Posting a check-in that closes (then reopens) a station, to the frame that shows it."""
    times = []
    for station_id in station_ids:
        for status, state in (("closed", "closed"), ("open", "available")):
            started = time.perf_counter()
            client.post(
                "/v1/events", json=check_in(station_id, system.clock.now(), status)
            ).raise_for_status()
            page.wait_for_selector(
                f"body[data-last-station='{station_id}:{state}']",
                state="attached",
                timeout=UPDATE_TIMEOUT_MS,
            )
            times.append((time.perf_counter() - started) * 1000.0)
    return times


def run(quick: bool) -> list[Result]:
    with chromium() as browser:
        return measure(quick, browser)


def measure(quick: bool, browser: Any) -> list[Result]:
    """The benchmark in an already running chromium (the browser tests share theirs)."""
    stations = QUICK_STATIONS if quick else CITY_STATIONS
    area_km2 = QUICK_AREA_KM2 if quick else CITY_AREA_KM2
    renders = QUICK_RENDERS if quick else RENDERS
    updates = QUICK_UPDATES if quick else UPDATES
    city = generate_sample_city(seed=SEED, stations=stations, area_km2=area_km2)
    with tempfile.TemporaryDirectory() as data_dir, served(city, Path(data_dir)) as (url, system):
        admin = issue_key(system.store, role=Role.admin, now=system.clock.now()).secret
        union = issue_key(
            system.store, role=Role.union, now=system.clock.now(), districts=[DISTRICT_NAME]
        ).secret
        headers = {"Authorization": f"Bearer {admin}"}
        with httpx.Client(base_url=url, headers=headers, timeout=HTTP_TIMEOUT_S) as client:
            log(f"opening {len(city.stations):,} stations")
            opened = open_stations(client, city, system.clock.now())
            system.runtime.drain(timeout=HTTP_TIMEOUT_S * 10)
            log("measuring in chromium")
            snapshot = client.get("/v1/map", headers={"Accept-Encoding": "gzip"})
            snapshot.raise_for_status()
            cells = len(snapshot.json()["cells"]["id"])
            json_mb = len(snapshot.content) / 2**20  # decoded: the JSON the page parses
            page = browser.new_page(viewport=VIEWPORT)
            renders_ms = first_render_ms(page, url, union, renders)
            stages = stage_ms(page)
            # The server runs on the wall clock: stations open at every hour, so that opening
            # hours never hold one closed whenever the benchmark runs.
            always_open = [s for s in city.stations if s.opening_hours == ALL_DAY]
            targets = [s.station_id for n, s in enumerate(always_open) if n % 97 == 1]
            updates_ms = live_update_ms(page, client, system, targets[:updates])
            page.close()
    scale = "city"
    made = (
        f"`generate_sample_city(seed={SEED}, stations={stations}, area_km2={area_km2:g})`, "
        f"{opened:,} stations opened first, loaded into a real server; headless Debian "
        f"chromium (software rendering) at {VIEWPORT['width']}x{VIEWPORT['height']}, signed in "
        "with a union key"
    )
    return [
        Result(
            f"dashboard.first_render.{scale}.ms",
            statistics.median(renders_ms),
            "ms",
            target=FIRST_RENDER_TARGET_MS,
            about=(
                "Time to first render of the dashboard: from navigation start to the page's "
                "`dashboard-rendered` performance mark (the map snapshot fetched and decoded, "
                "cells and stations projected and drawn on their canvases, the panel filled); "
                f"median of {renders} page loads. The city: {made}."
            ),
            detail=(
                f"This run: {stations:,} stations, {cells:,} cells; the snapshot is "
                f"{json_mb:.1f} MB of JSON (sent gzipped); loads took "
                + ", ".join(f"{t:.0f}" for t in renders_ms)
                + " ms; the last one by stage (ms since the mark before): "
                + ", ".join(f"{name} {ms:.0f}" for name, ms in stages.items())
                + "."
            ),
        ),
        Result(
            f"dashboard.live_update.{scale}.ms",
            statistics.median(updates_ms),
            "ms",
            target=LIVE_UPDATE_TARGET_MS,
            about=(
                "Time from posting a check-in (closing a station, then reopening it) over HTTP "
                "to the frame that shows the station in its new state on the same open page: "
                "ingest, processing, the live stream (server-sent events) and the redraw of "
                f"both canvases and the panel; median of {len(updates_ms)} updates on the city "
                "above."
            ),
            detail=(
                f"This run: min {min(updates_ms):.0f} ms, max {max(updates_ms):.0f} ms over "
                f"{len(updates_ms)} updates."
            ),
        ),
    ]
