"""API keys: only a hash of each secret is kept, so a leaked database leaks no key."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from schemas.auth import ApiKeyInfo, Role
from store.tables import ApiKeyRow


class ApiKeyRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, info: ApiKeyInfo, secret_hash: str) -> None:
        self._session.add(
            ApiKeyRow(
                key_id=info.key_id,
                secret_hash=secret_hash,
                role=info.role.value,
                label=info.label,
                districts=list(info.districts) if info.districts is not None else None,
                stations=list(info.stations),
                created_at=info.created_at,
                expires_at=info.expires_at,
                revoked_at=info.revoked_at,
            )
        )

    def get(self, key_id: str) -> tuple[ApiKeyInfo, str] | None:
        """The key and its secret's hash."""
        row = self._session.get(ApiKeyRow, key_id)
        return (_info(row), row.secret_hash) if row is not None else None

    def list(self) -> Sequence[ApiKeyInfo]:
        rows = self._session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.created_at))
        return [_info(row) for row in rows]

    def revoke(self, key_id: str, at: datetime) -> bool:
        """Revoke an active key (the first revocation stands); returns whether it was active."""
        result = self._session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def count(self) -> int:
        return self._session.scalar(select(func.count()).select_from(ApiKeyRow)) or 0


def _info(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(
        key_id=row.key_id,
        role=Role(row.role),
        label=row.label,
        districts=tuple(row.districts) if row.districts is not None else None,
        stations=tuple(row.stations or ()),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )
