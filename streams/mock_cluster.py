"""librdkafka's mock cluster as a process of its own: a real Kafka-protocol broker on 127.0.0.1
for tests and benchmarks, without installing Kafka.

The confluent-kafka wheel bundles librdkafka, and librdkafka ships a mock cluster that speaks
the Kafka wire protocol (produce, fetch, consumer groups, offsets, idempotent producers). It
keeps everything in memory and has no CreateTopics over the wire, so topics are created here,
through the C API, on request:

    python -m streams.mock_cluster --topic waystation.alerts:4
    -> prints one line `bootstrap 127.0.0.1:PORT`, then reads commands from stdin:
       `topic NAME PARTITIONS` creates a topic and answers `ok NAME` (or `error NAME CODE`);
       end of input stops the cluster.

Never a production broker: data lives in this process's memory only.
"""

from __future__ import annotations

import argparse
import ctypes
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

ERRSTR_BYTES = 512
READY_TIMEOUT_S = 30.0
REPLICATION_FACTOR = 1
_PRODUCER = 0  # rd_kafka_type_t RD_KAFKA_PRODUCER


def _library_path() -> Path:
    import confluent_kafka

    package = Path(confluent_kafka.__file__).resolve().parent
    found = sorted(package.parent.glob("confluent_kafka.libs/librdkafka*.so*"))
    found += sorted(package.glob("**/librdkafka*.so*"))
    if not found:
        raise FileNotFoundError("librdkafka is not bundled with this confluent-kafka install")
    return found[0]


class _Cluster:
    """The C objects: a client handle that owns a mock cluster of `brokers` brokers."""

    def __init__(self, brokers: int) -> None:
        lib = ctypes.CDLL(str(_library_path()))
        lib.rd_kafka_conf_new.restype = ctypes.c_void_p
        lib.rd_kafka_conf_set.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
        ]
        lib.rd_kafka_new.restype = ctypes.c_void_p
        lib.rd_kafka_new.argtypes = [
            ctypes.c_int,
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_size_t,
        ]
        lib.rd_kafka_mock_cluster_new.restype = ctypes.c_void_p
        lib.rd_kafka_mock_cluster_new.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
        lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_mock_topic_create.restype = ctypes.c_int
        lib.rd_kafka_mock_topic_create.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.rd_kafka_mock_group_initial_rebalance_delay_ms.argtypes = [
            ctypes.c_void_p,
            ctypes.c_int,
        ]
        lib.rd_kafka_mock_cluster_destroy.argtypes = [ctypes.c_void_p]
        lib.rd_kafka_destroy.argtypes = [ctypes.c_void_p]
        self._lib = lib
        errstr = ctypes.create_string_buffer(ERRSTR_BYTES)
        conf = lib.rd_kafka_conf_new()
        lib.rd_kafka_conf_set(conf, b"log_level", b"3", errstr, ERRSTR_BYTES)
        self._rk = lib.rd_kafka_new(_PRODUCER, conf, errstr, ERRSTR_BYTES)
        if not self._rk:
            raise RuntimeError(f"rd_kafka_new failed: {errstr.value.decode()}")
        self._mock = lib.rd_kafka_mock_cluster_new(self._rk, brokers)
        if not self._mock:
            raise RuntimeError("rd_kafka_mock_cluster_new failed")
        # Consumer groups form at once instead of after the broker's usual 3 s delay.
        lib.rd_kafka_mock_group_initial_rebalance_delay_ms(self._mock, 0)
        self.bootstrap: str = lib.rd_kafka_mock_cluster_bootstraps(self._mock).decode()

    def create_topic(self, name: str, partitions: int) -> int:
        """0 on success, else a librdkafka error code."""
        return int(
            self._lib.rd_kafka_mock_topic_create(
                self._mock, name.encode(), partitions, REPLICATION_FACTOR
            )
        )

    def close(self) -> None:
        self._lib.rd_kafka_mock_cluster_destroy(self._mock)
        self._lib.rd_kafka_destroy(self._rk)


def serve(brokers: int, topics: Iterable[tuple[str, int]]) -> None:
    """Run the cluster until stdin closes (the parent exiting closes it too)."""
    cluster = _Cluster(brokers)
    for name, partitions in topics:
        cluster.create_topic(name, partitions)
    print(f"bootstrap {cluster.bootstrap}", flush=True)
    for line in sys.stdin:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "topic":
            code = cluster.create_topic(parts[1], int(parts[2]))
            print(f"ok {parts[1]}" if code == 0 else f"error {parts[1]} {code}", flush=True)
    cluster.close()


class MockCluster:
    """A mock cluster in a child process; a context manager that stops it on exit."""

    def __init__(self, *, brokers: int = 1, topics: Sequence[tuple[str, int]] = ()) -> None:
        command = [sys.executable, "-m", "streams.mock_cluster", "--brokers", str(brokers)]
        for name, partitions in topics:
            command += ["--topic", f"{name}:{partitions}"]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self._lock = threading.Lock()
        self.bootstrap = self._read_bootstrap()

    def _read_bootstrap(self) -> str:
        assert self.process.stdout is not None
        result: list[str] = []
        reader = threading.Thread(
            target=lambda: result.append(self.process.stdout.readline()),  # type: ignore[union-attr]
            daemon=True,
        )
        reader.start()
        reader.join(READY_TIMEOUT_S)
        line = result[0] if result else ""
        if not line.startswith("bootstrap "):
            self.stop()
            raise RuntimeError(f"the mock cluster did not start (said {line!r})")
        return line.split()[1]

    def create_topics(self, topics: Iterable[tuple[str, int]]) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        with self._lock:
            for name, partitions in topics:
                self.process.stdin.write(f"topic {name} {partitions}\n")
                self.process.stdin.flush()
                answer = self.process.stdout.readline().strip()
                if answer != f"ok {name}":
                    raise RuntimeError(f"creating topic {name} failed: {answer!r}")

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=READY_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> MockCluster:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _topic(text: str) -> tuple[str, int]:
    name, _, partitions = text.rpartition(":")
    return name, int(partitions)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.mock_cluster", description=__doc__)
    parser.add_argument("--brokers", type=int, default=1)
    parser.add_argument("--topic", type=_topic, action="append", default=[], help="NAME:PARTS")
    args = parser.parse_args(argv)
    serve(args.brokers, args.topic)
    return 0


if __name__ == "__main__":
    sys.exit(main())
