"""The benchmark harness: a quick run writes results.json and RESULTS.md in the documented
format (DESIGN.md, "Benchmarks"), the bulk catchments it times are the live path's, and the
event stream the embedded benchmark submits is valid."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from bench import embedded as bench_embedded
from bench import run as bench_run
from bench.results import Result
from demo.sample_city import generate_sample_city
from geo.catchment import CircleCatchments
from geo.grid import Grid
from schemas.events import CheckInEvent, CheckInStatus, EventType, HealthCheckEvent, parse_event
from store.repositories import canonical_json
from waystation.settings import Settings

COVERAGE_RESULTS = {
    "coverage.flip.district.median_ms",
    "coverage.flip.district.p99_ms",
    "coverage.flip.city.median_ms",
    "coverage.flip.city.p99_ms",
    "coverage.recompute.city.s",
    "coverage.peak_memory.city.mb",
    "coverage.recompute.city.vs_shapely",
    "coverage.recompute.national.s",
    "coverage.peak_memory.national.mb",
    "coverage.flip.national.median_ms",
    "coverage.flip.national.p99_ms",
}
INGEST_RESULTS = {
    "ingest.http.single.events_per_s",
    "ingest.http.single.p99_ms",
    "ingest.http.batch500.events_per_s",
    "ingest.http.batch500.p99_ms",
}
STREAM_RESULTS = {
    "stream.faust.events_per_s",
    "stream.faust.two_workers.events_per_s",
    "stream.faust_noop.events_per_s",
    "stream.aiokafka_ceiling.events_per_s",
    "stream.embedded.same_input.events_per_s",
    "stream.faust.vs_faust_noop",
    "stream.faust.vs_aiokafka_ceiling",
    "stream.faust.vs_embedded",
    "stream.faust.end_to_end_p99_ms",
}
PIPELINE_FLIP_RESULTS = {
    "pipeline.flip.district.median_ms",
    "pipeline.flip.district.p99_ms",
    "pipeline.flip.city.median_ms",
    "pipeline.flip.city.p99_ms",
}
PIPELINE_RESULTS = PIPELINE_FLIP_RESULTS | {"pipeline.tick.city.ms"}
NATIONAL_RESULTS = {
    "pipeline.restore.national.s",
    "pipeline.restore.national.peak_rss_mb",
    "pipeline.gaps.national.ms",
}
EMBEDDED_RESULTS = {
    "stream.embedded.events_per_s",
    "stream.embedded.event_to_map_p99_ms",
    "stream.embedded.ingest_only.events_per_s",
}
EMBEDDED_RATES = {"stream.embedded.events_per_s", "stream.embedded.ingest_only.events_per_s"}
FLIP_TARGET_MS = 1.0
STORE_RESULTS = {
    f"store.{name}.{backend}.{unit}"
    for name, unit in [
        ("import_stations_20k", "s"),
        ("import_events_1m", "s"),
        ("gap_report.city", "ms"),
    ]
    for backend in ("sqlite", "postgis")
}
LIFECYCLE_RESULTS = {
    "coverage.move.city.median_ms",
    "coverage.move.city.p99_ms",
    "qr.visit.p99_ms",
    "qr.visit.median_ms",
}

UNION_RESULTS = {"history.query.30d.ms", "stats.monthly_report.district.ms"}
PLANNING_RESULTS = {
    "planning.siting.city.k50.s",
    "planning.siting.district.vs_exact",
    "planning.whatif.city.ms",
}
ALL_RESULTS = (
    COVERAGE_RESULTS
    | PIPELINE_RESULTS
    | NATIONAL_RESULTS
    | EMBEDDED_RESULTS
    | STORE_RESULTS
    | STREAM_RESULTS
    | LIFECYCLE_RESULTS
    | INGEST_RESULTS
    | PLANNING_RESULTS
    | UNION_RESULTS
)
RESULT_FIELDS = {"name", "value", "unit", "target", "baseline", "ratio"}
MACHINE_FIELDS = {"cores", "memory_gb", "python", "platform"}
DOTTED_LOWER_CASE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)+")
ENDS_IN_UNIT = re.compile(r".*[._](ms|s|mb)")
ENDS_IN_COMPARISON = re.compile(r".*\.vs_[a-z0-9_]+")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory, postgis_cluster: object) -> Path:
    """A quick run of every module. The store's needs PostGIS: it starts its own cluster, and
    asking for the tests' one first makes missing packages fail or skip the same way."""
    out_dir = tmp_path_factory.mktemp("bench")
    # The dashboard's benchmark needs a browser: tests/test_dashboard_browser.py runs it.
    modules = [name for name in bench_run.MODULES if name != "bench.dashboard"]
    bench_run.main(["--quick", "--out", str(out_dir), *(f"--module={m}" for m in modules)])
    return out_dir


