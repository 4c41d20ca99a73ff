"""Worker self check-in by QR code over the real HTTP server: the signed link, the one-tap
form, the recorded visit, and every way a scan is refused without recording anything."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from schemas.auth import Role
from streams.clock import ManualClock
from tests.conftest import (
    LiveServer,
    bearer,
    issue,
    served_tiny_city,
    settings_for,
)

FORM = {"worker_kind": "food_delivery", "services": ["drinking_water", "phone_charging"]}


@pytest.fixture
def scan_live(tmp_path: Path, clock: ManualClock) -> Iterator[LiveServer]:
    settings = settings_for(tmp_path, scan_device_burst=3, scan_device_per_hour=1)
    with served_tiny_city(settings, clock) as server:
        yield server


def link(live: LiveServer, station_id: str = "T-0001") -> str:
    answer = live.client.get(f"/v1/stations/{station_id}/scan-link")
    assert answer.status_code == 200, answer.text
    url: str = answer.json()["url"]
    return url[url.index("/scan/") :]


def visits(live: LiveServer) -> list[dict]:  # type: ignore[type-arg]
    live.system.runtime.drain()
    with live.system.store.transaction() as tx:
        events = tx.events.for_station("T-0001", limit=100)
    return [e.to_event().model_dump(mode="json") for e in events if e.type == "visit"]


def phone(live: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=live.url, timeout=10)


def test_a_scan_records_one_visit_with_the_services_picked(scan_live: LiveServer) -> None:
    path = link(scan_live)
    with phone(scan_live) as worker:
        page = worker.get(path)
        assert page.status_code == 200
        assert '<html lang="zh-CN">' in page.text
        assert "外卖骑手" in page.text and "手机充电" in page.text  # noqa: PT018
        assert "<script" not in page.text
        assert worker.cookies.get("ws_scan_device")
        done = worker.post(path, data=FORM)
    assert done.status_code == 200, done.text
    assert "登记成功" in done.text
    assert 'id="visits-today">1<' in done.text
    [visit] = visits(scan_live)
    assert visit["payload"]["source"] == "qr_scan"
    assert visit["payload"]["worker_kind"] == "food_delivery"
    assert visit["payload"]["services_used"] == ["drinking_water", "phone_charging"]
    assert visit["payload"]["worker_ref"] is None


def test_a_member_number_is_stored_only_as_a_hash(scan_live: LiveServer) -> None:
    with phone(scan_live) as worker:
        worker.get(link(scan_live))
        answer = worker.post(link(scan_live), data={**FORM, "member_number": "110105778899"})
    assert answer.status_code == 200, answer.text
    [visit] = visits(scan_live)
    assert visit["payload"]["worker_ref"].startswith("h1:")
    assert "110105778899" not in str(visit)


def test_forged_revoked_and_bad_scans_record_nothing(scan_live: LiveServer) -> None:
    path = link(scan_live)
    forged = path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB")
    other_station = path.replace("T-0001", "T-0002")
    with phone(scan_live) as worker:
        for bad in (forged, other_station, "/scan/nonsense"):
            answer = worker.get(bad)
            assert answer.status_code == 403, bad
            assert "二维码无效" in answer.text
            assert worker.post(bad, data=FORM).status_code == 403
        assert worker.post(path, data={"services": ["drinking_water"]}).status_code == 422
        assert worker.post(path, data={**FORM, "services": ["spa"]}).status_code == 422
        rotated = scan_live.client.post("/v1/stations/T-0001/scan-link/rotate")
        assert rotated.status_code == 200
        new_path = rotated.json()["url"][rotated.json()["url"].index("/scan/") :]
        assert new_path != path
        old = worker.post(path, data=FORM)
        assert old.status_code == 410
        assert "二维码已停用" in old.text
        assert visits(scan_live) == []
        assert worker.post(new_path, data=FORM).status_code == 200
    assert len(visits(scan_live)) == 1


def test_a_burst_from_one_phone_is_cut_off(scan_live: LiveServer) -> None:
    path = link(scan_live)
    with phone(scan_live) as worker:
        worker.get(path)
        answers = [worker.post(path, data=FORM) for _ in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert "提交太频繁" in answers[-1].text
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert len(visits(scan_live)) == 3
    with phone(scan_live) as another:  # another phone is not held back by the first
        another.get(path)
        assert another.post(path, data=FORM).status_code == 200


def test_links_and_posters_need_the_stations_key(scan_live: LiveServer) -> None:
    system = scan_live.system
    operator = bearer(issue(system, Role.operator, stations=("T-0002",)))
    assert (
        scan_live.client.get("/v1/stations/T-0001/scan-link", headers=operator).status_code == 403
    )
    assert (
        scan_live.client.get("/v1/stations/T-0002/scan-link", headers=operator).status_code == 200
    )
    assert scan_live.client.get("/v1/stations/T-0009/scan-link").status_code == 404
    png = scan_live.client.get("/v1/stations/T-0001/poster.png")
    assert png.status_code == 200
    image = Image.open(io.BytesIO(png.content))
    assert image.size == (1240, 1754)
    pdf = scan_live.client.get("/v1/stations/T-0001/poster.pdf")
    assert pdf.content.startswith(b"%PDF")
    assert scan_live.client.get("/v1/stations/T-0001/poster.gif").status_code == 404
