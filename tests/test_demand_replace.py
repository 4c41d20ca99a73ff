"""Replacing the demand layer live: access scores follow at once (2SFCA supply ratios depend
on demand), and a layer on the wrong grid is refused."""

from __future__ import annotations

import h3
import pytest

from tests.conftest import CELL_DEMAND_WORKERS, DISTRICT, EventFactory, LiveServer


def access_scores(live: LiveServer) -> dict[str, float]:
    features = live.client.get("/v1/coverage").json()["features"]
    return {f["id"]: f["properties"]["access_score"] for f in features}


def demand_rows(live: LiveServer, workers: float) -> list[dict[str, object]]:
    cells = live.system.runtime.demand.demand
    return [{"cell": c, "demand_workers": workers, "district": DISTRICT} for c in sorted(cells)]


def test_doubling_demand_halves_access(live: LiveServer, event: EventFactory) -> None:
    live.client.post("/v1/events", json=[event("check_in", s) for s in ("T-0001", "T-0002")])
    live.system.runtime.drain()
    before = access_scores(live)
    assert any(score > 0 for score in before.values())

    answer = live.client.put("/v1/demand", json=demand_rows(live, 2 * CELL_DEMAND_WORKERS))
    assert answer.status_code == 200, answer.text
    assert answer.json()["cells"] == len(before)
    after = access_scores(live)
    for cell, score in before.items():
        assert after[cell] == pytest.approx(score / 2, rel=1e-5, abs=1e-6)
    with live.system.store.transaction() as tx:
        assert {c.demand_workers for c in tx.demand.load()} == {2 * CELL_DEMAND_WORKERS}


def test_demand_on_the_wrong_grid_is_refused(live: LiveServer) -> None:
    rows = demand_rows(live, 1.0)
    rows[0]["cell"] = h3.cell_to_parent(str(rows[0]["cell"]), 8)
    answer = live.client.put("/v1/demand", json=rows)
    assert answer.status_code == 422
    assert "resolution 8" in answer.json()["detail"]
    negative = demand_rows(live, 1.0)
    negative[1]["demand_workers"] = -3
    answer = live.client.put("/v1/demand", json=negative)
    assert answer.status_code == 422
    assert any(e["field"].endswith("demand_workers") for e in answer.json()["errors"])
    with live.system.store.transaction() as tx:
        assert {c.demand_workers for c in tx.demand.load()} == {CELL_DEMAND_WORKERS}
