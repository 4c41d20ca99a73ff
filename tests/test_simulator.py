"""The simulator gives a fresh install something live: every station opens and reports, and
runs never reuse event ids (a second `make run` must not look like a retry of the first)."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from demo.simulator import HEARTBEAT_INTERVAL_SECONDS, Simulator
from services.system import EmbeddedSystem
from streams.clock import ManualClock


def started(system: EmbeddedSystem, clock: ManualClock) -> Simulator:
    simulator = Simulator(system.runtime, system.settings, clock)
    simulator.start()
    simulator.stop()  # drive it by hand with step()
    return simulator


def test_first_step_opens_every_station_and_reports_health(
    system: EmbeddedSystem, clock: ManualClock
) -> None:
    events = started(system, clock).step(clock.now(), 1.0)
    kinds = Counter((e.type.value, e.station_id) for e in events)
    for station_id in ("T-0001", "T-0002"):
        assert kinds[("check_in", station_id)] == 1
        assert kinds[("health_check", station_id)] == 1


def test_heartbeats_follow_the_interval_and_stations_stay_available(
    system: EmbeddedSystem, clock: ManualClock
) -> None:
    simulator = started(system, clock)
    system.runtime.submit(simulator.step(clock.now(), 1.0))
    heartbeats = 0
    for _ in range(30):  # 30 minutes, a step a minute
        now = clock.advance(timedelta(minutes=1))
        events = simulator.step(now, 60.0)
        heartbeats += sum(e.type.value == "health_check" for e in events)
        system.runtime.submit(events)
    system.runtime.tick()
    expected = 2 * 30 * 60 / HEARTBEAT_INTERVAL_SECONDS
    assert 0.6 * expected <= heartbeats <= 1.2 * expected
    with system.store.transaction() as tx:
        assert tx.events.count(status="pending") == 0
        assert sum(tx.records.counts_by_state().values()) == 2


def test_two_runs_never_share_event_ids(system: EmbeddedSystem, clock: ManualClock) -> None:
    first = {e.event_id for e in started(system, clock).step(clock.now(), 1.0)}
    second = {e.event_id for e in started(system, clock).step(clock.now(), 1.0)}
    assert first
    assert first.isdisjoint(second)
