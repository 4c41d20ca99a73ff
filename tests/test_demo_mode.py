"""Production by default, demo by choice: `waystation run` serves the store as it is (no
sample city, no simulator); `waystation demo` loads the sample city into an empty store and
simulates its stations, and refuses a store with real stations. The command tests do not
start the server: `_serve` (our own seam) records what it was handed. The dashboard says
plainly when it shows the sample city (in chromium; skipped without it, failing under
CI=true)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bench.browser import VIEWPORT
from demo.sample_city import generate_sample_city
from services import cli
from services.bootstrap import SAMPLE_CITY_KEY, ensure_sample_city, load_city
from services.system import EmbeddedSystem
from store.unit_of_work import Store
from streams.clock import ManualClock
from tests.conftest import T0, serve, settings_for
from tests.served_city import STATIONS
from tests.test_dashboard_browser import ARTIFACTS, sign_in

runner = CliRunner()


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    monkeypatch.setenv("WAYSTATION_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("WAYSTATION_SAMPLE_STATIONS", str(STATIONS))
    monkeypatch.setenv("WAYSTATION_SAMPLE_SUBDISTRICTS", "4")
    seen: list[dict[str, Any]] = []

    def record(system: EmbeddedSystem, *_: object) -> None:
        with system.store.transaction() as tx:
            seen.append(
                {
                    "stations": tx.stations.count(),
                    "sample": tx.meta.get(SAMPLE_CITY_KEY),
                    "simulator": system.simulator is not None,
                }
            )
        system.store.close()

    monkeypatch.setattr(cli, "_serve", record)
    return seen


def test_run_on_an_empty_store_loads_nothing_and_simulates_nothing(
    served: list[dict[str, Any]],
) -> None:
    result = runner.invoke(cli.app, ["run"])
    assert result.exit_code == 0, result.output
    assert served == [{"stations": 0, "sample": None, "simulator": False}]
    assert "waystation demo" in result.output


def test_demo_loads_the_sample_city_once_and_simulates_it(
    served: list[dict[str, Any]],
) -> None:
    for _ in range(2):
        result = runner.invoke(cli.app, ["demo"])
        assert result.exit_code == 0, result.output
    assert served == [{"stations": STATIONS, "sample": "7", "simulator": True}] * 2
    # The same store served in production mode: the stations stay, nothing is simulated.
    assert runner.invoke(cli.app, ["run"]).exit_code == 0
    assert served[-1] == {"stations": STATIONS, "sample": "7", "simulator": False}


def test_demo_refuses_a_store_with_real_stations(
    tmp_path: Path, served: list[dict[str, Any]]
) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'var' / 'waystation.db'}")
    try:
        with store.transaction() as tx:
            tx.stations.upsert_many(generate_sample_city(seed=3, stations=5).stations)
    finally:
        store.close()
    result = runner.invoke(cli.app, ["demo"])
    assert result.exit_code == 2
    assert "real stations" in result.output
    assert served == []


@pytest.mark.parametrize("sample", [True, False])
def test_the_dashboard_says_when_its_data_is_made_up(
    browser: Any, tmp_path: Path, sample: bool
) -> None:
    settings = settings_for(tmp_path, sample_stations=STATIONS, sample_subdistricts=4)
    system = EmbeddedSystem(settings, clock=ManualClock(T0), autotick=False, simulate=False)
    if sample:
        assert ensure_sample_city(system.store, settings)
    else:  # the same stations, imported as a union would import its own
        load_city(system.store, generate_sample_city(seed=7, stations=STATIONS, subdistricts=4))
    system.start()
    try:
        with serve(system) as live:
            page = browser.new_page(viewport=VIEWPORT)
            sign_in(page, live)
            banner = page.locator("#sample-banner")
            assert banner.is_visible() is sample
            if sample:
                assert "模拟" in banner.inner_text()
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "dashboard-sample-data.png"))
            page.close()
    finally:
        system.stop()
