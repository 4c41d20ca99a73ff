"""The persistence layer: repositories, units of work, durability and concurrency, on SQLite and
on PostGIS (the `store` and `url` fixtures run each test once per backend)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, MetaData, Table, select, text
from sqlalchemy.exc import StatementError

from schemas.alerts import Alert, AlertEvidence, AlertKind, AlertStatus
from schemas.events import AmenityState, CheckInStatus, parse_event
from schemas.geography import Boundary, BoundaryLevel, DemandCell
from schemas.state import EventStatus, StationRecord
from schemas.stations import Amenity, Station, StationKind, StationState
from store import unit_of_work
from store.database import create_schema, make_engine
from store.repositories import AppendOutcome, ArchivedEvent, EventArchive, canonical_json
from store.tables import EventRow, UTCDateTime
from store.unit_of_work import Store, StoreBusyError

BEIJING = timezone(timedelta(hours=8))
T0 = datetime(2025, 6, 2, 8, 0, tzinfo=BEIJING)
RECEIVED = datetime(2025, 6, 2, 1, 0, tzinfo=UTC)
THREAD_WAIT_S = 10.0
SHORT_BUSY_TIMEOUT_MS = 200


@pytest.fixture
def url(database_url: str) -> str:
    return database_url


def station(station_id: str, district: str = "Chaoyang", subdistrict: str | None = "Jiuxianqiao"):
    return Station(
        station_id=station_id,
        name=f"Station {station_id}",
        kind=StationKind.warm_station,
        district=district,
        subdistrict=subdistrict,
        lat=39.97,
        lon=116.49,
        capacity=8,
        amenities=(Amenity.drinking_water, Amenity.microwave),
        opening_hours="Mo-Su 08:00-20:00",
        operator="Chaoyang Federation of Trade Unions",
    )


def visit(
    station_id: str = "CY-0001",
    occurred_at: datetime = T0,
    *,
    event_id: str | None = None,
    party_size: int = 1,
    received_at: datetime = RECEIVED,
) -> ArchivedEvent:
    raw = {
        "event_id": event_id or str(uuid.uuid4()),
        "type": "visit",
        "schema_version": 1,
        "station_id": station_id,
        "occurred_at": occurred_at.isoformat(),
        "payload": {"worker_kind": "courier", "source": "qr_scan", "party_size": party_size},
    }
    return ArchivedEvent.from_event(parse_event(json.dumps(raw)), received_at=received_at)


def check_in(station_id: str = "CY-0001", occurred_at: datetime = T0) -> ArchivedEvent:
    raw = {
        "event_id": str(uuid.uuid4()),
        "type": "check_in",
        "station_id": station_id,
        "occurred_at": occurred_at.isoformat(),
        "payload": {"status": "open", "seats_available": 4},
    }
    return ArchivedEvent.from_event(parse_event(json.dumps(raw)), received_at=RECEIVED)


def record(station_id: str, state: StationState = StationState.available) -> StationRecord:
    return StationRecord(
        station_id=station_id,
        check_in_status=CheckInStatus.open,
        check_in_at=T0,
        seats_available=3,
        staffed=True,
        amenities={Amenity.drinking_water: AmenityState.ok, Amenity.wifi: AmenityState.degraded},
        health_at=T0 + timedelta(minutes=5),
        heartbeat_interval_s=300,
        state=state,
        state_since=T0,
        state_reason="open, amenities ok",
    )


def alert(
    subject: str,
    *,
    kind: AlertKind = AlertKind.station_silent,
    status: AlertStatus = AlertStatus.open,
    district: str | None = "Chaoyang",
    updated_minutes: int = 0,
) -> Alert:
    opened = T0 if status is not AlertStatus.pending else None
    return Alert(
        alert_id=f"{kind.value}:{subject}:1",
        kind=kind,
        subject=subject,
        district=district,
        status=status,
        condition_since=T0 - timedelta(minutes=10),
        clear_since=T0 + timedelta(minutes=20) if status is AlertStatus.resolved else None,
        opened_at=opened,
        updated_at=T0 + timedelta(minutes=updated_minutes),
        resolved_at=T0 + timedelta(minutes=25) if status is AlertStatus.resolved else None,
        evidence=AlertEvidence(detail="no heartbeat for 10 minutes", stations=(subject,)),
    )


# --- engine and types -----------------------------------------------------------------------


def test_make_engine_creates_the_directory_and_sets_durable_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "w.db"
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    assert path.parent.is_dir()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    engine.dispose()
    tables = {row[0] for row in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert {
        "stations",
        "events",
        "station_records",
        "alerts",
        "demand_cells",
        "districts",
        "subdistricts",
        "coverage_cells",
        "api_keys",
        "alembic_version",
    } <= tables
    assert {"ux_events_event_id", "ix_events_station_occurred", "ix_events_status_seq"} <= tables


def test_utc_datetime_writes_utc_and_reads_aware_utc(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    table = Table("t", MetaData(), Column("at", UTCDateTime))
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(table.insert(), [{"at": T0}])
        assert conn.execute(text("SELECT at FROM t")).scalar() == "2025-06-02 00:00:00.000000"
        back = conn.execute(select(table.c.at)).scalar_one()
    assert back == T0
    assert back.tzinfo is UTC
    with pytest.raises(StatementError, match="naive"), engine.begin() as conn:
        conn.execute(table.insert(), [{"at": datetime(2025, 6, 2, 8, 0)}])
    engine.dispose()


def test_transaction_rolls_back_on_exception(store: Store) -> None:
    def fail_midway() -> None:
        with store.transaction() as uow:
            uow.stations.upsert_many([station("CY-0001")])
            uow.meta.set("k", "v")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fail_midway()
    with store.transaction() as uow:
        assert uow.stations.count() == 0
        assert uow.meta.get("k") is None


def test_readonly_transaction_reads_a_snapshot_while_a_writer_holds_the_lock(store: Store) -> None:
    with store.transaction() as uow:
        uow.meta.set("k", "old")
    with store.transaction() as writer:
        writer.meta.set("k", "new")
        with store.transaction(readonly=True) as reader:
            assert reader.meta.get("k") == "old"
    with store.transaction(readonly=True) as reader:
        assert reader.meta.get("k") == "new"


def test_writers_queue_for_the_write_lock_and_start_when_it_is_let_go(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store.engine.dialect.name != "sqlite":
        return  # PostgreSQL's writers lock rows, not the database
    holding, let_go = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with store.transaction() as uow:
            uow.meta.set("k", "first")
            holding.set()
            let_go.wait()

    first = threading.Thread(target=hold_the_lock)
    first.start()
    try:
        assert holding.wait(timeout=THREAD_WAIT_S)
        # A writer that cannot have the lock within the busy timeout is told so.
        monkeypatch.setattr(unit_of_work, "SQLITE_BUSY_TIMEOUT_MS", SHORT_BUSY_TIMEOUT_MS)
        with pytest.raises(StoreBusyError), store.transaction() as uow:
            uow.meta.set("k", "never")
        monkeypatch.undo()
        # One that waits starts once the first commits, and sees what it wrote.
        seen: list[str | None] = []

        def write_next() -> None:
            with store.transaction() as uow:
                seen.append(uow.meta.get("k"))
                uow.meta.set("k", "second")

        second = threading.Thread(target=write_next)
        second.start()
        second.join(timeout=SHORT_BUSY_TIMEOUT_MS / 1000)
        assert second.is_alive()  # still queued behind the first
    finally:
        let_go.set()
        first.join(timeout=THREAD_WAIT_S)
    second.join(timeout=THREAD_WAIT_S)
    assert seen == ["first"]
    with store.transaction(readonly=True) as uow:
        assert uow.meta.get("k") == "second"


# --- stations -------------------------------------------------------------------------------


def test_stations_upsert_get_list_and_counts(store: Store) -> None:
    stations = [
        station("CY-0003", subdistrict="Wangjing"),
        station("CY-0001"),
        station("HD-0001", district="Haidian", subdistrict=None),
    ]
    with store.transaction() as uow:
        assert uow.stations.upsert_many(stations) == 3
    with store.transaction() as uow:
        assert uow.stations.count() == 3
        assert uow.stations.get("CY-0001") == stations[1]
        assert uow.stations.get("XX-9") is None
        assert [s.station_id for s in uow.stations.list()] == ["CY-0001", "CY-0003", "HD-0001"]
        assert [s.station_id for s in uow.stations.list(district="Chaoyang")] == [
            "CY-0001",
            "CY-0003",
        ]
        assert [
            s.station_id for s in uow.stations.list(district="Chaoyang", subdistrict="Wangjing")
        ] == ["CY-0003"]
        assert uow.stations.list(district="Nowhere") == []
        assert uow.stations.existing_ids(["CY-0001", "HD-0001", "XX-1", "CY-0001"]) == {
            "CY-0001",
            "HD-0001",
        }
        assert uow.stations.existing_ids([]) == set()
        assert uow.stations.districts() == ["Chaoyang", "Haidian"]

    moved = station("CY-0001", subdistrict="Wangjing").model_copy(update={"capacity": 20})
    with store.transaction() as uow:
        # Replaced whole; a station repeated in one batch counts once, the last one winning.
        assert uow.stations.upsert_many([station("CY-0001"), moved]) == 1
    with store.transaction() as uow:
        assert uow.stations.count() == 3
        assert uow.stations.get("CY-0001") == moved
        assert uow.stations.upsert_many([]) == 0


# --- event archive --------------------------------------------------------------------------


def test_from_event_makes_canonical_body_and_hash() -> None:
    e = visit(event_id="6f1c1a4e-2b51-4d0e-9b7a-0e7f6b1d2c3a")
    assert e.seq is None
    assert e.status == EventStatus.pending
    assert e.type == "visit"
    assert e.occurred_at == T0
    assert e.content_hash == hashlib.sha256(e.body.encode()).hexdigest()
    assert json.loads(e.body)["event_id"] == "6f1c1a4e-2b51-4d0e-9b7a-0e7f6b1d2c3a"
    assert e.body == json.dumps(json.loads(e.body), sort_keys=True, separators=(",", ":"))
    assert visit(event_id=e.event_id).content_hash == e.content_hash
    assert visit(event_id=e.event_id, party_size=2).content_hash != e.content_hash
    assert e.to_event().event_id == uuid.UUID(e.event_id)


def test_append_accepts_new_and_tells_duplicates_from_conflicts(store: Store) -> None:
    a, b = visit(), visit()
    a_changed = visit(event_id=a.event_id, party_size=3)
    with store.transaction() as uow:
        assert uow.events.append([a, b]) == [AppendOutcome.accepted, AppendOutcome.accepted]
    with store.transaction() as uow:
        assert uow.events.append([a, a_changed, visit()]) == [
            AppendOutcome.duplicate,
            AppendOutcome.conflict,
            AppendOutcome.accepted,
        ]
    with store.transaction() as uow:
        stored = uow.events.get(a.event_id)
        assert stored is not None
        assert stored.body == a.body  # the conflicting copy left it untouched
        assert stored.content_hash == a.content_hash
        assert uow.events.count() == 3
        assert uow.events.get(str(uuid.uuid4())) is None
        assert uow.events.append([]) == []


def test_append_judges_repeats_within_one_batch(store: Store) -> None:
    a = visit()
    a_changed = visit(event_id=a.event_id, party_size=2)
    with store.transaction() as uow:
        assert uow.events.append([a, a, a_changed, a]) == [
            AppendOutcome.accepted,
            AppendOutcome.duplicate,
            AppendOutcome.conflict,
            AppendOutcome.duplicate,
        ]
    with store.transaction() as uow:
        assert uow.events.count() == 1
        stored = uow.events.get(a.event_id)
        assert stored is not None
        assert stored.content_hash == a.content_hash


@pytest.mark.parametrize("backend", ["postgis"])  # SQLite's write lock rules the race out
def test_append_when_another_writer_stored_the_id_after_the_lookup(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL under READ COMMITTED can interleave two appends of one id; the insert then
    skips the row and the outcome is decided against what the database holds."""
    x, y = visit(), visit()
    y_changed = visit(event_id=y.event_id, party_size=4)
    z = visit()
    with store.transaction() as uow:
        uow.events.append([x, y])

    real_hashes = EventArchive._hashes
    calls = []

    def blind_first_lookup(self: EventArchive, event_ids):
        calls.append(1)
        return {} if len(calls) == 1 else real_hashes(self, event_ids)

    monkeypatch.setattr(EventArchive, "_hashes", blind_first_lookup)
    with store.transaction() as uow:
        assert uow.events.append([x, y_changed, z, x, y_changed]) == [
            AppendOutcome.duplicate,
            AppendOutcome.conflict,
            AppendOutcome.accepted,
            AppendOutcome.duplicate,
            AppendOutcome.conflict,
        ]
    with store.transaction() as uow:
        assert uow.events.count() == 3
        stored = uow.events.get(y.event_id)
        assert stored is not None
        assert stored.content_hash == y.content_hash


