"""Access leftovers: guessing keys is slowed per client address, API answers are never
cached, and the SQLite file is created readable only by its owner."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx

from schemas.auth import Role
from services.system import EmbeddedSystem
from streams.clock import ManualClock
from tests.conftest import (
    T0,
    LiveServer,
    bearer,
    issue,
    served_tiny_city,
    settings_for,
)

FAILURES_BURST = 5


def test_failed_authentications_are_rate_limited_per_address(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, auth_failures_burst=FAILURES_BURST, auth_failures_per_minute=1
    )
    with served_tiny_city(settings, ManualClock(T0)) as live:
        system = live.system
        good = bearer(issue(system, Role.union, districts=["Test District"]))
        guesses = [
            httpx.get(f"{live.url}/v1/me", headers=bearer(f"wsk_{i:012x}_guess"))
            for i in range(FAILURES_BURST)
        ]
        assert [r.status_code for r in guesses] == [401] * FAILURES_BURST
        slowed = httpx.get(f"{live.url}/v1/me", headers=bearer("wsk_000000000000_guess"))
        assert slowed.status_code == 429
        assert int(slowed.headers["retry-after"]) >= 1
        assert "failed authentications" in slowed.json()["detail"]
        # While slowed, the address is refused before any key is looked at.
        assert httpx.get(f"{live.url}/v1/me", headers=good).status_code == 429
        assert httpx.get(f"{live.url}/v1/me").status_code == 429


def test_successful_requests_do_not_count_as_failures(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, auth_failures_burst=1, auth_failures_per_minute=1)
    with served_tiny_city(settings, ManualClock(T0)) as live:
        assert all(live.client.get("/v1/me").status_code == 200 for _ in range(20))


def test_api_answers_are_never_cached(live: LiveServer) -> None:
    for path in ("/v1/me", "/v1/stations", "/v1/stations/NOPE", "/v1/alerts"):
        assert live.client.get(path).headers["cache-control"] == "no-store", path
    refused = httpx.get(f"{live.url}/v1/stations")
    assert refused.status_code == 401
    assert refused.headers["cache-control"] == "no-store"
    posted = live.client.post("/v1/events", content=b"[]", headers={"content-type": "text/plain"})
    assert posted.headers["cache-control"] == "no-store"


def test_the_sqlite_file_is_created_private(system: EmbeddedSystem, tmp_path: Path) -> None:
    database = Path(system.settings.resolved_database_url.removeprefix("sqlite:///"))
    assert database.exists()
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    for companion in (database.with_name(database.name + s) for s in ("-wal", "-shm")):
        if companion.exists():
            assert stat.S_IMODE(companion.stat().st_mode) & 0o077 == 0, companion
