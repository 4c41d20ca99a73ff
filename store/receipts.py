"""Event receipts: which event ids the API has handed to the broker, and with what content."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.database import dialect_insert
from store.repositories import IN_CHUNK, AppendOutcome
from store.tables import EventReceiptRow


class EventReceipts:
    def __init__(self, session: Session) -> None:
        self._session = session

    def judge(self, items: Sequence[tuple[str, str]]) -> list[AppendOutcome]:
        """For each (event_id, content_hash): `accepted` when the id is new (the first of
        repeats within `items` too), `duplicate` when it came with the same content before,
        `conflict` when with other content."""
        known = self._hashes(event_id for event_id, _ in items)
        outcomes = []
        for event_id, digest in items:
            earlier = known.get(event_id)
            if earlier is None:
                known[event_id] = digest
                outcomes.append(AppendOutcome.accepted)
            elif earlier == digest:
                outcomes.append(AppendOutcome.duplicate)
            else:
                outcomes.append(AppendOutcome.conflict)
        return outcomes

    def record(self, items: Sequence[tuple[str, str]], received_at: datetime) -> None:
        """Remember ids now on the broker; one already remembered is left as it is."""
        if not items:
            return
        table = EventReceiptRow.__table__
        rows = [
            {"event_id": event_id, "content_hash": digest, "received_at": received_at}
            for event_id, digest in items
        ]
        stmt = dialect_insert(self._session, table).on_conflict_do_nothing(
            index_elements=["event_id"]
        )
        self._session.execute(stmt, rows)

    def _hashes(self, event_ids: Iterable[str]) -> dict[str, str]:
        wanted = list(dict.fromkeys(event_ids))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            stmt = select(EventReceiptRow.event_id, EventReceiptRow.content_hash).where(
                EventReceiptRow.event_id.in_(chunk)
            )
            for event_id, digest in self._session.execute(stmt):
                found[event_id] = digest
        return found
