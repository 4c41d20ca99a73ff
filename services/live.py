"""Live updates for dashboards: the runtime's step outcomes, turned into server-sent events per
district.

The runtime calls `LiveHub.on_outcome` after every processed batch (on its processor thread);
the hub only queues it there. The hub's own thread merges what is queued, reads the new state
of the cells concerned, keeps the KPIs current and hands one message per district to every
subscribed stream. A stream that falls behind by more than its bound loses what it holds and
is told to resync (fetch the snapshot again), so a slow dashboard never holds memory or the
processor.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from schemas.alerts import AlertEvent
from schemas.state import StationStateChanged
from services.dashboard_data import STATE_INDEX, DashboardData
from services.inbox import take_waiting
from services.kpi_book import KpiBook
from services.station_tally import Tally, take_tally
from streams.embedded import EmbeddedRuntime
from streams.pipeline import StepOutcome
from waystation.settings import Settings

log = logging.getLogger(__name__)

_STOP = object()
KEEPALIVE = ": keep-alive\n\n"
RESYNC = "event: resync\ndata: {}\n\n"


def sse(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class Subscription:
    """One open stream: a bounded queue of messages, filled on the event loop's thread."""

    def __init__(self, district: str | None, loop: asyncio.AbstractEventLoop, bound: int) -> None:
        self.district = district
        self.loop = loop
        self.bound = bound
        self.resyncs = 0
        self._pending: deque[str] = deque()
        self._wake = asyncio.Event()
        self._ended = False

    def offer(self, message: str) -> None:
        if len(self._pending) >= self.bound:
            self._pending.clear()  # too far behind: what it holds is worth less than a resync
            self._pending.append(RESYNC)
            self.resyncs += 1
        else:
            self._pending.append(message)
        self._wake.set()

    def end(self) -> None:
        self._ended = True
        self._wake.set()

    async def next(self, idle_s: float) -> str | None:
        """The next message; a keep-alive after `idle_s` of silence; None once ended."""
        if not self._pending and not self._ended:
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), idle_s)
            except TimeoutError:
                return KEEPALIVE
        if self._ended:
            return None
        return self._pending.popleft() if self._pending else KEEPALIVE