def test_append_refuses_an_unknown_status(store: Store) -> None:
    bad = visit()
    bad = ArchivedEvent(**{**bad.__dict__, "status": "done"})
    with pytest.raises(ValueError, match="unknown event status"), store.transaction() as uow:
        uow.events.append([bad])


def test_visits_after_a_seq_skip_the_other_events_in_ingest_order(store: Store) -> None:
    events = [
        visit("CY-0001"),
        check_in("CY-0001"),
        visit("CY-0002", T0 - timedelta(minutes=3)),
        check_in("CY-0002"),
        visit("CY-0003", T0 + timedelta(minutes=1)),
    ]
    with store.transaction() as uow:
        uow.events.append(events)
    with store.transaction(readonly=True) as uow:
        archived = {e.event_id: e.seq for e in uow.events.after(0)}
        visits = uow.events.visits_after(0)
        assert [v.seq for v in visits] == [archived[events[i].event_id] for i in (0, 2, 4)]
        assert [(v.station_id, v.body) for v in visits] == [
            (events[i].station_id, events[i].body) for i in (0, 2, 4)
        ]
        assert uow.events.visits_after(0, limit=2) == visits[:2]
        assert uow.events.visits_after(visits[1].seq) == visits[2:]
        assert uow.events.visits_after(visits[2].seq) == []


