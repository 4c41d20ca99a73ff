"""Service statistics kept as visits arrive: a follower reads the visits archived after its
cursor (the last visit counted; each visit once, never a rescan), adds them to the daily
rollups and moves the cursor in the same transaction, so a restart neither loses nor
double-counts a visit. Now and then (`RECOUNT_SECONDS`) it also recounts the month's workers of
months in which a station has moved since they were counted (store/visit_stats.py); until
then those months are read from the daily rollups.

Visits count on the local day (the district's time zone) they occurred; every archived visit
counts, whatever processing made of it (a late visit was still a visit). Distinct workers
come from the keyed hash of `worker_ref` made on ingest; the hash never leaves the store."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

from schemas.visit_stats import StatsArea, StatsPeriod, VisitStats, VisitStatsList
from services.step_follower import StepFollower
from store.repositories import ArchivedVisit
from store.unit_of_work import Store, UnitOfWork
from waystation.settings import Settings

CURSOR_KEY = "visit_rollup_seq"
PAGE_EVENTS = 5000
WORKER_HASH_PREFIX = "h1:"
HASH_HEX_CHARS = 64  # sha256
KEY_HEX_CHARS = 16  # 64 bits
SIGNED_OFFSET = 2**63  # unsigned 64-bit into a signed BIGINT
HEX_DIGITS = frozenset("0123456789abcdef")
WHOLE = "*"  # the period and area of a total
IDLE_CHECK_SECONDS = 60.0
# A look for moved stations joins every month's stations to the registry: once a minute, not
# after every page; a report in between reads the daily rollups, slower but right.
RECOUNT_SECONDS = 60.0


class VisitRollupFollower:
    """Passes over the archive that add the visits since the cursor to the rollups. The
    server runs them in a process of its own (services/visit_rollup_process.py), or in a
    thread (`in_a_thread`) when the store is held in memory or the setting asks for it; both
    are woken by the runtime's steps."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.zone = ZoneInfo(settings.timezone)
        self._lock = threading.Lock()
        self._recount_due = 0.0  # time.monotonic() of the next look for moved stations

    def in_a_thread(self) -> StepFollower:
        """A thread that runs a pass after every step of the runtime it is started with (and
        every IDLE_CHECK_SECONDS regardless)."""
        return StepFollower(
            "waystation-visits",
            self.catch_up,
            IDLE_CHECK_SECONDS,
            "adding visits to the daily rollups failed",  # the next pass retries from the cursor
        )

    def catch_up(self) -> int:
        """Adds every visit archived since the cursor; returns how many visits it read.

        The page is read in a read-only snapshot, and only visits (the archive's other events
        never count): the follower wakes after every processed batch, and taking the write
        lock just to find nothing new made the processor and the ingest queue behind it. The
        write that adds a page checks that the cursor is still where the page began."""
        read = 0
        with self._lock:  # one pass at a time: the thread's and a caller's
            while True:
                with self.store.transaction(readonly=True) as tx:
                    cursor = int(tx.meta.get(CURSOR_KEY) or 0)
                    page = tx.events.visits_after(cursor, PAGE_EVENTS)
                if not page:
                    self._recount_moved()
                    return read
                with self.store.transaction() as tx:
                    if int(tx.meta.get(CURSOR_KEY) or 0) != cursor:
                        continue  # moved meanwhile (another process): read from where it is
                    self._add(tx, page)
                    tx.meta.set(CURSOR_KEY, str(page[-1].seq))
                read += len(page)
                if len(page) < PAGE_EVENTS:  # the snapshot held no more: no read to find that
                    self._recount_moved()
                    return read

    def _recount_moved(self) -> None:
        """Recounts the months in which a station moved, when a look for them is due."""
        now = time.monotonic()
        if now < self._recount_due:
            return
        self._recount_due = now + RECOUNT_SECONDS
        with self.store.transaction(readonly=True) as tx:
            months = tx.visit_rollups.moved_months()
        for month in months:  # one at a time: each holds the write lock a moment
            with self.store.transaction() as tx:
                tx.visit_rollups.recount(month)

    def _add(self, tx: UnitOfWork, page: list[ArchivedVisit]) -> None:
        visits: Counter[tuple[str, str, str]] = Counter()
        people: Counter[tuple[str, str, str]] = Counter()
        services: Counter[tuple[str, str, str]] = Counter()
        workers: set[tuple[str, str, int]] = set()
        for item in page:
            visit = json.loads(item.body)
            payload = visit["payload"]
            occurred_at = datetime.fromisoformat(visit["occurred_at"])
            day = occurred_at.astimezone(self.zone).date().isoformat()
            key = (day, item.station_id, payload["worker_kind"])
            visits[key] += 1
            people[key] += int(payload.get("party_size") or 1)
            for service in payload.get("services_used") or ():
                services[(day, item.station_id, service)] += 1
            ref = payload.get("worker_ref")
            if ref:
                workers.add((day, item.station_id, worker_key(ref)))
        tx.visit_rollups.add({k: (visits[k], people[k]) for k in visits}, services, workers)


def worker_key(ref: str) -> int:
    """The first 64 bits of the ingest's keyed hash, as a signed 64-bit integer; a reference
    stored before hashing existed is hashed here first (the key never leaves the store)."""
    digest = ref.removeprefix(WORKER_HASH_PREFIX)
    if len(digest) != HASH_HEX_CHARS or not set(digest) <= HEX_DIGITS:
        digest = hashlib.sha256(ref.encode()).hexdigest()
    return int(digest[:KEY_HEX_CHARS], 16) - SIGNED_OFFSET


def visit_stats(
    store: Store,
    district: str,
    start: str,
    end: str,
    period: StatsPeriod,
    by: StatsArea,
) -> VisitStatsList:
    with store.transaction(readonly=True) as tx:
        rows = tx.visit_rollups.stats(district, start, end, period, by)
        distinct = tx.visit_rollups.distinct_workers(district, start, end)
    kinds: Counter[str] = Counter()
    services: Counter[str] = Counter()
    for row in rows:  # the additive numbers of the total are the rows' sums
        kinds.update(row.by_worker_kind)
        services.update(row.services_used)
    total = VisitStats(
        period=WHOLE,
        area=WHOLE,
        visits=sum(r.visits for r in rows),
        people=sum(r.people for r in rows),
        distinct_workers=distinct,
        by_worker_kind=dict(sorted(kinds.items())),
        services_used=dict(sorted(services.items())),
    )
    return VisitStatsList(
        district=district, period=period, by=by, start=start, end=end, rows=rows, total=total
    )
