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
        window, _ = self._slid(event.station_id, now)
        if event.occurred_at > now - self.span:
            insort(window, (event.occurred_at, event.payload.party_size))
        self._put(event.station_id, window)
        return sum(map(itemgetter(1), window))

    def visitors(self, station_id: str, now: datetime) -> int:
        """Visitors in the window ending now, forgetting what has slid out of it."""
        window, slid = self._slid(station_id, now)
        if slid:
            self._put(station_id, window)
        return sum(map(itemgetter(1), window))

    def limit(self, capacity_seats: int) -> float:
        return capacity_seats * self.visits_per_seat

    def _slid(self, station_id: str, now: datetime) -> tuple[VisitWindow, bool]:
        """The station's window without what slid out of it, and whether anything did. Windows
        are in time order, so that is a prefix, dropped in place: only the processor's thread
        touches a window (a Faust step works on a copy)."""
        window = self.windows.get(station_id, [])
        gone = bisect_right(window, now - self.span, key=_time_of)
        del window[:gone]
        return window, gone > 0

    def _put(self, station_id: str, window: VisitWindow) -> None:
        if window:
            self.windows[station_id] = window  # set again, so that a table sees the write
        else:
            self.windows.pop(station_id, None)
