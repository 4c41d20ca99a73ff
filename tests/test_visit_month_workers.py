"""The month's workers on both backends: distinct workers of whole months per subdistrict or
district read from them give the numbers of a brute-force count on the stations' current
areas, the same as the daily rollups give; a station that moves is counted in its new area at
once (the month is read from the daily rollups until it is recounted, which the follower does
at most once a minute); migration 0009 fills them from the daily rollups of an existing
database."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Any

import sqlalchemy as sa

from schemas.visit_stats import StatsArea, StatsPeriod, VisitStats
from services.visit_stats import VisitRollupFollower
from store.admin import upgrade_database
from store.database import make_engine
from store.unit_of_work import Store
from tests.conftest import DISTRICT, make_station
from waystation.settings import Settings

OTHER_DISTRICT = "Other District"
STATIONS = {  # station -> (district, subdistrict)
    "N-1": (DISTRICT, "North"),
    "N-2": (DISTRICT, "North"),
    "S-1": (DISTRICT, "South"),
    "X-1": (DISTRICT, None),
    "O-1": (OTHER_DISTRICT, "East"),
}
DAYS = [f"2026-11-{d:02d}" for d in (1, 2, 15, 30)] + ["2026-12-01"]
KINDS = ["courier", "food_delivery"]
SERVICES = ["health_screening", "drinking_water"]
VISITS = 300
WORKERS = 25  # fewer than visits: workers come back, to other subdistricts too
SEED = 3
NOVEMBER = ("2026-11-01", "2026-11-30")
MONTHS = ["2026-11", "2026-12"]

Visit = tuple[str, str, str, int, list[str], int | None]  # day, station, kind, people, ...


def random_visits() -> list[Visit]:
    rng = random.Random(SEED)
    return [
        (
            rng.choice(DAYS),
            rng.choice(sorted(STATIONS)),
            rng.choice(KINDS),
            rng.choice([1, 1, 2]),
            rng.sample(SERVICES, rng.randint(0, 2)),
            rng.randrange(WORKERS) if rng.random() < 0.8 else None,
        )
        for _ in range(VISITS)
    ]


DailyRows = tuple[
    dict[tuple[str, str, str], tuple[int, int]],
    Counter[tuple[str, str, str]],
    set[tuple[str, str, int]],
]


def daily_rows(visits: list[Visit]) -> DailyRows:
    """The visits as the daily rollups hold them: (day, station, kind) -> (visits, people),
    (day, station, service) -> uses, and (day, station, worker) presences."""
    counted: Counter[tuple[str, str, str]] = Counter()
    people: Counter[tuple[str, str, str]] = Counter()
    used: Counter[tuple[str, str, str]] = Counter()
    workers: set[tuple[str, str, int]] = set()
    for day, station, kind, party, services, worker in visits:
        counted[(day, station, kind)] += 1
        people[(day, station, kind)] += party
        used.update((day, station, s) for s in services)
        if worker is not None:
            workers.add((day, station, worker))
    return {k: (counted[k], people[k]) for k in counted}, used, workers


def add(store: Store, visits: list[Visit]) -> None:
    """As the follower adds a page of visits."""
    with store.transaction() as tx:
        tx.visit_rollups.add(*daily_rows(visits))


def register(store: Store, areas: dict[str, tuple[str, str | None]]) -> None:
    with store.transaction() as tx:
        tx.stations.upsert_many(
            make_station(s, 39.9, 116.4, district=d, subdistrict=sub)
            for s, (d, sub) in areas.items()
        )


def brute_force(
    visits: list[Visit],
    areas: dict[str, tuple[str, str | None]],
    start: str,
    end: str,
    by: StatsArea,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (month, area) of DISTRICT, straight from the visits and the areas of now."""
    found: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {
            "visits": 0,
            "people": 0,
            "workers": set(),
            "kinds": Counter(),
            "services": Counter(),
        }
    )
    for day, station, kind, party, services, worker in visits:
        district, sub = areas[station]
        if district != DISTRICT or not start <= day <= end:
            continue
        area = district if by is StatsArea.district else sub or ""
        entry = found[(day[:7], area)]
        entry["visits"] += 1
        entry["people"] += party
        entry["kinds"][kind] += 1
        entry["services"].update(services)
        if worker is not None:
            entry["workers"].add(worker)
    return {
        key: {
            "visits": e["visits"],
            "people": e["people"],
            "distinct_workers": len(e["workers"]),
            "by_worker_kind": dict(sorted(e["kinds"].items())),
            "services_used": dict(sorted(e["services"].items())),
        }
        for key, e in found.items()
    }


