"""docker-compose.yml rehearsed without Docker (CI runs no Docker engine). Every service
built from the image runs its compose `command` with its compose `environment`, in compose's
dependency order, and is waited for with its own health check, against the tests' Kafka (the
version compose runs) and PostGIS. Only what the container network would give is replaced:
the host names `kafka` and `postgis` by the local broker and database, the published ports by
free ones (two workers share this host), and each service's data directory by one of its own
(compose gives each a volume or a container). Then a station reports through the API and its
state, worked out by the workers, comes back through the API."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kafka import KafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from tests.conftest import EventFactory, free_port
from tools.kafka_broker import Cluster as KafkaCluster
from tools.postgis_cluster import Cluster as PostgisCluster

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_BROKER = "kafka:9092"
COMPOSE_PORTS = {"WAYSTATION_API_PORT", "WAYSTATION_WORKER_WEB_PORT"}
HEALTH_TIMEOUT_S = 120.0
HEALTH_POLL_S = 0.5
JOB_TIMEOUT_S = 120.0
STATE_TIMEOUT_S = 60.0
STATIONS_CSV = (
    "station_id,name,kind,district,subdistrict,lon,lat,capacity,amenities,opening_hours,operator\n"
    "C-0001,Rehearsal One,warm_station,Test District,North,116.48,39.95,10,"
    "drinking_water;rest_seats,,Union\n"
)


SERVICES: dict[str, Any] = yaml.safe_load(
    (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
)["services"]


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    """Each service this one waits for, with compose's condition."""
    found = service.get("depends_on") or {}
    if isinstance(found, list):
        return dict.fromkeys(found, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in found.items()}


def _in_start_order(services: dict[str, Any]) -> list[str]:
    """The services built from the image, each after the image services it depends on."""
    built = {name for name, service in services.items() if "build" in service}
    ordered: list[str] = []
    while len(ordered) < len(built):
        ready = sorted(
            name
            for name in built - set(ordered)
            if set(_depends_on(services[name])) & built <= set(ordered)
        )
        assert ready, f"a dependency cycle among {sorted(built - set(ordered))}"
        ordered.extend(ready)
    return ordered


class Rehearsal:
    """The compose services' processes, with the container network's parts replaced."""

    def __init__(self, root: Path, bootstrap: str, database_url: str) -> None:
        self.root = root
        self.bootstrap = bootstrap
        self.database_url = database_url
        self.ports: dict[str, dict[str, int]] = {}  # service -> compose port -> local one
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def environment(self, name: str, service: dict[str, Any]) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("WAYSTATION_")}
        given = {k: str(v) for k, v in (service.get("environment") or {}).items()}
        for key, value in given.items():
            if key == "WAYSTATION_BROKER_URL":
                assert COMPOSE_BROKER in value, value
                given[key] = value.replace(COMPOSE_BROKER, self.bootstrap)
            elif key == "WAYSTATION_DATABASE_URL":
                compose_url, local_url = make_url(value), make_url(self.database_url)
                assert compose_url.drivername == local_url.drivername, "the same driver"
                given[key] = self.database_url
            elif key == "WAYSTATION_DATA_DIR":
                given[key] = str(self.root / name)
            elif key in COMPOSE_PORTS:
                local = free_port()
                self.ports.setdefault(name, {})[value] = local
                given[key] = str(local)
        return base | given

    def command(self, service: dict[str, Any]) -> list[str]:
        """compose's command; `waystation` is the image's entry point, installed here too."""
        command = list(service["command"])
        assert command[0] == "waystation", command
        return [str(Path(sys.executable).parent / "waystation"), *command[1:]]

    def start(self, name: str, service: dict[str, Any]) -> subprocess.Popen[bytes]:
        log = (self.root / f"{name}.log").open("ab")
        process = subprocess.Popen(
            self.command(service),
            env=self.environment(name, service),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-4000:]

    def healthy(self, name: str, service: dict[str, Any]) -> None:
        """Until the service's own health check passes (its ports made local)."""
        test = list(service["healthcheck"]["test"])
        assert test[:2] == ["CMD", "python"], test
        check = [sys.executable, *test[2:]]
        for compose_port, local in self.ports.get(name, {}).items():
            check = [part.replace(f":{compose_port}/", f":{local}/") for part in check]
        deadline = time.monotonic() + HEALTH_TIMEOUT_S
        while subprocess.run(check, capture_output=True, check=False).returncode != 0:
            process = self.processes[name]
            if process.poll() is not None:
                pytest.fail(f"{name} exited ({process.returncode}):\n{self.log(name)}")
            if time.monotonic() > deadline:
                pytest.fail(f"{name} never passed its health check:\n{self.log(name)}")
            time.sleep(HEALTH_POLL_S)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def rehearsed(root: Path, kafka: KafkaCluster, database_url: str) -> Iterator[Rehearsal]:
    """Every image service of docker-compose.yml up, in order, as compose starts them."""
    rehearsal = Rehearsal(root, kafka.bootstrap, database_url)
    jobs = {
        dependency
        for service in SERVICES.values()
        for dependency, condition in _depends_on(service).items()
        if condition == "service_completed_successfully"
    }
    with ExitStack() as stack:
        stack.callback(rehearsal.stop)
        for name in _in_start_order(SERVICES):
            process = rehearsal.start(name, SERVICES[name])
            if name in jobs:
                assert process.wait(timeout=JOB_TIMEOUT_S) == 0, rehearsal.log(name)
            else:
                rehearsal.healthy(name, SERVICES[name])
        yield rehearsal


