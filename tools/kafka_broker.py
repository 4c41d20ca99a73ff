"""A private Apache Kafka broker (or a 3-node cluster) under ./var/ for the tests and benchmarks.

    python -m tools.kafka_broker install        # java and mvn when missing, then the broker jars
    python -m tools.kafka_broker run [--brokers 3] [--port 9092]   # in the foreground

The broker is Kafka itself, fetched from Maven Central with Maven (tools/kafka/pom.xml) into
~/.cache/waystation/kafka-<version>/libs; a second run finds the jars and calls nothing. The
version is KAFKA_VERSION unless WAYSTATION_TEST_KAFKA_VERSION names another (say 4.4.0), so the
same tests can be run against a newer broker; each version keeps jars of its own. Each node
runs in KRaft combined mode (broker and controller in one JVM, no ZooKeeper), listens on
127.0.0.1 only on free ports, and keeps its data in a directory of its own. Topics are never
created automatically, so the tests exercise `waystation topics create` for real.

Like tools/postgis_cluster.py, `start()` first stops and removes whatever a killed run left in
its directory, so one interrupted run never breaks the next. A node can be stopped and started
again on the same ports and data (`stop_node`, `start_node`): the broker-restart tests need it.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

# 3.9.x: Kafka 4.0 removed old protocol versions (KIP-896) that older clients may still send;
# 3.9 keeps them, and the tests prove it with aiokafka < 0.15 (pinned for faust-streaming 0.15)
# and kafka-python 3. docker-compose.yml runs this version too. Another version for a test run:
# WAYSTATION_TEST_KAFKA_VERSION (README, "Distributed runtime on one machine without Docker").
KAFKA_VERSION = "3.9.2"
VERSION_ENV = "WAYSTATION_TEST_KAFKA_VERSION"
PACKAGES = ("openjdk-17-jre-headless", "maven")
REPO = Path(__file__).resolve().parents[1]
POM = REPO / "tools" / "kafka" / "pom.xml"
LOG4J = REPO / "tools" / "kafka" / "log4j.properties"
LOG4J2 = REPO / "tools" / "kafka" / "log4j2.properties"  # read by 4.x only
VAR = REPO / "var" / "kafka"
MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
COMPLETE_MARKER = ".complete"
PID_FILE = "broker.pid"

HEAP = "-Xmx512m"
NODE_HEAP = "-Xmx384m"  # each of a 3-node cluster's JVMs
START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30
FORMAT_TIMEOUT_S = 120
READY_POLL_S = 0.25
PROBE_TIMEOUT_MS = 5000
MAX_INTERNAL_REPLICAS = 3  # of Kafka's own topics (group offsets, transactions)

# Settings for a broker that tests start and throw away: fast group forming, short timeouts
# allowed, small internal topics, and no topic made behind our back.
TEST_SETTINGS = {
    "auto.create.topics.enable": "false",
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "1000",
    "offsets.topic.num.partitions": "8",
    "transaction.state.log.num.partitions": "4",
    "num.network.threads": "2",
    "num.io.threads": "4",
    "log.segment.bytes": str(64 * 1024 * 1024),
    "log.cleaner.dedupe.buffer.size": str(8 * 1024 * 1024),
    "log.cleaner.backoff.ms": "1000",
    "log.retention.check.interval.ms": "60000",
    "controlled.shutdown.enable": "true",
}


def kafka_version() -> str:
    """The Kafka version to fetch and run: KAFKA_VERSION unless the environment names another."""
    return os.environ.get(VERSION_ENV, "").strip() or KAFKA_VERSION


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "waystation" / f"kafka-{kafka_version()}"


def libs_dir() -> Path:
    return cache_root() / "libs"


def missing_packages() -> list[str]:
    """The Debian packages whose programs are not on PATH."""
    return [
        package
        for package, program in zip(PACKAGES, ("java", "mvn"), strict=True)
        if shutil.which(program) is None
    ]


def install_command(packages: Sequence[str]) -> str:
    return f"apt-get update && apt-get install -y {' '.join(packages)}"


def jars_present() -> bool:
    return (libs_dir() / COMPLETE_MARKER).exists()


def fetch_jars() -> Path:
    """The broker's jars, fetched once: mvn copies them into a scratch directory that is moved
    into place only when complete, so an interrupted download is never taken for the jars."""
    libs = libs_dir()
    if jars_present():
        return libs
    if shutil.which("mvn") is None:
        raise RuntimeError(f"Maven is not installed: {install_command(['maven'])}")
    libs.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="libs-", dir=libs.parent))
    try:
        print(f"fetching Kafka {kafka_version()} from Maven Central into {libs}", file=sys.stderr)
        subprocess.run(
            [
                "mvn", "-q", "-B", "-Dstyle.color=never", "-f", str(POM),
                "dependency:copy-dependencies",
                f"-Dkafka.version={kafka_version()}",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={scratch}",
            ],
            check=True,
            capture_output=True,  # quiet unless it fails (the error carries its output)
            text=True,
        )  # fmt: skip
        (scratch / COMPLETE_MARKER).touch()
        shutil.rmtree(libs, ignore_errors=True)
        scratch.rename(libs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return libs


def install() -> int:
    """Install java and mvn when missing and root, then fetch the jars; otherwise say exactly
    what to install. Returns a process exit code: non-zero when the broker still cannot run
    under CI=true, where the distributed tests must run, not be skipped."""
    missing = missing_packages()
    if missing and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
        missing = missing_packages()
    if missing:
        print(
            f"The Kafka tests need {', '.join(missing)}. As root, run:\n"
            f"    {install_command(missing)}",
            file=sys.stderr,
        )
        return 1 if os.environ.get("CI") == "true" else 0
    try:
        fetch_jars()
    except subprocess.CalledProcessError as exc:
        print(f"Fetching the Kafka broker failed: {exc}\n{exc.stdout}{exc.stderr}", file=sys.stderr)
        return 1 if os.environ.get("CI") == "true" else 0
    except (RuntimeError, OSError) as exc:
        print(f"Fetching the Kafka broker failed: {exc}", file=sys.stderr)
        return 1 if os.environ.get("CI") == "true" else 0
    return 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def new_cluster_id() -> str:
    """Kafka's own form: 16 random bytes, URL-safe base64 without padding. Like Kafka's
    `Uuid.randomUuid`, never one starting with "-", which the storage tool would read as an
    option."""
    while True:
        found = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not found.startswith("-"):
            return found


@dataclass
class Node:
    """One KRaft node (broker and controller in one JVM) with its ports and directory."""

    node_id: int
    root: Path
    port: int
    controller_port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def config(self) -> Path:
        return self.root / "server.properties"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def console(self) -> Path:
        return self.root / "console.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Cluster:
    """Throwaway Kafka nodes in `root` (var/kafka/<name>); `start()`, `stop()`."""

    def __init__(self, name: str, *, nodes: int = 1, port: int | None = None) -> None:
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.root = VAR / name
        self.size = nodes
        self.first_port = port
        self.cluster_id = ""
        self.nodes: list[Node] = []

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> Cluster:
        missing = missing_packages()
        if missing:
            raise RuntimeError(f"Kafka needs java and mvn: {install_command(missing)}")
        self.libs = fetch_jars()
        self.clear()
        self.root.mkdir(parents=True)
        self.cluster_id = new_cluster_id()
        self.nodes = [
            Node(
                node_id=i + 1,
                root=self.root / f"node-{i + 1}",
                port=self.first_port if (self.first_port and i == 0) else free_port(),
                controller_port=free_port(),
            )
            for i in range(self.size)
        ]
        for node in self.nodes:
            node.root.mkdir()
            node.config.write_text(self._properties(node), encoding="utf-8")
        formatting = [self._format(node) for node in self.nodes]
        for node, process in zip(self.nodes, formatting, strict=True):
            self._check_formatted(node, process)
        for node in self.nodes:
            self._launch(node)
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every node and remove the files. Safe to call twice."""
        self.clear()

    def clear(self) -> None:
        """Stop nodes left running in `root` (this run's or a killed one's), remove it all."""
        # The data goes too, so there is nothing to shut down cleanly: SIGKILL is immediate,
        # where controlled shutdowns of the last nodes would wait for a quorum already gone.
        for node in self.nodes:
            self.stop_node(node.node_id, kill=True)
        if self.root.exists():
            for pid_file in self.root.glob(f"*/{PID_FILE}"):
                _kill_stale(pid_file)
        shutil.rmtree(self.root, ignore_errors=True)

    def stop_node(self, node_id: int, *, kill: bool = False) -> None:
        """Stop one node, keeping its data: SIGTERM (a controlled shutdown) then, if it
        hangs, SIGKILL; `kill=True` goes straight to SIGKILL, as a crash would."""
        node = self.node(node_id)
        process = node.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        node.process = None
        with contextlib.suppress(FileNotFoundError):
            (node.root / PID_FILE).unlink()

    def start_node(self, node_id: int) -> None:
        """Start a stopped node again on its ports and data; returns once it serves."""
        node = self.node(node_id)
        if node.running:
            return
        self._launch(node)
        self.wait_ready()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # clients -------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        """Every node's address, as clients take it (host:port,host:port)."""
        return ",".join(node.address for node in self.nodes)

    @property
    def url(self) -> str:
        """The broker URL the way WAYSTATION_BROKER_URL takes it."""
        return f"kafka://{self.bootstrap}"

    def delete_topics(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Delete every topic but Kafka's own (`__consumer_offsets`), so that tests sharing
        one broker each start from no topics; returns once the broker lists none of them."""
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                left = [name for name in admin.list_topics() if not name.startswith("__")]
                if not left:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"topics not deleted: {left}")
                with contextlib.suppress(KafkaError):
                    admin.delete_topics(left)
                time.sleep(READY_POLL_S)
        finally:
            admin.close()

    def node(self, node_id: int) -> Node:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KeyError(f"no node {node_id}")

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Until every running node answers a metadata request that lists all running nodes
        as brokers: only then can topics be made with their replicas."""
        deadline = time.monotonic() + timeout_s
        running = [node for node in self.nodes if node.running]
        wanted = {node.node_id for node in running}
        last = "no answer yet"
        while True:
            for node in self.nodes:
                if node.process is not None and node.process.poll() is not None:
                    raise RuntimeError(
                        f"Kafka node {node.node_id} exited ({node.process.returncode}):\n"
                        f"{_tail(node.console)}{_tail(node.log)}"
                    )
            try:
                seen = [_brokers(node.address) for node in running]
                if all(found == wanted for found in seen):
                    return
                last = f"brokers seen: {seen}, wanted {sorted(wanted)}"
            except OSError as exc:
                last = str(exc)
            if time.monotonic() > deadline:
                raise TimeoutError(f"Kafka did not become ready: {last}\n{_tail(running[0].log)}")
            time.sleep(READY_POLL_S)

    # helpers -------------------------------------------------------------------------------

    def _properties(self, node: Node) -> str:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in self.nodes)
        replicas = min(self.size, MAX_INTERNAL_REPLICAS)
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(node.data),
            "num.partitions": "1",
            "default.replication.factor": "1",
            "offsets.topic.replication.factor": str(replicas),
            "transaction.state.log.replication.factor": str(replicas),
            "transaction.state.log.min.isr": "1",
            **TEST_SETTINGS,
        }
        return "".join(f"{key}={value}\n" for key, value in settings.items())

    def _java(self, node: Node, main: str, *args: str, heap: str) -> list[str]:
        return [
            "java",
            heap,
            "-XX:+UseG1GC",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{LOG4J}",
            f"-Dlog4j2.configurationFile={LOG4J2}",
            f"-Dkafka.logs.dir={node.root}",
            "-cp",
            f"{self.libs}/*",
            main,
            *args,
        ]

    def _heap(self) -> str:
        return HEAP if self.size == 1 else NODE_HEAP

    def _format(self, node: Node) -> subprocess.Popen[bytes]:
        command = self._java(
            node,
            STORAGE_TOOL,
            "format",
            "-t",
            self.cluster_id,
            "-c",
            str(node.config),
            "--ignore-formatted",
            heap=self._heap(),
        )
        with node.console.open("ab") as out:
            return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def _check_formatted(self, node: Node, process: subprocess.Popen[bytes]) -> None:
        try:
            code = process.wait(timeout=FORMAT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = -1
        if code != 0:
            raise RuntimeError(
                f"formatting Kafka node {node.node_id} failed ({code}):\n{_tail(node.console)}"
            )

    def _launch(self, node: Node) -> None:
        command = self._java(node, MAIN_CLASS, str(node.config), heap=self._heap())
        with node.console.open("ab") as out:
            node.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        (node.root / PID_FILE).write_text(str(node.process.pid), encoding="utf-8")


def _brokers(address: str) -> set[int]:
    """The broker ids a node's metadata answer lists (empty while it is still starting)."""
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=address,
            request_timeout_ms=PROBE_TIMEOUT_MS,
            bootstrap_timeout_ms=PROBE_TIMEOUT_MS,
        )
    except KafkaError as exc:
        raise OSError(f"{address}: {exc}") from exc
    try:
        described = admin.describe_cluster()
    except KafkaError as exc:
        raise OSError(f"{address}: {exc}") from exc
    finally:
        admin.close()
    return {int(broker["broker_id"]) for broker in described["brokers"]}


