"""A private PostgreSQL + PostGIS cluster under ./var/ for the tests and the benchmarks.

    python -m tools.postgis_cluster install   # install the Debian packages when missing

The cluster listens on 127.0.0.1 only, on a free port, with trust authentication: it is for
tests on one machine, never for data anyone keeps. `start()` first clears whatever a killed run
left behind (a running postmaster or a half-made data directory), so one interrupted run never
breaks the next. initdb refuses to run as root, so as root every server command runs as the
`postgres` user (runuser) on a data directory that user owns.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

PG_VERSION = "15"
PACKAGES = (f"postgresql-{PG_VERSION}", f"postgresql-{PG_VERSION}-postgis-3")
PG_BIN = Path(f"/usr/lib/postgresql/{PG_VERSION}/bin")
POSTGIS_CONTROL = Path(f"/usr/share/postgresql/{PG_VERSION}/extension/postgis.control")
SERVER_USER = "postgres"
SUPERUSER = "postgres"
TEMPLATE = "waystation_template"
START_TIMEOUT_S = 60
REPO = Path(__file__).resolve().parents[1]
VAR = REPO / "var" / "postgis"

FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def missing_packages() -> list[str]:
    """The Debian packages whose files are not there."""
    missing = []
    if not (PG_BIN / "initdb").exists():
        missing.append(PACKAGES[0])
    if not POSTGIS_CONTROL.exists():
        missing.append(PACKAGES[1])
    return missing


def install_command(packages: Sequence[str]) -> str:
    return f"apt-get update && apt-get install -y {' '.join(packages)}"


def install() -> int:
    """Install the packages when missing and root; otherwise say exactly what to install.

    Returns a process exit code: non-zero when PostGIS is still missing under CI=true, where
    the PostGIS half of the suite must run, not be skipped.
    """
    missing = missing_packages()
    if not missing:
        return 0
    if os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
        return 0
    print(
        f"PostGIS tests need {', '.join(missing)}. As root, run:\n    {install_command(missing)}",
        file=sys.stderr,
    )
    return 1 if os.environ.get("CI") == "true" else 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """One throwaway cluster in `root` (var/postgis/<name>); `start()`, `stop()`."""

    def __init__(self, name: str, *, durable: bool = False) -> None:
        self.root = VAR / name
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.durable = durable
        self.port = 0
        self._names = itertools.count(1)

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> Cluster:
        missing = missing_packages()
        if missing:
            raise RuntimeError(f"PostGIS is not installed: {install_command(missing)}")
        self.clear()
        self.root.mkdir(parents=True)
        self.data.mkdir()
        self.log.touch()
        self._own(self.root, self.data, self.log)
        self._server(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        self.port = free_port()
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "max_connections": "100",
            **({} if self.durable else FAST_SETTINGS),
        }
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        self._server(
            "pg_ctl", "start", "-D", str(self.data), "-l", str(self.log), "-w",
            "-t", str(START_TIMEOUT_S),
        )  # fmt: skip
        self._wait_ready()
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        with psycopg.connect(self.dsn(TEMPLATE), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        return self

    def stop(self) -> None:
        """Stop the server and remove its files. Safe to call twice."""
        self.clear()

    def clear(self) -> None:
        """Stop a server left running in `root` (this run's or a killed one's), remove it all."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._server("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # databases -----------------------------------------------------------------------------

    def dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` (psycopg 3)."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.dsn(), autocommit=True)

    def create_database(self, prefix: str = "t") -> str:
        """A new empty database with PostGIS enabled; returns its SQLAlchemy URL."""
        name = f"{prefix}{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.url(name)

    # helpers -------------------------------------------------------------------------------

    def _server(self, program: str, *args: str) -> None:
        command = [str(PG_BIN / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise subprocess.CalledProcessError(
                result.returncode, command, result.stdout, result.stderr + log
            )

    def _own(self, *paths: Path) -> None:
        if os.geteuid() == 0:
            for path in paths:
                shutil.chown(path, SERVER_USER, SERVER_USER)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with self.admin():
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def main(argv: Sequence[str]) -> int:
    if list(argv) == ["install"]:
        return install()
    print("usage: python -m tools.postgis_cluster install", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
