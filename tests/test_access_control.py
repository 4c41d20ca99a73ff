"""Who may do what: operator keys post only for their stations, union keys read only their
district, revoked and expired keys are refused, and every key has a rate limit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from schemas.auth import Role
from services.auth import AuthError, KeyRing, issue_key
from store.unit_of_work import Store
from streams.clock import ManualClock
from tests.conftest import (
    DISTRICT,
    EventFactory,
    LiveServer,
    as_key,
    bearer,
    issue,
    served_tiny_city,
    settings_for,
)
from waystation.settings import Settings

T_KEYS = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
KEY_CACHE_S = 0.5  # short, so that a revocation behind the server's back shows quickly
REVOKE_MARGIN_S = 2.0
REVOKE_POLL_S = 0.1


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return settings_for(tmp_path, auth_key_cache_seconds=KEY_CACHE_S)


def test_operator_posts_only_for_its_own_stations(live: LiveServer, event: EventFactory) -> None:
    key = issue(live.system, Role.operator, stations=["T-0001"])
    with as_key(live, key) as operator:
        assert operator.post("/v1/events", json=event("check_in", "T-0001")).status_code == 202
        refused = operator.post("/v1/events", json=event("check_in", "T-0002"))
        assert refused.status_code == 403
        assert refused.json()["errors"][0]["field"] == "station_id"
        mixed = operator.post(
            "/v1/events", json=[event("visit", "T-0001"), event("visit", "T-0002")]
        ).json()
        assert [r["status"] for r in mixed["results"]] == [202, 403]
        assert mixed["accepted"] == 1
        # It reads its own stations, and nothing else.
        listed = operator.get("/v1/stations").json()
        assert [s["station"]["station_id"] for s in listed["stations"]] == ["T-0001"]
        # Another station answers as one that does not exist: ids cannot be probed.
        assert operator.get("/v1/stations/T-0002").json() == operator.get(
            "/v1/stations/NOPE-1"
        ).json() | {"detail": "no station 'T-0002' that this key may read"}
        assert operator.get("/v1/stations/T-0002").status_code == 404
        assert operator.get("/v1/coverage").status_code == 403
        assert operator.get("/v1/alerts").status_code == 403
    with live.system.store.transaction() as tx:
        assert tx.events.count() == 2


def test_union_reads_its_district_only(live: LiveServer) -> None:
    own = issue(live.system, Role.union, districts=[DISTRICT])
    other = issue(live.system, Role.union, districts=["Another District"])
    with as_key(live, own) as union:
        assert union.get("/v1/coverage").json()["summary"]["district"] == DISTRICT
        assert union.get("/v1/coverage", params={"district": DISTRICT}).status_code == 200
        assert union.get("/v1/reports/gaps").status_code == 200
        assert union.get("/v1/stations").json()["total"] == 2
    with as_key(live, other) as outsider:
        assert outsider.get("/v1/coverage", params={"district": DISTRICT}).status_code == 403
        assert outsider.get("/v1/alerts", params={"district": DISTRICT}).status_code == 403
        assert outsider.get("/v1/stations", params={"district": DISTRICT}).status_code == 403
        # Without a district it sees its own scope: nothing of this one.
        assert outsider.get("/v1/stations").json()["total"] == 0
        assert outsider.get("/v1/alerts").json()["total"] == 0
        hidden = outsider.get("/v1/stations/T-0001")
        missing = outsider.get("/v1/stations/T-0009")
        assert hidden.status_code == missing.status_code == 404
        assert hidden.json()["errors"] == missing.json()["errors"]
        assert hidden.json()["title"] == missing.json()["title"] == "Unknown station"
        assert outsider.post("/v1/events", json=[]).status_code == 403


def test_roles_keep_to_their_jobs(live: LiveServer, event: EventFactory) -> None:
    planner = issue(live.system, Role.planner)
    with as_key(live, planner) as client:
        assert client.get("/v1/reports/gaps").status_code == 200
        assert client.post("/v1/events", json=event("check_in")).status_code == 403
        assert client.put("/v1/demand", json=[]).status_code == 403
    union = issue(live.system, Role.union, districts=[DISTRICT])
    with as_key(live, union) as client:
        assert client.put("/v1/demand", json=[]).status_code == 403


def test_missing_malformed_revoked_and_expired_keys_get_401(
    live: LiveServer, clock: ManualClock
) -> None:
    anonymous = httpx.Client(base_url=live.url, timeout=10)
    answer = anonymous.get("/v1/alerts")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.headers["content-type"] == "application/problem+json"
    assert anonymous.get("/v1/alerts", headers=bearer("not-a-key")).status_code == 401
    assert anonymous.get("/v1/alerts", headers=bearer("wsk_0000_nope")).status_code == 401

    revoked = issue(live.system, Role.planner)
    key_id = revoked.split("_")[1]
    assert anonymous.get("/v1/alerts", headers=bearer(revoked)).status_code == 200
    with live.system.store.transaction() as tx:
        assert tx.keys.revoke(key_id, clock.now())
    # Revoked behind the server's back (as the CLI does): refused once its read of the key
    # is older than auth_key_cache_seconds.
    deadline = time.monotonic() + live.system.settings.auth_key_cache_seconds + REVOKE_MARGIN_S
    while (after := anonymous.get("/v1/alerts", headers=bearer(revoked))).status_code == 200:
        assert time.monotonic() < deadline, "a revoked key kept working past the cache time"
        time.sleep(REVOKE_POLL_S)
    assert after.status_code == 401
    assert "revoked" in after.json()["detail"]

    expiring = issue(live.system, Role.planner, expires_at=clock.now() + timedelta(hours=1))
    assert anonymous.get("/v1/alerts", headers={"X-API-Key": expiring}).status_code == 200
    clock.advance(timedelta(hours=2))
    expired = anonymous.get("/v1/alerts", headers={"X-API-Key": expiring})
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]
    anonymous.close()


@pytest.fixture
def strict_live(tmp_path: Path, clock: ManualClock) -> Iterator[LiveServer]:
    settings = settings_for(
        tmp_path,
        rate_limit_per_minute=60,
        rate_limit_burst=3,
        cors_origins=("https://dashboard.example.org",),
    )
    with served_tiny_city(settings, clock) as server:
        yield server


def test_rate_limit_answers_429_with_retry_after(strict_live: LiveServer) -> None:
    key = issue(strict_live.system, Role.planner)
    with as_key(strict_live, key) as client:
        statuses = [client.get("/v1/alerts").status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        limited = client.get("/v1/alerts")
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
    other = issue(strict_live.system, Role.planner)
    with as_key(strict_live, other) as client:
        assert client.get("/v1/alerts").status_code == 200, "limits are per key"


def test_cors_only_for_configured_origins(strict_live: LiveServer, live: LiveServer) -> None:
    preflight = {
        "Origin": "https://dashboard.example.org",
        "Access-Control-Request-Method": "GET",
    }
    allowed = strict_live.client.options("/v1/alerts", headers=preflight)
    assert allowed.headers["access-control-allow-origin"] == "https://dashboard.example.org"
    refused = live.client.options("/v1/alerts", headers=preflight)
    assert "access-control-allow-origin" not in refused.headers


def test_security_headers_and_documented_scheme(live: LiveServer) -> None:
    page = live.client.get("/")
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in page.headers["content-security-policy"]
    schemes = live.client.get("/openapi.json").json()["components"]["securitySchemes"]
    assert {"HTTPBearer", "APIKeyHeader"} <= set(schemes)


def test_a_request_over_its_time_budget_is_answered_503(tmp_path: Path, clock: ManualClock) -> None:
    settings = settings_for(tmp_path, request_timeout_seconds=1e-6)
    with served_tiny_city(settings, clock) as server:
        answer = server.client.get("/v1/coverage")
        assert answer.status_code == 503
        assert answer.headers["retry-after"]
        assert answer.json()["title"] == "Request timed out"


def test_key_ring_remembers_a_key_only_for_its_cache_time(settings: Settings) -> None:
    """What it read of a key is trusted for cache_seconds, then read again."""
    now_s = [0.0]
    store = Store.open(settings.resolved_database_url)
    ring = KeyRing(store, cache_seconds=10.0, monotonic=lambda: now_s[0])
    issued = issue_key(store, role=Role.planner, now=T_KEYS)
    assert not ring.remembers(issued.secret), "nothing read yet: the store must be read"
    assert ring.authenticate(issued.secret, T_KEYS).key.key_id == issued.info.key_id
    assert ring.remembers(issued.secret)
    assert not ring.remembers("not-a-key")
    assert not ring.remembers(None)
    with store.transaction() as tx:
        assert tx.keys.revoke(issued.info.key_id, T_KEYS)
    now_s[0] = 9.9
    assert ring.authenticate(issued.secret, T_KEYS).key.key_id == issued.info.key_id
    now_s[0] = 10.0
    assert not ring.remembers(issued.secret)
    with pytest.raises(AuthError, match="revoked"):
        ring.authenticate(issued.secret, T_KEYS)
