"""What people do about alerts (acknowledge, assign, note) and where alerts are sent
(webhooks per district), as the API takes and shows them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

NOTE_MAX_CHARS = 2000
ASSIGNEE_MAX_CHARS = 200


class ActionKind(StrEnum):
    acknowledged = "acknowledged"
    assigned = "assigned"
    noted = "noted"


class AlertAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    alert_id: str
    action: ActionKind
    at: datetime
    by_key_id: str = Field(description="The API key that did it")
    by_label: str = Field(description="That key's label (who holds it)")
    assignee: str | None = None
    note: str | None = None


class AlertHandling(BaseModel):
    """Where people are with an alert. An acknowledged alert stays open until its condition
    clears: acknowledging says someone is on it, not that it is over."""

    alert_id: str
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    assignee: str | None = None
    notes: int = 0
    last_action_at: datetime | None = None


class AlertActions(BaseModel):
    handling: AlertHandling
    actions: list[AlertAction]


class Acknowledge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(None, min_length=1, max_length=NOTE_MAX_CHARS)


class Assign(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: str = Field(min_length=1, max_length=ASSIGNEE_MAX_CHARS, examples=["朝阳区总工会"])


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=NOTE_MAX_CHARS)


class WebhookFlavour(StrEnum):
    """The body each receiver accepts: a group robot's message, or our own JSON."""

    json = "json"
    wecom = "wecom"
    dingtalk = "dingtalk"
    feishu = "feishu"


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    district: str = Field(min_length=1, max_length=100)
    url: HttpUrl
    flavour: WebhookFlavour = WebhookFlavour.json


class Webhook(BaseModel):
    webhook_id: str
    district: str
    url: str
    flavour: WebhookFlavour
    created_at: datetime
    created_by: str


class WebhookCreated(Webhook):
    secret: str = Field(description="The HMAC-SHA256 key the bodies are signed with; shown once")


class DeliveryStatus(StrEnum):
    pending = "pending"  # not yet delivered; retried with backoff
    delivered = "delivered"
    failed = "failed"  # gave up after the last attempt


class Delivery(BaseModel):
    delivery_id: str
    webhook_id: str
    alert_id: str
    transition: str = Field(description="opened, escalated or resolved")
    status: DeliveryStatus
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class WebhookList(BaseModel):
    webhooks: list[Webhook]


class DeliveryList(BaseModel):
    deliveries: list[Delivery]
