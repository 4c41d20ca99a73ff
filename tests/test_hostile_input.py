"""Hostile input on every endpoint that takes a body or a parameter, over real HTTP: calendar
edges, numeric edges (1e999, NaN, -0, huge integers), nesting, encodings, sizes, duplicates,
look-alike personal data. Each case gets its own 4xx with an RFC 9457 problem naming the
field; no case is a 5xx; in a batch the bad item is refused alone and its valid neighbours
are stored; all-or-nothing imports (outlines, demand) leave what is stored untouched."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas.auth import Role
from services.system import EmbeddedSystem
from streams.clock import ManualClock
from tests.conftest import (
    CENTRE,
    DISTRICT,
    T0,
    LiveServer,
    as_key,
    issue,
    served_tiny_city,
    settings_for,
)

PROBLEM_JSON = "application/problem+json"
BODY_MAX_BYTES = 16_384
IMPORT_BODY_MAX_BYTES = 65_536
BATCH_MAX_EVENTS = 50
MAX_DEPTH = 32
RAW = "@@raw@@"
VALID_UUID = "0b6f1d3e-8c1a-4f6e-9a53-2f1c9d7e4b10"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = settings_for(
        Path(tmp_path_factory.mktemp("hostile")),
        rate_limit_per_minute=100_000,
        rate_limit_burst=10_000,
        body_max_bytes=BODY_MAX_BYTES,
        import_body_max_bytes=IMPORT_BODY_MAX_BYTES,
        batch_max_events=BATCH_MAX_EVENTS,
        json_max_depth_levels=MAX_DEPTH,
    )
    with served_tiny_city(settings, ManualClock(T0)) as server:
        yield server


@pytest.fixture(scope="module")
def operator(live: LiveServer) -> Iterator[httpx.Client]:
    key = issue(live.system, Role.operator, stations=["T-0001", "T-0002"])
    with as_key(live, key) as client:
        yield client


def valid_event(kind: str = "check_in", **fields: Any) -> dict[str, Any]:
    payloads = {
        "check_in": {"status": "open", "seats_available": 8, "staffed": True},
        "health_check": {"amenities": {"drinking_water": "ok"}, "next_check_in_seconds": 300},
        "visit": {"worker_kind": "courier", "party_size": 1, "source": "qr_scan"},
    }
    return {
        "event_id": str(uuid.uuid4()),
        "type": kind,
        "schema_version": 1,
        "station_id": "T-0001",
        "occurred_at": T0.isoformat(),
        "payload": payloads[kind],
        **fields,
    }


def with_raw(item: dict[str, Any], path: str, raw: str | None) -> str:
    """The item as JSON text with the value at `path` (dotted) replaced by the raw JSON text
    `raw` (so that 1e999, huge integers and bad escapes reach the server as written), or
    removed when `raw` is None."""
    target = item
    *parents, last = path.split(".")
    for name in parents:
        target = target[name]
    if raw is None:
        del target[last]
        return json.dumps(item)
    target[last] = RAW
    return json.dumps(item).replace(f'"{RAW}"', raw)


def problem_fields(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.text
    body = response.json()
    assert body["status"] == response.status_code
    assert body["title"]
    return [e["field"] for e in body["errors"]]


def stored(system: EmbeddedSystem, event_id: str) -> bool:
    with system.store.transaction() as tx:
        return tx.events.get(event_id) is not None


# --- one bad event, alone and between valid neighbours ---------------------------------------


@dataclass(frozen=True)
class BadItem:
    kind: str
    path: str
    raw: str | None
    field: str
    status: int = 422

    def __str__(self) -> str:
        return f"{self.kind}:{self.path}={self.raw}"


def _times() -> list[BadItem]:
    values = [
        "0001-01-01T00:00:00+08:00",
        "0001-01-01T07:59:59+08:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-08:00",
        "9999-12-31T23:59:59Z",
        "9999-12-31T23:59:59+14:00",
        "1970-01-01T00:00:00Z",
        "1969-12-31T23:59:59-00:00",
        "2019-12-31T23:59:59Z",
        "0000-01-01T00:00:00Z",
        "2026-02-29T09:00:00Z",
        "2026-13-01T09:00:00Z",
        "2026-11-31T09:00:00Z",
        "2026-11-21T24:00:00Z",
        "2026-11-21T23:59:60Z",
        "2026-11-21T09:60:00Z",
        "2026-11-21T09:00:00+24:00",
        "2026-11-21T09:00:00+08:60",
        "2026-11-21T09:00:00",
        "2026-11-21",
        "2026-11-21T09:00Z",
        "20261121T090000Z",
        "2026-11-21 09:00:00Z",
        "2026-11-21T09:00:00.1234567891Z",
        (T0 + timedelta(minutes=6)).isoformat(),
        (T0 + timedelta(days=1)).isoformat(),
        (T0 + timedelta(days=3650)).isoformat(),
        "",
        " ",
        "\u0662\u0660\u0662\u0666-11-21T09:00:00Z",  # Arabic-Indic digits
    ]
    found = [BadItem("check_in", "occurred_at", json.dumps(v), "occurred_at") for v in values]
    for raw in ("0", "1764000000", "1e999", "null", "true", "[]", "{}"):
        found.append(BadItem("visit", "occurred_at", raw, "occurred_at"))
    return found


def _numbers() -> list[BadItem]:
    cases = {
        ("visit", "payload.party_size"): [
            "0", "-1", "51", "-0", "1.5", "2.0", "1e2", "1e999", "-1e999", "true", '"2"',
            "null", "1" + "0" * 30, "-0.0",
        ],
        ("visit", "payload.dwell_minutes"): [
            "1e999", "-1e999", "1e309", "-1", "1441", '"12"', "true", "[]",
        ],
        ("check_in", "payload.seats_available"): ["-1", "10001", "1.5", "1e999", "true", '"5"'],
        ("health_check", "payload.next_check_in_seconds"): [
            "9", "86401", "0", "-1", "1e999", "1e10", "300.5",
        ],
        ("check_in", "schema_version"): ["2", "0", '"1"', "1e999", "null"],
    }  # fmt: skip
    return [BadItem(kind, path, raw, path) for (kind, path), raws in cases.items() for raw in raws]


def _identifiers() -> list[BadItem]:
    event_ids = [
        '"not-a-uuid"',
        f'"{{{VALID_UUID}}}"',
        f'"urn:uuid:{VALID_UUID}"',
        f'"{VALID_UUID.replace("-", "")}"',
        f'"{VALID_UUID[:-1]}"',
        '""',
        "123",
        "null",
        '"\\uff10b6f1d3e-8c1a-4f6e-9a53-2f1c9d7e4b10"',  # a full-width zero first
    ]
    station_ids = [
        '""',
        json.dumps("a" * 65),
        '"../etc/passwd"',
        '"T 0001"',
        "5",
        "null",
        '"T-0001\\u0000"',
        '"\\uff34-0001"',  # full-width T
        '"T-0001\\n"',
    ]
    return [
        *(BadItem("check_in", "event_id", raw, "event_id") for raw in event_ids),
        *(BadItem("check_in", "station_id", raw, "station_id") for raw in station_ids),
        # Well formed but not on the operator's key: refused like another district's station.
        BadItem("check_in", "station_id", '"T-9999"', "station_id", status=403),
    ]


def _shapes() -> list[BadItem]:
    return [
        BadItem("check_in", "type", '"unknown"', "type"),
        BadItem("check_in", "type", "null", "type"),
        BadItem("check_in", "type", "5", "type"),
        BadItem("check_in", "type", '"CHECK_IN"', "type"),
        BadItem("check_in", "type", None, "type"),
        BadItem("check_in", "payload", None, "payload"),
        BadItem("check_in", "payload", "[]", "payload"),
        BadItem("check_in", "payload", '"x"', "payload"),
        BadItem("check_in", "payload", "{}", "payload.status"),
        BadItem("check_in", "payload.extra", "1", "payload.extra"),
        BadItem("check_in", "extra", "1", "extra"),
        BadItem("check_in", "event_id", None, "event_id"),
        BadItem("check_in", "occurred_at", None, "occurred_at"),
        BadItem("visit", "payload.services_used", '["x"]', "payload.services_used"),
        BadItem("visit", "payload.services_used", '"wifi"', "payload.services_used"),
        BadItem("visit", "payload.services_used", "[1]", "payload.services_used"),
        BadItem(
            "visit", "payload.services_used", json.dumps(["wifi"] * 21), "payload.services_used"
        ),
        BadItem("health_check", "payload.amenities", '{"x": "ok"}', "payload.amenities"),
        BadItem("health_check", "payload.amenities", '{"wifi": "broken"}', "payload.amenities"),
        BadItem("health_check", "payload.amenities", "[]", "payload.amenities"),
        # Nested, but within the depth limit: refused by the schema, field named.
        BadItem("health_check", "payload.amenities", "[" * 20 + "]" * 20, "payload.amenities"),
        BadItem("visit", "payload.worker_kind", '{"a": {"b": {"c": []}}}', "payload.worker_kind"),
    ]


LOOK_ALIKE_PERSONAL_DATA = [
    "138.1234.5678",
    "138 1234 5678",
    "138-1234-5678",
    "(138) 1234-5678",
    "138/1234/5678",
    "\uff11\uff13\uff18\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18",  # full-width
    "+86 138 1234 5678",
    "+\uff18\uff16-138-1234-5678",
    "0086 13812345678",
    "8613812345678",
    "tel:13812345678",
    "138\u00a01234\u00a05678",  # no-break spaces
    "138\u20141234\u20145678",  # em dashes
    "138\u200b1234\u200b5678",  # zero-width spaces
    "138\u30fb1234\u30fb5678",  # katakana middle dots
    "\u0661\u0663\u0668\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",  # Arabic-Indic
    "11010519491231002X",
    "110105 19491231 002x",
    "110105-19491231-0021",
    "\uff11\uff11\uff10\uff11\uff10\uff15\uff11\uff19\uff14\uff19\uff11\uff12\uff13\uff11"
    "\uff10\uff10\uff12\uff38",
]


def _personal_data() -> list[BadItem]:
    return [
        BadItem("visit", "payload.worker_ref", json.dumps(v), "payload.worker_ref")
        for v in LOOK_ALIKE_PERSONAL_DATA
    ]


BAD_ITEMS = _times() + _numbers() + _identifiers() + _shapes() + _personal_data()


@pytest.mark.parametrize("bad", BAD_ITEMS, ids=str)
def test_a_bad_event_between_valid_neighbours_is_refused_alone(
    live: LiveServer, operator: httpx.Client, bad: BadItem
) -> None:
    first, last = valid_event("visit"), valid_event("health_check", station_id="T-0002")
    text = with_raw(valid_event(bad.kind), bad.path, bad.raw)
    body = f"[{json.dumps(first)},{text},{json.dumps(last)}]"
    response = operator.post("/v1/events", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [r["status"] for r in answer["results"]] == [202, bad.status, 202]
    fields = [e["field"] for e in answer["results"][1]["errors"]]
    assert any(f.startswith(bad.field) for f in fields), fields
    assert stored(live.system, first["event_id"])
    assert stored(live.system, last["event_id"])


@pytest.mark.parametrize("bad", BAD_ITEMS, ids=str)
def test_a_bad_event_alone_gets_a_problem_naming_its_field(
    live: LiveServer, operator: httpx.Client, bad: BadItem
) -> None:
    item = valid_event(bad.kind)
    event_id = item["event_id"]
    response = operator.post("/v1/events", content=with_raw(item, bad.path, bad.raw), headers=JSON)
    assert response.status_code == bad.status, response.text
    assert any(f.startswith(bad.field) for f in problem_fields(response))
    assert not stored(live.system, event_id)


JSON = {"content-type": "application/json"}


def test_look_alikes_are_refused_but_opaque_references_pass(operator: httpx.Client) -> None:
    """The other side of the look-alike cases: references that only contain digits, or are
    too short or long to be a number, are still accepted."""
    refs = ["rider-7f3a", "138-abc", "order 2026-11-21", "1381234567", "138123456789", "x" * 128]
    batch = [valid_event("visit") for _ in refs]
    for item, ref in zip(batch, refs, strict=True):
        item["payload"] = {**item["payload"], "worker_ref": ref}
    answer = operator.post("/v1/events", json=batch).json()
    assert [r["status"] for r in answer["results"]] == [202] * len(refs)


def test_duplicates_in_and_across_batches(live: LiveServer, operator: httpx.Client) -> None:
    item = valid_event("visit")
    changed = {**item, "payload": {**item["payload"], "party_size": 2}}
    neighbour = valid_event("visit")
    answer = operator.post("/v1/events", json=[item, item, changed, neighbour]).json()
    assert [r["status"] for r in answer["results"]] == [202, 200, 409, 202]
    assert answer["results"][2]["errors"][0]["field"] == "event_id"
    again = operator.post("/v1/events", json=changed)
    assert again.status_code == 409
    assert problem_fields(again) == ["event_id"]
    assert stored(live.system, neighbour["event_id"])


# --- bodies that cannot be read at all, on every endpoint with a body ------------------------


BODY_ENDPOINTS = [
    ("POST", "/v1/events", BODY_MAX_BYTES),
    ("POST", "/v1/stations", IMPORT_BODY_MAX_BYTES),
    ("PUT", "/v1/boundaries", IMPORT_BODY_MAX_BYTES),
    ("PUT", "/v1/demand", IMPORT_BODY_MAX_BYTES),
]


@dataclass(frozen=True)
class BadBody:
    name: str
    content: bytes
    status: int
    content_type: str | None = "application/json"


def _bad_bodies(limit: int) -> list[BadBody]:
    nest = "[" * (MAX_DEPTH + 8) + "]" * (MAX_DEPTH + 8)
    deep_in_item = json.dumps(valid_event()).replace(
        '"payload": {', f'"payload": {{"n": {nest}, ', 1
    )
    return [
        BadBody("nested-33-arrays", b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), 400),
        BadBody("nested-1000-arrays", b"[" * 1000 + b"]" * 1000, 400),
        BadBody("nested-10k-unclosed", b"[" * 10_000, 400),
        BadBody("nested-1000-objects", b'{"a":' * 1000 + b"1" + b"}" * 1000, 400),
        BadBody("nested-inside-an-item", deep_in_item.encode(), 400),
        BadBody("invalid-utf8", b'{"a": "\xff"}', 400),
        BadBody("overlong-utf8", b'{"a": "\xc0\xaf"}', 400),
        BadBody("truncated-utf8", b'{"a": "\xe4\xb8"}', 400),
        BadBody("utf8-surrogate", b'{"a": "\xed\xa0\x80"}', 400),
        BadBody("utf8-bom", b"\xef\xbb\xbf" + json.dumps(valid_event()).encode(), 400),
        BadBody("utf16-bom", "\ufeff[]".encode("utf-16"), 400),
        BadBody("utf16le", json.dumps(valid_event()).encode("utf-16-le"), 400),
        BadBody("lone-surrogate-escape", b'[{"a": "\\ud800"}]', 400),
        BadBody("nan-literal", b'[{"a": NaN}]', 400),
        BadBody("infinity-literal", b'[{"a": -Infinity}]', 400),
        BadBody("huge-integer", b'[{"a": ' + b"9" * 5000 + b"}]", 400),
        BadBody("trailing-comma", b'[{"a": 1},]', 400),
        BadBody("single-quotes", b"[{'a': 1}]", 400),
        BadBody("comment", b'[{"a": 1} /* x */]', 400),
        BadBody("unterminated", b'[{"a": "', 400),
        BadBody("empty", b"", 400),
        BadBody("whitespace", b"   \n", 400),
        BadBody("null", b"null", 422),
        BadBody("number", b"5", 422),
        BadBody("string", b'"x"', 422),
        BadBody("empty-array", b"[]", 422),
        BadBody("over-the-limit", b"[" + b" " * limit + b"]", 413),
        BadBody("text-plain", b"[]", 415, "text/plain"),
        BadBody("no-content-type", b"[]", 415, None),
        BadBody("form", b"a=1", 415, "application/x-www-form-urlencoded"),
    ]


@pytest.mark.parametrize(
    ("method", "path", "bad"),
    [(m, p, b) for m, p, limit in BODY_ENDPOINTS for b in _bad_bodies(limit)],
    ids=lambda v: v.name if isinstance(v, BadBody) else str(v),
)
def test_an_unreadable_body_gets_its_own_problem(
    live: LiveServer, method: str, path: str, bad: BadBody
) -> None:
    before = snapshot(live.system)
    headers = {"content-type": bad.content_type} if bad.content_type else {}
    response = live.client.request(method, path, content=bad.content, headers=headers)
    assert response.status_code == bad.status, response.text
    problem_fields(response)
    assert response.json()["detail"]
    assert snapshot(live.system) == before


def test_brackets_inside_strings_are_not_nesting(live: LiveServer, operator: httpx.Client) -> None:
    item = valid_event("visit")
    item["payload"] = {**item["payload"], "worker_ref": "[{" * 60}
    answer = operator.post("/v1/events", json=[item, "[[[[" * 100]).json()
    assert [r["status"] for r in answer["results"]] == [202, 422]
    assert stored(live.system, item["event_id"])


def snapshot(system: EmbeddedSystem) -> tuple[int, int, int, int]:
    with system.store.transaction() as tx:
        return (
            tx.events.count(),
            tx.stations.count(),
            len(tx.boundaries.list()),
            len(tx.demand.load()),
        )


def test_batches_over_the_item_limit_are_refused_whole(live: LiveServer) -> None:
    items = [{"event_id": str(uuid.uuid4())} for _ in range(BATCH_MAX_EVENTS + 1)]
    response = live.client.post("/v1/events", json=items)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


# --- station imports: each row judged on its own ---------------------------------------------


def valid_station(station_id: str) -> dict[str, Any]:
    return {
        "station_id": station_id,
        "name": f"Station {station_id}",
        "kind": "warm_station",
        "district": DISTRICT,
        "lat": CENTRE[0],
        "lon": CENTRE[1],
        "capacity": 10,
    }


BAD_STATION_VALUES = [
    ("lat", "1e999"),
    ("lat", "-1e999"),
    ("lat", "1" + "0" * 400),
    ("lat", "91"),
    ("lat", "-90.0001"),
    ("lat", "true"),
    ("lat", "null"),
    ("lat", '"north"'),
    ("lat", "[39.9]"),
    ("lon", "181"),
    ("lon", "-1e999"),
    ("lon", "1e309"),
    ("capacity", "0"),
    ("capacity", "10001"),
    ("capacity", "1e999"),
    ("capacity", "1.5"),
    ("capacity", "true"),
    ("capacity", "-0"),
    ("station_id", '""'),
    ("station_id", '"../x"'),
    ("name", '""'),
    ("name", json.dumps("n" * 201)),
    ("kind", '"palace"'),
    ("district", '""'),
    ("extra", "1"),
]


@pytest.mark.parametrize("crs", ["wgs84", "gcj02", "bd09"])
@pytest.mark.parametrize(("field", "raw"), BAD_STATION_VALUES, ids=lambda v: str(v)[:20])
def test_a_bad_station_row_is_refused_and_its_neighbour_stored(
    live: LiveServer, field: str, raw: str, crs: str
) -> None:
    good_id = f"H-{uuid.uuid4().hex[:8]}"
    bad_id = f"H-{uuid.uuid4().hex[:8]}"
    bad = with_raw(valid_station(bad_id), field, raw) if field != "extra" else None
    if bad is None:
        bad = json.dumps({**valid_station(bad_id), "extra": 1})
    body = f"[{json.dumps(valid_station(good_id))},{bad}]"
    response = live.client.post("/v1/stations", params={"crs": crs}, content=body, headers=JSON)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["imported"] == 1
    assert answer["rejected"] == 1
    assert answer["errors"][0]["row"] == 1
    assert answer["errors"][0]["field"] == field
    alone = live.client.post("/v1/stations", params={"crs": crs}, content=bad, headers=JSON)
    assert alone.status_code == 422
    assert problem_fields(alone) == [f"[0].{field}"]
    with live.system.store.transaction() as tx:
        assert tx.stations.get(good_id) is not None
        assert tx.stations.get(bad_id) is None


def test_a_repeated_station_id_in_one_import_is_refused_for_the_later_row(
    live: LiveServer,
) -> None:
    station = valid_station(f"H-{uuid.uuid4().hex[:8]}")
    answer = live.client.post("/v1/stations", json=[station, station]).json()
    assert answer["imported"] == 1
    assert answer["errors"][0]["row"] == 1
    assert answer["errors"][0]["field"] == "station_id"


# --- boundary imports: all or nothing --------------------------------------------------------


def ring(*, corner: str = "116.5") -> str:
    return f"[[[116.4, 39.9], [{corner}, 39.9], [116.5, 40.0], [116.4, 39.9]]]"


BAD_POLYGONS = [
    ring(corner="1e999"),
    ring(corner="-1e999"),
    ring(corner="1" + "0" * 400),
    ring(corner="181"),
    ring(corner='"116.5"'),
    ring(corner="true"),
    ring(corner="null"),
    "[[[116.4, 39.9], [116.5, 91], [116.5, 40.0], [116.4, 39.9]]]",
    "[[[116.4, 39.9], [116.5, 39.9], [116.4, 39.9]]]",
    "[[[116.4, 39.9, 1, 2], [116.5, 39.9], [116.5, 40.0], [116.4, 39.9]]]",
    "[[[116.4], [116.5, 39.9], [116.5, 40.0], [116.4, 39.9]]]",
    "[]",
    "[[]]",
    "[116.4, 39.9]",
    '"x"',
    "null",
]


@pytest.mark.parametrize("crs", ["wgs84", "gcj02"])
@pytest.mark.parametrize("coordinates", BAD_POLYGONS)
def test_a_bad_outline_is_refused_naming_the_feature(
    live: LiveServer, coordinates: str, crs: str
) -> None:
    good = {"type": "Feature", "properties": {"name": "Fine"}, "geometry": json.loads(
        f'{{"type": "Polygon", "coordinates": {ring()}}}'
    )}  # fmt: skip
    bad = (
        '{"type": "Feature", "properties": {"name": "Bad"}, "geometry": '
        f'{{"type": "Polygon", "coordinates": {coordinates}}}}}'
    )
    body = f'{{"type": "FeatureCollection", "features": [{json.dumps(good)}, {bad}]}}'
    before = snapshot(live.system)
    response = live.client.put(
        "/v1/boundaries", params={"level": "subdistrict", "crs": crs}, content=body, headers=JSON
    )
    assert response.status_code == 422, response.text
    assert problem_fields(response)[0].startswith("features[1]")
    assert snapshot(live.system) == before


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ('{"type": "FeatureCollection"}', "features"),
        ('{"type": "FeatureCollection", "features": {}}', "features"),
        ('{"type": "Feature", "features": []}', "type"),
        ('[{"type": "FeatureCollection", "features": []}]', "type"),
        ('{"type": "FeatureCollection", "features": [5]}', "features[0]"),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},'
            f' "geometry": {{"type": "Polygon", "coordinates": {ring()}}}}}]}}',
            "features[0]",
        ),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties":'
            ' {"name": "P"}, "geometry": {"type": "Point", "coordinates": [116.4, 39.9]}}]}',
            "features[0]",
        ),
        (
            '{"type": "FeatureCollection", "features": [{"type": "Feature", "properties":'
            ' {"name": "M"}, "geometry": {"type": "MultiPolygon", "coordinates": [[[[1e999, 0],'
            " [1, 0], [1, 1], [1e999, 0]]]]}}]}",
            "features[0]",
        ),
    ],
)
def test_a_malformed_feature_collection_is_refused(
    live: LiveServer, document: str, field: str
) -> None:
    before = snapshot(live.system)
    response = live.client.put("/v1/boundaries", content=document, headers=JSON)
    assert response.status_code == 422, response.text
    assert problem_fields(response)[0].startswith(field)
    assert snapshot(live.system) == before


# --- the demand layer: all or nothing, every bad cell named ----------------------------------


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("demand_workers", "1e999"),
        ("demand_workers", "-1"),
        ("demand_workers", "-1e999"),
        ("demand_workers", '"many"'),
        ("demand_workers", "null"),
        ("cell", '"not-a-cell"'),
        ("cell", '"8f2830828052d25"'),  # a valid hexadecimal shape, but not a cell
        ("cell", "5"),
        ("district", "null"),
        ("extra", "1"),
    ],
)
def test_a_bad_demand_cell_is_named_and_nothing_replaced(
    live: LiveServer, field: str, raw: str
) -> None:
    with live.system.store.transaction() as tx:
        layer = tx.demand.load()
    good = layer[0].model_dump(mode="json")
    bad = dict(good)
    if field == "extra":
        bad["extra"] = 1
        text = json.dumps(bad)
    else:
        text = with_raw(bad, field, raw)
    response = live.client.put("/v1/demand", content=f"[{json.dumps(good)},{text}]", headers=JSON)
    assert response.status_code == 422, response.text
    fields = problem_fields(response)
    assert fields == [] or any(f.startswith(f"[1].{field}") for f in fields), fields
    with live.system.store.transaction() as tx:
        assert tx.demand.load() == layer


# --- query and path parameters --------------------------------------------------------------


QUERY_CASES = [
    ("/v1/stations", {"limit": "0"}, 422, "limit"),
    ("/v1/stations", {"limit": "-1"}, 422, "limit"),
    ("/v1/stations", {"limit": "5001"}, 422, "limit"),
    ("/v1/stations", {"limit": "1e999"}, 422, "limit"),
    ("/v1/stations", {"limit": "9" * 40}, 422, "limit"),
    ("/v1/stations", {"limit": "abc"}, 422, "limit"),
    ("/v1/stations", {"limit": "-0"}, 422, "limit"),
    ("/v1/stations", {"offset": "-1"}, 422, "offset"),
    ("/v1/stations", {"state": "bogus"}, 422, "state"),
    ("/v1/stations", {"district": "Nowhere"}, 404, "district"),
    ("/v1/stations", {"district": "\u0000"}, 404, "district"),
    ("/v1/alerts", {"status": "bogus"}, 422, "status"),
    ("/v1/alerts", {"kind": "bogus"}, 422, "kind"),
    ("/v1/alerts", {"limit": "0"}, 422, "limit"),
    ("/v1/alerts", {"district": "Nowhere"}, 404, "district"),
    ("/v1/coverage", {"district": "Nowhere"}, 404, "district"),
    ("/v1/map", {"district": "Nowhere"}, 404, "district"),
    ("/v1/boundaries", {"district": "Nowhere"}, 404, "district"),
    ("/v1/reports/gaps", {"lat": "91", "lon": "116"}, 422, "lat"),
    ("/v1/reports/gaps", {"lat": "-91", "lon": "116"}, 422, "lat"),
    ("/v1/reports/gaps", {"lat": "nan", "lon": "116"}, 422, "lat"),
    ("/v1/reports/gaps", {"lat": "inf", "lon": "116"}, 422, "lat"),
    ("/v1/reports/gaps", {"lat": "1e999", "lon": "116"}, 422, "lat"),
    ("/v1/reports/gaps", {"lat": "39.9", "lon": "181"}, 422, "lon"),
    ("/v1/reports/gaps", {"lat": "39.9", "lon": "-nan"}, 422, "lon"),
    ("/v1/reports/gaps", {"lat": "39.9", "lon": "116", "radius_m": "0"}, 422, "radius_m"),
    ("/v1/reports/gaps", {"lat": "39.9", "lon": "116", "radius_m": "-1"}, 422, "radius_m"),
    ("/v1/reports/gaps", {"lat": "39.9", "lon": "116", "radius_m": "inf"}, 422, "radius_m"),
    ("/v1/reports/gaps", {"lat": "39.9", "lon": "116", "radius_m": "nan"}, 422, "radius_m"),
    ("/v1/reports/gaps", {"lat": "39.9", "lon": "116", "radius_m": "100001"}, 422, "radius_m"),
    ("/v1/reports/gaps", {"lat": "39.9"}, 422, "lon"),
    ("/v1/reports/gaps", {"lon": "116"}, 422, "lat"),
    ("/v1/reports/gaps", {"within": "Nowhere"}, 404, "within"),
    ("/v1/reports/gaps", {"within": "X", "lat": "39.9", "lon": "116"}, 422, "within"),
    ("/v1/reports/gaps", {"level": "bogus"}, 422, "level"),
    ("/v1/reports/gaps", {"limit": "0"}, 422, "limit"),
    ("/v1/stations/T-0001/events", {"limit": "0"}, 422, "limit"),
    ("/v1/stations/T-0001/events", {"limit": "101"}, 422, "limit"),
    ("/v1/stations/T-0001/events", {"limit": "nan"}, 422, "limit"),
    ("/v1/stations/%00", {}, 404, "station_id"),
    ("/v1/stations/%E2%80%AET-0001", {}, 404, "station_id"),
    ("/v1/stations/" + "x" * 5000, {}, 404, "station_id"),
    ("/v1/stations/%EF%BC%B4-0001", {}, 404, "station_id"),
    ("/v1/admin/failed-events", {"limit": "0"}, 422, "limit"),
    ("/v1/admin/failed-events", {"station_id": "../x"}, 422, "station_id"),
]


@pytest.mark.parametrize(("path", "params", "status", "field"), QUERY_CASES)
def test_a_bad_parameter_is_named(
    live: LiveServer, path: str, params: dict[str, str], status: int, field: str
) -> None:
    response = live.client.get(path, params=params)
    assert response.status_code == status, response.text
    assert field in problem_fields(response)


@pytest.mark.parametrize(
    ("method", "path", "params", "field"),
    [
        ("POST", "/v1/stations", {"crs": "bogus"}, "crs"),
        ("PUT", "/v1/boundaries", {"level": "bogus"}, "level"),
        ("PUT", "/v1/boundaries", {"crs": "wgs"}, "crs"),
        ("DELETE", "/v1/admin/failed-events", {"station_id": "a b"}, "station_id"),
    ],
)
def test_a_bad_parameter_on_a_write_is_named_and_nothing_changes(
    live: LiveServer, method: str, path: str, params: dict[str, str], field: str
) -> None:
    before = snapshot(live.system)
    response = live.client.request(method, path, params=params, content=b"[]", headers=JSON)
    assert response.status_code == 422
    assert field in problem_fields(response)
    assert snapshot(live.system) == before
