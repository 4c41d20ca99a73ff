"""District unions' reports: the monthly service report over one month of a district's
visits (1,000,000 archived events on PostGIS, read from the daily rollups and the month's
workers per subdistrict, kept as the events arrived), and a 30-day coverage history query.

- `stats.monthly_report.district.ms`: one month of visits (`EVENTS`, spread over the sample
  city's 2,000 stations and 30 days, workers from a pool, kinds and services at random) are
  archived in PostGIS and rolled up by the same follower the API runs; after ANALYZE (what
  autovacuum does after such a load) the report (per subdistrict and the total, as HTML) is
  built `REPORT_RUNS` times: the median.
- `history.query.30d.ms`: 30 days of a district's history with its 40 subdistricts
  (5-minute points for the last 48 h, hourly before) in SQLite; the 30-day query of the
  district, median of `HISTORY_RUNS`.

`--quick`: 20,000 events and the same history.
"""

from __future__ import annotations

import hashlib
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from bench.results import Result
from demo.sample_city import DISTRICT_NAME, SampleCity, generate_sample_city
from schemas.events import Service, WorkerKind
from schemas.history import HistoryPoint, HistoryRange
from schemas.stations import StationState
from schemas.visit_stats import StatsArea, StatsPeriod
from services.history import history
from services.monthly_report import ReportLanguage, report_html
from services.visit_stats import VisitRollupFollower, visit_stats
from store.repositories import ArchivedEvent
from store.unit_of_work import Store
from tools.postgis_cluster import Cluster
from waystation.settings import Settings

SEED = 5
EVENTS = 1_000_000
QUICK_EVENTS = 20_000
EVENT_BATCH = 5_000
WORKER_POOL = 70_000  # the reference cases' "70,000 workers served"
MONTH_START = datetime(2026, 10, 31, 16, tzinfo=UTC)  # 2026-11-01 00:00 in Beijing
MONTH = "2026-11"
DAYS = 30
REPORT_RUNS = 7
HISTORY_RUNS = 21
HISTORY_FINE_HOURS = 48
MONTHLY_TARGET_MS = 1000.0
HISTORY_TARGET_MS = 200.0
SERVICES = [s.value for s in Service] + ["drinking_water", "phone_charging", "ebike_charging"]


def visits(city: SampleCity, total: int) -> Iterator[list[ArchivedEvent]]:
    rng = random.Random(SEED)
    ids = [s.station_id for s in city.stations]
    kinds = [k.value for k in WorkerKind]
    made = 0
    while made < total:
        batch = []
        for _ in range(min(EVENT_BATCH, total - made)):
            at = MONTH_START + timedelta(seconds=rng.randrange(DAYS * 86_400))
            event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            worker = hashlib.sha256(str(rng.randrange(WORKER_POOL)).encode()).hexdigest()
            payload = {
                "dwell_minutes": None,
                "party_size": 1,
                "services_used": rng.sample(SERVICES, rng.randint(0, 2)),
                "source": "qr_scan",
                "worker_kind": rng.choice(kinds),
                "worker_ref": f"h1:{worker}",
            }
            station_id = ids[rng.randrange(len(ids))]
            body = json.dumps(
                {
                    "event_id": event_id,
                    "occurred_at": at.isoformat(),
                    "payload": payload,
                    "schema_version": 1,
                    "station_id": station_id,
                    "type": "visit",
                },
                separators=(",", ":"),
            )
            batch.append(
                ArchivedEvent(
                    seq=None,
                    event_id=event_id,
                    type="visit",
                    station_id=station_id,
                    occurred_at=at,
                    received_at=at,
                    body=body,
                    content_hash=hashlib.sha256(body.encode()).hexdigest(),
                    status="applied",
                )
            )
        made += len(batch)
        yield batch


def median_ms(work: object, runs: int) -> tuple[float, object]:
    times, found = [], None
    for _ in range(runs):
        started = time.perf_counter()
        found = work()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), found