def test_pending_in_ingest_order_and_mark(store: Store) -> None:
    # Ingest order, not event time: the third event occurred first.
    events = [visit(occurred_at=T0 + timedelta(minutes=m)) for m in (5, 1, -30, 2)]
    with store.transaction() as uow:
        uow.events.append(events[:2])
    with store.transaction() as uow:
        uow.events.append(events[2:])
    with store.transaction() as uow:
        pending = uow.events.pending()
        assert [p.event_id for p in pending] == [e.event_id for e in events]
        seqs = [p.seq for p in pending]
        assert all(isinstance(s, int) for s in seqs)
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == 4
        assert [p.event_id for p in uow.events.pending(limit=2)] == [e.event_id for e in events[:2]]
        first = pending[0]
        assert first.occurred_at == T0 + timedelta(minutes=5)
        assert first.occurred_at.tzinfo is UTC
        assert first.received_at == RECEIVED
        assert first.body == events[0].body

        uow.events.mark({events[0].event_id: EventStatus.applied, events[2].event_id: "late"})
        uow.events.mark({})
    with store.transaction() as uow:
        assert [p.event_id for p in uow.events.pending()] == [
            events[1].event_id,
            events[3].event_id,
        ]
        assert uow.events.count() == 4
        assert uow.events.count(status="pending") == 2
        assert uow.events.count(status=EventStatus.applied) == 1
        assert uow.events.count(status="late") == 1
        assert uow.events.count(status="stale") == 0
        late = uow.events.get(events[2].event_id)
        assert late is not None
        assert late.status == "late"
        with pytest.raises(ValueError, match="unknown event status"):
            uow.events.mark({events[1].event_id: "processed"})


