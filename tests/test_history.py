"""Coverage history: each point is what every other view said at that moment (the tally and
`/v1/coverage`), per district and subdistrict; 5-minute points fold into hourly averages
(checked against a brute-force average); the API serves 24 h as recorded and longer spans
hourly; the dashboard draws its trend charts from those points (chromium)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.browser import VIEWPORT
from demo.sample_city import DISTRICT_NAME
from schemas.history import HistoryPoint
from schemas.stations import StationState
from services.history import bucket
from store.history import average
from store.unit_of_work import Store
from streams.clock import ManualClock
from tests.conftest import T0, LiveServer
from tests.served_city import (
    alerting_settings,
    envelope,
    opened,
    opened_sample_city,
    settle,
)
from tests.test_dashboard_browser import sign_in

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
FIVE_MIN = timedelta(minutes=5)
CLOSURES = 12


@pytest.fixture
def city(tmp_path: Path) -> Iterator[tuple[LiveServer, ManualClock, list[str]]]:
    config = alerting_settings(tmp_path, zone_uncovered_demand_workers=10.0)
    with opened_sample_city(config, T0) as served:
        yield served.live, served.clock, opened(served.city)


def record_next(live: LiveServer, clock: ManualClock) -> None:
    """Moves to the next interval and records its point (the recorder's thread may have)."""
    clock.advance(FIVE_MIN)
    live.system.history.record_due()


def what_views_say(live: LiveServer) -> dict[str, Any]:
    summary = live.client.get("/v1/coverage").json()["summary"]
    alerts = live.client.get("/v1/alerts", params={"status": "open", "limit": 1000}).json()
    return {
        "coverage_pct": summary["demand_covered_pct"],
        "stations_by_state": {k: float(v) for k, v in summary["stations_by_state"].items()},
        "open_alerts": float(alerts["total"]),
    }


def as_shown(point: dict[str, Any]) -> dict[str, Any]:
    return {k: point[k] for k in ("coverage_pct", "stations_by_state", "open_alerts")}


def test_points_record_what_every_view_says_per_district_and_subdistrict(
    city: tuple[LiveServer, ManualClock, list[str]],
) -> None:
    live, clock, opened = city
    record_next(live, clock)
    first = what_views_say(live)
    for station in opened[:CLOSURES]:
        live.client.post(
            "/v1/events", json=envelope("check_in", station, clock.now(), {"status": "closed"})
        )
    settle(live)
    record_next(live, clock)
    second = what_views_say(live)
    assert second != first

    found = live.client.get("/v1/history", params={"district": DISTRICT_NAME}).json()
    assert found["interval_seconds"] == FIVE_MIN.total_seconds()
    points = found["points"]
    assert [as_shown(p) for p in points[-2:]] == [first, second]
    summary = live.client.get("/v1/coverage").json()["summary"]
    assert points[-1]["demand_workers"] == summary["demand_workers"]
    assert points[-1]["uncovered_demand_workers"] == pytest.approx(
        summary["demand_workers"] - summary["demand_covered_workers"], abs=0.1
    )

    # Each subdistrict's stations by state, as /v1/stations counts them.
    stations = live.client.get("/v1/stations", params={"limit": 1000}).json()["stations"]
    by_sub: dict[str, Counter[str]] = {}
    for view in stations:
        by_sub.setdefault(view["station"]["subdistrict"], Counter())[view["state"]] += 1
    for sub, counts in by_sub.items():
        got = live.client.get(
            "/v1/history", params={"district": DISTRICT_NAME, "subdistrict": sub}
        ).json()["points"][-1]
        assert got["stations_by_state"] == {s.value: float(counts[s.value]) for s in StationState}
    with live.system.store.transaction() as tx:
        subdistricts = {b.name for b in tx.boundaries.list() if b.level.value == "subdistrict"}
    assert set(by_sub) <= subdistricts
    sub_alerts = sum(
        live.client.get(
            "/v1/history", params={"district": DISTRICT_NAME, "subdistrict": sub}
        ).json()["points"][-1]["open_alerts"]
        for sub in subdistricts
    )
    assert sub_alerts == second["open_alerts"]  # each alert belongs to one subdistrict


def test_history_needs_a_known_district_in_scope(
    city: tuple[LiveServer, ManualClock, list[str]],
) -> None:
    live, _, _ = city
    assert live.client.get("/v1/history").status_code == 422
    assert live.client.get("/v1/history", params={"district": "Nowhere"}).status_code == 404
    bad = live.client.get("/v1/history", params={"district": DISTRICT_NAME, "range": "1y"})
    assert bad.status_code == 422


def point(at_minutes: int, pct: float, alerts: float) -> HistoryPoint:
    return HistoryPoint(
        at=T0 + timedelta(minutes=at_minutes),
        coverage_pct=pct,
        demand_workers=100.0,
        uncovered_demand_workers=100.0 - pct,
        stations_by_state={s: float(at_minutes % 7) for s in StationState},
        open_alerts=alerts,
    )


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 100, allow_nan=False), st.integers(0, 30)),
        min_size=1,
        max_size=36,
    )
)
def test_folding_averages_each_hour(values: list[tuple[float, int]]) -> None:
    store = Store.open("sqlite://")
    try:
        points = [point(5 * i, pct, float(n)) for i, (pct, n) in enumerate(values)]
        with store.transaction() as tx:
            tx.history.record(300, [(DISTRICT_NAME, "", p) for p in points])
        cutoff = T0 + timedelta(hours=2)
        with store.transaction() as tx:
            tx.history.fold(300, 3600, cutoff)
        with store.transaction() as tx:
            kept = tx.history.points(DISTRICT_NAME, "", T0 - timedelta(days=1))
        hours: dict[Any, list[HistoryPoint]] = {}
        for p in points:
            if p.at < cutoff:
                hours.setdefault(bucket(p.at, 3600), []).append(p)
        expected = [(3600, average(at, ps)) for at, ps in sorted(hours.items())]
        expected += [(300, p) for p in points if p.at >= cutoff]
        assert [i for i, _ in kept] == [i for i, _ in expected]
        for (_, got), (_, want) in zip(kept, expected, strict=True):
            assert got.at == want.at
            assert got.coverage_pct == pytest.approx(want.coverage_pct)
            assert got.open_alerts == pytest.approx(want.open_alerts)
    finally:
        store.engine.dispose()