def monthly_report(url: str, city: SampleCity, events: int) -> dict[str, float]:
    store = Store.open(url)
    try:
        with store.transaction() as tx:
            tx.stations.upsert_many(city.stations)
        follower = VisitRollupFollower(store, Settings())
        rollup_s = 0.0
        for batch in visits(city, events):
            with store.transaction() as tx:
                tx.events.append(batch)
            started = time.perf_counter()
            follower.catch_up()  # as the events arrive
            rollup_s += time.perf_counter() - started

        with store.engine.begin() as connection:
            # What autovacuum does within a minute of such a load; without statistics the
            # planner takes the fresh rollups for empty and loops over every station.
            connection.execute(text("ANALYZE"))

        def report() -> object:
            numbers = visit_stats(
                store,
                DISTRICT_NAME,
                f"{MONTH}-01",
                f"{MONTH}-31",
                StatsPeriod.month,
                StatsArea.subdistrict,
            )
            report_html(numbers, MONTH, ReportLanguage.zh)
            return numbers

        ms, numbers = median_ms(report, REPORT_RUNS)
        assert numbers.total.visits == events, numbers.total  # type: ignore[attr-defined]
        return {
            "ms": ms,
            "rollup_per_s": events / rollup_s,
            "distinct": float(numbers.total.distinct_workers),  # type: ignore[attr-defined]
        }
    finally:
        store.close()


def history_query(city: SampleCity) -> float:
    settings = Settings()
    now = MONTH_START + timedelta(days=DAYS)
    areas = ["", *(b.name for b in city.subdistricts)]
    fine_from = now - timedelta(hours=HISTORY_FINE_HOURS)
    rng = random.Random(SEED)

    def point(at: datetime) -> HistoryPoint:
        return HistoryPoint(
            at=at,
            coverage_pct=rng.uniform(60, 95),
            demand_workers=1000.0,
            uncovered_demand_workers=rng.uniform(50, 400),
            stations_by_state={s: float(rng.randrange(50)) for s in StationState},
            open_alerts=float(rng.randrange(20)),
        )

    with tempfile.TemporaryDirectory(prefix="waystation-bench-") as scratch:
        store = Store.open(f"sqlite:///{Path(scratch) / 'history.db'}")
        try:
            hourly = [now - timedelta(days=DAYS) + timedelta(hours=h) for h in range(DAYS * 24)]
            fine = [fine_from + timedelta(minutes=5 * m) for m in range(HISTORY_FINE_HOURS * 12)]
            with store.transaction() as tx:
                tx.history.record(
                    3600,
                    [(DISTRICT_NAME, a, point(t)) for a in areas for t in hourly if t < fine_from],
                )
                tx.history.record(300, [(DISTRICT_NAME, a, point(t)) for a in areas for t in fine])
            ms, found = median_ms(
                lambda: history(store, settings, DISTRICT_NAME, None, HistoryRange.month, now),
                HISTORY_RUNS,
            )
            assert len(found.points) >= DAYS * 24 - 1, len(found.points)  # type: ignore[attr-defined]
            return ms
        finally:
            store.close()


def run(quick: bool) -> list[Result]:
    city = generate_sample_city(seed=SEED)
    events = QUICK_EVENTS if quick else EVENTS
    with Cluster("bench-quick" if quick else "bench", durable=True) as cluster:
        found = monthly_report(cluster.create_database("unions"), city, events)
    history_ms = history_query(city)
    return [
        Result(
            name="stats.monthly_report.district.ms",
            value=found["ms"],
            unit="ms",
            target=MONTHLY_TARGET_MS,
            about="The monthly service report of a district (per subdistrict and total, HTML) "
            "from the daily rollups (distinct workers from the month's workers), over "
            f"{events:,} archived visits in PostGIS; median of "
            f"{REPORT_RUNS}",
            detail=f"rollups kept at {found['rollup_per_s']:,.0f} events/s as they arrived; "
            f"{found['distinct']:,.0f} distinct workers",
        ),
        Result(
            name="history.query.30d.ms",
            value=history_ms,
            unit="ms",
            target=HISTORY_TARGET_MS,
            about="30 days of a district's coverage history (hourly points; 5-minute points "
            f"for the last {HISTORY_FINE_HOURS} h, folded on the fly), SQLite; median of "
            f"{HISTORY_RUNS}",
        ),
    ]
