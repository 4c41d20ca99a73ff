"""Station lifecycle benchmarks: relocating a station in the 20,000-station city (its
catchment leaves its old cells and zones and enters the new ones, access and zone judgements
follow), and workers' QR scans under many phones at once against a real server.

- `coverage.move.city.*`: the pipeline of `bench.pipeline` (every station open), then random
  stations (seeded) each moved 300 m on a random bearing, timed as `Pipeline.change` alone.
- `qr.visit.*`: a sample district served over HTTP; SCANNERS phones each open a station's
  scan page, then all post their visits at once, SCANS_PER_PHONE each; the time of each
  POST /scan/{token} as the phone sees it.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import random
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from http import HTTPStatus
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import numpy as np
from pyproj import Geod

from bench.coverage import (
    CITY_AREA_KM2,
    CITY_STATIONS,
    QUICK_CITY_AREA_KM2,
    QUICK_CITY_STATIONS,
    SEED,
)
from bench.dashboard import served
from bench.light_http import Connection
from bench.pipeline import T0, prepare
from bench.results import Result, flip_percentiles
from demo.sample_city import generate_sample_city
from schemas.lifecycle import StationAction, StationChange
from services.scan_desk import ScanDesk

MOVE_M = 300.0
MOVES = 2000
QUICK_MOVES = 200
WARMUP_MOVES = 100
MOVE_STEP = timedelta(seconds=1)
MOVE_TARGET_MS = 5.0

SCANNERS = 200
QUICK_SCANNERS = 40
SCANS_PER_PHONE = 3  # the per-phone burst: every scan is recorded, none refused
SCAN_STATIONS = 400
QUICK_SCAN_STATIONS = 100
QR_TARGET_MS = 100.0
CLIENT_TIMEOUT_S = 60.0
FORM = {"worker_kind": "courier", "services": ["health_screening"]}  # every station offers it
_GEOD = Geod(ellps="WGS84")


def move_results(quick: bool) -> list[Result]:
    stations = QUICK_CITY_STATIONS if quick else CITY_STATIONS
    area_km2 = QUICK_CITY_AREA_KM2 if quick else CITY_AREA_KM2
    city = generate_sample_city(seed=SEED, stations=stations, area_km2=area_km2)
    rng = random.Random(SEED)
    prepared = prepare(city, rng)
    pipeline = prepared.pipeline
    registry = pipeline.registry
    ids = sorted(registry)
    moves = QUICK_MOVES if quick else MOVES
    times = np.empty(moves)
    flipped = touched = 0
    now = T0
    gc.collect()
    for i in range(-WARMUP_MOVES, moves):
        now += MOVE_STEP
        station = registry[rng.choice(ids)]
        lon, lat, _ = _GEOD.fwd(station.lon, station.lat, rng.uniform(0, 360), MOVE_M)
        moved = station.model_copy(update={"lat": lat, "lon": lon})
        change = StationChange(
            change_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            station_id=station.station_id,
            version=2,
            action=StationAction.updated,
            actor="bench",
            at=now,
            old=station,
            new=moved,
        )
        started = time.perf_counter_ns()
        outcome = pipeline.change(change, now)
        elapsed = time.perf_counter_ns() - started
        if i >= 0:
            times[i] = elapsed / 1e6
            flipped += len(outcome.flipped_cells)
            touched += len(outcome.touched_cells)
    about = (
        f"Time of relocating one station by {MOVE_M:g} m (random station and bearing, seeded) "
        f"in the {stations:,}-station city (`generate_sample_city(seed={SEED}, "
        f"stations={stations}, area_km2={area_km2:g})`, every station opened): "
        "`Pipeline.change` alone, which takes the catchment out of its old cells and zones and "
        "into the new ones, works out the station's 2SFCA supply ratio again, and judges the "
        f"zones touched; {moves:,} timed moves after {WARMUP_MOVES} untimed ones."
    )
    detail = (
        f"This run: {touched / moves:.0f} cells touched and {flipped / moves:.2f} cells "
        f"flipped per move on average; mean {times.mean():.3f} ms, max {times.max():.2f} ms."
    )
    return flip_percentiles(
        "coverage.move.city", times, target=MOVE_TARGET_MS, about=about, detail=detail
    )


def scan_times(url: str, paths: list[str], scans: int) -> list[float]:
    """The phones, in a process of their own so that the server's process only serves."""
    port = urlsplit(url).port
    assert port is not None
    with multiprocessing.get_context("spawn").Pool(1) as phones:
        return list(phones.apply(_phones, (port, paths, scans)))