def test_count_by_type_since_and_for_station(store: Store) -> None:
    events = [
        visit("CY-0001", T0 - timedelta(hours=9)),  # yesterday, Beijing time
        visit("CY-0001", T0),
        visit("CY-0001", T0 + timedelta(minutes=30)),
        visit("CY-0002", T0 + timedelta(minutes=10)),
        check_in("CY-0001", T0 + timedelta(minutes=1)),
    ]
    with store.transaction() as uow:
        uow.events.append(events)
    midnight = datetime(2025, 6, 2, tzinfo=BEIJING)
    with store.transaction() as uow:
        archive = uow.events
        assert archive.count_by_type_since(midnight) == 4
        assert archive.count_by_type_since(midnight, type="visit") == 3
        assert archive.count_by_type_since(midnight, type="check_in") == 1
        assert archive.count_by_type_since(T0, type="visit") == 3  # inclusive
        assert archive.count_by_type_since(midnight.astimezone(UTC), type="visit") == 3
        assert archive.count_by_type_since(midnight, type="visit", station_ids={"CY-0001"}) == 2
        assert (
            archive.count_by_type_since(midnight, type="visit", station_ids=["CY-0001", "CY-0002"])
            == 3
        )
        assert archive.count_by_type_since(midnight, station_ids=[]) == 0
        assert archive.count_by_type_since(T0 + timedelta(hours=1)) == 0

        recent = archive.for_station("CY-0001")
        assert [e.event_id for e in recent] == [
            events[2].event_id,
            events[4].event_id,
            events[1].event_id,
            events[0].event_id,
        ]
        assert [e.event_id for e in archive.for_station("CY-0001", limit=2)] == [
            events[2].event_id,
            events[4].event_id,
        ]
        assert archive.for_station("CY-0404") == []