def _operator(rehearsal: Rehearsal, *args: str) -> str:
    """A command as `docker compose run api waystation ...` runs it: the API's environment."""
    service = SERVICES["api"]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "waystation"), *args],
        env=rehearsal.environment("api", service),
        cwd=rehearsal.root,
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_compose_services_start_in_order_and_serve_a_station(
    tmp_path: Path,
    kafka: KafkaCluster,
    postgis_cluster: PostgisCluster,
    event: EventFactory,
) -> None:
    assert _in_start_order(SERVICES) == ["topics", "api", "worker-1", "worker-2"]
    database_url = postgis_cluster.create_database()
    (tmp_path / "stations.csv").write_text(STATIONS_CSV, encoding="utf-8")
    offline = Rehearsal(tmp_path, kafka.bootstrap, database_url)
    _operator(offline, "stations", "import", str(tmp_path / "stations.csv"))
    created = _operator(offline, "keys", "create", "--role", "admin")
    key = re.search(r"wsk_\S+", created)
    assert key is not None, created

    with rehearsed(tmp_path, kafka, database_url) as rehearsal:
        partitions = int(SERVICES["topics"]["environment"]["WAYSTATION_BROKER_PARTITIONS"])
        admin = KafkaAdminClient(bootstrap_servers=kafka.bootstrap)
        try:
            described = admin.describe_topics(["waystation.events.check_in"])
        finally:
            admin.close()
        assert len(described[0]["partitions"]) == partitions

        api_port = rehearsal.ports["api"]["8000"]
        headers = {"Authorization": f"Bearer {key.group(0)}"}
        now = datetime.now(UTC)
        reports = [
            event("check_in", station_id="C-0001", occurred_at=now),
            event("health_check", station_id="C-0001", occurred_at=now),
        ]
        with httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}", headers=headers, timeout=30
        ) as client:
            posted = client.post("/v1/events", json=reports)
            assert posted.is_success, posted.text
            assert posted.json()["accepted"] == len(reports), posted.text
            deadline = time.monotonic() + STATE_TIMEOUT_S
            while (view := client.get("/v1/stations/C-0001").json())["state"] != "available":
                assert time.monotonic() < deadline, (
                    f"{view}\n{rehearsal.log('worker-1')}\n{rehearsal.log('worker-2')}"
                )
                time.sleep(HEALTH_POLL_S)
        assert view["last_heard_at"] is not None
        deadline = time.monotonic() + STATE_TIMEOUT_S
        while (processed := _processed(rehearsal)) < len(reports):
            assert time.monotonic() < deadline, f"the workers counted {processed}"
            time.sleep(HEALTH_POLL_S)
        assert processed == len(reports)


def _processed(rehearsal: Rehearsal) -> float:
    """Events the workers say they processed, over the port each one's health check reads."""
    total = 0.0
    for name, ports in rehearsal.ports.items():
        if name.startswith("worker"):
            text = httpx.get(f"http://127.0.0.1:{ports['6066']}/metrics", timeout=10).text
            total += sum(
                sample.value
                for family in text_string_to_metric_families(text)
                for sample in family.samples
                if sample.name == "waystation_events_processed_total"
            )
    return total
