"""Geocoding addresses with geopy against a local HTTP server that answers in each service's
own format (Nominatim in WGS84, Baidu in BD-09, Amap in GCJ-02): answers come back in WGS84,
are cached (asked once), paced by the rate limiter, and misses are listed by row."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from demo.sample_city import DISTRICT_NAME
from geo.crs import Datum, from_wgs84
from schemas.auth import Role
from services.geocoding import AddressLocator
from services.system import EmbeddedSystem
from streams.clock import ManualClock
from tests.conftest import T0, bearer, issue, serve, settings_for
from tests.planning_city import planning_city

INSIDE = "朝阳区 建国路 88号"
OUTSIDE = "Far Away Road 1"
UNKNOWN = "Nowhere Lane 404"
TOLERANCE_DEG = 1e-5  # the BD-09/GCJ-02 inversions are iterative; ~1 m


@dataclass
class Gazetteer:
    """What the fake services know, in WGS84, and every request they got."""

    places: dict[str, tuple[float, float]]
    requests: list[tuple[float, str]] = field(default_factory=list)


def handler_for(gazetteer: Gazetteer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            gazetteer.requests.append((time.monotonic(), url.path))
            if url.path.startswith("/search"):
                body: Any = self.nominatim(query["q"])
            elif url.path.startswith("/geocoding/v3"):
                body = self.baidu(query["address"])
            elif url.path.startswith("/v3/geocode/geo"):
                body = self.amap(query["address"])
            else:
                self.send_error(404)
                return
            data = json.dumps(body, ensure_ascii=False).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def nominatim(self, address: str) -> Any:
            found = gazetteer.places.get(address)
            if found is None:
                return []
            lat, lon = found
            return [{"lat": str(lat), "lon": str(lon), "display_name": address}]

        def baidu(self, address: str) -> Any:
            found = gazetteer.places.get(address)
            if found is None:
                return {"status": 0, "result": []}
            lon, lat = from_wgs84(found[1], found[0], Datum.bd09)
            return {"status": 0, "result": {"location": {"lng": lon, "lat": lat}, "level": "门址"}}

        def amap(self, address: str) -> Any:
            found = gazetteer.places.get(address)
            if found is None:
                return {"status": "1", "info": "OK", "count": "0", "geocodes": []}
            lon, lat = from_wgs84(found[1], found[0], Datum.gcj02)
            return {
                "status": "1",
                "info": "OK",
                "geocodes": [{"formatted_address": address, "location": f"{lon:.6f},{lat:.6f}"}],
            }

    return Handler


@pytest.fixture
def gazetteer() -> Iterator[tuple[Gazetteer, str]]:
    known = Gazetteer(places={INSIDE: (39.95, 116.49), OUTSIDE: (31.23, 121.47)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(known))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield known, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


@pytest.mark.parametrize("geocoder", ["nominatim", "baidu", "amap"])
def test_answers_in_wgs84_cached_and_misses_kept(
    tmp_path: Path, gazetteer: tuple[Gazetteer, str], geocoder: str
) -> None:
    known, url = gazetteer
    settings = settings_for(
        tmp_path,
        geocoder=geocoder,
        geocoder_url=url,
        geocoder_api_key="test-key",
        geocoder_min_delay_seconds=0.0,
    )
    system = EmbeddedSystem(settings, clock=ManualClock(T0), autotick=False, simulate=False)
    try:
        locator = AddressLocator(system.store, settings, system.clock)
        found = locator.locate([INSIDE, UNKNOWN, INSIDE])
        assert len(known.requests) == 2, "each distinct address is asked once"
        inside = found[INSIDE]
        assert inside.lat == pytest.approx(39.95, abs=TOLERANCE_DEG)
        assert inside.lon == pytest.approx(116.49, abs=TOLERANCE_DEG)
        assert not found[UNKNOWN].found
        again = AddressLocator(system.store, settings, system.clock).locate([INSIDE, UNKNOWN])
        assert len(known.requests) == 2, "cached answers, misses included, are not asked again"
        assert again[INSIDE].cached
        assert (again[INSIDE].lat, again[INSIDE].lon) == (inside.lat, inside.lon)
    finally:
        system.store.close()


def test_requests_are_paced(tmp_path: Path, gazetteer: tuple[Gazetteer, str]) -> None:
    known, url = gazetteer
    delay = 0.3
    settings = settings_for(
        tmp_path, geocoder="nominatim", geocoder_url=url, geocoder_min_delay_seconds=delay
    )
    system = EmbeddedSystem(settings, clock=ManualClock(T0), autotick=False, simulate=False)
    try:
        AddressLocator(system.store, settings, system.clock).locate([INSIDE, OUTSIDE, UNKNOWN])
    finally:
        system.store.close()
    times = [t for t, _ in known.requests]
    assert len(times) == 3
    assert min(b - a for a, b in itertools.pairwise(times)) >= delay * 0.95


def test_candidate_file_with_addresses_lists_misses_by_row(
    tmp_path: Path, gazetteer: tuple[Gazetteer, str]
) -> None:
    _, url = gazetteer
    with (
        planning_city(
            tmp_path, geocoder="nominatim", geocoder_url=url, geocoder_min_delay_seconds=0.0
        ) as city,
        serve(city.system) as live,
    ):
        key = issue(city.system, Role.planner, districts=[DISTRICT_NAME])
        text = f"site_id,name,address\nA,shop,{INSIDE}\nB,bank,{OUTSIDE}\nC,kiosk,{UNKNOWN}\n"
        with httpx.Client(base_url=live.url, headers=bearer(key)) as client:
            answer = client.post("/v1/planning/candidates", content=text.encode())
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert [c["site_id"] for c in body["candidates"]] == ["A"]
        assert body["candidates"][0]["lat"] == pytest.approx(39.95, abs=TOLERANCE_DEG)
        errors = {e["row"]: e for e in body["errors"]}
        assert set(errors) == {2, 3}
        assert "outside" in errors[2]["reason"] or "not in" in errors[2]["reason"]
        assert errors[3]["field"] == "address"
        assert "no match" in errors[3]["reason"]


def test_without_a_geocoder_addresses_are_refused_by_row(tmp_path: Path) -> None:
    with planning_city(tmp_path) as city, serve(city.system) as live:
        key = issue(city.system, Role.planner)
        text = f"site_id,address,lat,lon\nA,{INSIDE},,\nB,,39.95,116.49\n"
        with httpx.Client(base_url=live.url, headers=bearer(key)) as client:
            answer = client.post("/v1/planning/candidates", content=text.encode())
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert [c["site_id"] for c in body["candidates"]] == ["B"]
        assert body["errors"][0]["row"] == 1
        assert "WAYSTATION_GEOCODER" in body["errors"][0]["reason"]
