"""`waystation plan ...` and `waystation report gaps` against a running server."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from schemas.auth import Role
from services.cli import app
from tests.conftest import LiveServer, issue, serve
from tests.planning_city import CLOSED, LEFT_SILENT, planning_city
from tests.served_city import RunningCity

runner = CliRunner()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningCity, LiveServer]]:
    with (
        planning_city(tmp_path_factory.mktemp("planning-cli")) as built,
        serve(built.system) as live,
    ):
        yield built, live


def invoke(server: tuple[RunningCity, LiveServer], *args: str) -> tuple[int, str]:
    built, live = server
    key = issue(built.system, Role.planner)
    result = runner.invoke(app, [*args, "--url", live.url, "--key", key])
    return result.exit_code, result.output


def test_report_gaps_as_csv(server: tuple[RunningCity, LiveServer], tmp_path: Path) -> None:
    out = tmp_path / "gaps.csv"
    code, output = invoke(server, "report", "gaps", "--format", "csv", "--out", str(out))
    assert code == 0, output
    rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8-sig"))))
    report = server[1].client.get("/v1/reports/gaps").json()
    assert [r["zone"] for r in rows] == [z["zone"] for z in report["zones"]]


def test_plan_sites_prints_ranked_sites(server: tuple[RunningCity, LiveServer]) -> None:
    code, output = invoke(server, "plan", "sites", "--k", "4", "--json")
    assert code == 0, output
    answer = json.loads(output[output.index("{") :])
    assert [p["rank"] for p in answer["picks"]] == [1, 2, 3, 4]
    code, output = invoke(server, "plan", "sites", "--k", "0")
    assert code == 2
    assert "k: must be between" in output


def test_plan_sites_from_a_candidate_file(
    server: tuple[RunningCity, LiveServer], tmp_path: Path
) -> None:
    built, _ = server
    stations = built.city.stations
    lines = ["site_id,name,lat,lon"] + [
        f"C{n},shop {n},{s.lat + 0.003:.6f},{s.lon:.6f}" for n, s in enumerate(stations[:6])
    ]
    lines.append("BAD,broken,north,116.5")
    file = tmp_path / "candidates.csv"
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, output = invoke(server, "plan", "sites", "--k", "2", "--candidates", str(file), "--json")
    assert code == 0, output
    assert "1 rows refused" in output
    answer = json.loads(output[output.index('{\n  "district"') :])
    assert answer["candidates"] == 6
    assert {p["site_id"] for p in answer["picks"]} <= {f"C{n}" for n in range(6)}


def test_plan_whatif(server: tuple[RunningCity, LiveServer]) -> None:
    built, _ = server
    station = built.city.stations[LEFT_SILENT + CLOSED].station_id
    code, output = invoke(server, "plan", "whatif", "--close", station, "--name", "one less")
    assert code == 0, output
    assert "cells gained 0" in output
    assert "saved as scenario" in output
    code, output = invoke(server, "plan", "whatif", "--close", "SD-9999")
    assert code == 2
    assert "changes.close[0]" in output
    code, output = invoke(server, "plan", "scenarios")
    assert "one less" in output
