"""The wire formats: the JSON Schema files match the models, and parse_event is strict."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.events import (
    DEFAULT_MAX_FUTURE_SKEW,
    CheckInEvent,
    EventType,
    HealthCheckEvent,
    VisitEvent,
    parse_event,
)
from schemas.export import JSON_DIR, json_schemas, render

NOW = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
BEIJING = timezone(timedelta(hours=8))

# --- the exported files -------------------------------------------------------------------


def test_exported_files_are_exactly_the_rendered_schemas() -> None:
    rendered = json_schemas()
    on_disk = {path.name for path in JSON_DIR.glob("*.json")}
    assert on_disk == set(rendered), (
        f"schemas/json holds {sorted(on_disk)} but the models give {sorted(rendered)}: "
        "run `make schemas`"
    )


@pytest.mark.parametrize("name", sorted(json_schemas()))
def test_exported_file_matches_the_models(name: str) -> None:
    expected = render(json_schemas()[name])
    actual = (JSON_DIR / name).read_text(encoding="utf-8")
    assert actual == expected, f"schemas/json/{name} drifted from the models: run `make schemas`"


def test_every_document_names_its_dialect_and_version() -> None:
    for name, document in json_schemas().items():
        assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert document["$id"] == f"urn:waystation:schema:{name.removesuffix('.json')}:v1"


def event_schema() -> dict[str, Any]:
    return json.loads((JSON_DIR / "event.json").read_text(encoding="utf-8"))


def resolve(root: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/$defs/"), ref
        node = root["$defs"][ref.removeprefix("#/$defs/")]
    return node


def test_event_schema_discriminates_on_type() -> None:
    schema = event_schema()
    discriminator = schema["discriminator"]
    assert discriminator["propertyName"] == "type"
    assert set(discriminator["mapping"]) == {t.value for t in EventType}
    assert {"visit", "check_in", "health_check"} == set(discriminator["mapping"])
    consts = set()
    for option in schema["oneOf"]:
        variant = resolve(schema, option)
        consts.add(variant["properties"]["type"]["const"])
        assert variant["additionalProperties"] is False
        assert set(variant["required"]) >= {
            "event_id",
            "type",
            "station_id",
            "occurred_at",
            "payload",
        }
        assert variant["properties"]["occurred_at"]["format"] == "date-time"
        assert variant["properties"]["event_id"]["format"] == "uuid"
        payload = resolve(schema, variant["properties"]["payload"])
        assert payload["additionalProperties"] is False
    assert consts == {"visit", "check_in", "health_check"}
    for type_value, ref in discriminator["mapping"].items():
        variant = resolve(schema, {"$ref": ref})
        assert variant["properties"]["type"]["const"] == type_value


# A small validator for the subset of JSON Schema the models export (the `jsonschema` library
# is not a dependency). Formats are not checked, as validators treat them as annotations.


def violations(root: dict[str, Any], node: dict[str, Any], value: Any, path: str = "") -> list[str]:
    node = resolve(root, node)
    found: list[str] = []
    if "oneOf" in node or "anyOf" in node:
        options = node.get("oneOf") or node["anyOf"]
        matching = [o for o in options if not violations(root, o, value, path)]
        wanted = 1 if "oneOf" in node else None
        if (wanted is None and not matching) or (wanted is not None and len(matching) != wanted):
            found.append(f"{path}: matches {len(matching)} of {len(options)} options")
        return found
    kinds = {
        "object": dict,
        "array": list,
        "string": str,
        "integer": int,
        "number": (int, float),
        "boolean": bool,
        "null": type(None),
    }
    if "type" in node:
        expected = kinds[node["type"]]
        bad_bool = isinstance(value, bool) and node["type"] in ("integer", "number")
        if not isinstance(value, expected) or bad_bool:
            return [f"{path}: not of type {node['type']}"]
    if "const" in node and value != node["const"]:
        found.append(f"{path}: not {node['const']!r}")
    if "enum" in node and value not in node["enum"]:
        found.append(f"{path}: not one of {node['enum']}")
    if "minimum" in node and value < node["minimum"]:
        found.append(f"{path}: below {node['minimum']}")
    if "maximum" in node and value > node["maximum"]:
        found.append(f"{path}: above {node['maximum']}")
    if isinstance(value, str):
        if len(value) < node.get("minLength", 0):
            found.append(f"{path}: too short")
        if len(value) > node.get("maxLength", len(value)):
            found.append(f"{path}: too long")
        if "pattern" in node and not re.search(node["pattern"], value):
            found.append(f"{path}: does not match {node['pattern']}")
    if isinstance(value, list):
        if len(value) > node.get("maxItems", len(value)):
            found.append(f"{path}: too many items")
        for i, item in enumerate(value):
            found += violations(root, node.get("items", {}), item, f"{path}[{i}]")
    if isinstance(value, dict):
        properties = node.get("properties", {})
        found += [f"{path}.{k}: required" for k in node.get("required", []) if k not in value]
        for key, item in value.items():
            if "propertyNames" in node:
                found += violations(root, node["propertyNames"], key, f"{path}.{key}[key]")
            if key in properties:
                found += violations(root, properties[key], item, f"{path}.{key}")
            elif node.get("additionalProperties") is False:
                found.append(f"{path}.{key}: not allowed")
            elif isinstance(node.get("additionalProperties"), dict):
                found += violations(root, node["additionalProperties"], item, f"{path}.{key}")
    return found


def sample(type_: str = "check_in", **fields: Any) -> dict[str, Any]:
    payloads = {
        "visit": {
            "worker_kind": "food_delivery",
            "party_size": 2,
            "services_used": ["drinking_water", "legal_aid"],
            "dwell_minutes": 12.5,
            "source": "qr_scan",
            "worker_ref": "rider-0042",
        },
        "check_in": {"status": "open", "seats_available": 6, "staffed": True},
        "health_check": {
            "amenities": {"drinking_water": "ok", "restroom": "out_of_service"},
            "next_check_in_seconds": 600,
        },
    }
    body: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "type": type_,
        "schema_version": 1,
        "station_id": "CY-0001",
        "occurred_at": NOW.isoformat(),
        "payload": payloads[type_],
    }
    body.update(fields)
    return body


@pytest.mark.parametrize("type_", ["visit", "check_in", "health_check"])
def test_event_schema_accepts_what_the_models_accept(type_: str) -> None:
    body = sample(type_)
    parse_event(json.dumps(body), now=NOW)  # the models accept it
    schema = event_schema()
    assert violations(schema, schema, body) == []


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        pytest.param(sample() | {"type": "checkin"}, "matches 0 of 3", id="unknown-type"),
        pytest.param(sample() | {"extra": 1}, ".extra: not allowed", id="unknown-field"),
        pytest.param(
            sample(payload={"status": "opn"}), ".payload.status: not one of", id="status-typo"
        ),
        pytest.param(
            sample(
                "visit", payload={"worker_kind": "courier", "source": "qr_scan", "party_size": 51}
            ),
            ".payload.party_size: above 50",
            id="party-size-51",
        ),
        pytest.param(
            sample(
                "visit", payload={"worker_kind": "courier", "source": "qr_scan", "party_size": "2"}
            ),
            ".payload.party_size: not of type integer",
            id="party-size-string",
        ),
        pytest.param(
            sample("health_check", payload={"amenities": {"drinking_watr": "ok"}}),
            ".payload.amenities.drinking_watr[key]: not one of",
            id="amenity-typo",
        ),
        pytest.param(sample(station_id="CY 0001"), ".station_id: does not match", id="station-id"),
        pytest.param(sample(schema_version=2), ".schema_version: not 1", id="schema-version-2"),
        pytest.param(
            {k: v for k, v in sample().items() if k != "station_id"},
            ".station_id: required",
            id="missing-station",
        ),
    ],
)
def test_event_schema_rejects_what_the_models_reject(body: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError):
        parse_event(json.dumps(body), now=NOW)
    schema = event_schema()
    found = violations(schema, schema, body)
    if complaint.startswith("matches"):
        assert any(complaint in v for v in found), found
    else:
        # The right variant is picked by its `type`, as the discriminator says.
        variant = schema["discriminator"]["mapping"][body["type"]]
        found = violations(schema, {"$ref": variant}, body)
        assert any(v.startswith(complaint) for v in found), found


# --- parse_event strictness ----------------------------------------------------------------


def at(moment: datetime, **fields: Any) -> str:
    return json.dumps(sample(occurred_at=moment.isoformat(), **fields))


@pytest.mark.parametrize(
    ("type_", "model"),
    [("visit", VisitEvent), ("check_in", CheckInEvent), ("health_check", HealthCheckEvent)],
)
def test_parse_event_picks_the_model_by_type(type_: str, model: type) -> None:
    body = sample(type_)
    parsed = parse_event(json.dumps(body).encode(), now=NOW)
    assert isinstance(parsed, model)
    assert str(parsed.event_id) == body["event_id"]
    assert parsed.occurred_at == NOW


def test_schema_version_defaults_to_1() -> None:
    body = sample()
    del body["schema_version"]
    assert parse_event(json.dumps(body), now=NOW).schema_version == 1


def test_offset_is_kept_and_compared_as_an_instant() -> None:
    in_beijing = NOW.astimezone(BEIJING)
    parsed = parse_event(at(in_beijing), now=NOW)
    assert parsed.occurred_at.utcoffset() == timedelta(hours=8)
    assert parsed.occurred_at == NOW
    # Four minutes ahead in another offset is still within the default skew...
    parse_event(at((NOW + timedelta(minutes=4)).astimezone(BEIJING)), now=NOW)
    # ...six minutes ahead is not, though the wall clock reads 17:06.
    with pytest.raises(ValidationError, match="in the future"):
        parse_event(at((NOW + timedelta(minutes=6)).astimezone(BEIJING)), now=NOW)


def test_future_skew_boundary_is_inclusive() -> None:
    parse_event(at(NOW + DEFAULT_MAX_FUTURE_SKEW), now=NOW)
    with pytest.raises(ValidationError, match="5 minutes in the future"):
        parse_event(at(NOW + DEFAULT_MAX_FUTURE_SKEW + timedelta(microseconds=1)), now=NOW)


def test_future_skew_follows_the_context() -> None:
    ahead = NOW + timedelta(minutes=10)
    with pytest.raises(ValidationError, match="in the future"):
        parse_event(at(ahead), now=NOW)
    parse_event(at(ahead), now=NOW, max_future_skew=timedelta(minutes=30))
    with pytest.raises(ValidationError, match="2 minutes in the future"):
        parse_event(at(ahead), now=NOW, max_future_skew=timedelta(minutes=2))
    # `now` is what the skew is measured from, not the wall clock.
    parse_event(at(ahead), now=ahead)


def test_zero_future_skew_rejects_any_future_event() -> None:
    with pytest.raises(ValidationError, match="in the future"):
        parse_event(at(NOW + timedelta(minutes=1)), now=NOW, max_future_skew=timedelta(0))


def test_without_now_the_wall_clock_is_used() -> None:
    real_now = datetime.now(UTC)
    parse_event(at(real_now))
    with pytest.raises(ValidationError, match="in the future"):
        parse_event(at(real_now + timedelta(hours=1)))


def test_old_events_are_not_the_parsers_business() -> None:
    parsed = parse_event(at(NOW - timedelta(days=400)), now=NOW)
    assert parsed.occurred_at == NOW - timedelta(days=400)


def visit_with(**payload: Any) -> str:
    base = {"worker_kind": "courier", "source": "qr_scan"}
    return json.dumps(sample("visit", payload=base | payload))


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"party_size": "2"}, id="int-as-string"),
        pytest.param({"party_size": 2.0}, id="int-as-float"),
        pytest.param({"party_size": True}, id="int-as-bool"),
        pytest.param({"dwell_minutes": "5"}, id="number-as-string"),
        pytest.param({"worker_kind": "Courier"}, id="enum-case"),
        pytest.param({"services_used": ["sauna"]}, id="unknown-service"),
        pytest.param({"services_used": ["wifi"] * 21}, id="too-many-services"),
        pytest.param({"worker_ref": "abc"}, id="worker-ref-too-short"),
        pytest.param({"worker_ref": "138 1234 5678"}, id="phone-with-spaces"),
        pytest.param({"worker_ref": "+86-138-1234-5678"}, id="phone-plus-86"),
        pytest.param({"worker_ref": "110105194912310021"}, id="id-number-18"),
        pytest.param({"worker_ref": "11010519491231002x"}, id="id-number-lower-x"),
        pytest.param({"worker_ref": "110105491231002"}, id="id-number-15"),
        pytest.param({"worker_ref": "008613812345678"}, id="phone-0086-prefix"),
    ],
)
def test_visit_payload_is_strict(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_event(visit_with(**payload), now=NOW)


def test_opaque_worker_refs_pass() -> None:
    for ref in ("rider-0042", "QR:7f3a9c11", "1381234"):
        assert parse_event(visit_with(worker_ref=ref), now=NOW).payload.worker_ref == ref


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"status": "open", "staffed": 1}, id="bool-as-int"),
        pytest.param({"status": "open", "staffed": "true"}, id="bool-as-string"),
        pytest.param({"status": "open", "seats_available": -1}, id="negative-seats"),
        pytest.param({"status": "OPEN"}, id="status-case"),
        pytest.param({}, id="status-missing"),
    ],
)
def test_check_in_payload_is_strict(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_event(json.dumps(sample("check_in", payload=payload)), now=NOW)


@pytest.mark.parametrize(
    "occurred_at",
    [
        pytest.param("2026-11-21T09:00:00", id="naive"),
        pytest.param("2026-11-21", id="date-only"),
        pytest.param("21/11/2026 09:00", id="day-first"),
        pytest.param("2026-11-21T09:00:00+08", id="offset-hours-only"),
        pytest.param(1795000000, id="epoch-number"),
        pytest.param(None, id="null"),
    ],
)
def test_occurred_at_must_be_rfc3339_with_offset(occurred_at: Any) -> None:
    with pytest.raises(ValidationError):
        parse_event(json.dumps(sample(occurred_at=occurred_at)), now=NOW)


def test_occurred_at_epoch_string_is_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_event(json.dumps(sample(occurred_at="1795000000")), now=NOW)


def test_event_id_must_be_a_uuid() -> None:
    for bad in ("not-a-uuid", "1234", 12345, None):
        with pytest.raises(ValidationError):
            parse_event(json.dumps(sample(event_id=bad)), now=NOW)
