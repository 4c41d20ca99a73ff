"""The worker's QR scan in a real browser on a phone-sized screen (Debian's chromium through
Playwright): open the poster's link, pick worker kind and services, tap once; the visit is
recorded and the district dashboard's visits today goes up live. A revoked poster, a forged
link and a burst over the rate limit each get a clear Chinese page and record nothing.
Screenshots go to tests/artifacts/.

Without chromium these tests skip on a developer's machine; under CI=true they fail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.browser import VIEWPORT
from schemas.auth import Role
from streams.clock import ManualClock
from tests.conftest import (
    DISTRICT,
    LiveServer,
    issue,
    served_tiny_city,
    settings_for,
)

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PHONE = {"width": 360, "height": 740}
RENDER_TIMEOUT_MS = 30_000
UPDATE_TIMEOUT_MS = 10_000
DEVICE_BURST = 2


@pytest.fixture
def live(tmp_path: Path, clock: ManualClock) -> Iterator[LiveServer]:
    settings = settings_for(
        tmp_path,
        scan_device_burst=DEVICE_BURST,
        scan_device_per_hour=1,
        live_visits_refresh_seconds=0.05,
    )
    with served_tiny_city(settings, clock) as server:
        yield server


def scan_path(live: LiveServer, station_id: str = "T-0001") -> str:
    url: str = live.client.get(f"/v1/stations/{station_id}/scan-link").json()["url"]
    return url[url.index("/scan/") :]


def visit_count(live: LiveServer) -> int:
    live.system.runtime.drain()
    with live.system.store.transaction() as tx:
        return sum(e.type == "visit" for e in tx.events.for_station("T-0001", limit=1000))


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"scan-{name}.png"), full_page=True)


def phone(browser: Any) -> Any:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    return context.new_page()


def test_scan_pick_tap_and_the_dashboard_counts_it(browser: Any, live: LiveServer) -> None:
    dashboard = browser.new_page(viewport=VIEWPORT)
    dashboard.goto(live.url)
    dashboard.get_by_label("API 密钥").fill(issue(live.system, Role.union, districts=[DISTRICT]))
    dashboard.get_by_role("button", name="登录").click()
    dashboard.wait_for_selector("body[data-rendered]", state="attached", timeout=RENDER_TIMEOUT_MS)
    assert dashboard.locator("#kpi-visits").inner_text() == "0"

    page = phone(browser)
    scripts: list[str] = []
    page.on("request", lambda r: scripts.append(r.url) if r.resource_type == "script" else None)
    page.goto(live.url + scan_path(live))
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.get_by_role("heading").inner_text() == "扫码登记到站"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.get_by_label("外卖骑手").check()
    page.get_by_label("饮水").check()
    page.get_by_label("手机充电").check()
    shot(page, "form")
    button = page.get_by_role("button", name="确认登记")
    box = button.bounding_box()
    assert box is not None
    assert box["width"] >= PHONE["width"] * 0.8  # a thumb-sized target across the screen
    button.click()
    page.wait_for_selector("h1.ok")
    assert "登记成功" in page.locator("h1").inner_text()
    assert page.locator("#visits-today").inner_text() == "1"
    shot(page, "done")
    assert scripts == []  # no scripts at all, from anywhere
    assert visit_count(live) == 1

    # (A selector, not wait_for_function: the dashboard's CSP forbids evaluating strings.)
    dashboard.wait_for_selector('#kpi-visits:text-is("1")', timeout=UPDATE_TIMEOUT_MS)


def test_revoked_forged_and_burst_each_get_a_clear_page(browser: Any, live: LiveServer) -> None:
    old = scan_path(live)
    page = phone(browser)
    page.goto(live.url + old)  # the poster was photographed while still valid
    assert live.client.post("/v1/stations/T-0001/scan-link/rotate").status_code == 200
    page.get_by_label("快递员").check()
    page.get_by_role("button", name="确认登记").click()
    assert page.locator("h1").inner_text() == "二维码已停用"
    shot(page, "revoked")

    forged = old.rsplit(".", 1)[0] + ".AAAAAAAAAAAAAAAAAAAAAA"
    answer = page.goto(live.url + forged)
    assert answer is not None
    assert answer.status == 403
    assert page.locator("h1").inner_text() == "二维码无效"
    shot(page, "forged")
    assert visit_count(live) == 0

    fresh = scan_path(live)
    for n in range(DEVICE_BURST + 1):
        page.goto(live.url + fresh)
        page.get_by_label("环卫工人").check()
        page.get_by_role("button", name="确认登记").click()
        page.wait_for_selector("h1")
        expected = "登记成功，谢谢！" if n < DEVICE_BURST else "提交太频繁"  # noqa: RUF001
        assert page.locator("h1").inner_text() == expected
    shot(page, "rate-limited")
    assert visit_count(live) == DEVICE_BURST
