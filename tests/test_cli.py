"""The `waystation` command as a user types it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from store.unit_of_work import Store

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data_dir = tmp_path / "var"
    monkeypatch.setenv("WAYSTATION_DATA_DIR", str(data_dir))
    monkeypatch.setenv("WAYSTATION_SAMPLE_STATIONS", "120")
    return data_dir


def test_sample_city_writes_every_format(tmp_path: Path, env: Path) -> None:
    out = tmp_path / "city"
    result = runner.invoke(app, ["sample-city", "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"stations.geojson", "stations.csv", "demand.csv", "subdistricts.geojson"} <= names
    stations = json.loads((out / "stations.geojson").read_text())
    assert len(stations["features"]) == 120
    with (out / "demand.csv").open() as handle:
        assert float(next(csv.DictReader(handle))["demand_workers"]) >= 0


def test_stations_import_keeps_good_rows_and_lists_bad_ones(tmp_path: Path, env: Path) -> None:
    out = tmp_path / "city"
    assert runner.invoke(app, ["sample-city", "--out", str(out)]).exit_code == 0
    lines = (out / "stations.csv").read_text().splitlines()
    header = lines[0].split(",")
    broken = lines[2].split(",")
    broken[header.index("kind")] = "warm_statoin"
    bad_file = tmp_path / "stations.csv"
    bad_file.write_text("\n".join([lines[0], lines[1], ",".join(broken), lines[3]]) + "\n")

    result = runner.invoke(app, ["stations", "import", str(bad_file), "--crs", "gcj02"])
    assert result.exit_code == 1
    assert "kind" in result.output
    store = Store.open(f"sqlite:///{env / 'waystation.db'}")
    try:
        with store.transaction() as tx:
            assert tx.stations.count() == 2
    finally:
        store.close()


def test_stations_import_of_missing_file_says_so(tmp_path: Path, env: Path) -> None:
    result = runner.invoke(app, ["stations", "import", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "Cannot read" in result.output


def test_schemas_export_writes_the_event_schema(tmp_path: Path) -> None:
    result = runner.invoke(app, ["schemas", "export", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    event = json.loads((tmp_path / "event.json").read_text())
    assert event["discriminator"]["propertyName"] == "type"
