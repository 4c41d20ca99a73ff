"""The garbage collector, tuned for a long-running processor.

Start-up builds the registry, demand layer, catchments and coverage, which live as long as
the process (for a national network, millions of objects); every full collection would walk
all of them while holding the interpreter. They are frozen out of the collector's scans.

Processing then allocates short-lived containers at a high rate (each event's model, its
deltas, their dicts): with Python's default young-generation threshold of 700 the event path
spent about a tenth of its time in collections, most of them finding nothing to free. A Faust
worker's cost was in full collections instead (`tune_worker_collector`).
"""

from __future__ import annotations

import gc


def freeze_startup_state() -> None:
    """Collect what is garbage already (so that it is not kept for ever) and freeze the rest
    out of the collector's scans."""
    gc.collect()
    gc.freeze()


def tune_collector(young_threshold_objects: int) -> None:
    """Freeze the start-up state, and let the young generation grow to
    `young_threshold_objects` between passes (the embedded runtime)."""
    freeze_startup_state()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold_objects, middle, old)


def tune_worker_collector(middle_passes_per_full: int) -> None:
    """Freeze the start-up state, and make full passes wait for `middle_passes_per_full`
    middle-generation passes. A worker replaces the table slots of a batch's stations and
    zones with every batch, so fresh long-lived objects pile up fast: at Python's default a
    full pass (walking every slot, to free a few thousand objects) came every second or so.
    The young generation keeps Python's size here: with a larger one (5,000) the station
    stage took 58.9 µs per event against 51.7."""
    freeze_startup_state()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, middle_passes_per_full)
