"""The gap report in every format comes from one query: GeoJSON, CSV and HTML carry the JSON's
zones and numbers; the format is chosen by `format=` or Accept, and an unknown one is refused."""

from __future__ import annotations

import csv
import io
import json

import h3
from shapely.geometry import shape

from tests.conftest import LiveServer

GAPS = "/v1/reports/gaps"


def _json(live: LiveServer) -> dict:
    answer = live.client.get(GAPS)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert body["zones"], "the tiny city starts with every station silent: all demand is a gap"
    return body


def test_geojson_round_trips_to_valid_polygons_matching_the_json(live: LiveServer) -> None:
    report = _json(live)
    answer = live.client.get(GAPS, params={"format": "geojson"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/geo+json")
    assert "attachment" in answer.headers["content-disposition"]
    collection = json.loads(answer.content)
    zones = [f for f in collection["features"] if f["properties"]["kind"] == "zone"]
    cells = [f for f in collection["features"] if f["properties"]["kind"] == "cell"]
    assert [f["id"] for f in zones] == [z["zone"] for z in report["zones"]]
    assert {f["id"] for f in cells} == {c for z in report["zones"] for c in z["uncovered_cells"]}
    for feature in zones + cells:
        polygon = shape(feature["geometry"])
        assert polygon.geom_type == "Polygon"
        assert polygon.is_valid
    for feature in cells:  # WGS84 lon/lat: the cell's own centre lies inside its hexagon
        lat, lon = h3.cell_to_latlng(feature["id"])
        assert shape(feature["geometry"]).contains(
            shape({"type": "Point", "coordinates": [lon, lat]})
        )
    for feature, zone in zip(zones, report["zones"], strict=True):
        props = feature["properties"]
        assert props["uncovered_demand_workers"] == zone["uncovered_demand_workers"]
        assert props["demand_workers"] == zone["demand_workers"]


def test_csv_has_the_json_numbers_and_a_bom(live: LiveServer) -> None:
    report = _json(live)
    answer = live.client.get(GAPS, headers={"Accept": "text/csv"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert [r["zone"] for r in rows] == [z["zone"] for z in report["zones"]]
    for row, zone in zip(rows, report["zones"], strict=True):
        assert float(row["demand_workers"]) == zone["demand_workers"]
        assert float(row["uncovered_demand_workers"]) == zone["uncovered_demand_workers"]
        assert int(row["uncovered_cells"]) == len(zone["uncovered_cells"])
        assert row["alert_open"] == ("yes" if zone["alert_open"] else "no")
        # Every station is silent until it reports.
        assert int(row["stations_available"]) == 0


def test_html_page_in_both_languages(live: LiveServer) -> None:
    report = _json(live)
    chinese = live.client.get(GAPS, params={"format": "html"})
    assert chinese.status_code == 200
    assert chinese.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in chinese.text
    assert "服务缺口报告" in chinese.text
    assert "<script" not in chinese.text
    assert chinese.text.count("<tr data-zone=") == len(report["zones"])
    english = live.client.get(GAPS, params={"lang": "en"}, headers={"Accept": "text/html"})
    assert "Gap report" in english.text
    assert "<svg" in english.text


def test_unknown_format_is_a_problem_naming_the_field(live: LiveServer) -> None:
    unknown = live.client.get(GAPS, params={"format": "xlsx"})
    assert unknown.status_code == 422
    assert unknown.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in unknown.json()["errors"]] == ["format"]
    refused = live.client.get(GAPS, headers={"Accept": "image/png"})
    assert refused.status_code == 406
    assert refused.json()["errors"][0]["field"] == "Accept"
    preferred = live.client.get(GAPS, headers={"Accept": "image/png, text/csv;q=0.5"})
    assert preferred.headers["content-type"].startswith("text/csv")
