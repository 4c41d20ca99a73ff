"""What people do about alerts (acknowledge, assign, note) and where alerts are sent
(webhooks per district), as the API takes and shows them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

NOTE_MAX_CHARS = 2000
ASSIGNEE_MAX_CHARS = 200
ROBOT_SECRET_MIN_CHARS = 8
WEBHOOK_SECRET_MAX_CHARS = 128  # a DingTalk robot's is 67: "SEC" and 64 hex digits
ROBOT_SECRET_PATTERN = r"^[!-~]+$"  # visible ASCII, as the robots' settings pages show them


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


SIGNING_ROBOTS = frozenset({WebhookFlavour.dingtalk, WebhookFlavour.feishu})
"""Group robots that verify a signature of their own (加签) with a secret they show the admin."""

RobotSecret = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,  # pasted from the robot's page with a stray space or newline
        min_length=ROBOT_SECRET_MIN_CHARS,
        max_length=WEBHOOK_SECRET_MAX_CHARS,
        pattern=ROBOT_SECRET_PATTERN,
    ),
]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    district: str = Field(min_length=1, max_length=100)
    url: HttpUrl
    flavour: WebhookFlavour = WebhookFlavour.json
    secret: RobotSecret | None = Field(
        None,
        description="dingtalk and feishu only: the signing secret (加签) the robot's security "
        "settings show, so that the robot accepts what is sent; left out, posts go unsigned",
        examples=["SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"],
    )

    @field_validator("secret")
    @classmethod
    def _only_for_signing_robots(cls, secret: str | None, info: ValidationInfo) -> str | None:
        """Only a robot that checks its own signature needs its secret here; our receivers'
        secrets are generated, so none is ever chosen by hand (or reused)."""
        flavour = info.data.get("flavour")
        if secret is None or flavour is None or flavour in SIGNING_ROBOTS:
            return secret
        if flavour is WebhookFlavour.wecom:
            raise ValueError(
                "WeCom group robots have no signing secret: leave secret out "
                "(their own protection is the webhook key in the url)"
            )
        raise ValueError(
            "a json webhook's secret is always generated and returned once: leave secret out"
        )


class Webhook(BaseModel):
    webhook_id: str
    district: str
    url: str
    flavour: WebhookFlavour
    created_at: datetime
    created_by: str


class WebhookCreated(Webhook):
    secret: str = Field(
        description="The HMAC-SHA256 key the posts are signed with (a robot's own, if given; "
        "empty for a DingTalk or Feishu robot given none: its posts go unsigned); shown once"
    )


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
