"""The planners' coverage snapshot (`coverage_cells`), kept in step with the live map off the
processing path.

The processor only names the cells that may have changed; a thread of its own gathers those
names for a moment (a station that flips twice is written once), reads the cells' live views,
and writes only the cells whose saved values differ, as updates of their value columns (the
outline and centre of a cell never change, so they are written only with the whole snapshot).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable
from datetime import datetime

from schemas.api import CellStatus
from schemas.geography import CoverageCell
from store.coverage_cells import CellValues
from store.unit_of_work import Store
from streams.coverage_map import CellView

log = logging.getLogger(__name__)

Signature = tuple[int, CellStatus, float]
READ_CHUNK_CELLS = 512  # live views read per hold of the runtime's lock


class CoverageSnapshotWriter:
    def __init__(
        self,
        store: Store,
        *,
        read: Callable[[Collection[str] | None], list[CellView]],
        stamp: Callable[[list[CellView], datetime], list[CoverageCell]],
        now: Callable[[], datetime],
        coalesce_s: float,
    ) -> None:
        """`read(cells)`: the live views of those demand cells (None: every demand cell),
        taken consistently; `stamp`: views as stored rows (for the whole snapshot; changes
        are written as their live values only)."""
        self._store = store
        self._read = read
        self._stamp = stamp
        self._now = now
        self.coalesce_s = coalesce_s
        self._cond = threading.Condition()
        self._pending: set[str] = set()
        self._waiting: list[threading.Event] = []
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._writing = threading.Lock()  # one writer of the table at a time
        self._saved: dict[str, Signature] = {}
        self.writes = 0  # cells written since start (tests, metrics)

    # called by the runtime ---------------------------------------------------------------

    def replace_all(self) -> None:
        """Write the whole snapshot now (start-up, a new demand layer)."""
        with self._writing:
            views = self._read(None)
            cells = self._stamp(views, self._now())
            with self._store.transaction() as tx:
                tx.coverage.replace(cells)
            self._saved = {view.cell: view.signature for view in views}
            self.writes += len(cells)

    def touch(self, cells: Iterable[str]) -> None:
        """These cells may have changed: write them soon, if they did."""
        with self._cond:
            before = len(self._pending)
            self._pending.update(cells)
            if len(self._pending) != before:
                self._cond.notify()

    def flush_then(self, done: threading.Event) -> None:
        """Set `done` once every cell touched so far is written."""
        with self._cond:
            self._waiting.append(done)
            self._cond.notify()

    def start(self) -> None:
        self._stopping = False
        self._thread = threading.Thread(
            target=self._loop, name="waystation-coverage-snapshot", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        """Write what is pending, then stop."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None

    # the writer thread -------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._pending or self._waiting or self._stopping):
                    self._cond.wait()
                # Let more changes gather. Each touch notifies: wait out the whole time, or
                # cells would be read and written once per processed batch.
                gathered_by = time.monotonic() + self.coalesce_s
                while not (self._waiting or self._stopping):
                    left = gathered_by - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                cells, self._pending = self._pending, set()
                waiting, self._waiting = self._waiting, []
                stopping = self._stopping
            try:
                self._write(cells)
            except Exception:  # the live map is unaffected; the cells are tried again
                log.exception("writing the coverage snapshot failed; will retry")
                self.touch(cells)
            for done in waiting:
                done.set()
            if stopping:
                return

    def _write(self, cells: set[str]) -> None:
        if not cells:
            return
        with self._writing:
            # Read in chunks: each read holds the processor still, so hold it briefly.
            ordered = sorted(cells)
            views = [
                view
                for start in range(0, len(ordered), READ_CHUNK_CELLS)
                for view in self._read(ordered[start : start + READ_CHUNK_CELLS])
                if self._saved.get(view.cell) != view.signature
            ]
            if not views:
                return
            at = self._now()
            rows = [
                CellValues(
                    view.cell,
                    view.demand_workers,
                    view.coverage_count,
                    max(0.0, view.access_score),
                    view.status,
                    at,
                )
                for view in views
            ]
            with self._store.transaction() as tx:
                tx.coverage.update(rows)
            self._saved.update((view.cell, view.signature) for view in views)
            self.writes += len(rows)
