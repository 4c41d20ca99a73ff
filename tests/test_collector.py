"""The processors' garbage-collector tuning: what start-up built is frozen out of the scans;
in the embedded runtime the young generation waits for the configured number of objects, in
a worker full passes wait for the configured number of middle ones."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.system import EmbeddedSystem
from streams.clock import ManualClock
from streams.collector import freeze_startup_state, tune_collector, tune_worker_collector
from tests.conftest import settings_for


@pytest.fixture
def collector() -> Iterator[None]:
    """Whatever a test does to the collector is undone after it."""
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("collector")
def test_tuning_freezes_what_lives_and_sets_the_young_threshold() -> None:
    gc.unfreeze()
    long_lived = [{"cell": i} for i in range(1000)]
    _, middle, old = gc.get_threshold()
    tune_collector(12_345)
    assert gc.get_threshold() == (12_345, middle, old), "only the young generation changes"
    assert gc.get_freeze_count() >= len(long_lived)


@pytest.mark.usefixtures("collector")
def test_the_embedded_runtime_tunes_the_collector_from_its_settings(
    tmp_path: Path, clock: ManualClock
) -> None:
    settings = settings_for(tmp_path, gc_young_threshold_objects=4_321)
    system = EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)
    system.start()
    try:
        assert gc.get_threshold()[0] == 4_321
    finally:
        system.stop()


@pytest.mark.usefixtures("collector")
def test_freezing_keeps_the_thresholds() -> None:
    gc.unfreeze()
    long_lived = [{"cell": i} for i in range(1000)]
    before = gc.get_threshold()
    freeze_startup_state()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() >= len(long_lived)


@pytest.mark.usefixtures("collector")
def test_a_worker_spaces_out_full_passes_and_keeps_the_young_generation() -> None:
    gc.unfreeze()
    long_lived = [{"zone": i} for i in range(1000)]
    young, middle, _ = gc.get_threshold()
    tune_worker_collector(77)
    assert gc.get_threshold() == (young, middle, 77), "only the full passes wait longer"
    assert gc.get_freeze_count() >= len(long_lived)
