"""Visits are counted in a process of its own beside the server: every visit once, while
passes of the server's own run at the same time; the process ends when its stdin closes
(as when the server dies), and one that died is started again."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from demo.sample_city import DISTRICT_NAME, generate_sample_city
from schemas.events import Event, parse_event
from schemas.visit_stats import StatsArea, StatsPeriod
from services.bootstrap import load_city
from services.step_follower import StepFollower
from services.system import EmbeddedSystem
from services.visit_rollup_process import VisitRollupProcess, follow_wakes
from services.visit_stats import visit_stats
from streams.clock import ManualClock
from tests.conftest import T0, settings_for
from tests.served_city import envelope

STATIONS = 20
COUNTED_WITHIN_S = 30.0


@pytest.fixture
def system(tmp_path: Path) -> Iterator[EmbeddedSystem]:
    clock = ManualClock(T0 + timedelta(hours=1))
    running = EmbeddedSystem(
        settings_for(tmp_path, visit_rollups_in_own_process=True),
        clock=clock,
        autotick=False,
        simulate=False,
    )
    load_city(running.store, generate_sample_city(seed=7, stations=STATIONS))
    running.start()
    try:
        yield running
    finally:
        running.stop()


def visits(system: EmbeddedSystem, count: int) -> list[Event]:
    with system.store.transaction(readonly=True) as tx:
        ids = sorted(tx.stations.ids())
    payload = {"worker_kind": "courier", "party_size": 1, "source": "qr_scan"}
    return [
        parse_event(
            json.dumps(
                envelope("visit", ids[i % len(ids)], T0 + timedelta(minutes=i % 50), payload)
            ),
            now=T0 + timedelta(hours=1),
        )
        for i in range(count)
    ]


def counted(system: EmbeddedSystem) -> int:
    stats = visit_stats(
        system.store,
        DISTRICT_NAME,
        "2026-01-01",
        "2026-12-31",
        StatsPeriod.month,
        StatsArea.district,
    )
    return stats.total.visits


def until_counted(system: EmbeddedSystem, expected: int) -> None:
    deadline = time.monotonic() + COUNTED_WITHIN_S
    while counted(system) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert counted(system) == expected


def test_a_server_on_a_file_counts_visits_in_a_process_of_its_own(
    system: EmbeddedSystem,
) -> None:
    counting = system.visit_counting
    assert isinstance(counting, VisitRollupProcess)
    assert counting.pid is not None
    assert counting.pid != os.getpid()
    events = visits(system, 300)
    for start in range(0, len(events), 30):
        system.runtime.submit(events[start : start + 30])
        system.visit_rollups.catch_up()  # the server's own passes race the child's
    system.runtime.drain()
    until_counted(system, len(events))
    time.sleep(1.0)  # the child's next passes find nothing more
    system.visit_rollups.catch_up()
    assert counted(system) == len(events), "a visit was counted twice"


def test_a_child_that_died_is_started_again(system: EmbeddedSystem) -> None:
    counting = system.visit_counting
    assert isinstance(counting, VisitRollupProcess)
    first = counting.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + COUNTED_WITHIN_S
    while counting.pid == first and time.monotonic() < deadline:
        system.runtime.submit(visits(system, 10))  # each processed step looks at the child
        system.runtime.drain()
        time.sleep(0.2)
    assert counting.pid not in (None, first)
    until_counted(system, archived_visits(system))


def archived_visits(system: EmbeddedSystem) -> int:
    with system.store.transaction(readonly=True) as tx:
        return len(tx.events.visits_after(0, limit=10**6))


def test_the_child_ends_when_its_stdin_closes(tmp_path: Path) -> None:
    """What the server's death does to the pipe: the child ends by itself, cleanly."""
    settings = settings_for(tmp_path)
    EmbeddedSystem(settings, autotick=False, simulate=False).store.close()  # a migrated store
    env = {
        **os.environ,
        "WAYSTATION_DATA_DIR": str(settings.data_dir),
        "WAYSTATION_DATABASE_URL": settings.resolved_database_url,
    }
    child = subprocess.Popen(
        [sys.executable, "-m", "services.visit_rollup_process"],
        stdin=subprocess.PIPE,
        env=env,
    )
    assert child.stdin is not None
    child.stdin.write(b"\n")
    child.stdin.flush()
    time.sleep(0.5)
    assert child.poll() is None, "the child ended while its stdin was open"
    child.stdin.close()
    assert child.wait(timeout=COUNTED_WITHIN_S) == 0


def test_a_store_held_in_memory_is_counted_in_a_thread(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, database_url="sqlite://", visit_rollups_in_own_process=True)
    system = EmbeddedSystem(settings, autotick=False, simulate=False)
    try:
        assert isinstance(system.visit_counting, StepFollower)
    finally:
        system.store.close()


def test_wakes_are_paced_and_the_end_of_the_pipe_ends_the_loop() -> None:
    read_end, write_end = os.pipe()
    passes: list[float] = []
    loop = threading.Thread(
        target=follow_wakes, args=(read_end, lambda: passes.append(time.monotonic()), 60.0, 0.3)
    )
    loop.start()
    for _ in range(20):  # a burst of wakes: one or two passes, not twenty
        os.write(write_end, b"\n")
        time.sleep(0.01)
    time.sleep(0.8)
    os.close(write_end)
    loop.join(timeout=5)
    os.close(read_end)
    assert not loop.is_alive()
    assert 2 <= len(passes) <= 4, "one pass at the start, then one or two for the burst"
    assert all(b - a >= 0.29 for a, b in itertools.pairwise(passes))
