"""First run stays easy: one key per role, written to a file only its owner can read."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from schemas.auth import Role
from services.auth import issue_key
from store.unit_of_work import Store

DEMO_KEYS_FILE = "demo-keys.json"
OPERATOR_DEMO_STATIONS = 10


def ensure_demo_keys(store: Store, data_dir: Path, now: datetime) -> Path | None:
    """Create the demo keys when the store has no key at all; returns the file written."""
    with store.transaction() as tx:
        if tx.keys.count():
            return None
        stations = [s.station_id for s in tx.stations.list()][:OPERATOR_DEMO_STATIONS]
        districts = tx.stations.districts()
    if not stations:
        return None
    issued = {
        Role.operator: issue_key(
            store, role=Role.operator, now=now, label="demo operator", stations=stations
        ),
        Role.union: issue_key(
            store, role=Role.union, now=now, label="demo union", districts=districts[:1]
        ),
        Role.planner: issue_key(store, role=Role.planner, now=now, label="demo planner"),
        Role.admin: issue_key(store, role=Role.admin, now=now, label="demo admin"),
    }
    document = {
        role.value: {
            "key": key.secret,
            "key_id": key.info.key_id,
            "districts": key.info.districts,
            "stations": key.info.stations,
        }
        for role, key in issued.items()
    }
    path = data_dir / DEMO_KEYS_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)
    return path
