"""Who may do what: the roles an API key carries and the scope it is limited to."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    operator = "operator"  # posts events for the stations on its key, reads those stations
    union = "union"  # reads everything in its district(s)
    planner = "planner"  # reports, for all districts or the named ones
    admin = "admin"  # stations, keys, boundaries, demand; everything else too


class ApiKeyInfo(BaseModel):
    """A key as listed: never the secret, which is shown once at creation."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    role: Role
    label: str = ""
    districts: tuple[str, ...] | None = Field(
        None, description="Districts in scope; null means every district"
    )
    stations: tuple[str, ...] = Field((), description="Stations an operator key may post for")
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)
