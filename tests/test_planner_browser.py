"""The planner's pages in a real browser (Debian's chromium through Playwright): the printable
HTML gap report, opened through a signed link as the export button does; and the planner
workbench: sign in, suggest sites (numbered markers), close a station (the diff appears),
switch language. Screenshots go to tests/artifacts/.

Without chromium these tests skip on a developer's machine; under CI=true they fail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.browser import VIEWPORT
from demo.sample_city import DISTRICT_NAME
from schemas.auth import Role
from tests.conftest import LiveServer, issue, serve
from tests.planning_city import CLOSED, LEFT_SILENT, planning_city
from tests.served_city import RunningCity

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
RENDER_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningCity, LiveServer]]:
    with (
        planning_city(tmp_path_factory.mktemp("planner-browser")) as built,
        serve(built.system) as live,
    ):
        yield built, live


def test_html_gap_report_renders(browser: Any, city: tuple[RunningCity, LiveServer]) -> None:
    built, live = city
    key = issue(built.system, Role.planner, districts=[DISTRICT_NAME])
    headers = {"Authorization": f"Bearer {key}"}
    report = live.client.get("/v1/reports/gaps", headers=headers).json()
    link = live.client.post(
        "/v1/planning/report-links", json={"format": "html"}, headers=headers
    ).json()
    page = browser.new_page(viewport=VIEWPORT)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    answer = page.goto(live.url + link["url"])
    assert answer is not None
    assert answer.status == 200
    assert page.locator("#gaps tbody tr").count() == len(report["zones"])
    assert page.locator("svg path").count() == len(report["zones"])
    first = page.locator("#gaps tbody tr").first.locator("td").nth(3).inner_text()
    assert float(first) == pytest.approx(report["zones"][0]["uncovered_demand_workers"], abs=0.05)
    assert page.locator("h1").inner_text().startswith("服务缺口报告")
    svg = page.locator("svg").bounding_box()
    assert svg is not None
    assert svg["width"] > 100
    assert problems == [], "the page's inline styles must not break its own policy"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "gap-report.png"), full_page=True)
    page.emulate_media(media="print")
    page.screenshot(path=str(ARTIFACTS / "gap-report-print.png"), full_page=True)
    page.close()


def test_planner_page_sites_and_whatif(browser: Any, city: tuple[RunningCity, LiveServer]) -> None:
    built, live = city
    key = issue(built.system, Role.planner, districts=[DISTRICT_NAME])
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(live.url + "/planner")
    page.locator("#api-key").fill(key)
    page.locator("#sign-in-form button").click()
    page.wait_for_selector("body[data-rendered]", state="attached", timeout=RENDER_TIMEOUT_MS)
    gaps = live.client.get("/v1/reports/gaps", params={"limit": 20}).json()["zones"]
    assert page.locator("#gap-table tbody tr").count() == len(gaps)

    page.locator("#siting-form input[name=k]").fill("3")
    page.locator("#siting-form button[type=submit]").click()
    page.wait_for_selector('body[data-sited="3"]', state="attached", timeout=RENDER_TIMEOUT_MS)
    labels = page.locator(".site-marker").all_inner_texts()
    assert sorted(labels) == ["1", "2", "3"]
    assert page.locator("#siting-results li").count() == 3

    station = built.city.stations[LEFT_SILENT + CLOSED]
    point = page.evaluate(
        "([lat, lon]) => { const p = WSPlanner.map().latLngToContainerPoint([lat, lon]);"
        " const box = document.getElementById('map').getBoundingClientRect();"
        " return [box.left + p.x, box.top + p.y]; }",
        [station.lat, station.lon],
    )
    page.mouse.click(*point)
    page.wait_for_selector("#diff-facts", timeout=RENDER_TIMEOUT_MS)
    closed = page.evaluate("() => [...WSPlanner.state.closed]")
    assert closed == [station.station_id]
    expected = live.client.post("/v1/planning/whatif", json={"changes": {"close": closed}}).json()
    assert page.locator("body").get_attribute("data-whatif") == str(
        len(expected["cells_lost"]) + len(expected["cells_gained"])
    )
    page.locator("#lang-toggle").click()
    assert page.locator("h1").inner_text().endswith("Planner workbench")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "planner.png"))
    page.close()


def test_dashboard_links_to_the_planner(city: tuple[RunningCity, LiveServer]) -> None:
    _, live = city
    assert 'href="/planner"' in live.client.get("/").text
    assert live.client.get("/planner").status_code == 200