def _phones(port: int, paths: list[str], scans: int) -> list[float]:
    return asyncio.run(_scan_times(port, paths, scans))


async def _scan_times(port: int, paths: list[str], scans: int) -> list[float]:
    """Each phone opens its page (a cookie), then all post at once, `scans` times each."""
    times: list[float] = []
    ready = asyncio.Barrier(len(paths))
    form = urlencode(FORM, doseq=True).encode()

    async def phone(path: str) -> None:
        connection = await Connection.open(port)
        try:
            async with asyncio.timeout(CLIENT_TIMEOUT_S):
                await scan(connection, path)
        finally:
            connection.close()

    async def scan(connection: Connection, path: str) -> None:
        page = await connection.request("GET", path, {})
        if page.status != HTTPStatus.OK:
            raise RuntimeError(f"GET {path} answered {page.status}")
        cookie = (page.header("set-cookie") or "").split(";", 1)[0]
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie}
        await ready.wait()
        for _ in range(scans):
            began = time.perf_counter()
            answer = await connection.request("POST", path, headers, form)
            times.append((time.perf_counter() - began) * 1000.0)
            if answer.status != HTTPStatus.OK:
                raise RuntimeError(f"POST {path} answered {answer.status}")

    await asyncio.gather(*(phone(path) for path in paths))
    return times


def qr_results(quick: bool) -> list[Result]:
    scanners = QUICK_SCANNERS if quick else SCANNERS
    station_count = QUICK_SCAN_STATIONS if quick else SCAN_STATIONS
    city = generate_sample_city(seed=SEED, stations=station_count)
    with (
        tempfile.TemporaryDirectory(prefix="waystation-bench-qr-") as tmp,
        served(city, Path(tmp), scan_device_burst=SCANS_PER_PHONE) as (url, system),
    ):
        desk = ScanDesk(system)
        stations = [s.station_id for s in city.stations]
        paths = [f"/scan/{desk.token_for(stations[i % len(stations)])}" for i in range(scanners)]
        times = np.array(scan_times(url, paths, SCANS_PER_PHONE))
        system.runtime.drain()
        with system.store.transaction() as tx:
            recorded = tx.events.count(status=None)
    about = (
        f"Time of one worker's QR check-in as the phone sees it (POST /scan/{{token}}: token "
        "check, rate limits, ingest into the durable archive, the thank-you page with the "
        f"station's visits today) while {scanners} phones post at once, {SCANS_PER_PHONE} "
        f"scans each, spread over {station_count} stations of the sample district; the phones "
        "(one keep-alive connection each, on a light HTTP client over asyncio streams, not "
        "httpx, so that they take less of the machine's CPU) run in a process of their own "
        "on the same machine."
    )
    detail = (
        f"This run: {len(times)} scans, {recorded} events archived; median "
        f"{statistics.median(times):.1f} ms, max {times.max():.0f} ms."
    )
    return [
        Result(
            "qr.visit.p99_ms",
            float(np.percentile(times, 99)),
            "ms",
            target=QR_TARGET_MS,
            about=about,
            detail=detail,
        ),
        Result(
            "qr.visit.median_ms",
            float(np.median(times)),
            "ms",
            about="Median of the scans above.",
        ),
    ]


def run(quick: bool) -> list[Result]:
    return move_results(quick) + qr_results(quick)
