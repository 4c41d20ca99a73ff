"""Settings choose the travel mode and the catchment model for a deployment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.system import EmbeddedSystem
from streams.clock import ManualClock
from tests.conftest import CENTRE, T0, load, settings_for, tiny_city
from waystation.settings import Settings


def covered_cells(settings: Settings) -> set[str]:
    system = EmbeddedSystem(settings, clock=ManualClock(T0), autotick=False, simulate=False)
    load(system, tiny_city(settings))
    system.start()
    try:
        pipeline = system.runtime.pipeline
        assert pipeline is not None
        station = pipeline.registry["T-0001"]
        return set(pipeline.catchments.cells(station.lat, station.lon))
    finally:
        system.stop()


def test_ebike_reaches_farther_than_walking(tmp_path: Path) -> None:
    walking = covered_cells(settings_for(tmp_path / "walk"))
    riding = covered_cells(settings_for(tmp_path / "ride", travel_mode="ebike"))
    assert walking < riding
    assert settings_for(tmp_path, travel_mode="ebike").catchment_radius_m == pytest.approx(
        15.0 * 1000 * 0.25 / 1.3
    )


def test_network_model_follows_the_streets(tmp_path: Path) -> None:
    lat, lon = CENTRE
    street = [[lon - 0.03 + i * 0.001, lat] for i in range(61)]  # one east-west street
    network_file = tmp_path / "streets.geojson"
    network_file.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {},
                        "geometry": {"type": "LineString", "coordinates": street},
                    }
                ],
            }
        )
    )
    circle = covered_cells(settings_for(tmp_path / "circle"))
    along_street = covered_cells(
        settings_for(
            tmp_path / "network", catchment_model="network", street_network_file=network_file
        )
    )
    assert along_street, "the street reaches some cells"
    assert len(along_street) < len(circle) / 2, "one street covers a strip, not a disc"


def test_network_model_without_a_file_is_refused(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, catchment_model="network")
    system = EmbeddedSystem(settings, clock=ManualClock(T0), autotick=False, simulate=False)
    try:
        with pytest.raises(ValueError, match="STREET_NETWORK_FILE"):
            system.runtime.start()
    finally:
        system.store.close()
