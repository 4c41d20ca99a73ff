"""Station overload: visitors in a trailing window against the seats a station has.

State is one small list of (time, visitors) per station, so the same code runs over a dict
or a Faust table keyed by station_id.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import MutableMapping
from datetime import datetime, timedelta
from operator import itemgetter

from schemas.events import VisitEvent
from waystation.settings import Settings

VisitWindow = list[tuple[datetime, int]]


def _time_of(item: tuple[datetime, int]) -> datetime:
    return item[0]


class VisitWindows:
    def __init__(self, windows: MutableMapping[str, VisitWindow], settings: Settings) -> None:
        self.windows = windows
        self.span = timedelta(minutes=settings.overload_window_minutes)
        self.visits_per_seat = settings.overload_visits_per_seat

    def record(self, event: VisitEvent, now: datetime) -> int:
        """Adds a visit; returns the visitors now in the station's window."""
        start = now - self.span
        window = self.windows.get(event.station_id, [])
        del window[: bisect_right(window, start, key=_time_of)]  # in place: one thread owns it
        if event.occurred_at > start:
            insort(window, (event.occurred_at, event.payload.party_size))
        if window:
            self.windows[event.station_id] = window  # set again, so that a table sees the write
        else:
            self.windows.pop(event.station_id, None)
        return sum(map(itemgetter(1), window))

    def visitors(self, station_id: str, now: datetime) -> int:
        """Visitors in the window ending now, forgetting what has slid out of it."""
        return self._keep(station_id, self.windows.get(station_id, []), now)

    def limit(self, capacity_seats: int) -> float:
        return capacity_seats * self.visits_per_seat

    def _keep(self, station_id: str, window: VisitWindow, now: datetime) -> int:
        """`window` in time order, as every kept window is: what slid out of it is a prefix."""
        start = now - self.span
        kept = window[bisect_right(window, start, key=_time_of) :]
        if not kept:
            self.windows.pop(station_id, None)
        elif kept != self.windows.get(station_id):
            self.windows[station_id] = kept
        return sum(map(itemgetter(1), kept))
