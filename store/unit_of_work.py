"""The store and its units of work: one Session, one transaction, every repository sharing it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from store.alert_actions import AlertActionLog, WebhookRepository
from store.api_keys import ApiKeyRepository
from store.boundaries import BoundaryRepository
from store.coverage_cells import CoverageCellRepository
from store.database import READONLY_OPTION, create_schema, make_engine
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


class Store:
    """The database behind the repositories. Thread-safe: each transaction has its own Session."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._readonly_engine = engine.execution_options(**{READONLY_OPTION: True})

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
        bind = self._readonly_engine if readonly else self.engine
        with Session(bind, expire_on_commit=False, autoflush=False) as session, session.begin():
            yield UnitOfWork(session)

    def close(self) -> None:
        """Close every pooled connection; the Store is not used afterwards."""
        self.engine.dispose()
