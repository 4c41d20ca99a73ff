"""A background thread that does its work after every step of the runtime (and at least every
`idle_seconds` regardless), so derived records keep up with the events without a poll loop of
their own. A failed pass is logged and the next one tries again."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: the visit-counting process starts without the runtime
    from streams.embedded import EmbeddedRuntime
    from streams.pipeline import StepOutcome


log = logging.getLogger(__name__)

STOP_WAIT_SECONDS = 30.0


class StepFollower:
    def __init__(
        self, name: str, work: Callable[[], object], idle_seconds: float, failed: str
    ) -> None:
        self.name = name
        self.work = work
        self.idle_seconds = idle_seconds
        self.failed = failed  # logged with the exception when a pass fails
        self.runtime: EmbeddedRuntime | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, runtime: EmbeddedRuntime) -> None:
        self.runtime = runtime
        runtime.listeners.append(self.on_outcome)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self.runtime is not None and self.on_outcome in self.runtime.listeners:
            self.runtime.listeners.remove(self.on_outcome)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=STOP_WAIT_SECONDS)
            self._thread = None

    def on_outcome(self, _: StepOutcome) -> None:
        self._wake.set()  # the clock ticks through the runtime: look whether work is due

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=self.idle_seconds)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.work()
            except Exception:  # a failed pass must not end the thread
                log.exception(self.failed)
