"""The geocoder's answers, one row per (geocoder, address); a miss has no coordinates."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.database import upsert
from store.repositories import IN_CHUNK
from store.tables import GeocodeRow


@dataclass(frozen=True)
class CachedAnswer:
    lat: float | None
    lon: float | None

    @property
    def found(self) -> bool:
        return self.lat is not None and self.lon is not None


class GeocodeCache:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get_many(self, geocoder: str, addresses: Iterable[str]) -> dict[str, CachedAnswer]:
        wanted = sorted(set(addresses))
        found: dict[str, CachedAnswer] = {}
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            stmt = select(GeocodeRow).where(
                GeocodeRow.geocoder == geocoder, GeocodeRow.address.in_(chunk)
            )
            for row in self._session.scalars(stmt):
                found[row.address] = CachedAnswer(row.lat, row.lon)
        return found

    def put(
        self, geocoder: str, address: str, answer: CachedAnswer, *, looked_up_at: datetime
    ) -> None:
        upsert(
            self._session,
            GeocodeRow.__table__,
            [
                {
                    "geocoder": geocoder,
                    "address": address,
                    "lat": answer.lat,
                    "lon": answer.lon,
                    "looked_up_at": looked_up_at,
                }
            ],
            key=["geocoder", "address"],
        )