def test_durability_events_survive_close_and_reopen(url: str) -> None:
    events = [visit() for _ in range(50)]
    first = Store.open(url)
    with first.transaction() as uow:
        uow.events.append(events)
    first.close()

    second = Store.open(url)
    try:
        with second.transaction() as uow:
            assert uow.events.count() == 50
            assert [e.event_id for e in uow.events.pending(limit=100)] == [
                e.event_id for e in events
            ]
            assert uow.events.append(events[:1]) == [AppendOutcome.duplicate]
    finally:
        second.close()


def test_threads_appending_concurrently_do_not_corrupt_each_other(store: Store) -> None:
    shared = [visit() for _ in range(20)]  # both threads send these: exactly one wins each
    per_thread = {name: [visit() for _ in range(200)] for name in ("a", "b")}
    outcomes: dict[str, list[AppendOutcome]] = {"a": [], "b": []}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(name: str) -> None:
        try:
            start.wait()
            own = per_thread[name]
            for i in range(0, len(own), 20):
                with store.transaction() as uow:
                    outcomes[name] += uow.events.append(own[i : i + 20] + shared[i // 10 :][:2])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    accepted = sum(o == AppendOutcome.accepted for name in outcomes for o in outcomes[name])
    duplicates = sum(o == AppendOutcome.duplicate for name in outcomes for o in outcomes[name])
    assert accepted == 400 + 20
    assert duplicates == 20
    with store.transaction() as uow:
        assert uow.events.count() == 420
        seqs = [e.seq for e in uow.events.pending(limit=1000)]
        assert len(set(seqs)) == 420
        assert seqs == sorted(seqs)


_BODIES = ('{"v":0}', '{"v":1}')
_IDS = [str(uuid.UUID(int=i)) for i in range(6)]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(0, len(_IDS) - 1), st.integers(0, 1)), max_size=8),
        min_size=1,
        max_size=6,
    )
)
def test_archive_property_one_copy_per_id(
    tmp_path: Path, batches: list[list[tuple[int, int]]]
) -> None:
    s = Store.open(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}")
    try:
        first_hash: dict[str, str] = {}
        first_order: list[str] = []
        accepted = 0
        for batch in batches:
            events = [
                ArchivedEvent(
                    seq=None,
                    event_id=_IDS[i],
                    type="visit",
                    station_id=f"CY-{i}",
                    occurred_at=T0 + timedelta(seconds=i),
                    received_at=RECEIVED,
                    body=_BODIES[b],
                    content_hash=hashlib.sha256(_BODIES[b].encode()).hexdigest(),
                    status="pending",
                )
                for i, b in batch
            ]
            with s.transaction() as uow:
                outcomes = uow.events.append(events)
            assert len(outcomes) == len(events)
            for e, outcome in zip(events, outcomes, strict=True):
                if e.event_id not in first_hash:
                    first_hash[e.event_id] = e.content_hash
                    first_order.append(e.event_id)
                    assert outcome == AppendOutcome.accepted
                    accepted += 1
                elif first_hash[e.event_id] == e.content_hash:
                    assert outcome == AppendOutcome.duplicate
                else:
                    assert outcome == AppendOutcome.conflict
        assert accepted == len(first_hash)
        with s.transaction() as uow:
            assert uow.events.count() == len(first_hash)
            stored = uow.events.pending()
            assert [e.event_id for e in stored] == first_order
            assert {e.event_id: e.content_hash for e in stored} == first_hash
    finally:
        s.close()


