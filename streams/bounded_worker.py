"""A Faust worker whose stop has a deadline.

Faust stops a worker on SIGTERM or SIGINT by stopping every service in turn, and some of them
wait on the broker: with the broker gone, a stop can hang in a consumer's fetcher well past any
container runtime's patience. Past the deadline the process exits at once. Nothing is lost by
that: offsets not yet committed are read again by whichever worker takes the partitions, and
every effect of a replayed event is idempotent (at-least-once delivery)."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import faust

# "Temporary failure": the work resumes from the last commit when the worker starts again.
OVERRUN_EXIT_CODE = os.EX_TEMPFAIL


class BoundedWorker(faust.Worker):  # type: ignore[misc]  # faust ships no type information
    """`faust.Worker` that exits within `shutdown_deadline_seconds` of the first stop signal,
    and at once on a second one (a second Ctrl-C)."""

    def __init__(self, app: faust.App, *, shutdown_deadline_seconds: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.shutdown_deadline_seconds = shutdown_deadline_seconds
        self._deadline: threading.Timer | None = None

    def _schedule_shutdown(self, signal_: signal.Signals) -> None:
        if self._deadline is not None:
            _exit_now(f"{signal_.name} again: stopping at once")
        # A thread, not the event loop: a stop that hangs may be holding the loop.
        self._deadline = threading.Timer(
            self.shutdown_deadline_seconds,
            _exit_now,
            args=(f"not stopped {self.shutdown_deadline_seconds:g} s after {signal_.name}",),
        )
        self._deadline.daemon = True
        self._deadline.start()
        super()._schedule_shutdown(signal_)


def _exit_now(why: str) -> None:
    # Straight to the file descriptor: the logging machinery may be what is stuck.
    os.write(2, f"waystation worker: {why}; exiting, work resumes from the last commit\n".encode())
    os._exit(OVERRUN_EXIT_CODE)
