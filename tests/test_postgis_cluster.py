"""The private PostGIS cluster: a cluster left running by a killed run does not break the next
start, and stopping leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import psycopg

from tools.postgis_cluster import Cluster


def running(pid: int) -> bool:
    """Whether a process runs (a zombie left for an absent reaper does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_a_leftover_cluster_is_cleared_and_a_fresh_one_starts(postgis_cluster: Cluster) -> None:
    leftover = Cluster("leftover-check").start()  # as if its run had been killed: never stopped
    old_postmaster = int((leftover.data / "postmaster.pid").read_text().split()[0])
    with psycopg.connect(leftover.dsn(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE only_in_the_old_cluster")

    fresh = Cluster("leftover-check")
    try:
        fresh.start()
        with psycopg.connect(fresh.dsn(), autocommit=True) as conn:
            names = {row[0] for row in conn.execute("SELECT datname FROM pg_database")}
            postgis = conn.execute(
                "SELECT count(*) FROM pg_database WHERE datname = 'waystation_template'"
            ).fetchone()
        assert "only_in_the_old_cluster" not in names
        assert postgis == (1,)
        assert not running(old_postmaster)  # the old server is gone
    finally:
        fresh.stop()
    assert not fresh.root.exists()