def _kill_stale(pid_file: Path) -> None:
    """SIGKILL a node a killed run left behind, if that pid is still a Kafka of this root."""
    try:
        pid = int(pid_file.read_text(encoding="utf-8"))
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if MAIN_CLASS.encode() in command and str(pid_file.parent).encode() in command:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(READY_POLL_S)


def _tail(path: Path, chars: int = 3000) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


def run(nodes: int, port: int | None, name: str) -> int:
    """Run a cluster in the foreground until SIGINT or SIGTERM, then stop it."""
    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))
    with Cluster(name, nodes=nodes, port=port) as cluster:
        print(f"Kafka {kafka_version()} ready: WAYSTATION_BROKER_URL={cluster.url}", flush=True)
        while not stopping and all(node.running for node in cluster.nodes):
            time.sleep(READY_POLL_S)
    return 0


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.kafka_broker")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="install java and mvn when missing, fetch the jars")
    commands.add_parser("fetch", help="fetch the broker jars into the cache")
    running = commands.add_parser("run", help="run a broker in the foreground until Ctrl-C")
    running.add_argument("--brokers", type=int, default=1, help="nodes (3 for replication)")
    running.add_argument("--port", type=int, default=None, help="first node's port (free one)")
    running.add_argument("--name", default="local", help="directory under var/kafka/")
    args = parser.parse_args(argv)
    if args.command == "install":
        return install()
    if args.command == "fetch":
        print(fetch_jars())
        return 0
    return run(args.brokers, args.port, args.name)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
