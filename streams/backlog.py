"""The bound on events acknowledged but not yet applied, and how far behind the processor is.

A post reserves room for all of its events before anything of it is stored, so a request
over the limit is refused whole; what the archive then refuses (duplicates, conflicts) gives
its room back. Accepted events are admitted in ingest order, so the oldest unapplied one is
always at the front.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from streams.group_commit import CommitTimeoutError

REQUEST_DEADLINE: ContextVar[float | None] = ContextVar("request_deadline", default=None)
"""When the request being served must have stored everything it stores (`time.monotonic()`
seconds), set by whoever serves it: after it, a post is refused with nothing stored, so that
an answer given when the request runs out of time never hides stored events."""


class RuntimeBusyError(Exception):
    """The runtime cannot take a post now; nothing of it was stored. Try again later."""

    title = "Runtime busy"

    def __init__(self, retry_after_seconds: int, detail: str) -> None:
        super().__init__(detail)
        self.retry_after_seconds = retry_after_seconds


class BacklogFullError(RuntimeBusyError):
    """The runtime holds as many unapplied events as it may."""

    title = "Backlog full"


class CommitExpiredError(RuntimeBusyError):
    """A post waited too long for its turn to be committed."""

    title = "Not committed in time"


def commit_wait_s(wait_seconds: float, retry_after_seconds: int) -> float:
    """How long a post may wait for its turn to be committed: `wait_seconds`, and never past
    the request's REQUEST_DEADLINE. Raises CommitExpiredError when that time is already up."""
    deadline = REQUEST_DEADLINE.get()
    if deadline is not None:
        wait_seconds = min(wait_seconds, deadline - time.monotonic())
    if wait_seconds <= 0:
        raise CommitExpiredError(
            retry_after_seconds,
            "the request ran out of time before its turn to be committed; "
            "nothing of this request was stored",
        )
    return wait_seconds


@contextmanager
def turn_taken(retry_after_seconds: int) -> Iterator[None]:
    """Around a post's wait for its group commit: a post whose turn did not come in time
    stored nothing, and is answered as busy (503) rather than as a failure."""
    try:
        yield
    except CommitTimeoutError as exc:
        raise CommitExpiredError(
            retry_after_seconds, f"{exc}; nothing of this request was stored"
        ) from exc


@dataclass(frozen=True)
class Lag:
    events: int  # acknowledged (or being committed) and not yet applied
    seconds: float  # age of the oldest unapplied event; 0 when there is none


class Backlog:
    def __init__(self, max_events: int, retry_after_seconds: int) -> None:
        self.max_events = max_events
        self.retry_after_seconds = retry_after_seconds
        self._lock = threading.Lock()
        self._reserved = 0  # room taken by posts still being committed
        self._groups: deque[list[float]] = deque()  # [admitted at (monotonic), events left]
        self._unapplied = 0

    def reserve(self, count: int) -> None:
        """Take room for `count` events, or refuse the whole post."""
        with self._lock:
            held = self._reserved + self._unapplied
            if held + count > self.max_events:
                raise BacklogFullError(
                    self.retry_after_seconds,
                    f"{held} events are waiting to be applied and the limit is "
                    f"{self.max_events}; nothing of this request was stored",
                )
            self._reserved += count

    def release(self, count: int) -> None:
        """Give back room of a post's events that were not accepted (or not stored at all)."""
        with self._lock:
            self._reserved -= count

    def admit(self, count: int, *, reserved: bool = True) -> None:
        """`count` accepted events are queued for the processor (start-up replays are not
        reserved: they were acknowledged before the restart)."""
        if count <= 0:
            return
        with self._lock:
            if reserved:
                self._reserved -= count
            self._unapplied += count
            self._groups.append([time.monotonic(), float(count)])

    def applied(self, count: int) -> None:
        """`count` events, the oldest ones, were applied (or set aside as failed)."""
        with self._lock:
            self._unapplied -= count
            while count > 0 and self._groups:
                front = self._groups[0]
                taken = min(count, int(front[1]))
                front[1] -= taken
                count -= taken
                if front[1] <= 0:
                    self._groups.popleft()

    def lag(self) -> Lag:
        with self._lock:
            held = self._unapplied + self._reserved
            oldest = self._groups[0][0] if self._groups else None
        seconds = 0.0 if oldest is None else max(0.0, time.monotonic() - oldest)
        return Lag(held, seconds)
