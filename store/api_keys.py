"""API keys: only a hash of each secret is kept, so a leaked database leaks no key."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import JSON, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from schemas.auth import ApiKeyInfo, Role
from store.tables import ENUM_LENGTH, Base, UTCDateTime

KEY_ID_LENGTH = 32
HASH_LENGTH = 64  # sha256, hex
LABEL_LENGTH = 200


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(KEY_ID_LENGTH), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    role: Mapped[str] = mapped_column(String(ENUM_LENGTH))
    label: Mapped[str] = mapped_column(String(LABEL_LENGTH), default="")
    districts: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    stations: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


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
        result = self._session.execute(
            update(ApiKeyRow)
            .where(ApiKeyRow.key_id == key_id, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def count(self) -> int:
        return len(self.list())


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
