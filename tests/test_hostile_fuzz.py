"""Property-based fuzzing of what arrives as JSON: arbitrary JSON and event-shaped JSON with
values from the whole calendar and number line, posted over real HTTP to every endpoint that
takes a body, never gets a 5xx; every refusal is a problem. And the ingest's one-pass
validation of parsed JSON agrees with validating the JSON text, its oracle."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.auth import Role
from schemas.events import EVENT_ADAPTER, ingest_context, validate_event
from streams.clock import ManualClock
from tests.conftest import (
    T0,
    LiveServer,
    as_key,
    issue,
    served_tiny_city,
    settings_for,
)

EXAMPLES = 120
PROBLEM_JSON = "application/problem+json"

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()  # NaN and infinities included: sent as NaN/Infinity, which JSON lacks
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
offsets = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
).map(lambda d: timezone(timedelta(minutes=d // timedelta(minutes=1))))
times = (
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets)
    | st.datetimes(
        min_value=T0.replace(tzinfo=None) - timedelta(days=2),
        max_value=T0.replace(tzinfo=None) + timedelta(minutes=10),
        timezones=st.just(UTC),
    )
).map(lambda t: t.isoformat())
payloads = st.fixed_dictionaries(
    {},
    optional={
        "status": st.sampled_from(["open", "paused", "closed"]) | json_values,
        "seats_available": st.integers(-5, 20_000) | json_values,
        "worker_kind": st.sampled_from(["courier", "sanitation"]) | json_values,
        "source": st.sampled_from(["qr_scan", "sensor"]) | json_values,
        "party_size": st.integers(-2, 60) | st.floats() | json_values,
        "dwell_minutes": st.floats() | json_values,
        "worker_ref": st.text(min_size=3, max_size=20) | st.from_regex(r"\+?(86)?1[3-9]\d{9}"),
        "services_used": st.lists(st.sampled_from(["wifi", "legal_aid", "x"])) | json_values,
        "amenities": st.dictionaries(
            st.sampled_from(["wifi", "drinking_water", "x"]),
            st.sampled_from(["ok", "degraded", "broken"]),
        )
        | json_values,
        "next_check_in_seconds": st.integers(-10, 100_000) | json_values,
    },
)
events = st.fixed_dictionaries(
    {
        "event_id": st.uuids().map(str) | json_values,
        "type": st.sampled_from(["visit", "check_in", "health_check"]) | json_values,
        "schema_version": st.just(1) | json_values,
        "station_id": st.sampled_from(["T-0001", "T-0002", "T-9999"]) | json_values,
        "occurred_at": times | json_values,
        "payload": payloads | json_values,
    },
    optional={"extra": json_values},
)
bodies = json_values | events | st.lists(events | json_values, min_size=1, max_size=5)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings_ = settings_for(
        Path(tmp_path_factory.mktemp("fuzz-hostile")),
        rate_limit_per_minute=1_000_000,
        rate_limit_burst=100_000,
    )
    with served_tiny_city(settings_, ManualClock(T0)) as server:
        yield server


@pytest.fixture(scope="module")
def operator(live: LiveServer) -> Iterator[httpx.Client]:
    key = issue(live.system, Role.operator, stations=["T-0001", "T-0002"])
    with as_key(live, key) as client:
        yield client


def assert_no_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM_JSON)
        assert response.json()["status"] == response.status_code


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


@FUZZ
@given(body=bodies)
def test_events_never_answer_5xx(operator: httpx.Client, body: Any) -> None:
    content = json.dumps(body, allow_nan=True)
    response = operator.post(
        "/v1/events", content=content, headers={"content-type": "application/json"}
    )
    assert_no_server_error(response)
    if response.status_code == 200:
        results = response.json()["results"]
        assert len(results) == (len(body) if isinstance(body, list) else 1)


@FUZZ
@given(body=json_values, endpoint=st.sampled_from(["stations", "boundaries", "demand"]))
def test_imports_never_answer_5xx(live: LiveServer, body: Any, endpoint: str) -> None:
    method = "POST" if endpoint == "stations" else "PUT"
    if endpoint == "boundaries":
        geometry = {"type": "Polygon", "coordinates": body}
        feature = {"type": "Feature", "properties": {"name": "x"}, "geometry": geometry}
        body = {"type": "FeatureCollection", "features": [feature]}
    content = json.dumps(body, allow_nan=True)
    response = live.client.request(
        method,
        f"/v1/{endpoint}",
        params={"level": "subdistrict"} if endpoint == "boundaries" else None,
        content=content,
        headers={"content-type": "application/json"},
    )
    assert_no_server_error(response)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(item=events)
def test_one_pass_validation_agrees_with_validating_the_text(item: dict[str, Any]) -> None:
    """The ingest validates the parsed item once; the oracle validates its JSON text (what
    the ingest used to do after dumping each item again). Same verdict, same event."""
    try:
        text = json.dumps(item, allow_nan=False)
    except ValueError:
        return  # NaN/Infinity never get past the body parser
    context = ingest_context(T0, max_future_skew=timedelta(minutes=5))
    try:
        expected = EVENT_ADAPTER.validate_json(text, strict=True, context=context)
    except ValidationError as exc:
        expected_fields = {e["loc"] for e in exc.errors()}
        with pytest.raises(ValidationError) as raised:
            validate_event(json.loads(text), context)
        assert {e["loc"] for e in raised.value.errors()} == expected_fields
        return
    assert validate_event(json.loads(text), context) == expected