def test_results_json_has_the_documented_shape(quick_run: Path) -> None:
    data = json.loads((quick_run / "results.json").read_text(encoding="utf-8"))
    assert set(data) == {"machine", "results"}
    assert set(data["machine"]) >= MACHINE_FIELDS
    names = [result["name"] for result in data["results"]]
    assert len(names) == len(set(names))
    assert set(names) == ALL_RESULTS
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
            last = name.rsplit(".", 1)[1]
            assert last == result["unit"] or last.endswith("_" + result["unit"]), name
            assert result["baseline"] is None, name
            assert result["ratio"] is None, name


def test_lifecycle_results_have_the_issues_targets(quick_run: Path) -> None:
    data = json.loads((quick_run / "results.json").read_text(encoding="utf-8"))
    targets = {r["name"]: r["target"] for r in data["results"]}
    assert targets["coverage.move.city.median_ms"] == 5.0
    assert targets["qr.visit.p99_ms"] == 100.0
    assert targets["qr.visit.median_ms"] is None


def test_results_markdown_is_a_readable_table(quick_run: Path) -> None:
    text = (quick_run / "RESULTS.md").read_text(encoding="utf-8")
    assert "| name | value | unit | target | met? | baseline | ratio |" in text
    for name in ALL_RESULTS:
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


def test_ingest_and_national_results_have_the_issue_targets(quick_run: Path) -> None:
    results = _results_by_name(quick_run)
    targets = {
        "ingest.http.single.events_per_s": 2000,
        "ingest.http.single.p99_ms": 50,
        "ingest.http.batch500.events_per_s": 15_000,
        "ingest.http.batch500.p99_ms": 1000,
        "coverage.recompute.national.s": 30,
        "coverage.peak_memory.national.mb": 4096,
        "coverage.flip.national.median_ms": 1,
    }
    for name, target in targets.items():
        assert results[name]["target"] == target, name
    assert results["coverage.recompute.city.vs_shapely"]["ratio"] > 1


def _results_by_name(out_dir: Path) -> dict[str, dict[str, object]]:
    data = json.loads((out_dir / "results.json").read_text(encoding="utf-8"))
    return {result["name"]: result for result in data["results"]}


def test_pipeline_results_have_the_flip_target(quick_run: Path) -> None:
    results = _results_by_name(quick_run)
    for name in PIPELINE_RESULTS:
        assert results[name]["unit"] == "ms", name
        assert results[name]["value"] > 0, name
        assert results[name]["baseline"] is None, name
    for name in PIPELINE_FLIP_RESULTS:
        assert results[name]["target"] == FLIP_TARGET_MS, name
    assert results["pipeline.tick.city.ms"]["target"] is None
    text = (quick_run / "RESULTS.md").read_text(encoding="utf-8")
    assert "thread CPU time" in text


def test_embedded_results_have_their_targets(quick_run: Path) -> None:
    results = _results_by_name(quick_run)
    for name in EMBEDDED_RESULTS:
        assert results[name]["value"] > 0, name
        assert results[name]["baseline"] is None, name
    for name in EMBEDDED_RATES:
        assert results[name]["unit"] == "per_s", name
    assert results["stream.embedded.events_per_s"]["target"] == 10_000
    assert results["stream.embedded.event_to_map_p99_ms"]["target"] == 500
    assert results["stream.embedded.ingest_only.events_per_s"]["target"] is None
    text = (quick_run / "RESULTS.md").read_text(encoding="utf-8")
    assert re.search(r"This run: \d+ probes", text)
    assert f"{bench_embedded.QUICK_EVENTS:,} applied" in text  # every event was processed
    assert "higher is better" in text


def test_embedded_stream_is_valid_and_in_time_order() -> None:
    city = generate_sample_city(seed=3, stations=40, subdistricts=6)
    settings = Settings.model_construct()
    count = 400
    stream = bench_embedded.build_stream(city.stations, count, settings, random.Random(1))
    events = stream.events
    assert len(events) == count
    assert sum(stream.counts.values()) == count
    assert all(stream.counts[kind] > 0 for kind in EventType)
    assert len({event.event_id for event in events}) == count
    times = [event.occurred_at for event in events]
    assert times == sorted(times)
    assert len(set(times)) == count
    assert times[0] >= bench_embedded.T_END - bench_embedded.WINDOW
    assert times[-1] <= bench_embedded.T_END
    # Every station opens first: a check-in open, then a health check.
    for i, station in enumerate(city.stations):
        opening, health = events[2 * i], events[2 * i + 1]
        assert isinstance(opening, CheckInEvent)
        assert opening.payload.status is CheckInStatus.open
        assert isinstance(health, HealthCheckEvent)
        assert opening.station_id == health.station_id == station.station_id
    # Each one passes the ingest's validation at the clock's time.
    for event in events:
        assert parse_event(canonical_json(event), now=bench_embedded.T_END) == event


def test_planning_results_have_their_targets(quick_run: Path) -> None:
    results = _results_by_name(quick_run)
    share = results["planning.siting.district.vs_exact"]
    assert share["unit"] == "share"
    assert 0 < share["value"] <= 1
    assert share["target"] == 0.98
    assert results["planning.siting.city.k50.s"]["target"] == 10.0
    assert results["planning.whatif.city.ms"]["target"] == 500.0
