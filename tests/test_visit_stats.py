"""Service statistics against a brute-force count over the archived events: visits, workers
served, distinct workers (by hashed worker_ref), worker kinds and services used, per day and
month and per station, subdistrict and district; the monthly report's totals equal the
API's; the rollups never count a visit twice."""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from demo.sample_city import DISTRICT_NAME, generate_sample_city
from schemas.events import Service, WorkerKind
from services import visit_stats
from services.bootstrap import load_city
from services.system import EmbeddedSystem
from streams.clock import ManualClock
from tests.conftest import T0, LiveServer, serve, settings_for
from tests.served_city import envelope

STATIONS = 60
VISITS = 400
WORKERS = 90  # fewer than visits: workers come back
HOURS = 60  # spans three local days and, from T0, no month end
SMALL_PAGE = 37  # pages of the archive, to cross page boundaries
SEED = 11


@pytest.fixture
def city(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[LiveServer, Any]]:
    monkeypatch.setattr(visit_stats, "PAGE_EVENTS", SMALL_PAGE)
    clock = ManualClock(T0 + timedelta(hours=HOURS + 1))
    sample = generate_sample_city(seed=7, stations=STATIONS, subdistricts=4)
    system = EmbeddedSystem(settings_for(tmp_path), clock=clock, autotick=False, simulate=False)
    load_city(system.store, sample)
    system.start()
    try:
        with serve(system) as live:
            yield live, sample
    finally:
        system.stop()


def random_visits(sample: Any) -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    services = [s.value for s in Service] + ["drinking_water", "phone_charging"]
    events = []
    for _ in range(VISITS):
        payload: dict[str, Any] = {
            "worker_kind": rng.choice(list(WorkerKind)).value,
            "party_size": rng.choice([1, 1, 1, 2, 3]),
            "services_used": rng.sample(services, rng.randint(0, 2)),
            "source": "qr_scan",
        }
        if rng.random() < 0.8:
            payload["worker_ref"] = f"worker-{rng.randrange(WORKERS)}"
        at = T0 + timedelta(minutes=rng.randrange(HOURS * 60))
        station = rng.choice(sample.stations).station_id
        events.append(envelope("visit", station, at, payload))
    return events


def brute_force(live: LiveServer, sample: Any, month: bool) -> dict[tuple[str, str], dict]:
    """Per (period, subdistrict), straight from every archived visit."""
    zone = ZoneInfo(live.system.settings.timezone)
    sub_of = {s.station_id: s.subdistrict or "" for s in sample.stations}
    with live.system.store.transaction() as tx:
        archived = tx.events.after(0, 10**6)
    found: dict[tuple[str, str], dict] = defaultdict(
        lambda: {
            "visits": 0,
            "people": 0,
            "workers": set(),
            "kinds": Counter(),
            "services": Counter(),
        }
    )
    for item in archived:
        if item.type != "visit":
            continue
        payload = json.loads(item.body)["payload"]
        day = item.occurred_at.astimezone(zone).date().isoformat()
        entry = found[(day[:7] if month else day, sub_of[item.station_id])]
        entry["visits"] += 1
        entry["people"] += payload["party_size"]
        entry["kinds"][payload["worker_kind"]] += 1
        entry["services"].update(payload["services_used"])
        if payload.get("worker_ref"):
            entry["workers"].add(payload["worker_ref"])
    return found


def as_api(entry: dict) -> dict[str, Any]:
    return {
        "visits": entry["visits"],
        "people": entry["people"],
        "distinct_workers": len(entry["workers"]),
        "by_worker_kind": dict(sorted(entry["kinds"].items())),
        "services_used": dict(sorted(entry["services"].items())),
    }


def shown(row: dict[str, Any]) -> dict[str, Any]:
    return {
        k: row[k]
        for k in ("visits", "people", "distinct_workers", "by_worker_kind", "services_used")
    }


