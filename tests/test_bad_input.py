"""Bad input on POST /v1/events over real HTTP: every case gets its own status and a problem
body that names the offending field and says why, and nothing bad is ever stored."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.system import EmbeddedSystem
from streams.clock import ManualClock
from tests.conftest import (
    EventFactory,
    LiveServer,
    load,
    minutes,
    serve,
    settings_for,
    tiny_city,
)

PROBLEM_JSON = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "errors"}
SMALL_BODY_MAX_BYTES = 2048


@dataclass(frozen=True)
class Request:
    content: bytes
    content_type: str | None = "application/json"

    @property
    def headers(self) -> dict[str, str]:
        return {"content-type": self.content_type} if self.content_type is not None else {}


def as_json(data: Any) -> Request:
    return Request(json.dumps(data).encode())


def raw(text: str | bytes, content_type: str | None = "application/json") -> Request:
    return Request(text.encode() if isinstance(text, str) else text, content_type)


def without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


def with_payload(data: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {**data, "payload": {**data["payload"], **fields}}


@dataclass(frozen=True)
class Case:
    build: Callable[[EventFactory, ManualClock], Request]
    status: int
    field: str
    reason: str


def assert_problem(response: httpx.Response, status: int, field: str, reason: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert set(body) >= PROBLEM_KEYS, body
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    named = [e for e in body["errors"] if e["field"] == field]
    assert named, f"no error names field {field!r}: {body['errors']}"
    assert any(reason in e["reason"] for e in named), (
        f"no reason for {field!r} contains {reason!r}: {named}"
    )


CASES = [
    # The body as a whole.
    pytest.param(
        Case(lambda ev, _: raw('{"event_id": '), 400, "", "not valid JSON"), id="malformed-json"
    ),
    pytest.param(
        Case(
            lambda ev, _: raw(
                json.dumps(ev("visit")).replace('"party_size": 1', '"party_size": NaN')
            ),
            400,
            "",
            "NaN is not valid JSON",
        ),
        id="nan-literal",
    ),
    pytest.param(
        Case(
            lambda ev, _: raw(
                json.dumps(ev("visit")).replace("}}", ', "dwell_minutes": Infinity}}')
            ),
            400,
            "",
            "Infinity is not valid JSON",
        ),
        id="infinity-literal",
    ),
    pytest.param(
        Case(
            lambda ev, _: raw(b'{"station_id": "T-\xff\xfe0001"}'),
            400,
            "",
            "not UTF-8",
        ),
        id="bad-utf8-bytes",
    ),
    pytest.param(
        Case(
            lambda ev, _: raw(json.dumps(ev()), content_type="text/plain"),
            415,
            "",
            "text/plain",
        ),
        id="content-type-text-plain",
    ),
    pytest.param(
        Case(lambda ev, _: raw(json.dumps(ev()), content_type=None), 415, "", "application/json"),
        id="content-type-missing",
    ),
    pytest.param(
        Case(lambda ev, _: as_json([{} for _ in range(1001)]), 413, "", "limit is 1000"),
        id="batch-over-limit",
    ),
    pytest.param(Case(lambda ev, _: as_json([]), 422, "", "at least one event"), id="empty-array"),
    pytest.param(
        Case(lambda ev, _: as_json("check_in"), 422, "", "JSON object"), id="top-level-string"
    ),
    pytest.param(Case(lambda ev, _: as_json(42), 422, "", "JSON object"), id="top-level-number"),
    # The envelope.
    pytest.param(
        Case(lambda ev, _: as_json(ev(type="visit") | {"type": "checkin"}), 422, "type", "one of"),
        id="unknown-type",
    ),
    pytest.param(
        Case(lambda ev, _: as_json(without(ev(), "type")), 422, "type", "is required"),
        id="missing-type",
    ),
    pytest.param(
        Case(lambda ev, _: as_json(without(ev(), "event_id")), 422, "event_id", "is required"),
        id="missing-event-id",
    ),
    pytest.param(
        Case(lambda ev, _: as_json(ev(event_id="not-a-uuid")), 422, "event_id", "valid UUID"),
        id="bad-uuid",
    ),
    pytest.param(
        Case(
            lambda ev, clock: as_json(ev(occurred_at=clock.now().replace(tzinfo=None))),
            422,
            "occurred_at",
            "timezone",
        ),
        id="naive-occurred-at",
    ),
    pytest.param(
        Case(
            lambda ev, clock: as_json(ev(occurred_at=clock.now() + minutes(10))),
            422,
            "occurred_at",
            "in the future",
        ),
        id="occurred-at-10-minutes-ahead",
    ),
    pytest.param(
        Case(
            lambda ev, _: as_json(ev() | {"occurred_at": "21/11/2026 09:00"}),
            422,
            "occurred_at",
            "valid datetime",
        ),
        id="occurred-at-not-rfc3339",
    ),
    pytest.param(
        Case(
            lambda ev, clock: as_json(ev() | {"occurred_at": str(int(clock.now().timestamp()))}),
            422,
            "occurred_at",
            "datetime",
        ),
        id="occurred-at-epoch-seconds-string",
    ),
    pytest.param(
        Case(lambda ev, _: as_json(ev(schema_version=2)), 422, "schema_version", "1"),
        id="schema-version-2",
    ),
    pytest.param(
        Case(lambda ev, _: as_json(ev(priority="high")), 422, "priority", "not a known field"),
        id="unknown-top-level-field",
    ),
    pytest.param(
        Case(
            lambda ev, _: as_json(with_payload(ev(), mood="tired")),
            422,
            "payload.mood",
            "not a known field",
        ),
        id="unknown-payload-field",
    ),
    pytest.param(
        Case(lambda ev, _: as_json(ev(station_id="T 0001")), 422, "station_id", "match pattern"),
        id="station-id-with-space",
    ),
    pytest.param(
        Case(
            lambda ev, _: as_json(ev(station_id="T-9999")),
            422,
            "station_id",
            "not a registered station",
        ),
        id="unknown-station",
    ),
    # Payloads.
    pytest.param(
        Case(
            lambda ev, _: as_json(with_payload(ev("check_in"), status="opn")),
            422,
            "payload.status",
            "'open'",
        ),
        id="check-in-status-typo",
    ),
    pytest.param(
        Case(
            lambda ev, _: as_json(with_payload(ev("visit"), party_size=0)),
            422,
            "payload.party_size",
            "greater than or equal to 1",
        ),
        id="party-size-0",
    ),
    pytest.param(
        Case(
            lambda ev, _: as_json(with_payload(ev("visit"), party_size=51)),
            422,
            "payload.party_size",
            "less than or equal to 50",
        ),
        id="party-size-51",
    ),
    pytest.param(
        Case(
            lambda ev, _: as_json(with_payload(ev("visit"), party_size="2")),
            422,
            "payload.party_size",
            "valid integer",
        ),
        id="party-size-string-is-not-coerced",
    ),
    pytest.param(
        Case(
            lambda ev, _: as_json(
                with_payload(ev("health_check"), amenities={"drinking_watr": "ok"})
            ),
            422,
            "payload.amenities.drinking_watr.[key]",
            "'drinking_water'",
        ),
        id="amenity-name-typo",
    ),
    pytest.param(
        Case(
            lambda ev, _: as_json(
                with_payload(ev("health_check"), amenities={"drinking_water": "broken"})
            ),
            422,
            "payload.amenities.drinking_water",
            "'out_of_service'",
        ),
        id="amenity-state-typo",
    ),
    pytest.param(
        Case(
            lambda ev, _: as_json(with_payload(ev("health_check"), next_check_in_seconds=5)),
            422,
            "payload.next_check_in_seconds",
            "greater than or equal to 10",
        ),
        id="next-check-in-5-seconds",
    ),
    pytest.param(
        Case(
            lambda ev, _: as_json(with_payload(ev("visit"), worker_ref="13812345678")),
            422,
            "payload.worker_ref",
            "phone or ID number",
        ),
        id="worker-ref-phone-number",
    ),
    pytest.param(
        Case(
            lambda ev, _: as_json(with_payload(ev("visit"), worker_ref="11010519491231002X")),
            422,
            "payload.worker_ref",
            "phone or ID number",
        ),
        id="worker-ref-id-number",
    ),
    pytest.param(
        Case(
            lambda ev, _: as_json(
                ev("check_in", payload={"worker_kind": "courier", "source": "qr_scan"})
            ),
            422,
            "payload.worker_kind",
            "not a known field",
        ),
        id="visit-payload-under-check-in",
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_with_a_problem(
    live: LiveServer, event: EventFactory, clock: ManualClock, case: Case
) -> None:
    request = case.build(event, clock)
    response = live.client.post("/v1/events", content=request.content, headers=request.headers)
    assert_problem(response, case.status, case.field, case.reason)
    live.system.runtime.drain()
    with live.system.store.transaction() as tx:
        assert tx.events.count() == 0, "a refused body must store nothing"


def test_wrong_payload_shape_names_the_missing_field_too(
    live: LiveServer, event: EventFactory
) -> None:
    body = event("check_in", payload={"worker_kind": "courier", "source": "qr_scan"})
    response = live.client.post("/v1/events", json=body)
    assert_problem(response, 422, "payload.status", "is required")
    assert_problem(response, 422, "payload.source", "not a known field")


# Bodies over the byte limit, on a system configured with a small limit.


@pytest.fixture
def small_live(tmp_path: Path, clock: ManualClock) -> Iterator[LiveServer]:
    settings = settings_for(tmp_path / "small", body_max_bytes=SMALL_BODY_MAX_BYTES)
    built = EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)
    load(built, tiny_city(settings))
    built.start()
    try:
        with serve(built) as server:
            yield server
    finally:
        built.stop()


def oversized_batch(event: EventFactory) -> bytes:
    body = json.dumps([event("visit") for _ in range(20)]).encode()
    assert len(body) > SMALL_BODY_MAX_BYTES
    return body


def test_body_over_limit_is_413(small_live: LiveServer, event: EventFactory) -> None:
    body = oversized_batch(event)
    response = small_live.client.post(
        "/v1/events", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    problem = response.json()
    assert set(problem) >= PROBLEM_KEYS
    assert problem["status"] == 413
    assert str(SMALL_BODY_MAX_BYTES) in problem["detail"]
    with small_live.system.store.transaction() as tx:
        assert tx.events.count() == 0


def test_body_over_limit_names_the_body_in_errors(
    small_live: LiveServer, event: EventFactory
) -> None:
    response = small_live.client.post(
        "/v1/events", content=oversized_batch(event), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "", "limit")


def test_chunked_body_over_limit_is_413(small_live: LiveServer, event: EventFactory) -> None:
    body = oversized_batch(event)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 512):
            yield body[start : start + 512]

    response = small_live.client.post(
        "/v1/events", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413, "", f"limit is {SMALL_BODY_MAX_BYTES}")
    with small_live.system.store.transaction() as tx:
        assert tx.events.count() == 0


def test_body_just_under_limit_is_accepted(small_live: LiveServer, event: EventFactory) -> None:
    body = json.dumps(event("visit")).encode()
    assert len(body) < SMALL_BODY_MAX_BYTES
    response = small_live.client.post(
        "/v1/events", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 202, response.text


# Idempotency, batches and privacy.


def stored_body(system: EmbeddedSystem, event_id: str) -> tuple[str, str] | None:
    with system.store.transaction() as tx:
        found = tx.events.get(event_id)
    return (found.body, found.content_hash) if found is not None else None


def test_same_event_id_with_other_content_is_409_and_leaves_the_stored_event(
    live: LiveServer, event: EventFactory
) -> None:
    first = event("visit")
    assert live.client.post("/v1/events", json=first).status_code == 202
    live.system.runtime.drain()
    before = stored_body(live.system, first["event_id"])
    assert before is not None

    changed = with_payload(first, party_size=3)
    response = live.client.post("/v1/events", json=changed)
    assert_problem(response, 409, "event_id", "different content")
    live.system.runtime.drain()
    assert stored_body(live.system, first["event_id"]) == before
    assert json.loads(before[0])["payload"]["party_size"] == 1
    with live.system.store.transaction() as tx:
        assert tx.events.count() == 1


def test_mixed_batch_is_answered_item_by_item_and_stores_the_valid_once(
    live: LiveServer, event: EventFactory
) -> None:
    valid = [event("check_in"), event("visit"), event("health_check", station_id="T-0002")]
    batch = [
        valid[0],
        event("visit") | {"type": "checkin"},
        valid[1],
        event(station_id="T-9999"),
        with_payload(event("visit"), party_size=0),
        valid[2],
    ]
    expected = [
        ("accepted", 202, None),
        ("rejected", 422, ("type", "one of")),
        ("accepted", 202, None),
        ("rejected", 422, ("station_id", "not a registered station")),
        ("rejected", 422, ("payload.party_size", "greater than or equal to 1")),
        ("accepted", 202, None),
    ]

    response = live.client.post("/v1/events", json=batch)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"], answer["rejected"]) == (3, 0, 3)
    assert [r["index"] for r in answer["results"]] == list(range(6))
    assert [r["event_id"] for r in answer["results"]] == [e["event_id"] for e in batch]
    for result, (outcome, status, error) in zip(answer["results"], expected, strict=True):
        assert (result["result"], result["status"]) == (outcome, status), result
        if error is None:
            assert result["errors"] == []
        else:
            field, reason = error
            assert any(e["field"] == field and reason in e["reason"] for e in result["errors"])

    live.system.runtime.drain()
    with live.system.store.transaction() as tx:
        assert tx.events.count() == 3
        assert all(tx.events.get(e["event_id"]) is not None for e in valid)
        assert all(tx.events.get(e["event_id"]) is None for e in batch if e not in valid)

    again = live.client.post("/v1/events", json=batch)
    assert again.status_code == 200
    replay = again.json()
    assert (replay["accepted"], replay["duplicates"], replay["rejected"]) == (0, 3, 3)
    assert [r["result"] for r in replay["results"]] == [
        "duplicate",
        "rejected",
        "duplicate",
        "rejected",
        "rejected",
        "duplicate",
    ]
    assert [r["status"] for r in replay["results"]] == [200, 422, 200, 422, 422, 200]
    live.system.runtime.drain()
    with live.system.store.transaction() as tx:
        assert tx.events.count() == 3


def test_non_object_item_in_a_batch_is_rejected_alone(
    live: LiveServer, event: EventFactory
) -> None:
    good = event("visit")
    response = live.client.post("/v1/events", json=[good, "visit", None])
    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["result"] for r in results] == ["accepted", "rejected", "rejected"]
    assert all("JSON object" in r["errors"][0]["reason"] for r in results[1:])


def test_worker_ref_is_stored_hashed(live: LiveServer, event: EventFactory) -> None:
    ref = "rider-7f3a9c"
    visits = [with_payload(event("visit"), worker_ref=ref) for _ in range(2)]
    other = with_payload(event("visit"), worker_ref="rider-000001")
    response = live.client.post("/v1/events", json=[*visits, other])
    assert response.status_code == 200
    assert response.json()["accepted"] == 3
    live.system.runtime.drain()
    with live.system.store.transaction() as tx:
        bodies = [tx.events.get(v["event_id"]).body for v in [*visits, other]]
    assert all(ref not in body for body in bodies)
    assert "rider-000001" not in bodies[2]
    hashed = [json.loads(body)["payload"]["worker_ref"] for body in bodies]
    assert hashed[0] == hashed[1], "the same reference must link visits"
    assert hashed[0] != hashed[2]
    assert all(h and h != ref for h in hashed)


def test_duplicate_single_event_is_200_not_409(live: LiveServer, event: EventFactory) -> None:
    body = event("check_in", event_id=str(uuid.uuid4()))
    assert live.client.post("/v1/events", json=body).status_code == 202
    again = live.client.post("/v1/events", json=body)
    assert again.status_code == 200
    assert again.json()["results"][0]["result"] == "duplicate"
