"""API keys: the table and the few operations the authentication layer will build on."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from schemas.api_keys import ApiKey
from store.database import upsert
from store.tables import ApiKeyRow


class ApiKeyRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def save(self, key: ApiKey) -> None:
        """Insert a key or replace it whole by key_id."""
        row = key.model_dump()
        row["scope_districts"] = list(key.scope_districts)
        row["scope_stations"] = list(key.scope_stations)
        upsert(self._session, ApiKeyRow.__table__, [row], key=["key_id"])

    def get(self, key_id: str) -> ApiKey | None:
        row = self._session.get(ApiKeyRow, key_id)
        return _key(row) if row is not None else None

    def list(self) -> list[ApiKey]:
        return [_key(row) for row in self._session.scalars(select(ApiKeyRow).order_by("key_id"))]

    def revoke(self, key_id: str, at: datetime) -> bool:
        """Mark a key revoked (the first revocation stands); returns whether it was active."""
        stmt = (
            update(ApiKeyRow)
            .where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return bool(self._session.execute(stmt).rowcount)


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        key_id=row.key_id,
        hash=row.hash,
        role=row.role,
        scope_districts=tuple(row.scope_districts),
        scope_stations=tuple(row.scope_stations),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )
