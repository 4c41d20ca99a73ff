"""Webhooks per district: where alert transitions (opened, escalated, resolved) are sent, and
their delivery log. Union keys manage their own districts' webhooks, admin keys any.

No `from __future__ import annotations` here: FastAPI reads the routes' annotations."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from schemas.alert_actions import (
    SIGNING_ROBOTS,
    DeliveryList,
    Webhook,
    WebhookCreated,
    WebhookIn,
    WebhookList,
)
from schemas.api import FieldError, Problem
from schemas.auth import Role
from services.auth import Principal
from services.live import LiveHub
from services.problems import problem
from services.routes.deps import Caller
from services.webhooks import new_secret

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])
ERRORS = {403: {"model": Problem}, 404: {"model": Problem}, 422: {"model": Problem}}
MAX_DELIVERIES = 1000


def _hub(request: Request) -> LiveHub:
    return request.app.state.live


def _mine(hub: LiveHub, who: Principal, webhook_id: str) -> Webhook | JSONResponse:
    with hub.runtime.store.transaction(readonly=True) as tx:
        found = tx.webhooks.get(webhook_id)
    if found is None:
        return problem(404, "Unknown webhook", f"no webhook {webhook_id!r}")
    who.check_district(found[0].district)
    return found[0]


@router.post("", status_code=201, response_model=WebhookCreated, responses=ERRORS)
def create_webhook(body: WebhookIn, who: Caller, request: Request) -> WebhookCreated | JSONResponse:
    """Send the district's alert transitions to `url`, signed with the secret returned here
    (shown once): `X-Waystation-Signature: sha256=HMAC(secret, timestamp + "." + body)`,
    with the timestamp in `X-Waystation-Timestamp`.

    DingTalk and Feishu group robots with signature verification (加签) check a signature of
    their own: give such a webhook `secret`, the one the robot's security settings show, and
    its posts carry that signature too (query `timestamp` and `sign` for DingTalk, body fields
    for Feishu); without one they are posted unsigned (a robot secured by keywords or
    addresses) and `secret` is empty. A `json` or `wecom` webhook's secret is generated here:
    one given is refused."""
    who.require(Role.union)
    hub = _hub(request)
    known = hub.data.known_districts()
    if body.district not in known:
        return problem(
            422,
            "Unknown district",
            f"no district {body.district!r}; known: {', '.join(known)}",
            [FieldError(field="district", reason=f"must be one of: {', '.join(known)}")],
        )
    who.check_district(body.district)
    # A signing robot without its secret is secured some other way (keywords, addresses):
    # its posts go unsigned rather than signed with a secret the robot does not know.
    secret = body.secret or ("" if body.flavour in SIGNING_ROBOTS else new_secret())
    hook = Webhook(
        webhook_id=str(uuid.uuid4()),
        district=body.district,
        url=str(body.url),
        flavour=body.flavour,
        created_at=hub.data.clock.now(),
        created_by=who.key.label or who.key.key_id,
    )
    with hub.runtime.store.transaction() as tx:
        tx.webhooks.add(hook, secret)
    return WebhookCreated(**hook.model_dump(), secret=secret)


@router.get("", response_model=WebhookList)
def list_webhooks(who: Caller, request: Request) -> WebhookList:
    """The webhooks of the key's districts (secrets are never shown again)."""
    who.require(Role.union)
    with _hub(request).runtime.store.transaction(readonly=True) as tx:
        found = tx.webhooks.list(who.district_scope())
    return WebhookList(webhooks=[hook for hook, _ in found])


@router.delete("/{webhook_id}", status_code=204, responses=ERRORS)
def delete_webhook(webhook_id: str, who: Caller, request: Request) -> Response:
    who.require(Role.union)
    hub = _hub(request)
    found = _mine(hub, who, webhook_id)
    if isinstance(found, JSONResponse):
        return found
    with hub.runtime.store.transaction() as tx:
        tx.webhooks.remove(webhook_id)
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", response_model=DeliveryList, responses=ERRORS)
def deliveries(
    webhook_id: str,
    who: Caller,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=MAX_DELIVERIES)] = 100,
) -> DeliveryList | JSONResponse:
    """The delivery log, newest first: attempts, the last error, the next attempt."""
    who.require(Role.union)
    hub = _hub(request)
    found = _mine(hub, who, webhook_id)
    if isinstance(found, JSONResponse):
        return found
    with hub.runtime.store.transaction(readonly=True) as tx:
        return DeliveryList(deliveries=list(tx.webhooks.deliveries(webhook_id, limit)))
