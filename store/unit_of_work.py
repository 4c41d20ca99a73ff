"""The store and its units of work: one Session, one transaction, every repository sharing it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from store.alert_actions import AlertActionLog, WebhookRepository
from store.api_keys import ApiKeyRepository
from store.boundaries import BoundaryRepository
from store.coverage_cells import CoverageCellRepository
from store.database import (
    READONLY_OPTION,
    SQLITE_BUSY_TIMEOUT_MS,
    create_schema,
    make_engine,
)
from store.geocode_cache import GeocodeCache
from store.history import HistoryRepository
from store.receipts import EventReceipts
from store.repositories import (
    AlertRepository,
    DemandRepository,
    EventArchive,
    MetaRepository,
    StationRecordRepository,
    StationRepository,
)
from store.scan_tokens import ScanTokenRepository
from store.scenarios import ScenarioRepository
from store.station_changes import StationChangeLog
from store.visit_stats import VisitRollups

MS_PER_S = 1000


class UnitOfWork:
    """One transaction. Its repositories share the Session, so their writes commit together."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.stations = StationRepository(session)
        self.events = EventArchive(session)
        self.records = StationRecordRepository(session)
        self.alerts = AlertRepository(session)
        self.demand = DemandRepository(session)
        self.boundaries = BoundaryRepository(session)
        self.meta = MetaRepository(session)
        self.coverage = CoverageCellRepository(session)
        self.keys = ApiKeyRepository(session)
        self.station_changes = StationChangeLog(session)
        self.scan_tokens = ScanTokenRepository(session)
        self.scenarios = ScenarioRepository(session)
        self.geocodes = GeocodeCache(session)
        self.alert_actions = AlertActionLog(session)
        self.webhooks = WebhookRepository(session)
        self.history = HistoryRepository(session)
        self.visit_rollups = VisitRollups(session)
        self.receipts = EventReceipts(session)


class StoreBusyError(TimeoutError):
    """A writing unit of work waited longer than SQLite's busy timeout for the write lock."""


class Store:
    """The database behind the repositories. Thread-safe: each transaction has its own Session."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._readonly_engine = engine.execution_options(**{READONLY_OPTION: True})
        # SQLite has one writer at a time. Left to itself, a writer that finds the lock taken
        # polls for it, sleeping longer each time (up to 100 ms): between polls the lock sits
        # free while the processor, the ingest's group commits and the snapshot writer all
        # sleep. This store's writers queue on a lock of their own instead, and the next one
        # starts as soon as the last one commits. (Re-entrant, so a thread that nests writing
        # units of work fails on SQLite's busy timeout, as without it, rather than hanging.)
        self._writers = threading.RLock() if engine.dialect.name == "sqlite" else None

    @classmethod
    def open(cls, url: str) -> Store:
        """An engine for `url`, its schema migrated to the newest revision (see store.migrate)."""
        engine = make_engine(url)
        create_schema(engine)
        return cls(engine)

    @contextmanager
    def transaction(self, *, readonly: bool = False) -> Iterator[UnitOfWork]:
        """A unit of work: commits on normal exit, rolls back if the block raises.

        On SQLite a writing unit of work holds the database's write lock from its start, so
        keep it short. `readonly=True` reads a consistent snapshot without taking that lock
        (and must not write).
        """
        if readonly or self._writers is None:
            bind = self._readonly_engine if readonly else self.engine
            with Session(bind, expire_on_commit=False, autoflush=False) as session, session.begin():
                yield UnitOfWork(session)
            return
        if not self._writers.acquire(timeout=SQLITE_BUSY_TIMEOUT_MS / MS_PER_S):
            raise StoreBusyError(
                f"the database's write lock was not free within {SQLITE_BUSY_TIMEOUT_MS} ms"
            )
        try:
            with (
                Session(self.engine, expire_on_commit=False, autoflush=False) as session,
                session.begin(),
            ):
                yield UnitOfWork(session)
        finally:
            self._writers.release()

    def close(self) -> None:
        """Close every pooled connection; the Store is not used afterwards."""
        self.engine.dispose()
