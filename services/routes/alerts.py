"""Alerts, newest first, in the key's scope."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from schemas.alerts import AlertKind, AlertStatus
from schemas.api import AlertList
from schemas.auth import Role
from services.routes.deps import MAX_PAGE, Caller, ReadingsDep, SystemDep, check_district

router = APIRouter(tags=["alerts"])


@router.get("/v1/alerts", response_model=AlertList)
def alerts(
    who: Caller,
    system: SystemDep,
    readings: ReadingsDep,
    status: AlertStatus | None = None,
    kind: AlertKind | None = None,
    district: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 500,
) -> AlertList:
    """Alerts, newest first; a key scoped to districts sees theirs only."""
    who.require(Role.union, Role.planner)
    check_district(readings, who, district)
    scope = who.district_scope()
    with system.store.transaction() as tx:
        found = tx.alerts.list(status=status, kind=kind, district=district, limit=limit)
    visible = [a for a in found if scope is None or a.district in scope]
    return AlertList(total=len(visible), alerts=visible)
