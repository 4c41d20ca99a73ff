"""The benchmark harness: a quick run writes results.json and RESULTS.md in the documented
format (DESIGN.md, "Benchmarks"), and the bulk catchments it times are the live path's."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench import run as bench_run
from bench.results import Result
from geo.catchment import CircleCatchments
from geo.grid import Grid
from geo.sample_city import generate_sample_city

COVERAGE_RESULTS = {
    "coverage.flip.district.median_ms",
    "coverage.flip.district.p99_ms",
    "coverage.flip.city.median_ms",
    "coverage.flip.city.p99_ms",
    "coverage.recompute.city.s",
    "coverage.peak_memory.city.mb",
    "coverage.recompute.city.vs_shapely",
}
RESULT_FIELDS = {"name", "value", "unit", "target", "baseline", "ratio"}
MACHINE_FIELDS = {"cores", "memory_gb", "python", "platform"}
DOTTED_LOWER_CASE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")
ENDS_IN_UNIT = re.compile(r".*[._](ms|s|mb)")
ENDS_IN_COMPARISON = re.compile(r".*\.vs_[a-z0-9_]+")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out_dir = tmp_path_factory.mktemp("bench")
    # The dashboard's benchmark needs a browser: tests/test_dashboard_browser.py runs it.
    bench_run.main(["--quick", "--out", str(out_dir), "--module", "bench.coverage"])
    return out_dir


def test_results_json_has_the_documented_shape(quick_run: Path) -> None:
    data = json.loads((quick_run / "results.json").read_text(encoding="utf-8"))
    assert set(data) == {"machine", "results"}
    assert set(data["machine"]) >= MACHINE_FIELDS
    names = [result["name"] for result in data["results"]]
    assert len(names) == len(set(names))
    assert set(names) == COVERAGE_RESULTS
    for result in data["results"]:
        name = result["name"]
        assert set(result) == RESULT_FIELDS, name
        assert DOTTED_LOWER_CASE.fullmatch(name), name
        assert isinstance(result["value"], float | int), name
        assert result["value"] > 0, name
        assert result["target"] is None or result["target"] > 0, name
        if ENDS_IN_COMPARISON.fullmatch(name):
            assert isinstance(result["baseline"], str), name
            assert result["baseline"]
            assert result["ratio"] > 0, name
        else:
            assert ENDS_IN_UNIT.fullmatch(name), name
            assert name.rsplit(".", 1)[1].split("_")[-1] == result["unit"], name
            assert result["baseline"] is None, name
            assert result["ratio"] is None, name


def test_results_markdown_is_a_readable_table(quick_run: Path) -> None:
    text = (quick_run / "RESULTS.md").read_text(encoding="utf-8")
    assert "| name | value | unit | target | met? | baseline | ratio |" in text
    for name in COVERAGE_RESULTS:
        assert f"| `{name}` |" in text
        assert f"**`{name}`**:" in text  # what it measures
    assert "## Machine" in text
    assert "tracemalloc" in text
    assert "agree on" in text


def test_result_names_are_checked() -> None:
    Result("coverage.recompute.city.s", 1.0, "s")
    Result("coverage.flip.city.median_ms", 1.0, "ms")
    Result("coverage.recompute.city.vs_shapely", 1.0, "s", baseline="plain way", ratio=2.0)
    for name, unit in [
        ("Coverage.Flip.median_ms", "ms"),
        ("coverage", "ms"),
        ("coverage.flip.city.median", "ms"),
        ("coverage.flip.city.median_ms", "s"),
        ("coverage.flip.city.median_us", "us"),
    ]:
        with pytest.raises(ValueError, match=re.escape(repr(name))):
            Result(name, 1.0, unit)
    with pytest.raises(ValueError, match="ratio"):
        Result("coverage.recompute.city.vs_shapely", 1.0, "s", baseline="plain way")


def test_bulk_catchments_are_the_live_paths() -> None:
    city = generate_sample_city(seed=3, stations=300, subdistricts=6)
    points = [(station.lat, station.lon) for station in city.stations]
    for radius_m in (150.0, 1000.0):
        bulk = CircleCatchments(Grid(), radius_m).many(points)
        live = CircleCatchments(Grid(), radius_m)
        assert bulk == [live.cells(lat, lon) for lat, lon in points]
