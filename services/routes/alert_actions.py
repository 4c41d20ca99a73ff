"""People acting on alerts: acknowledge, assign, note; each action says who (the key's label)
and when. Union and admin keys, within the key's districts. An acknowledged alert stays open
until its condition clears.

No `from __future__ import annotations` here: FastAPI reads the routes' annotations."""

from typing import Annotated

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse

from schemas.alert_actions import (
    Acknowledge,
    ActionKind,
    AlertAction,
    AlertActions,
    Assign,
    Note,
)
from schemas.alerts import Alert, AlertStatus
from schemas.api import Problem
from schemas.auth import Role
from services.alert_handling import handling_of
from services.auth import Principal
from services.live import LiveHub
from services.problems import problem
from services.routes.deps import Caller

router = APIRouter(prefix="/v1/alerts", tags=["alert actions"])
ERRORS = {403: {"model": Problem}, 404: {"model": Problem}, 409: {"model": Problem}}


def _hub(request: Request) -> LiveHub:
    return request.app.state.live


def _find(hub: LiveHub, who: Principal, alert_id: str) -> Alert | JSONResponse:
    with hub.runtime.store.transaction(readonly=True) as tx:
        alert = tx.alerts.get(alert_id)
    if alert is None or alert.status is AlertStatus.pending:  # pending ones are not shown yet
        return problem(404, "Unknown alert", f"no alert {alert_id!r}")
    if who.district_scope() is not None:
        who.check_district(alert.district or "")
    return alert


def _actions(hub: LiveHub, alert: Alert) -> AlertActions:
    with hub.runtime.store.transaction(readonly=True) as tx:
        found = tx.alert_actions.for_alerts([alert.alert_id])
    return AlertActions(handling=handling_of(alert.alert_id, found), actions=found)


def _act(
    hub: LiveHub,
    who: Principal,
    alert: Alert,
    action: ActionKind,
    *,
    assignee: str | None = None,
    note: str | None = None,
) -> AlertActions:
    done = AlertAction(
        alert_id=alert.alert_id,
        action=action,
        at=hub.data.clock.now(),
        by_key_id=who.key.key_id,
        by_label=who.key.label or who.key.key_id,
        assignee=assignee,
        note=note,
    )
    with hub.runtime.store.transaction() as tx:
        tx.alert_actions.add(done)
    answer = _actions(hub, alert)
    hub.tell(alert.district, "handling", answer.handling.model_dump(mode="json"))
    return answer


def _find_open(hub: LiveHub, who: Principal, alert_id: str) -> Alert | JSONResponse:
    """`_find`, and a 409 for a resolved alert: nothing is left to acknowledge or assign."""
    found = _find(hub, who, alert_id)
    if isinstance(found, JSONResponse) or found.status is AlertStatus.open:
        return found
    return problem(
        409,
        "Alert resolved",
        f"alert {found.alert_id!r} resolved at {found.resolved_at}: nothing left to act on",
    )


@router.get("/{alert_id}/actions", response_model=AlertActions, responses=ERRORS)
def alert_actions(alert_id: str, who: Caller, request: Request) -> AlertActions | JSONResponse:
    """What people did about an alert, oldest first, and where that leaves it."""
    who.require(Role.union, Role.planner)
    hub = _hub(request)
    found = _find(hub, who, alert_id)
    return found if isinstance(found, JSONResponse) else _actions(hub, found)


@router.post("/{alert_id}/acknowledge", response_model=AlertActions, responses=ERRORS)
def acknowledge(
    alert_id: str,
    who: Caller,
    request: Request,
    body: Annotated[Acknowledge | None, Body()] = None,
) -> AlertActions | JSONResponse:
    """Someone is on it. The alert stays open until its condition clears; acknowledging
    again changes nothing (a retry is safe)."""
    who.require(Role.union)
    hub = _hub(request)
    found = _find_open(hub, who, alert_id)
    if isinstance(found, JSONResponse):
        return found
    current = _actions(hub, found)
    if current.handling.acknowledged_at is not None:
        return current
    note = body.note if body is not None else None
    return _act(hub, who, found, ActionKind.acknowledged, note=note)


@router.post("/{alert_id}/assign", response_model=AlertActions, responses=ERRORS)
def assign(
    alert_id: str, body: Assign, who: Caller, request: Request
) -> AlertActions | JSONResponse:
    """Give the alert to a person or team (free text: the union's own names)."""
    who.require(Role.union)
    hub = _hub(request)
    found = _find_open(hub, who, alert_id)
    if isinstance(found, JSONResponse):
        return found
    return _act(hub, who, found, ActionKind.assigned, assignee=body.assignee)


@router.post("/{alert_id}/notes", response_model=AlertActions, responses=ERRORS)
def add_note(
    alert_id: str, body: Note, who: Caller, request: Request
) -> AlertActions | JSONResponse:
    """A note on the alert (also once it is resolved: what was done about it)."""
    who.require(Role.union)
    hub = _hub(request)
    found = _find(hub, who, alert_id)
    if isinstance(found, JSONResponse):
        return found
    return _act(hub, who, found, ActionKind.noted, note=body.text)
