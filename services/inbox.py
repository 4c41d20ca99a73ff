"""How a background thread empties its inbox: wait a while for the first item, then take
everything else already waiting, so one pass handles a burst at once and a quiet inbox still
wakes the thread for its periodic work."""

from __future__ import annotations

import queue


def take_waiting(inbox: queue.Queue[object], timeout_seconds: float) -> list[object]:
    """The items waiting in order; empty if none came within `timeout_seconds`."""
    try:
        items = [inbox.get(timeout=timeout_seconds)]
    except queue.Empty:
        return []
    while True:
        try:
            items.append(inbox.get_nowait())
        except queue.Empty:
            return items