# --- station records ------------------------------------------------------------------------


def test_records_round_trip_in_utc(store: Store) -> None:
    records = [
        record("CY-0001"),
        record("CY-0002", StationState.closed),
        StationRecord(station_id="CY-0003"),
    ]
    with store.transaction() as uow:
        uow.records.save_many(records)
    with store.transaction() as uow:
        loaded = uow.records.load_all()
    assert loaded == {r.station_id: r for r in records}
    r = loaded["CY-0001"]
    for value in (r.check_in_at, r.health_at, r.state_since):
        assert value is not None
        assert value.tzinfo is not None
        assert value.utcoffset() == timedelta(0)
    assert r.amenities == {
        Amenity.drinking_water: AmenityState.ok,
        Amenity.wifi: AmenityState.degraded,
    }
    assert loaded["CY-0003"].state_since is None

    with store.transaction() as uow:  # upsert by station_id
        uow.records.save_many([record("CY-0001", StationState.silent)])
        uow.records.save_many([])
    with store.transaction() as uow:
        loaded = uow.records.load_all()
        assert len(loaded) == 3
        assert loaded["CY-0001"].state is StationState.silent
        state, since = uow.session.execute(
            text("SELECT state, state_since FROM station_records WHERE station_id='CY-0001'")
        ).one()
        assert state == "silent"
        if uow.session.get_bind().dialect.name == "sqlite":
            assert since == "2025-06-02 00:00:00.000000"  # naive UTC text
        else:
            assert since == datetime(2025, 6, 2, 0, 0, tzinfo=UTC)  # timestamptz


def test_record_texts_decode_to_the_records_and_change_only_with_them(store: Store) -> None:
    records = [record("CY-0001"), record("CY-0002", StationState.closed)]
    with store.transaction() as uow:
        uow.records.save_many(records)
    with store.transaction(readonly=True) as uow:
        before = uow.records.texts()
    assert {sid: StationRecord.model_validate_json(t) for sid, t in before.items()} == {
        r.station_id: r for r in records
    }
    with store.transaction() as uow:
        uow.records.save_many([records[0], record("CY-0002", StationState.silent)])
    with store.transaction(readonly=True) as uow:
        after = uow.records.texts()
    assert after["CY-0001"] == before["CY-0001"], "the same record is stored as the same text"
    assert after["CY-0002"] != before["CY-0002"]
    assert StationRecord.model_validate_json(after["CY-0002"]).state is StationState.silent


def test_record_json_holds_its_times_in_utc_whatever_their_offset(store: Store) -> None:
    local = record("CY-0001")  # times at +08:00
    times = ("check_in_at", "health_at", "state_since")
    in_utc = record("CY-0002").model_copy(
        update={name: getattr(local, name).astimezone(UTC) for name in times}
    )
    with store.transaction() as uow:
        uow.records.save_many([local, in_utc])
    with store.transaction() as uow:
        stored = dict(
            uow.session.execute(text("SELECT station_id, record FROM station_records")).all()
        )
    for station_id in ("CY-0001", "CY-0002"):
        raw = stored[station_id]
        data = raw if isinstance(raw, dict) else json.loads(raw)
        assert data["check_in_at"] == "2025-06-02T00:00:00Z"
        assert data["health_at"] == "2025-06-02T00:05:00Z"
        assert data["state_since"] == "2025-06-02T00:00:00Z"
        assert data["amenities"] == {"drinking_water": "ok", "wifi": "degraded"}


def test_records_refuse_naive_datetimes(store: Store) -> None:
    naive = StationRecord(station_id="CY-0001", check_in_at=datetime(2025, 6, 2, 8))
    with pytest.raises(ValueError, match="naive"), store.transaction() as uow:
        uow.records.save_many([naive])


def test_counts_by_state_has_every_state(store: Store) -> None:
    with store.transaction() as uow:
        assert uow.records.counts_by_state() == dict.fromkeys(StationState, 0)
        uow.records.save_many(
            [
                record("CY-0001"),
                record("CY-0002"),
                record("CY-0003", StationState.degraded),
                record("HD-0001", StationState.closed),
            ]
        )
    with store.transaction() as uow:
        assert uow.records.counts_by_state() == {
            StationState.available: 2,
            StationState.degraded: 1,
            StationState.closed: 1,
            StationState.silent: 0,
        }
        assert uow.records.counts_by_state(station_ids={"CY-0001", "CY-0003", "XX"}) == {
            StationState.available: 1,
            StationState.degraded: 1,
            StationState.closed: 0,
            StationState.silent: 0,
        }
        assert uow.records.counts_by_state(station_ids=[]) == dict.fromkeys(StationState, 0)


