"""The planning endpoints over HTTP: siting, candidate files, what-if (saved, listed, re-run,
exported), signed report links; every bad input a specific problem naming its field."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import h3
import httpx
import pytest
from shapely.geometry import Point, shape

from demo.sample_city import DISTRICT_NAME
from schemas.auth import Role
from tests.conftest import LiveServer, bearer, issue, serve
from tests.planning_city import CLOSED, LEFT_SILENT, planning_city
from tests.served_city import RunningCity


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningCity, LiveServer]]:
    with (
        planning_city(tmp_path_factory.mktemp("planning-api")) as built,
        serve(built.system) as live,
    ):
        yield built, live


@pytest.fixture(scope="module")
def planner(city: tuple[RunningCity, LiveServer]) -> Iterator[httpx.Client]:
    built, live = city
    key = issue(built.system, Role.planner, districts=[DISTRICT_NAME])
    with httpx.Client(base_url=live.url, timeout=60, headers=bearer(key)) as client:
        yield client


def fields(answer: httpx.Response) -> list[str]:
    assert answer.headers["content-type"].startswith("application/problem+json"), answer.text
    return [e["field"] for e in answer.json()["errors"]]


def test_siting_suggests_sites_in_order(planner: httpx.Client) -> None:
    answer = planner.post("/v1/planning/sites", json={"k": 5})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    picks = body["picks"]
    assert [p["rank"] for p in picks] == [1, 2, 3, 4, 5]
    added = [p["added"] for p in picks]
    assert added == sorted(added, reverse=True)
    assert all(a > 0 for a in added)
    cumulative = [p["cumulative"] for p in picks]
    assert cumulative[-1] == pytest.approx(sum(added), abs=1e-3)
    pct = [p["cumulative_demand_covered_pct"] for p in picks]
    assert pct == sorted(pct)
    assert body["demand_covered_after_workers"] == pytest.approx(
        body["demand_covered_before_workers"] + cumulative[-1], abs=1e-2
    )
    assert all(p["catchment_cells"] for p in picks)

    full = planner.post("/v1/planning/sites", json={"k": 5, "network": "full"}).json()
    assert full["demand_covered_before_workers"] > body["demand_covered_before_workers"]

    share = planner.post(
        "/v1/planning/sites", json={"objective": "set_cover", "target_share": 0.9}
    ).json()
    assert share["reached_target"] is True
    assert share["demand_covered_after_workers"] >= 0.9 * share["demand_workers"] - 1e-6
    access = planner.post("/v1/planning/sites", json={"k": 3, "objective": "access"})
    assert access.status_code == 200, access.text
    assert len(access.json()["picks"]) == 3


def test_exact_path_on_a_small_candidate_list(planner: httpx.Client) -> None:
    heuristic = planner.post("/v1/planning/sites", json={"k": 3}).json()
    sites = [{"lat": p["lat"], "lon": p["lon"]} for p in heuristic["picks"]]
    nearby = [{"lat": s["lat"] + 0.004, "lon": s["lon"] - 0.004} for s in sites]
    body = {"k": 2, "candidates": sites + nearby}
    exact = planner.post("/v1/planning/sites", json=body | {"method": "exact"})
    assert exact.status_code == 200, exact.text
    greedy = planner.post("/v1/planning/sites", json=body).json()
    assert exact.json()["picks"][-1]["cumulative"] >= greedy["picks"][-1]["cumulative"] - 1e-6


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"k": 0}, "k"),
        ({"k": 100_000}, "k"),
        ({"k": 3, "candidates": []}, "candidates"),
        ({"k": 3, "candidates": [{"lat": 10.0, "lon": 10.0}]}, "candidates[0]"),
        ({"k": 3, "candidates": [{"name": "no place"}]}, "candidates[0]"),
        ({"k": 3, "objective": "access", "method": "exact"}, "method"),
        ({"k": 3, "district": "Atlantis"}, "district"),
    ],
)
def test_bad_siting_requests_name_the_field(
    planner: httpx.Client, body: dict[str, Any], field: str
) -> None:
    answer = planner.post("/v1/planning/sites", json=body)
    assert 400 <= answer.status_code < 500
    assert field in fields(answer)


def test_candidate_files(planner: httpx.Client) -> None:
    empty = planner.post("/v1/planning/candidates", content=b"")
    assert empty.status_code == 422
    assert fields(empty) == ["body"]
    malformed = planner.post("/v1/planning/candidates", content=b"name;x\nshop;1\n")
    assert malformed.status_code == 422
    assert fields(malformed) == ["body"]
    text = "site_id,name,lat,lon\nA,便利店,39.95,116.49\nB,Bank,not-a-number,116.5\nC,Lost,39.9,\n"
    mixed = planner.post("/v1/planning/candidates", content=text.encode())
    assert mixed.status_code == 200, mixed.text
    body = mixed.json()
    assert [c["site_id"] for c in body["candidates"]] == ["A"]
    assert {(e["row"], e["field"]) for e in body["errors"]} == {(2, "lat"), (3, "lon")}
    gcj = planner.post(
        "/v1/planning/candidates",
        params={"crs": "gcj02"},
        content=text.splitlines()[0].encode() + b"\nA,x,39.95,116.49\n",
    ).json()["candidates"][0]
    assert gcj["lon"] != pytest.approx(116.49, abs=1e-4), "GCJ-02 is converted to WGS84"


def test_whatif_saved_listed_rerun_and_exported(
    city: tuple[RunningCity, LiveServer], planner: httpx.Client
) -> None:
    built, _ = city
    closing = [s.station_id for s in built.city.stations[LEFT_SILENT + CLOSED :][:20]]
    answer = planner.post(
        "/v1/planning/whatif", json={"name": "close twenty", "changes": {"close": closing}}
    )
    assert answer.status_code == 200, answer.text
    diff = answer.json()
    assert diff["cells_lost"]
    scenario_id = diff["scenario_id"]
    listed = planner.get("/v1/planning/scenarios").json()["scenarios"]
    assert [s["scenario_id"] for s in listed] == [scenario_id]
    assert listed[0]["changes"]["close"] == closing
    rerun = planner.post(f"/v1/planning/scenarios/{scenario_id}/run").json()
    assert rerun["cells_lost"] == diff["cells_lost"]

    report = planner.get(f"/v1/planning/scenarios/{scenario_id}/report").json()
    live_report = planner.get("/v1/reports/gaps").json()
    assert sum(z["uncovered_demand_workers"] for z in report["zones"]) > sum(
        z["uncovered_demand_workers"] for z in live_report["zones"]
    )
    exported = planner.get(f"/v1/planning/scenarios/{scenario_id}/report", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [r["zone"] for r in rows] == [z["zone"] for z in report["zones"]]

    unknown = planner.post("/v1/planning/whatif", json={"changes": {"close": ["SD-9999"]}})
    assert unknown.status_code == 422
    assert fields(unknown) == ["changes.close[0]"]


def test_scenarios_of_another_district_are_refused(
    city: tuple[RunningCity, LiveServer], planner: httpx.Client
) -> None:
    built, live = city
    saved = planner.post(
        "/v1/planning/whatif", json={"name": "mine", "changes": {"demand_scale": 1.5}}
    ).json()["scenario_id"]
    other = issue(built.system, Role.planner, districts=["Other District"])
    with httpx.Client(base_url=live.url, headers=bearer(other)) as client:
        refused = client.get(f"/v1/planning/scenarios/{saved}")
        assert refused.status_code == 403
        assert fields(refused) == ["scenario_id"]
        assert client.get("/v1/planning/scenarios").json()["scenarios"] == []
        assert client.post(f"/v1/planning/scenarios/{saved}/run").status_code == 403
    union = issue(built.system, Role.union, districts=[DISTRICT_NAME])
    with httpx.Client(base_url=live.url, headers=bearer(union)) as client:
        assert client.post("/v1/planning/sites", json={"k": 1}).status_code == 403


def test_signed_report_links_open_without_a_key(
    city: tuple[RunningCity, LiveServer], planner: httpx.Client
) -> None:
    _, live = city
    link = planner.post("/v1/planning/report-links", json={"format": "csv"})
    assert link.status_code == 200, link.text
    with httpx.Client(base_url=live.url) as anonymous:
        csv_file = anonymous.get(link.json()["url"])
        assert csv_file.status_code == 200
        assert csv_file.content.startswith("\ufeff".encode())
        html = anonymous.get(
            planner.post("/v1/planning/report-links", json={"format": "html"}).json()["url"]
        )
        assert html.headers["content-type"].startswith("text/html")
        assert "style-src 'unsafe-inline'" in html.headers["content-security-policy"]
        tampered = link.json()["url"][:-3] + "AAA"
        refused = anonymous.get(tampered)
        assert refused.status_code == 403
        assert fields(refused) == ["token"]
        assert anonymous.get("/v1/reports/gaps").status_code == 401


def test_siting_leaves_the_live_catchment_cache_alone_and_follows_the_travel_mode(
    city: tuple[RunningCity, LiveServer], planner: httpx.Client
) -> None:
    built, _ = city
    catchments = built.system.runtime.pipeline.catchments
    cached = len(catchments._cache)
    walking = planner.post("/v1/planning/sites", json={"k": 2}).json()
    riding = planner.post("/v1/planning/sites", json={"k": 2, "travel_mode": "ebike"}).json()
    assert len(catchments._cache) == cached, "proposed sites must not pile up in the live cache"
    walk_cells = len(walking["picks"][0]["catchment_cells"])
    ride_cells = len(riding["picks"][0]["catchment_cells"])
    assert ride_cells > walk_cells, "an e-bike reaches further in 15 minutes"
    assert riding["demand_covered_before_workers"] > walking["demand_covered_before_workers"]


def test_geojson_of_subdistrict_zones_round_trips(planner: httpx.Client) -> None:
    report = planner.get("/v1/reports/gaps").json()
    collection = planner.get("/v1/reports/gaps", params={"format": "geojson"}).json()
    zones = [f for f in collection["features"] if f["properties"]["kind"] == "zone"]
    assert [f["id"] for f in zones] == [z["zone"] for z in report["zones"]]
    for feature, zone in zip(zones, report["zones"], strict=True):
        outline = shape(feature["geometry"])
        assert outline.geom_type in {"Polygon", "MultiPolygon"}
        assert outline.is_valid
        assert feature["properties"]["name"] == zone["zone"].split("/")[-1]
        # Every underserved cell's centre lies in (or on the edge of) its zone's outline.
        for cell in zone["uncovered_cells"][:50]:
            lat, lon = h3.cell_to_latlng(cell)
            assert outline.buffer(1e-9).contains(Point(lon, lat))
