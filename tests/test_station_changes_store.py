"""The registry's audit log, QR poster generations and mobile units' stops on both backends."""

from __future__ import annotations

from datetime import timedelta

import pytest

from schemas.lifecycle import StationAction
from schemas.mobile import MobileStop
from schemas.stations import StationKind
from store.unit_of_work import Store
from tests.conftest import CENTRE, T0, make_station

BURST_STATIONS = 2_345  # over two pages of the log


def test_every_write_is_a_versioned_audited_change(store: Store) -> None:
    first = make_station("A-1", *CENTRE)
    moved = first.model_copy(update={"lat": CENTRE[0] + 0.01, "capacity": 30})
    with store.transaction() as tx:
        made = tx.station_changes.write([first], actor="admin key k1", at=T0)
        assert tx.station_changes.write([first], actor="again", at=T0) == []  # no change
    with store.transaction() as tx:
        made += tx.station_changes.write([moved], actor="admin key k2", at=T0 + timedelta(1))
    with store.transaction() as tx:
        made.append(tx.station_changes.retire("A-1", actor="cli", at=T0 + timedelta(2)))
        assert tx.stations.get("A-1") is None
        with pytest.raises(KeyError):
            tx.station_changes.retire("A-1", actor="cli", at=T0)
    with store.transaction() as tx:
        made.append(tx.station_changes.reactivate("A-1", actor="cli", at=T0 + timedelta(3)))
        assert tx.stations.get("A-1") == moved
    seqs = [seq for seq, _ in made]
    assert seqs == sorted(seqs)
    with store.transaction() as tx:
        history = tx.station_changes.history("A-1")
        assert [c.action for c in history] == [
            StationAction.created,
            StationAction.updated,
            StationAction.retired,
            StationAction.reactivated,
        ]
        assert [c.version for c in history] == [1, 2, 3, 4]
        assert history[1].old == first
        assert history[1].new == moved
        assert history[1].changed_fields == ("capacity", "lat")
        assert history[1].actor == "admin key k2"
        assert history[2].at == T0 + timedelta(2)
        assert [c for _, c in tx.station_changes.after(seqs[1])] == history[2:]
        assert tx.station_changes.last_seq() == seqs[-1]


def test_poster_generations_and_stops_are_kept(store: Store) -> None:
    stop = MobileStop(name="A", lat=CENTRE[0], lon=CENTRE[1], start=T0, end=T0 + timedelta(hours=3))
    bus = make_station("BUS-1", *CENTRE, kind=StationKind.mobile_unit, stops=(stop,))
    with store.transaction() as tx:
        tx.stations.upsert_many([bus])
        assert tx.scan_tokens.generation("BUS-1") == 1
        assert tx.scan_tokens.rotate("BUS-1", T0) == 2
    with store.transaction() as tx:
        assert tx.scan_tokens.rotate("BUS-1", T0) == 3
        assert tx.stations.get("BUS-1") == bus
        assert tx.stations.get("BUS-1").stops[0].start == T0


def test_a_burst_larger_than_a_page_is_followed_whole(store: Store) -> None:
    """An import of more stations than one page of the log holds: `all_after` returns every
    change, in order, and nothing after the last."""
    count = BURST_STATIONS
    stations = [make_station(f"B-{i:05d}", CENTRE[0] + i * 1e-5, CENTRE[1]) for i in range(count)]
    with store.transaction() as tx:
        made = tx.station_changes.write(stations, actor="import", at=T0)
    with store.transaction(readonly=True) as tx:
        assert len(tx.station_changes.after(0)) < count, "the burst spans pages"
        followed = tx.station_changes.all_after(0)
        assert [seq for seq, _ in followed] == [seq for seq, _ in made]
        assert tx.station_changes.all_after(made[-1][0]) == []
