"""The README is the first thing a user reads: its commands and its settings table stay true."""

from __future__ import annotations

import re
from pathlib import Path

from store.unit_of_work import Store
from tools.postgis_cluster import Cluster
from waystation.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_first_lines_give_the_two_commands() -> None:
    head = "\n".join(README.read_text(encoding="utf-8").splitlines()[:10])
    assert "make run" in head
    assert "make test" in head


def test_configuration_table_lists_exactly_the_settings() -> None:
    documented = set(re.findall(r"^\| `WAYSTATION_([A-Z0-9_]+)`", README.read_text(), re.M))
    known = {name.upper() for name in Settings.model_fields}
    assert documented == known, f"README config table differs: {documented ^ known}"


def test_planner_query_examples_run_on_postgis(postgis_cluster: Cluster) -> None:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", text, re.S)
    examples = [block for block in blocks if "v_underserved_cells" in block]
    assert examples, "the README shows no query on the planner views"
    store = Store.open(postgis_cluster.create_database())
    try:
        with store.engine.connect() as conn:
            for statement in (s for s in examples[0].split(";") if s.strip()):
                conn.exec_driver_sql(statement).fetchall()
    finally:
        store.close()
