"""The visit rollups counted in a process of their own, beside the server.

Counting visits reads every archived visit back and parses it: in the server's interpreter
that took about a sixth of the time the event path had. The child follows the archive
through the store like any pass of `VisitRollupFollower` (its cursor moves in the same
transaction as the counts, so it and a pass run here never count a visit twice). It is woken
by a byte on its stdin after each processed batch, looks every IDLE_CHECK_SECONDS regardless,
and ends when its stdin closes: when the server stops it, and when the server dies, so that
it is never left behind.

`python -m services.visit_rollup_process` is the child; the server starts it with the
store's URL and time zone in its environment.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from services.visit_stats import IDLE_CHECK_SECONDS, VisitRollupFollower
from store.database import make_engine
from store.unit_of_work import Store
from waystation.settings import Settings

if TYPE_CHECKING:  # types only: the visit-counting process starts without the runtime
    from streams.embedded import EmbeddedRuntime
    from streams.pipeline import StepOutcome

log = logging.getLogger(__name__)

STOP_WAIT_SECONDS = 30.0
RESPAWN_SECONDS = 5.0  # a child that died is started again at most this often
WAKE = b"\n"
READ_BYTES = 4096  # wakes are read all at once: many batches, one pass
# Passes at most this often: the archive's writers (posts, the processor) and this process
# share SQLite's one write lock, and a writer that finds it taken by another process sleeps.
PASS_SECONDS = 0.5


class VisitRollupProcess:
    """Starts, wakes and stops the child; starts it again if it died."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime: EmbeddedRuntime | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._respawn_due = 0.0
        # The processor's thread wakes the child while the server's may be stopping it: the
        # pipe must not be written once it is closed (its number may be reused by then).
        self._lock = threading.Lock()

    def start(self, runtime: EmbeddedRuntime) -> None:
        self.runtime = runtime
        with self._lock:
            self._spawn()
        runtime.listeners.append(self.on_outcome)

    def stop(self) -> None:
        if self.runtime is not None and self.on_outcome in self.runtime.listeners:
            self.runtime.listeners.remove(self.on_outcome)
        with self._lock:
            child, self._child = self._child, None
            if child is None:
                return
            assert child.stdin is not None
            child.stdin.close()  # the child finishes its pass and ends
        try:
            child.wait(timeout=STOP_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            log.warning("the visit rollup process did not end in time; killed")
            child.kill()
            child.wait()

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def on_outcome(self, _: StepOutcome) -> None:
        """After each step of the runtime: wake the child (a wake already waiting is enough)."""
        with self._lock:
            child = self._child
            if child is None:
                return
            if child.poll() is not None:
                self._respawn(child.returncode)
                return
            assert child.stdin is not None
            # A full pipe holds wakes enough; a broken one is a child ending: the next step
            # looks again.
            with contextlib.suppress(BlockingIOError, BrokenPipeError):
                os.write(child.stdin.fileno(), WAKE)

    def _respawn(self, returncode: int) -> None:
        now = time.monotonic()
        if now < self._respawn_due:
            return
        self._respawn_due = now + RESPAWN_SECONDS
        log.warning("the visit rollup process ended (exit %s); starting it again", returncode)
        self._spawn()

    def _spawn(self) -> None:
        settings = self.settings
        env = {
            **os.environ,
            "WAYSTATION_DATA_DIR": str(settings.data_dir),
            "WAYSTATION_DATABASE_URL": settings.resolved_database_url,
            "WAYSTATION_TIMEZONE": settings.timezone,
        }
        # Its own session: a Ctrl-C at the server's terminal stops the server, which then
        # closes the child's stdin; the child is not interrupted halfway through a pass.
        self._child = subprocess.Popen(
            [sys.executable, "-m", "services.visit_rollup_process"],
            stdin=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        assert self._child.stdin is not None
        os.set_blocking(self._child.stdin.fileno(), False)


def follow_wakes(
    wakes_fd: int, catch_up: Callable[[], object], idle_seconds: float, pace_seconds: float
) -> None:
    """Run `catch_up` at once (for what was archived while nothing counted), then after a
    wake read from `wakes_fd` (and every `idle_seconds` regardless) until the other end
    closes, at most once every `pace_seconds`: one pass adds all that the batches between two
    passes archived, in one write. A failed pass is logged; the next one retries."""
    while True:
        started = time.monotonic()
        try:
            catch_up()
        except Exception:  # the cursor did not move: the next pass adds the same page
            log.exception("adding visits to the daily rollups failed")
        if not _open_after_waiting(wakes_fd, idle_seconds):
            return
        while (rest := started + pace_seconds - time.monotonic()) > 0:
            if not _open_after_waiting(wakes_fd, rest):
                return


def _open_after_waiting(wakes_fd: int, timeout_s: float) -> bool:
    """Waits up to `timeout_s` for wakes (reading them all); False once the pipe has ended."""
    ready, _, _ = select.select([wakes_fd], [], [], timeout_s)
    return not ready or bool(os.read(wakes_fd, READ_BYTES))


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings()
    store = Store(make_engine(settings.resolved_database_url))  # the server migrated it
    try:
        follower = VisitRollupFollower(store, settings)
        follow_wakes(sys.stdin.fileno(), follower.catch_up, IDLE_CHECK_SECONDS, PASS_SECONDS)
    finally:
        store.close()


if __name__ == "__main__":
    main()
