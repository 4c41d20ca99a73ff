"""QR poster generations: a station's poster is signed for its current generation; rotating
it revokes every poster printed before."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from store.tables import ScanTokenRow

FIRST_GENERATION = 1


class ScanTokenRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def generation(self, station_id: str) -> int:
        row = self._session.get(ScanTokenRow, station_id)
        return row.generation if row is not None else FIRST_GENERATION

    def rotate(self, station_id: str, at: datetime) -> int:
        """Move the station to a new generation; returns it."""
        row = self._session.get(ScanTokenRow, station_id)
        if row is None:
            row = ScanTokenRow(station_id=station_id, generation=FIRST_GENERATION, rotated_at=at)
            self._session.add(row)
        row.generation += 1
        row.rotated_at = at
        self._session.flush()
        return row.generation
