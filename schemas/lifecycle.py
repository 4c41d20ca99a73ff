"""Station lifecycle changes: a station created, updated (moved, resized, re-kinded, new hours),
retired or reactivated. Each change is a versioned, audited record of its own, carrying the
old and the new definition, which the processors apply like any other event."""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.stations import STATION_ID_PATTERN, Station


class StationAction(StrEnum):
    created = "created"
    updated = "updated"
    retired = "retired"
    reactivated = "reactivated"


# Which side of a change each action must carry: (old present, new present).
_SIDES: dict[StationAction, tuple[bool, bool]] = {
    StationAction.created: (False, True),
    StationAction.updated: (True, True),
    StationAction.retired: (True, False),
    StationAction.reactivated: (False, True),
}


class StationChange(BaseModel):
    """One change of the registry, keyed by station_id; `version` counts from 1 per station."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    change_id: UUID
    station_id: str = Field(pattern=STATION_ID_PATTERN)
    version: int = Field(ge=1)
    action: StationAction
    actor: str = Field(min_length=1, max_length=200, description="Who made the change")
    at: AwareDatetime
    old: Station | None = None
    new: Station | None = None

    @model_validator(mode="after")
    def _sides_match_the_action(self) -> StationChange:
        has_old, has_new = _SIDES[self.action]
        if (self.old is not None) != has_old or (self.new is not None) != has_new:
            raise ValueError(f"a change '{self.action.value}' needs old={has_old}, new={has_new}")
        for side in (self.old, self.new):
            if side is not None and side.station_id != self.station_id:
                raise ValueError("old and new must be the changed station")
        return self

    @property
    def changed_fields(self) -> tuple[str, ...]:
        """The fields whose value differs between old and new (all of them on create/retire)."""
        old = self.old.model_dump() if self.old is not None else {}
        new = self.new.model_dump() if self.new is not None else {}
        return tuple(sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k)))


def action_for(old: Station | None, new: Station | None, *, ever_seen: bool) -> StationAction:
    """What a write of `new` over `old` is: `ever_seen` tells a reactivation from a creation."""
    if new is None:
        return StationAction.retired
    if old is not None:
        return StationAction.updated
    return StationAction.reactivated if ever_seen else StationAction.created


class StationChangeList(BaseModel):
    station_id: str
    changes: list[StationChange]