def test_trend_charts_are_drawn_from_the_recorded_history(
    browser: Any, city: tuple[LiveServer, ManualClock, list[str]]
) -> None:
    live, clock, opened = city
    for station in opened[:4]:
        record_next(live, clock)
        live.client.post(
            "/v1/events", json=envelope("check_in", station, clock.now(), {"status": "closed"})
        )
        settle(live)
    record_next(live, clock)
    points = live.client.get("/v1/history", params={"district": DISTRICT_NAME}).json()["points"]
    assert len(points) >= 5
    page = browser.new_page(viewport=VIEWPORT)
    sign_in(page, live)
    charts = page.locator("#trend-charts")
    charts.locator("figure.trend").first.wait_for()
    assert charts.get_attribute("data-points") == str(len(points))
    svg = charts.locator("figure[data-series=availableStations] svg")
    assert svg.get_attribute("data-points") == str(len(points))
    drawn = svg.locator("polyline").get_attribute("points").split()
    assert len(drawn) == len(points)
    ys = [float(xy.split(",")[1]) for xy in drawn]
    available = [p["stations_by_state"]["available"] for p in points]
    # Fewer available stations is lower on the chart (a larger y).
    assert (ys[-1] > ys[0]) == (available[-1] < available[0])
    latest = f"{points[-1]['coverage_pct']:.1f}%"
    assert latest in charts.locator("figure[data-series=coverage] figcaption").inner_text()
    page.locator("#trend-ranges button[data-range='7d']").click()
    page.wait_for_selector("#trend-charts[data-range='7d']")
    hourly = live.client.get(
        "/v1/history", params={"district": DISTRICT_NAME, "range": "7d"}
    ).json()["points"]
    assert charts.get_attribute("data-points") == str(len(hourly))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-trends.png"))
    page.close()
