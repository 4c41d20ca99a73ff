"""The interactive API docs in a real browser (Debian's chromium through Playwright): served
from vendored files with no network beyond this server, under the strict Content-Security-
Policy, they render every operation and the browser reports no violation. Without chromium
this skips on a developer's machine; under CI=true it fails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.browser import VIEWPORT
from streams.clock import ManualClock
from tests.conftest import T0, LiveServer, served_tiny_city, settings_for

RENDER_TIMEOUT_MS = 20_000


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with served_tiny_city(settings_for(tmp_path), ManualClock(T0)) as server:
        yield server


def test_docs_render_offline_under_the_strict_policy(live: LiveServer, browser: Any) -> None:
    page = browser.new_page(viewport=VIEWPORT)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    outside: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(live.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_this_server)
    response = page.goto(f"{live.url}/docs")
    assert response is not None
    assert "script-src" not in response.headers["content-security-policy"]  # default-src only
    page.wait_for_selector(
        "#operations-events-post_events_v1_events_post", timeout=RENDER_TIMEOUT_MS
    )
    assert page.locator(".opblock").count() >= 8
    assert outside == []
    assert not [p for p in problems if "Content Security Policy" in p], problems
    page.close()


def test_docs_can_be_turned_off(tmp_path: Path) -> None:
    with served_tiny_city(settings_for(tmp_path, api_docs=False), ManualClock(T0)) as live:
        assert httpx.get(f"{live.url}/docs").status_code == 404
        assert httpx.get(f"{live.url}/redoc").status_code == 404
        assert httpx.get(f"{live.url}/openapi.json").status_code == 200


def test_station_import_body_documents_address_instead_of_coordinates(live: LiveServer) -> None:
    """POST /v1/stations takes a station by coordinates or by street address: the documented
    body says so, and the documented Station (what the API answers) still has both."""
    document = httpx.get(f"{live.url}/openapi.json", timeout=10).json()
    body = document["paths"]["/v1/stations"]["post"]["requestBody"]["content"]
    one = body["application/json"]["schema"]["oneOf"][0]["$ref"].rsplit("/", 1)[1]
    schema = document["components"]["schemas"][one]
    assert schema["properties"]["address"]["type"] == "string"
    assert not {"lat", "lon"} & set(schema["required"])
    assert {"required": ["lat", "lon"]} in schema["anyOf"]
    assert {"required": ["address"]} in schema["anyOf"]
    assert {"lat", "lon"} <= set(document["components"]["schemas"]["Station"]["required"])