def workers_in(
    visits: list[Visit], areas: dict[str, tuple[str, str | None]], start: str, end: str
) -> set[int]:
    """The distinct workers of DISTRICT within [start, end], on the areas of now."""
    return {
        w
        for d, s, *_, w in visits
        if w is not None and s in areas and areas[s][0] == DISTRICT and start <= d <= end
    }


def as_found(rows: list[VisitStats]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r.period, r.area): r.model_dump(exclude={"period", "area"}) for r in rows}


def month_stats(store: Store, start: str, end: str, by: StatsArea) -> list[VisitStats]:
    with store.transaction(readonly=True) as tx:
        return tx.visit_rollups.stats(DISTRICT, start, end, StatsPeriod.month, by)


def total_workers(store: Store, start: str, end: str) -> int:
    with store.transaction(readonly=True) as tx:
        return tx.visit_rollups.distinct_workers(DISTRICT, start, end)


def month_rows(store: Store, table: str) -> int:
    with store.transaction(readonly=True) as tx:
        return int(tx.session.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)


def test_whole_months_equal_a_brute_force_count_and_the_daily_rollups(store: Store) -> None:
    register(store, STATIONS)
    visits = random_visits()
    add(store, visits[: VISITS // 2])
    add(store, visits[VISITS // 2 :])
    assert month_rows(store, "visit_month_workers") > 0  # the whole months are read from here

    for by in (StatsArea.subdistrict, StatsArea.district):
        whole = as_found(month_stats(store, *NOVEMBER, by))
        assert whole == brute_force(visits, STATIONS, *NOVEMBER, by)
        # From 31 October: not whole months, so the daily rollups; the same numbers.
        assert as_found(month_stats(store, "2026-10-31", NOVEMBER[1], by)) == whole
        two = as_found(month_stats(store, "2026-11-01", "2026-12-31", by))
        assert two == brute_force(visits, STATIONS, "2026-11-01", "2026-12-31", by)
        assert {period for period, _ in two} == {"2026-11", "2026-12"}
    assert ("2026-11", "") in as_found(month_stats(store, *NOVEMBER, StatsArea.subdistrict))

    for start, end in (NOVEMBER, ("2026-11-02", NOVEMBER[1]), ("2026-11-01", "2026-12-31")):
        assert total_workers(store, start, end) == len(workers_in(visits, STATIONS, start, end))
    assert total_workers(store, "2026-11-01", "2026-12-31") > total_workers(
        store, "2026-12-01", "2026-12-31"
    )

    # Whole months are read from the month's workers: without the daily presences they
    # still give every count, where a range of days finds none.
    with store.transaction() as tx:
        tx.session.execute(sa.text("DELETE FROM visit_day_workers"))
    whole = as_found(month_stats(store, *NOVEMBER, StatsArea.subdistrict))
    assert whole == brute_force(visits, STATIONS, *NOVEMBER, StatsArea.subdistrict)
    assert total_workers(store, *NOVEMBER) == len(workers_in(visits, STATIONS, *NOVEMBER))
    days = month_stats(store, "2026-11-02", NOVEMBER[1], StatsArea.subdistrict)
    assert {r.distinct_workers for r in days} == {0}


def test_a_station_that_moves_is_counted_in_its_new_area_at_once(store: Store) -> None:
    register(store, STATIONS)
    visits = random_visits()
    add(store, visits)
    moved = STATIONS | {"N-2": (DISTRICT, "South"), "O-1": (DISTRICT, "North")}
    register(store, moved)
    with store.transaction() as tx:
        tx.stations.remove("X-1")  # retired: counted nowhere, as the daily rollups count it
    now = {s: a for s, a in moved.items() if s != "X-1"}
    expected = brute_force(
        [v for v in visits if v[1] != "X-1"], now, *NOVEMBER, StatsArea.subdistrict
    )
    assert expected != brute_force(visits, STATIONS, *NOVEMBER, StatsArea.subdistrict)

    # The month's workers still hold the old areas, and are not read, before a write and
    # after one (which counts on the new areas but recounts nothing).
    assert as_found(month_stats(store, *NOVEMBER, StatsArea.subdistrict)) == expected
    assert total_workers(store, *NOVEMBER) == len(workers_in(visits, now, *NOVEMBER))
    late: list[Visit] = [("2026-11-30", "S-1", "courier", 1, [], 0)]
    add(store, late)
    every = [v for v in visits + late if v[1] != "X-1"]
    for by in (StatsArea.subdistrict, StatsArea.district):
        assert as_found(month_stats(store, *NOVEMBER, by)) == brute_force(every, now, *NOVEMBER, by)
    # Recounted, they are read again (the daily presences gone: only they can answer).
    with store.transaction() as tx:
        assert tx.visit_rollups.moved_months() == MONTHS
        for month in MONTHS:
            tx.visit_rollups.recount(month)
        assert tx.visit_rollups.moved_months() == []
        tx.session.execute(sa.text("DELETE FROM visit_day_workers"))
    for by in (StatsArea.subdistrict, StatsArea.district):
        assert as_found(month_stats(store, *NOVEMBER, by)) == brute_force(every, now, *NOVEMBER, by)
    assert total_workers(store, *NOVEMBER) == len(workers_in(every, now, *NOVEMBER))


def test_the_follower_recounts_moved_months_at_most_once_a_minute(store: Store) -> None:
    register(store, STATIONS)
    add(store, random_visits())
    follower = VisitRollupFollower(store, Settings.model_construct())
    register(store, STATIONS | {"S-1": (DISTRICT, "North")})
    assert follower.catch_up() == 0  # nothing new to add; the first look is due at once
    with store.transaction(readonly=True) as tx:
        assert tx.visit_rollups.moved_months() == []
    register(store, STATIONS)  # back again: not looked for within the minute
    assert follower.catch_up() == 0
    with store.transaction(readonly=True) as tx:
        assert tx.visit_rollups.moved_months() == MONTHS


def test_moved_months_are_those_of_a_moved_joined_or_retired_station(store: Store) -> None:
    register(store, {s: a for s, a in STATIONS.items() if s != "N-1"})  # N-1 unknown
    visits = random_visits()
    add(store, visits)
    with store.transaction() as tx:
        assert tx.visit_rollups.moved_months() == []
    register(store, {"N-1": STATIONS["N-1"]})  # joins the registry: its workers count now
    with store.transaction() as tx:
        assert tx.visit_rollups.moved_months() == MONTHS
        for month in MONTHS:
            tx.visit_rollups.recount(month)
        assert tx.visit_rollups.moved_months() == []
    for by in (StatsArea.subdistrict, StatsArea.district):
        assert as_found(month_stats(store, *NOVEMBER, by)) == brute_force(
            visits, STATIONS, *NOVEMBER, by
        )
    with store.transaction() as tx:
        tx.stations.remove("O-1")
        assert tx.visit_rollups.moved_months() == MONTHS


def test_migration_fills_the_monthly_rollups_from_the_daily_ones(database_url: str) -> None:
    upgrade_database(database_url, "0008")
    visits = random_visits()
    days, used, workers = daily_rows(visits)
    engine = make_engine(database_url)
    try:
        meta = sa.MetaData()
        names = ("stations", "visit_days", "visit_day_services", "visit_day_workers")
        tables = {name: sa.Table(name, meta, autoload_with=engine) for name in names}
        with engine.begin() as conn:
            conn.execute(
                tables["stations"].insert(),
                [
                    {"station_id": s, "name": s, "kind": "warm_station", "district": d,
                     "subdistrict": sub, "lon": 116.4, "lat": 39.9, "capacity": 8,
                     "amenities": []}
                    for s, (d, sub) in STATIONS.items()
                ],
            )  # fmt: skip
            conn.execute(
                tables["visit_days"].insert(),
                [
                    {"day": d, "station_id": s, "worker_kind": k, "visits": n,
                     "people": people}
                    for (d, s, k), (n, people) in days.items()
                ],
            )  # fmt: skip
            conn.execute(
                tables["visit_day_services"].insert(),
                [
                    {"day": d, "station_id": s, "service": k, "uses": n}
                    for (d, s, k), n in used.items()
                ],
            )
            conn.execute(
                tables["visit_day_workers"].insert(),
                [{"day": d, "station_id": s, "worker": w} for d, s, w in workers],
            )
    finally:
        engine.dispose()
    assert upgrade_database(database_url) == "0009"
    store = Store.open(database_url)
    try:
        with store.transaction() as tx:  # the month's workers alone must answer
            tx.session.execute(sa.text("DELETE FROM visit_day_workers"))
        for by in (StatsArea.subdistrict, StatsArea.district):
            assert as_found(month_stats(store, *NOVEMBER, by)) == brute_force(
                visits, STATIONS, *NOVEMBER, by
            )
        assert total_workers(store, *NOVEMBER) == len(workers_in(visits, STATIONS, *NOVEMBER))
        with store.transaction() as tx:
            assert tx.visit_rollups.moved_months() == []
    finally:
        store.close()
