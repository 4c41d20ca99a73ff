"""API keys as stored: a hash of the secret, a role and the districts and stations in scope."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class ApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key_id: str = Field(min_length=1, max_length=64, description="Public part, shown in logs")
    hash: str = Field(min_length=1, max_length=200, description="Hash of the secret; never it")
    role: str = Field(min_length=1, max_length=32)
    scope_districts: tuple[str, ...] = ()
    scope_stations: tuple[str, ...] = ()
    created_at: AwareDatetime
    expires_at: AwareDatetime | None = None
    revoked_at: AwareDatetime | None = None