# --- alerts ---------------------------------------------------------------------------------


def test_alerts_save_load_and_list(store: Store) -> None:
    open_silent = alert("CY-0001", updated_minutes=5)
    open_zone = alert(
        "872a1072bffffff", kind=AlertKind.zone_underserved, district="Haidian", updated_minutes=9
    )
    pending = alert("CY-0002", status=AlertStatus.pending, updated_minutes=20)
    resolved = alert("CY-0003", status=AlertStatus.resolved, updated_minutes=1)
    with store.transaction() as uow:
        uow.alerts.save_many([open_silent, open_zone, pending, resolved])
    with store.transaction() as uow:
        alerts = uow.alerts
        assert sorted(a.alert_id for a in alerts.load_active()) == sorted(
            [open_silent.alert_id, open_zone.alert_id, pending.alert_id]
        )
        assert alerts.list() == [open_zone, open_silent, resolved]  # pending hidden, newest first
        assert alerts.list(status=AlertStatus.pending) == [pending]
        assert alerts.list(status=AlertStatus.open) == [open_zone, open_silent]
        assert alerts.list(status=AlertStatus.resolved) == [resolved]
        assert alerts.list(kind=AlertKind.station_silent) == [open_silent, resolved]
        assert alerts.list(district="Haidian") == [open_zone]
        assert alerts.list(limit=1) == [open_zone]
        assert alerts.count_open_by_kind() == {
            AlertKind.zone_underserved: 1,
            AlertKind.station_silent: 1,
            AlertKind.station_degraded: 0,
            AlertKind.station_overloaded: 0,
        }
        loaded = alerts.list(status=AlertStatus.resolved)[0]
        assert loaded.resolved_at is not None
        assert loaded.resolved_at.tzinfo is UTC
        assert loaded.evidence == resolved.evidence

    # The pending alert opens: saved again under the same id.
    opened = pending.model_copy(
        update={"status": AlertStatus.open, "opened_at": T0 + timedelta(minutes=21)}
    )
    with store.transaction() as uow:
        uow.alerts.save_many([opened])
        uow.alerts.save_many([])
    with store.transaction() as uow:
        assert uow.alerts.list()[0] == opened
        assert uow.alerts.list(status=AlertStatus.pending) == []
        assert uow.alerts.count_open_by_kind()[AlertKind.station_silent] == 2


def test_count_open_by_kind_empty(store: Store) -> None:
    with store.transaction() as uow:
        assert uow.alerts.count_open_by_kind() == dict.fromkeys(AlertKind, 0)
        assert uow.alerts.load_active() == []
        assert uow.alerts.list() == []


# --- demand, boundaries, meta ---------------------------------------------------------------


def test_demand_replace_load_count(store: Store) -> None:
    cells = [
        DemandCell(cell="8931aa42813ffff", demand_workers=12.5, district="Chaoyang"),
        DemandCell(
            cell="8931aa4280bffff", demand_workers=0.0, district="Chaoyang", subdistrict="Wangjing"
        ),
    ]
    with store.transaction() as uow:
        assert uow.demand.count() == 0
        assert uow.demand.replace(cells) == 2
    with store.transaction() as uow:
        assert uow.demand.count() == 2
        assert uow.demand.load() == sorted(cells, key=lambda c: c.cell)
        assert uow.demand.replace(cells[:1]) == 1
    with store.transaction() as uow:
        assert uow.demand.load() == cells[:1]
        assert uow.demand.replace([]) == 0
        assert uow.demand.count() == 0