class LiveHub:
    def __init__(self, runtime: EmbeddedRuntime, data: DashboardData, settings: Settings) -> None:
        self.runtime = runtime
        self.data = data
        self.settings = settings
        self.book = KpiBook(runtime)
        self.seq = 0
        self._inbox: queue.Queue[object] = queue.Queue()
        self._subscriptions: set[Subscription] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._visits_at = 0.0
        self._visits_dirty = False

    # lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        self._closed = False
        self.runtime.listeners.append(self.on_outcome)
        self._thread = threading.Thread(target=self._run, name="waystation-live", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """End every open stream (the server stops only once its responses have ended)."""
        self._closed = True
        with self._lock:
            subscriptions = list(self._subscriptions)
        for sub in subscriptions:
            try:
                sub.loop.call_soon_threadsafe(sub.end)
            except RuntimeError:  # its event loop has closed already
                continue

    def stop(self) -> None:
        self.close()
        if self.on_outcome in self.runtime.listeners:
            self.runtime.listeners.remove(self.on_outcome)
        if self._thread is not None:
            self._inbox.put(_STOP)
            self._thread.join(timeout=10)
            self._thread = None

    # streams --------------------------------------------------------------------------------

    def subscribe(self, district: str | None) -> Subscription:
        """Call on the event loop that will read the subscription."""
        sub = Subscription(
            district, asyncio.get_running_loop(), self.settings.live_queue_max_messages
        )
        if self._closed:
            sub.end()
            return sub
        with self._lock:
            self._subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(sub)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    # the hub's thread -----------------------------------------------------------------------

    def on_outcome(self, outcome: StepOutcome) -> None:
        """The runtime's listener: queue and return at once."""
        self._inbox.put(outcome)

    def _run(self) -> None:
        while True:
            items = take_waiting(self._inbox, self.settings.live_visits_refresh_seconds)
            outcomes = [i for i in items if isinstance(i, StepOutcome)]
            try:
                self._publish(outcomes)
            except Exception:  # a bad update must not end live updates for everyone
                log.exception("publishing a live update failed; dashboards resync")
                self._broadcast(RESYNC)
            if any(i is _STOP for i in items):
                return

    def _publish(self, outcomes: Sequence[StepOutcome]) -> None:
        with self._lock:
            districts = {sub.district for sub in self._subscriptions}
        if not districts:
            self.book.invalidate()  # nobody listens: rebuilt when somebody does
            return
        if not self.book.ready:
            demand_changed = self.book.demand_changed
            self.book.rebuild()
            self._refresh_visits()
            if demand_changed:  # what the dashboards show is void: refetch
                self._broadcast(RESYNC)
                return
        if any(outcome.relocated for outcome in outcomes):
            # A station moved (or was added or retired): positions come with the map.
            self.book.rebuild()
            self._broadcast(RESYNC)
            return
        changes: dict[str, StationStateChanged] = {}
        flipped: set[str] = set()
        alerts: dict[str, AlertEvent] = {}
        for outcome in outcomes:
            changes.update((c.station_id, c) for c in outcome.station_changes)
            flipped.update(outcome.flipped_cells)
            flipped.update(outcome.touched_cells)  # access moved there: a station moved or changed
            alerts.update((e.alert.alert_id, e) for e in outcome.alert_events)
        self._visits_dirty |= bool(outcomes)
        visits_changed = False
        if self._visits_dirty and time.monotonic() - self._visits_at >= (
            self.settings.live_visits_refresh_seconds
        ):
            visits_changed = self._refresh_visits()
        if not (changes or flipped or alerts or visits_changed):
            return
        cells = self._touched_cells(changes, flipped)
        if len(cells) > self.settings.live_max_cells_per_update:
            self.book.rebuild()
            self._broadcast(RESYNC)
            return
        cell_updates = self.data.cell_updates(sorted(cells))
        self.book.cells((u["id"], bool(u["covered"])) for u in cell_updates)
        tally = take_tally(self.runtime)
        self.seq += 1
        for district in districts:
            message = self._message(district, changes, cell_updates, alerts, tally)
            self._send(district, sse("update", message, self.seq))

    def _refresh_visits(self) -> bool:
        self._visits_at = time.monotonic()
        self._visits_dirty = False
        return self.book.visits(self.data.visits_by_station(self.data.clock.now()))

    def _touched_cells(
        self, changes: dict[str, StationStateChanged], flipped: set[str]
    ) -> set[str]:
        """Cells whose coverage flipped, and every cell in the catchment of a station that
        changed (its 2SFCA access score moved even where coverage did not)."""
        cells = set(flipped)
        registry = self.runtime.registry
        assert registry is not None
        with self.runtime.reading() as pipeline:
            demand = self.runtime.demand.demand
            for station_id in changes:
                station = registry[station_id]
                cells.update(pipeline.catchments.cells(station.lat, station.lon))
        return {c for c in cells if c in demand}

    def _message(
        self,
        district: str | None,
        changes: dict[str, StationStateChanged],
        cell_updates: list[dict[str, Any]],
        alerts: dict[str, AlertEvent],
        tally: Tally,
    ) -> dict[str, Any]:
        registry = self.runtime.registry
        assert registry is not None
        district_of_cell = self.runtime.demand.district_of_cell

        def mine(name: str | None) -> bool:
            return district is None or name == district

        return {
            "seq": self.seq,
            "at": self.data.clock.now().isoformat(),
            "stations": [
                {
                    "id": c.station_id,
                    "state": STATE_INDEX[c.new],
                    "since": c.at.isoformat(),
                    "reason": c.reason,
                }
                for c in changes.values()
                if mine(registry[c.station_id].district)
            ],
            "cells": [u for u in cell_updates if mine(district_of_cell.get(u["id"]))],
            "alerts": [
                {"transition": e.transition.value, "alert": e.alert.model_dump(mode="json")}
                for e in alerts.values()
                if mine(e.alert.district)
            ],
            "kpis": self.book.kpis(district, tally).model_dump(mode="json"),
        }

    def tell(self, district: str | None, event: str, data: dict[str, Any]) -> None:
        """A message outside the update sequence (e.g. someone acted on an alert), for the
        streams of `district` and of every district."""
        with self._lock:
            targets = [s for s in self._subscriptions if s.district in (None, district)]
        _deliver(targets, sse(event, data))

    def _send(self, district: str | None, message: str) -> None:
        with self._lock:
            targets = [s for s in self._subscriptions if s.district == district]
        _deliver(targets, message)

    def _broadcast(self, message: str) -> None:
        with self._lock:
            targets = list(self._subscriptions)
        _deliver(targets, message)


def _deliver(targets: Sequence[Subscription], message: str) -> None:
    for sub in targets:
        try:
            sub.loop.call_soon_threadsafe(sub.offer, message)
        except RuntimeError:  # its event loop has closed: the server is gone
            continue
