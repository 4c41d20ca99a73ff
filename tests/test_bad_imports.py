"""Bad input on the station and boundary imports over real HTTP: each case gets its status and
names the field and the reason; valid stations next to bad ones are stored exactly once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from shapely.geometry import box, mapping

from schemas.auth import Role
from tests.conftest import CENTRE, DISTRICT, LiveServer, bearer, issue
from tests.test_bad_input import Request, as_json, assert_problem, raw


def station(station_id: str = "N-0001", **fields: Any) -> dict[str, Any]:
    return {
        "station_id": station_id,
        "name": "New station",
        "kind": "partner_store",
        "district": DISTRICT,
        "lat": CENTRE[0] + 0.01,
        "lon": CENTRE[1] + 0.01,
        "capacity": 8,
        "amenities": ["drinking_water", "rest_seats"],
        **fields,
    }


def outline(name: str = "Inner", **properties: Any) -> dict[str, Any]:
    polygon = box(CENTRE[1] - 0.1, CENTRE[0] - 0.1, CENTRE[1] + 0.1, CENTRE[0] + 0.1)
    return {
        "type": "Feature",
        "properties": {"name": name, **properties},
        "geometry": mapping(polygon),
    }


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def send(live: LiveServer, method: str, path: str, request: Request, **params: str) -> Any:
    return live.client.request(
        method, path, content=request.content, headers=request.headers, params=params
    )


STATION_CASES = [
    pytest.param(raw('[{"station_id": '), 400, "", "not valid JSON", id="malformed-json"),
    pytest.param(
        raw(json.dumps([station()]).replace('"capacity": 8', '"capacity": NaN')),
        400,
        "",
        "NaN",
        id="nan-literal",
    ),
    pytest.param(raw(b'[{"name": "\xff"}]'), 400, "", "UTF-8", id="bad-utf8"),
    pytest.param(
        raw(json.dumps([station()]), "text/csv"), 415, "", "application/json", id="content-type"
    ),
    pytest.param(
        as_json([{k: v for k, v in station().items() if k != "name"}]),
        422,
        "[0].name",
        "Field required",
        id="missing-name",
    ),
    pytest.param(
        as_json([station(kind="warm_statoin")]), 422, "[0].kind", "Input should be", id="kind-typo"
    ),
    pytest.param(as_json([station(lat=95)]), 422, "[0].lat", "less than or equal", id="lat-95"),
    pytest.param(
        as_json([station(lon=-181)]), 422, "[0].lon", "greater than or equal", id="lon-181"
    ),
    pytest.param(
        as_json([station(capacity="many")]), 422, "[0].capacity", "integer", id="capacity-text"
    ),
    pytest.param(
        as_json([station(capacity=0)]), 422, "[0].capacity", "greater than", id="capacity-0"
    ),
    pytest.param(
        as_json([station(colour="red")]), 422, "[0].colour", "Extra inputs", id="unknown-field"
    ),
    pytest.param(
        as_json([station(station_id="N 1")]), 422, "[0].station_id", "pattern", id="id-space"
    ),
    pytest.param(
        as_json([station(amenities=["wter"])]),
        422,
        "[0].amenities.0",
        "Input should be",
        id="amenity-typo",
    ),
    pytest.param(as_json(["SD-1"]), 422, "[0]", "must be an object", id="not-an-object"),
    pytest.param(as_json([]), 422, "", "at least one", id="empty-array"),
]


@pytest.mark.parametrize(("request_", "status", "field", "reason"), STATION_CASES)
def test_bad_station_import_is_refused(
    live: LiveServer, request_: Request, status: int, field: str, reason: str
) -> None:
    assert_problem(send(live, "POST", "/v1/stations", request_), status, field, reason)
    with live.system.store.transaction() as tx:
        assert tx.stations.count() == 2, "nothing bad is stored"


def test_good_stations_next_to_bad_ones_are_stored_once(live: LiveServer) -> None:
    body = [station("N-0001"), station("N-0002", lat="north"), station("N-0001"), station("N-3")]
    for _ in range(2):
        answer = live.client.post("/v1/stations", json=body)
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert (result["imported"], result["rejected"]) == (2, 2)
        assert {(e["row"], e["field"]) for e in result["errors"]} == {
            (1, "lat"),
            (2, "station_id"),
        }
    with live.system.store.transaction() as tx:
        assert tx.stations.count() == 4
        assert tx.stations.get("N-0001") is not None


def test_station_outside_every_district_is_refused(live: LiveServer) -> None:
    assert live.client.put(
        "/v1/boundaries", params={"level": "district"}, json=collection(outline(DISTRICT))
    ).is_success
    far = station(lat=CENTRE[0] + 1.0)
    assert_problem(
        live.client.post("/v1/stations", json=[far]), 422, "[0].lat", "outside every district"
    )
    assert live.client.post("/v1/stations", json=station()).status_code == 200


def test_gcj02_coordinates_are_converted(live: LiveServer) -> None:
    sent = station()
    assert live.client.post("/v1/stations", params={"crs": "gcj02"}, json=sent).is_success
    with live.system.store.transaction() as tx:
        stored = tx.stations.get("N-0001")
    assert stored is not None
    assert stored.lat != sent["lat"]
    assert abs(stored.lat - sent["lat"]) < 0.01


BOUNDARY_CASES = [
    pytest.param(raw('{"type": '), {}, 400, "", "not valid JSON", id="malformed-json"),
    pytest.param(
        as_json({"type": "Feature"}), {}, 422, "type", "FeatureCollection", id="not-a-collection"
    ),
    pytest.param(
        as_json({"type": "FeatureCollection"}), {}, 422, "features", "array", id="no-features"
    ),
    pytest.param(
        as_json(
            collection(
                {
                    "type": "Feature",
                    "properties": {"name": "x"},
                    "geometry": {"type": "Point", "coordinates": [116.4, 39.9]},
                }
            )
        ),
        {},
        422,
        "features[0]",
        "Polygon",
        id="point-geometry",
    ),
    pytest.param(
        as_json(collection(outline(name=""))), {}, 422, "features[0]", "name", id="empty-name"
    ),
    pytest.param(
        as_json(collection(outline())),
        {"name_property": "label"},
        422,
        "features[0]",
        "'label'",
        id="missing-name-property",
    ),
    pytest.param(
        as_json(collection(outline())), {"level": "county"}, 422, "level", "Input", id="level-typo"
    ),
    pytest.param(
        as_json(collection(outline())), {"crs": "wgs48"}, 422, "crs", "Input", id="crs-typo"
    ),
]


@pytest.mark.parametrize(("request_", "params", "status", "field", "reason"), BOUNDARY_CASES)
def test_bad_boundary_import_is_refused(
    live: LiveServer,
    request_: Request,
    params: dict[str, str],
    status: int,
    field: str,
    reason: str,
) -> None:
    answer = send(live, "PUT", "/v1/boundaries", request_, **params)
    assert_problem(answer, status, field, reason)
    with live.system.store.transaction() as tx:
        assert tx.boundaries.list() == []


def test_imports_are_for_admins_only(live: LiveServer) -> None:
    union = bearer(issue(live.system, Role.union, districts=[DISTRICT]))
    assert live.client.post("/v1/stations", json=[station()], headers=union).status_code == 403
    answer = live.client.put("/v1/boundaries", json=collection(outline()), headers=union)
    assert answer.status_code == 403
    good = live.client.put(
        "/v1/boundaries", params={"parent": DISTRICT}, json=collection(outline())
    )
    assert good.json()["imported"] == 1
