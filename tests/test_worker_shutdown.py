"""A worker stops within its shutdown deadline on a real broker: promptly and cleanly when
nothing holds it, at the deadline when its stop hangs, and at once on a second signal; and
docker-compose gives it longer than that before it kills it."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import yaml

from services.broker_topics import create_topics
from store.unit_of_work import Store
from streams.bounded_worker import OVERRUN_EXIT_CODE
from tests.conftest import settings_for, tiny_city
from tests.kafka_harness import WorkerProcess, broker_settings
from tools.kafka_broker import Cluster
from waystation.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 6.0
EXIT_SLACK_S = 4.0  # a timer thread and process exit, on a busy machine
LONG_DEADLINE_S = 600.0


def _worker(tmp_path: Path, kafka: Cluster, *, deadline_s: float, module: str) -> WorkerProcess:
    base = settings_for(tmp_path / "store")
    settings: Settings = broker_settings(
        base, kafka.bootstrap, worker_shutdown_deadline_seconds=deadline_s
    )
    with Store.open(settings.resolved_database_url).transaction() as tx:
        city = tiny_city(settings)
        tx.stations.upsert_many(city.stations)
        tx.demand.replace(city.demand)
    create_topics(settings)
    return WorkerProcess(settings, tmp_path / "worker.log", module=module)


def test_a_healthy_worker_stops_cleanly_well_before_its_deadline(
    tmp_path: Path, kafka: Cluster
) -> None:
    worker = _worker(tmp_path, kafka, deadline_s=LONG_DEADLINE_S, module="services.cli")
    started = time.monotonic()
    code = worker.stop(timeout_s=LONG_DEADLINE_S)
    took = time.monotonic() - started
    assert code == 0, worker.log()
    assert took < LONG_DEADLINE_S / 10, worker.log()
    assert "exiting, work resumes" not in worker.log()


def test_a_worker_whose_stop_hangs_exits_at_its_deadline(tmp_path: Path, kafka: Cluster) -> None:
    worker = _worker(tmp_path, kafka, deadline_s=DEADLINE_S, module="tests.stuck_worker")
    started = time.monotonic()
    code = worker.stop(timeout_s=DEADLINE_S * 10)
    took = time.monotonic() - started
    assert code == OVERRUN_EXIT_CODE, worker.log()
    assert DEADLINE_S <= took < DEADLINE_S + EXIT_SLACK_S, worker.log()
    assert f"not stopped {DEADLINE_S:g} s after SIGTERM" in worker.log()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"exits with status {OVERRUN_EXIT_CODE} " in readme, "the README gives this status"


def test_a_second_signal_stops_a_hanging_worker_at_once(tmp_path: Path, kafka: Cluster) -> None:
    worker = _worker(tmp_path, kafka, deadline_s=LONG_DEADLINE_S, module="tests.stuck_worker")
    worker.process.send_signal(signal.SIGTERM)
    time.sleep(1.0)  # the first signal's stop is under way, and hangs
    assert worker.process.poll() is None, worker.log()
    started = time.monotonic()
    worker.process.send_signal(signal.SIGINT)
    code = worker.process.wait(timeout=LONG_DEADLINE_S)
    took = time.monotonic() - started
    worker.stop()
    assert code == OVERRUN_EXIT_CODE, worker.log()
    assert took < EXIT_SLACK_S, worker.log()
    assert "SIGINT again: stopping at once" in worker.log()


def test_compose_waits_longer_than_the_workers_deadline() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    default = Settings.model_fields["worker_shutdown_deadline_seconds"].default
    workers = {
        name: service
        for name, service in compose["services"].items()
        if "worker" in str(service.get("command", ""))
    }
    assert workers
    for name, service in workers.items():
        grace = re.fullmatch(r"(\d+)s", str(service.get("stop_grace_period", "10s")))
        assert grace is not None, f"{name}: stop_grace_period in whole seconds"
        variable = "WAYSTATION_WORKER_SHUTDOWN_DEADLINE_SECONDS"
        deadline = float(service["environment"].get(variable, default))
        assert int(grace.group(1)) > deadline, f"{name} is killed before its deadline"