def test_boundaries_replace_and_list(store: Store) -> None:
    square = {
        "type": "Polygon",
        "coordinates": [
            [[116.4, 39.9], [116.5, 39.9], [116.5, 40.0], [116.4, 40.0], [116.4, 39.9]]
        ],
    }
    boundaries = [
        Boundary(name="Chaoyang", level=BoundaryLevel.district, geometry=square),
        Boundary(
            name="Wangjing", level=BoundaryLevel.subdistrict, parent="Chaoyang", geometry=square
        ),
        Boundary(
            name="Jiuxianqiao",
            level=BoundaryLevel.subdistrict,
            parent="Chaoyang",
            geometry={"type": "MultiPolygon", "coordinates": [square["coordinates"]]},
        ),
    ]
    # Outlines are stored as MultiPolygons: a Polygon comes back as a one-part MultiPolygon.
    multi = {"type": "MultiPolygon", "coordinates": [square["coordinates"]]}
    stored = [b.model_copy(update={"geometry": multi}) for b in boundaries]
    with store.transaction() as uow:
        assert uow.boundaries.replace(boundaries) == 3
    with store.transaction() as uow:
        assert uow.boundaries.list() == stored
        assert uow.boundaries.list(level=BoundaryLevel.subdistrict) == stored[1:]
        assert uow.boundaries.list(level=BoundaryLevel.district) == stored[:1]
        assert uow.boundaries.replace(boundaries[1:2]) == 1
    with store.transaction() as uow:
        assert uow.boundaries.list() == stored[1:2]
        # One level replaced, the other kept.
        assert uow.boundaries.replace_level(BoundaryLevel.district, boundaries[:1]) == 1
    with store.transaction() as uow:
        assert uow.boundaries.list() == [stored[0], stored[1]]
        with pytest.raises(ValueError, match="not a district"):
            uow.boundaries.replace_level(BoundaryLevel.district, boundaries[1:2])


def test_meta_get_and_set(store: Store) -> None:
    with store.transaction() as uow:
        assert uow.meta.get("sample_city_seed") is None
        uow.meta.set("sample_city_seed", "7")
    with store.transaction() as uow:
        assert uow.meta.get("sample_city_seed") == "7"
        uow.meta.set("sample_city_seed", "8")
    with store.transaction() as uow:
        assert uow.meta.get("sample_city_seed") == "8"


# --- bulk speed -----------------------------------------------------------------------------


def _best_ms(run, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        best = min(best, (time.perf_counter() - start) * 1000)
    return best


def test_bulk_writes_are_fast(store: Store) -> None:
    """Targets are well under 100 ms each; the bound here only catches per-row regressions."""
    batches = iter([[visit(f"CY-{i % 50:04d}") for i in range(1000)] for _ in range(3)])
    records = [record(f"CY-{i:04d}") for i in range(2000)]

    def append() -> None:
        with store.transaction() as uow:
            outcomes = uow.events.append(next(batches))
        assert outcomes.count(AppendOutcome.accepted) == 1000

    def save() -> None:
        with store.transaction() as uow:
            uow.records.save_many(records)

    assert _best_ms(append) < 500
    assert _best_ms(save) < 500
    with store.transaction() as uow:
        assert uow.events.count() == 3000
        assert uow.session.scalar(select(EventRow.seq).order_by(EventRow.seq.desc())) == 3000


def test_the_canonical_text_of_an_event_does_not_change() -> None:
    """The archive keeps a hash of this text: a retry of an event stored by an earlier release
    must hash the same, or it would be refused as a conflict instead of answered duplicate."""
    raw = {
        "event_id": "0F8FAD5B-D9CB-469F-A165-70867728950E",
        "type": "visit",
        "station_id": "CY-0001",
        "occurred_at": "2026-11-21T09:30:00.5+08:00",
        "payload": {
            "worker_kind": "courier",
            "party_size": 2,
            "services_used": ["drinking_water", "legal_aid"],
            "dwell_minutes": 12.5,
            "source": "qr_scan",
            "worker_ref": "骑手-ab12",
        },
    }
    event = parse_event(
        json.dumps(raw, ensure_ascii=False), now=datetime(2026, 11, 21, 2, tzinfo=UTC)
    )
    assert canonical_json(event) == (
        '{"event_id":"0f8fad5b-d9cb-469f-a165-70867728950e",'
        '"occurred_at":"2026-11-21T09:30:00.500000+08:00",'
        '"payload":{"dwell_minutes":12.5,"party_size":2,'
        '"services_used":["drinking_water","legal_aid"],"source":"qr_scan",'
        '"worker_kind":"courier","worker_ref":"骑手-ab12"},'
        '"schema_version":1,"station_id":"CY-0001","type":"visit"}'
    )
