"""A poison record can never wedge a station: whatever time an event or a stored record
carries, and whatever stored event no longer reads, the station's later events are applied
(also after a restart), and an admin can list the events that failed, with why, and clear
them (HTTP and command line)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from schemas.events import (
    CheckInEvent,
    CheckInPayload,
    CheckInStatus,
    Event,
    HealthCheckEvent,
    HealthCheckPayload,
    VisitEvent,
    VisitPayload,
    VisitSource,
    WorkerKind,
)
from schemas.state import EventStatus, StationRecord
from schemas.stations import Amenity, StationState
from services.cli import app as cli
from services.failed_events import list_failed
from services.system import EmbeddedSystem
from store.repositories import ArchivedEvent
from streams.clock import ManualClock
from streams.ledger import StationLedger
from tests.conftest import T0, load, serve, settings_for, tiny_city
from waystation.settings import Settings

STATION = "T-0001"
NEIGHBOUR = "T-0002"
POISON_TIMES = {
    "year_1": datetime(1, 1, 1, tzinfo=UTC),
    "year_1_east_of_utc": datetime(1, 1, 1, 12, tzinfo=timezone(timedelta(hours=8))),
    "epoch_1970": datetime(1970, 1, 1, tzinfo=UTC),
    "before_earliest": datetime(2019, 12, 31, 23, 59, tzinfo=UTC),
    "far_future": T0 + timedelta(days=2),
    "year_9999": datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
    "year_9999_west_of_utc": datetime(9999, 12, 31, 12, tzinfo=timezone(timedelta(hours=-8))),
}
EVENT_TYPES = ("check_in", "health_check", "visit")


def built_event(kind: str, station_id: str, at: datetime) -> Event:
    """An event made in code: models built without an ingest context judge no time, which is
    how a record of any time can reach the archive (older versions, replays, bugs)."""
    common: dict[str, Any] = {"event_id": uuid.uuid4(), "station_id": station_id, "occurred_at": at}
    if kind == "check_in":
        return CheckInEvent(
            type="check_in",
            payload=CheckInPayload(status=CheckInStatus.closed, seats_available=1),
            **common,
        )
    if kind == "health_check":
        return HealthCheckEvent(
            type="health_check",
            payload=HealthCheckPayload(amenities={Amenity.drinking_water: "out_of_service"}),
            **common,
        )
    return VisitEvent(
        type="visit",
        payload=VisitPayload(worker_kind=WorkerKind.courier, source=VisitSource.qr_scan),
        **common,
    )


def healthy_now(station_id: str, now: datetime) -> list[Event]:
    return [
        CheckInEvent(
            type="check_in",
            event_id=uuid.uuid4(),
            station_id=station_id,
            occurred_at=now,
            payload=CheckInPayload(status=CheckInStatus.open, seats_available=5),
        ),
        HealthCheckEvent(
            type="health_check",
            event_id=uuid.uuid4(),
            station_id=station_id,
            occurred_at=now,
            payload=HealthCheckPayload(
                amenities={Amenity.drinking_water: "ok", Amenity.rest_seats: "ok"}
            ),
        ),
    ]


def archive(system: EmbeddedSystem, events: list[Event], received_at: datetime) -> None:
    with system.store.transaction() as tx:
        tx.events.append([ArchivedEvent.from_event(e, received_at=received_at) for e in events])


def state_of(system: EmbeddedSystem, station_id: str) -> StationState:
    with system.store.transaction() as tx:
        return tx.records.load_all()[station_id].state


def status_of(system: EmbeddedSystem, event_id: str) -> str:
    with system.store.transaction() as tx:
        found = tx.events.get(event_id)
    assert found is not None
    return found.status


def post_json(system: EmbeddedSystem, events: list[Event]) -> list[int]:
    """Through the ingest, as the API posts them (validated against the clock)."""
    items = [e.model_dump(mode="json") for e in events]
    result = system.ingest.handle(items, system.clock.now())
    return [r.status for r in result.results]


@pytest.fixture
def settings_here(tmp_path: Path) -> Settings:
    return settings_for(tmp_path)


def new_system(settings: Settings, clock: ManualClock) -> EmbeddedSystem:
    return EmbeddedSystem(settings, clock=clock, autotick=False, simulate=False)


@pytest.fixture
def stopped_system(settings_here: Settings) -> Iterator[EmbeddedSystem]:
    """A system over the tiny city, not yet started: the test plants its poison first."""
    built = new_system(settings_here, ManualClock(T0))
    load(built, tiny_city(settings_here))
    yield built
    built.stop()


@pytest.mark.parametrize("kind", EVENT_TYPES)
@pytest.mark.parametrize("when", sorted(POISON_TIMES))
def test_a_poison_event_is_set_aside_and_the_station_carries_on(
    stopped_system: EmbeddedSystem, kind: str, when: str
) -> None:
    system = stopped_system
    poison = built_event(kind, STATION, POISON_TIMES[when])
    neighbour = healthy_now(NEIGHBOUR, T0)
    archive(system, [poison, *neighbour], received_at=T0)
    system.start()
    system.runtime.drain()
    assert status_of(system, str(poison.event_id)) == EventStatus.failed
    assert state_of(system, NEIGHBOUR) is StationState.available  # its neighbour applied

    # The station itself takes its next events as if nothing had happened...
    assert post_json(system, healthy_now(STATION, T0 + timedelta(minutes=1))) == [202, 202]
    system.runtime.drain()
    system.runtime.tick()
    assert state_of(system, STATION) is StationState.available

    # ...and the admin sees why the poison failed.
    failed = list_failed(system.store, system.settings, limit=10)
    assert [f.event_id for f in failed] == [str(poison.event_id)]
    assert failed[0].reason.startswith("occurred_at")

    # A restart replays nothing bad and leaves the station working.
    clock = system.clock
    system.stop()
    again = new_system(system.settings, clock)
    again.start()
    try:
        assert post_json(again, healthy_now(STATION, T0 + timedelta(minutes=2))) == [202, 202]
        again.runtime.drain()
        assert state_of(again, STATION) is StationState.available
    finally:
        again.stop()


@pytest.mark.parametrize("fact", ["check_in_at", "health_at"])
@pytest.mark.parametrize("when", sorted(POISON_TIMES))
def test_a_poisoned_stored_record_is_rebuilt_from_its_plausible_facts(
    stopped_system: EmbeddedSystem, fact: str, when: str
) -> None:
    """A record saved with a report of an impossible time (before the plausibility window
    existed) neither raises nor makes every later report stale."""
    system = stopped_system
    facts: dict[str, Any] = {
        "check_in_status": CheckInStatus.closed,
        "check_in_at": T0 - timedelta(minutes=1),
        "health_at": T0 - timedelta(minutes=1),
        "amenities": {Amenity.drinking_water: "out_of_service"},
        fact: POISON_TIMES[when],
    }
    with system.store.transaction() as tx:
        tx.records.save_many([StationRecord(station_id=STATION, **facts)])
    system.start()
    system.runtime.tick()  # the clock passes over the poisoned record without raising
    assert post_json(system, healthy_now(STATION, T0 + timedelta(minutes=1))) == [202, 202]
    system.runtime.drain()
    assert state_of(system, STATION) is StationState.available
    with system.store.transaction() as tx:
        record = tx.records.load_all()[STATION]
    assert record.check_in_at == record.health_at == T0 + timedelta(minutes=1)


def test_a_stored_event_that_no_longer_reads_fails_alone(stopped_system: EmbeddedSystem) -> None:
    system = stopped_system
    good = healthy_now(STATION, T0)
    unreadable = ArchivedEvent.from_event(built_event("visit", STATION, T0), received_at=T0)
    broken_body = unreadable.body.replace('"payload":{', '"payload":{"shoe_size":44,', 1)
    with system.store.transaction() as tx:
        tx.events.append(
            [
                ArchivedEvent.from_event(good[0], received_at=T0),
                ArchivedEvent(**{**vars(unreadable), "body": broken_body}),
                ArchivedEvent.from_event(good[1], received_at=T0),
            ]
        )
    system.start()
    system.runtime.drain()
    assert status_of(system, unreadable.event_id) == EventStatus.failed
    assert state_of(system, STATION) is StationState.available
    failed = list_failed(system.store, system.settings, limit=10)
    assert failed[0].reason == "payload.shoe_size: is not a known field"


def test_an_admin_lists_and_clears_failed_events_over_http_and_the_command_line(
    stopped_system: EmbeddedSystem, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = stopped_system
    poisons = [built_event(k, STATION, POISON_TIMES["year_1"]) for k in EVENT_TYPES]
    other = built_event("check_in", NEIGHBOUR, POISON_TIMES["year_9999"])
    archive(system, [*poisons, other], received_at=T0)
    system.start()
    system.runtime.drain()
    ids = {str(p.event_id) for p in poisons}
    with serve(system) as live:
        listed = live.client.get("/v1/admin/failed-events").json()
        assert listed["total"] == 4
        assert all(e["reason"].startswith("occurred_at") for e in listed["events"])
        mine = live.client.get("/v1/admin/failed-events", params={"station_id": STATION}).json()
        assert {e["event_id"] for e in mine["events"]} == ids
        one = sorted(ids)[0]
        cleared = live.client.delete("/v1/admin/failed-events", params={"event_id": one}).json()
        assert cleared == {"cleared": 1, "event_ids": [one]}
        assert status_of(system, one) == EventStatus.discarded
        assert live.client.get("/v1/admin/failed-events").json()["total"] == 3
        # Clearing names only failed events: an applied one is never touched.
        assert live.client.delete(
            "/v1/admin/failed-events", params={"event_id": str(uuid.uuid4())}
        ).json() == {"cleared": 0, "event_ids": []}
        bad = live.client.get("/v1/admin/failed-events", params={"station_id": "../x"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "station_id"
    system.stop()  # the command line opens the store itself

    monkeypatch.setenv("WAYSTATION_DATA_DIR", str(system.settings.data_dir))
    runner = CliRunner()
    shown = runner.invoke(cli, ["events", "failed", "--station", STATION])
    assert shown.exit_code == 0, shown.output
    assert "2 failed event(s)" in shown.output
    cleared_cli = runner.invoke(cli, ["events", "clear", "--station", STATION])
    assert cleared_cli.exit_code == 0, cleared_cli.output
    assert set(cleared_cli.stdout.split()) >= ids - {one}
    left = runner.invoke(cli, ["events", "failed"])
    assert "1 failed event(s)" in left.output  # the other station's is still there
    assert str(other.event_id) in left.output


# The ledger on its own: any history of reports, of any time the calendar holds, never makes
# the ledger raise, and a station reporting now is always taken at its word.
any_time = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=T0.replace(tzinfo=None), timezones=st.just(UTC)
) | st.sampled_from(list(POISON_TIMES.values()))


@settings(max_examples=200, deadline=None)
@given(history=st.lists(st.tuples(st.sampled_from(EVENT_TYPES), any_time), max_size=8))
def test_no_history_wedges_the_ledger(history: list[tuple[str, datetime]]) -> None:
    settings_ = Settings()
    ledger = StationLedger({}, settings_)
    ledger.register(STATION, T0)
    for kind, at in history:
        status, _ = ledger.on_event(built_event(kind, STATION, at), T0)
        plausible = settings_.earliest_occurred_at <= at <= T0 + timedelta(minutes=5)
        if not plausible:
            assert status is EventStatus.failed
    ledger.on_tick(T0)
    now = T0 + timedelta(seconds=1)
    statuses = [ledger.on_event(e, now)[0] for e in healthy_now(STATION, now)]
    assert statuses == [EventStatus.applied, EventStatus.applied]
    assert ledger.records[STATION].state is StationState.available


def test_the_archive_lists_and_discards_only_failed_events(store: Any) -> None:
    """On both backends: `with_status` and `discard_failed` touch failed events only, by id or
    by station."""
    mine = [built_event("visit", STATION, T0) for _ in range(3)]
    theirs = built_event("visit", NEIGHBOUR, T0)
    applied = built_event("visit", STATION, T0)
    with store.transaction() as tx:
        tx.events.append(
            [ArchivedEvent.from_event(e, received_at=T0) for e in [*mine, theirs, applied]]
        )
        tx.events.mark(
            {str(e.event_id): EventStatus.failed for e in [*mine, theirs]}
            | {str(applied.event_id): EventStatus.applied}
        )
    with store.transaction() as tx:
        assert [e.event_id for e in tx.events.with_status("failed", station_id=STATION)] == [
            str(e.event_id) for e in mine
        ]
        assert tx.events.discard_failed(
            event_ids=[str(mine[0].event_id), str(applied.event_id)]
        ) == [str(mine[0].event_id)]
        assert tx.events.discard_failed(station_id=STATION) == [str(e.event_id) for e in mine[1:]]
    with store.transaction() as tx:
        assert tx.events.count(status="discarded") == 3
        assert tx.events.get(str(applied.event_id)).status == EventStatus.applied
        assert [e.event_id for e in tx.events.with_status("failed")] == [str(theirs.event_id)]