def test_statistics_equal_a_brute_force_count_of_the_archive(city: tuple[LiveServer, Any]) -> None:
    live, sample = city
    events = random_visits(sample)
    for start in range(0, len(events), 100):
        assert live.client.post("/v1/events", json=events[start : start + 100]).status_code == 200
    live.system.runtime.drain()
    live.system.visit_rollups.catch_up()
    live.system.visit_rollups.catch_up()  # again: nothing is counted twice

    span = {"start": "2026-01-01", "end": "2026-12-31"}
    by_day = live.client.get("/v1/stats", params=span | {"district": DISTRICT_NAME}).json()
    expected = brute_force(live, sample, month=False)
    assert {(r["period"], r["area"]): shown(r) for r in by_day["rows"]} == {
        key: as_api(entry) for key, entry in expected.items()
    }
    assert len({r["period"] for r in by_day["rows"]}) >= 3  # several local days

    by_month = live.client.get(
        "/v1/stats", params=span | {"district": DISTRICT_NAME, "period": "month"}
    ).json()
    expected_month = brute_force(live, sample, month=True)
    assert {(r["period"], r["area"]): shown(r) for r in by_month["rows"]} == {
        key: as_api(entry) for key, entry in expected_month.items()
    }
    everything: dict = {
        "visits": 0,
        "people": 0,
        "workers": set(),
        "kinds": Counter(),
        "services": Counter(),
    }
    for entry in expected.values():
        everything["visits"] += entry["visits"]
        everything["people"] += entry["people"]
        everything["workers"] |= entry["workers"]
        everything["kinds"] += entry["kinds"]
        everything["services"] += entry["services"]
    assert shown(by_day["total"]) == as_api(everything)
    assert by_day["total"]["visits"] == VISITS
    # A worker seen in two subdistricts is one worker in the total.
    assert by_day["total"]["distinct_workers"] < sum(r["distinct_workers"] for r in by_day["rows"])
    assert "worker-" not in json.dumps(by_day)  # the reference never comes back

    by_station = live.client.get(
        "/v1/stats", params=span | {"district": DISTRICT_NAME, "by": "station", "period": "month"}
    ).json()
    assert sum(r["visits"] for r in by_station["rows"]) == VISITS

    # The monthly report: its totals are the API's.
    month = T0.astimezone(ZoneInfo(live.system.settings.timezone)).strftime("%Y-%m")
    api_month = live.client.get(
        "/v1/stats",
        params={
            "district": DISTRICT_NAME,
            "start": f"{month}-01",
            "end": f"{month}-31",
            "period": "month",
        },
    ).json()
    report = live.client.get(
        "/v1/stats/monthly-report",
        params={"district": DISTRICT_NAME, "month": month, "format": "csv"},
    )
    assert report.status_code == 200
    rows = list(csv.reader(io.StringIO(report.text.lstrip("\ufeff"))))
    header, total = rows[0], rows[-1]
    assert header[:4] == ["街道", "到访次数", "服务人次", "服务人数（去重）"]
    assert total[0] == "合计"
    t = api_month["total"]
    assert [int(v) for v in total[1:4]] == [t["visits"], t["people"], t["distinct_workers"]]
    assert len(rows) == 2 + len(api_month["rows"])
    page = live.client.get(
        "/v1/stats/monthly-report", params={"district": DISTRICT_NAME, "month": month}
    )
    assert page.headers["content-type"].startswith("text/html")
    assert f"<td>{t['visits']:,}</td>" in page.text
    assert "驿站服务月报" in page.text
    english = live.client.get(
        "/v1/stats/monthly-report",
        params={"district": DISTRICT_NAME, "month": month, "format": "csv", "lang": "en"},
    )
    assert english.text.lstrip("\ufeff").startswith("Subdistrict,Visits")


def test_statistics_refuse_bad_ranges_and_unknown_districts(city: tuple[LiveServer, Any]) -> None:
    live, _ = city
    bad = live.client.get(
        "/v1/stats", params={"district": DISTRICT_NAME, "start": "2026-1-1", "end": "2026-01-31"}
    )
    assert bad.status_code == 422
    assert any(e["field"].endswith("start") for e in bad.json()["errors"])
    reversed_range = live.client.get(
        "/v1/stats", params={"district": DISTRICT_NAME, "start": "2026-02-01", "end": "2026-01-01"}
    )
    assert reversed_range.status_code == 422
    unknown = live.client.get(
        "/v1/stats", params={"district": "Nowhere", "start": "2026-01-01", "end": "2026-01-02"}
    )
    assert unknown.status_code == 404
    assert DISTRICT_NAME in unknown.json()["detail"]
