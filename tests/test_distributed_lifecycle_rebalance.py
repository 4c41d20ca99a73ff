"""Station lifecycle across a rebalance on the real broker: registry changes (moves, seats
changes, retirements, a reactivation, a new station) made while one worker, then two, then
the survivor of a SIGKILL own the station partitions give the embedded runtime's records,
alerts and coverage, and every acknowledged event is archived once.

A registry change reaches only the worker that owns the station's partition (its message on
the changes topic); the others keep the definition they had until they read the log in the
store. So the traps are set while two workers share the partitions: each station is moved and
loses seats after the last tick (at which every worker reads the log), one change set on each
partition. Then the worker that joined dies, and the first one takes its partition back:
stations it last saw, and worked out supply ratios for, before the other changed them. It
hears from them before any tick. A survivor that kept the old definitions judges the visits
against the old seats (no overload alert), puts a station's coverage back in cells it left,
or counts its old supply ratio in the cells' 2SFCA access. Last, a station retired with an
alert open stays on the ticks until the alert resolves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geo.catchment import CircleCatchments
from geo.grid import Grid
from schemas.stations import Station
from streams import topics as t
from streams.clock import ManualClock
from tests.conftest import CENTRE, EventFactory, make_station, minutes, settings_for
from tests.kafka_harness import Wire, WorkerProcess, broker_settings
from tests.runtimes import Distributed, Embedded, RegistryWrite
from tests.test_distributed_parity import sequence
from tools.kafka_broker import Cluster
from waystation.settings import Settings

PARTITIONS = 2  # one station partition for each of two workers: T-0001 on 0, T-0002 on 1
WORKERS = 2
T2_EAST_DEG = 0.06  # T-0002 of the tiny city, 5 km east of T-0001
MOVE_EAST_DEG = 0.0035  # ~300 m at Beijing's latitude: T-0001's catchment leaves a zone
T1_MOVE_DEG = (0.005, -0.001)  # ~560 m north, and a little west: it leaves another
T2_MOVE_WEST_DEG = 0.008  # ~680 m: T-0002's catchment leaves a zone
T3_EAST_DEG = 0.03  # a new station halfway between: no catchment overlaps another
FEWER_SEATS = 4  # from 10: 4 visitors per seat, so more than 16 visits overload it
VISITS = 20  # over 4 seats' limit (16), under 10 seats' (40)
# 2SFCA: 10 seats give every catchment here more access than this, 4 seats where the traps
# move the stations give less, so a supply ratio from before the change shows as coverage.
MIN_ACCESS_SEATS_PER_WORKER = 0.04
STALLED_RECOVERY = "No event received for active tp"  # Faust: a table's changelog never came


def zones_reached(settings: Settings, station: Station) -> set[str]:
    grid = Grid(settings.grid_resolution, settings.zone_resolution)
    cells = CircleCatchments(grid, settings.catchment_radius_m).cells(station.lat, station.lon)
    return {grid.zone_of(cell) for cell in cells}


def station_partitions(wire: Wire) -> list[set[int]]:
    """The partitions of the changes topic each member of the stable group was given."""
    group = wire.settings.worker_app_id
    found = wire.admin.describe_groups([group])[group]
    return [
        {
            partition
            for assigned in member["member_assignment"]["assigned_partitions"]
            if assigned["topic"] == t.STATION_CHANGES
            for partition in assigned["partitions"]
        }
        for member in found["members"]
    ]


def test_registry_changes_survive_a_worker_joining_and_one_dying(
    tmp_path: Path, kafka: Cluster, clock: ManualClock, event: EventFactory
) -> None:
    def settings_in(path: Path) -> Settings:
        return settings_for(path, min_access_seats_per_worker=MIN_ACCESS_SEATS_PER_WORKER)

    embedded = Embedded(settings_in(tmp_path / "embedded"), clock)
    settings = broker_settings(
        settings_in(tmp_path / "distributed"), kafka.bootstrap, broker_partitions=PARTITIONS
    )
    distributed = Distributed(settings, clock, tmp_path / "worker-1.log")
    first = distributed.worker
    second: WorkerProcess | None = None
    both = (embedded, distributed)
    sent: list[dict[str, Any]] = []

    t1 = make_station("T-0001", *CENTRE)
    t1_moved = t1.model_copy(update={"lon": t1.lon + MOVE_EAST_DEG})
    t1_trap = t1_moved.model_copy(
        update={"lat": t1.lat + T1_MOVE_DEG[0], "lon": t1_moved.lon + T1_MOVE_DEG[1]}
    )
    t2 = make_station("T-0002", CENTRE[0], CENTRE[1] + T2_EAST_DEG)
    t2_trap = t2.model_copy(update={"lon": t2.lon - T2_MOVE_WEST_DEG})
    t3 = make_station("T-0003", CENTRE[0], CENTRE[1] + T3_EAST_DEG, capacity=FEWER_SEATS)
    for before, after in ((t1, t1_moved), (t1_moved, t1_trap), (t2, t2_trap)):
        assert zones_reached(settings, before) - zones_reached(settings, after), after
    assert t.partition_for("T-0001", PARTITIONS) != t.partition_for("T-0002", PARTITIONS)

    def post(items: list[dict[str, Any]]) -> None:
        embedded.post(items)
        answer = distributed.ingest.handle(items, clock.now())
        assert answer.accepted == len(items), answer
        distributed.wire.drain()
        sent.extend(items)

    def change(write: RegistryWrite) -> None:
        for runtime in both:
            runtime.change(write)

    def write(station: Station) -> None:
        change(lambda log, at: log.write([station], actor="admin", at=at))

    def tick_after(n: float) -> None:
        clock.advance(minutes(n))
        for runtime in both:
            runtime.tick()

    def heartbeat(*station_ids: str) -> None:
        post([event("health_check", station_id=s) for s in station_ids])

    def check_in(status: str, *station_ids: str) -> None:
        post([event("check_in", station_id=s, payload={"status": status}) for s in station_ids])

    try:
        # One worker owns every partition.
        check_in("open", "T-0001", "T-0002")
        heartbeat("T-0001", "T-0002")
        tick_after(1)
        write(t1_moved)
        change(lambda log, at: log.retire("T-0002", actor="admin", at=at))
        heartbeat("T-0001")
        tick_after(6)  # T-0002's zone goes underserved
        change(lambda log, at: log.reactivate("T-0002", actor="admin", at=at))
        check_in("open", "T-0002")
        heartbeat("T-0001", "T-0002")
        tick_after(6)

        # Two share them, one station partition each.
        second = WorkerProcess(settings, tmp_path / "worker-2.log")
        distributed.wire.wait_for_members(WORKERS, [first, second])
        owned = station_partitions(distributed.wire)
        assert sorted(map(sorted, owned)) == [[0], [1]], owned
        heartbeat("T-0001", "T-0002")
        tick_after(1)  # both workers read the log: each knows every station as it is now
        for trap in (t1_trap, t2_trap):  # one worker applies each, the other does not
            write(trap)
            write(trap.model_copy(update={"capacity": FEWER_SEATS}))
        heartbeat("T-0001", "T-0002")

        # The one that joined dies: the first takes its partition back, and hears from that
        # station before any tick.
        second.kill()
        distributed.wire.wait_for_members(WORKERS - 1, [first, second])
        post([event("visit", station_id=s) for s in ("T-0001", "T-0002") for _ in range(VISITS)])
        check_in("closed", "T-0001", "T-0002")  # coverage moves where each station stands
        tick_after(1)
        check_in("open", "T-0001", "T-0002")  # with each one's supply ratio
        heartbeat("T-0001", "T-0002")
        write(t3)
        check_in("open", "T-0003")
        heartbeat("T-0003")
        post([event("visit", station_id="T-0003") for _ in range(VISITS)])
        tick_after(6)  # the three overload alerts open
        change(lambda log, at: log.retire("T-0003", actor="admin", at=at))
        heartbeat("T-0001", "T-0002")
        tick_after(6)  # grace periods run out: the retired station's alert resolves

        assert first.process.poll() is None, "the surviving worker died"
        with embedded.system.store.transaction() as tx:
            expected_records = tx.records.load_all()
            expected_alerts = {a.alert_id: a for a in tx.alerts.list(limit=1000)}
            expected_archived = tx.events.count()
        with distributed.store.transaction() as tx:
            records = tx.records.load_all()
            alerts = {a.alert_id: a for a in tx.alerts.list(limit=1000)}
            archived = tx.events.count()
            missing = [i["event_id"] for i in sent if tx.events.get(i["event_id"]) is None]
        assert expected_archived == len(sent)
        stalled = STALLED_RECOVERY in first.log_path.read_text(errors="replace")
        assert not missing, f"{len(missing)} acknowledged events never archived" + (
            f" (the survivor's log says: {STALLED_RECOVERY!r})" if stalled else ""
        )
        assert archived == len(sent), "an event archived twice"

        assert records == expected_records
        states = {sid: r.state.value for sid, r in expected_records.items()}
        assert states == dict.fromkeys(("T-0001", "T-0002"), "available")
        assert distributed.zones() == embedded.zones()
        pipeline = embedded.system.runtime.pipeline
        assert pipeline is not None
        short_of_access = [
            cell
            for zone in pipeline.zone_book.zones.values()
            for cell in zone.underserved
            if zone.index.is_covered(cell)
        ]
        assert short_of_access, "fewer seats leave no covered cell short of access"
        assert sequence(distributed.alerts()) == sequence(embedded.alerts)
        assert alerts == expected_alerts
        seen = {(e.alert.kind.value, e.alert.subject, e.transition.value) for e in embedded.alerts}
        for station_id in ("T-0001", "T-0002", "T-0003"):
            assert ("station_overloaded", station_id, "opened") in seen
        assert ("station_overloaded", "T-0003", "resolved") in seen
        assert any(kind == "zone_underserved" and how == "opened" for kind, _, how in seen)
    finally:
        if second is not None:
            second.stop()
        distributed.close()
        embedded.system.stop()
