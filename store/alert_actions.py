"""What people did about alerts, and the webhooks that tell them: repositories."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from schemas.alert_actions import (
    ActionKind,
    AlertAction,
    Delivery,
    DeliveryStatus,
    Webhook,
    WebhookFlavour,
)
from store.tables import AlertActionRow, WebhookDeliveryRow, WebhookRow


class AlertActionLog:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, action: AlertAction) -> None:
        self._session.add(
            AlertActionRow(
                alert_id=action.alert_id,
                action=action.action.value,
                at=action.at,
                by_key_id=action.by_key_id,
                by_label=action.by_label,
                assignee=action.assignee,
                note=action.note,
            )
        )

    def for_alerts(self, alert_ids: Collection[str]) -> list[AlertAction]:
        """Actions on these alerts, oldest first."""
        if not alert_ids:
            return []
        stmt = (
            select(AlertActionRow)
            .where(AlertActionRow.alert_id.in_(list(alert_ids)))
            .order_by(AlertActionRow.seq)
        )
        return [
            AlertAction(
                alert_id=row.alert_id,
                action=ActionKind(row.action),
                at=row.at,
                by_key_id=row.by_key_id,
                by_label=row.by_label,
                assignee=row.assignee,
                note=row.note,
            )
            for row in self._session.scalars(stmt)
        ]


class WebhookRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, hook: Webhook, secret: str) -> None:
        self._session.add(
            WebhookRow(
                webhook_id=hook.webhook_id,
                district=hook.district,
                url=hook.url,
                flavour=hook.flavour.value,
                secret=secret,
                created_at=hook.created_at,
                created_by=hook.created_by,
            )
        )

    def remove(self, webhook_id: str) -> bool:
        row = self._session.get(WebhookRow, webhook_id)
        if row is None:
            return False
        self._session.delete(row)
        return True

    def list(self, districts: Collection[str] | None = None) -> list[tuple[Webhook, str]]:
        """Webhooks (with their secrets) of these districts (None: every district)."""
        stmt = select(WebhookRow).order_by(WebhookRow.created_at, WebhookRow.webhook_id)
        if districts is not None:
            stmt = stmt.where(WebhookRow.district.in_(list(districts)))
        return [(_webhook(row), row.secret) for row in self._session.scalars(stmt)]

    def get(self, webhook_id: str) -> tuple[Webhook, str] | None:
        row = self._session.get(WebhookRow, webhook_id)
        return (_webhook(row), row.secret) if row is not None else None

    # the delivery log ----------------------------------------------------------------------

    def log(self, delivery: Delivery, body: str) -> None:
        self._session.add(
            WebhookDeliveryRow(
                delivery_id=delivery.delivery_id,
                webhook_id=delivery.webhook_id,
                alert_id=delivery.alert_id,
                transition=delivery.transition,
                body=body,
                status=delivery.status.value,
                attempts=delivery.attempts,
                last_error=delivery.last_error,
                created_at=delivery.created_at,
                next_attempt_at=delivery.next_attempt_at,
                delivered_at=delivery.delivered_at,
            )
        )

    def due(self, now: datetime, limit: int) -> list[tuple[Delivery, str]]:
        """Pending deliveries whose next attempt is due, oldest first, with their bodies."""
        stmt = (
            select(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.status == DeliveryStatus.pending.value)
            .where(
                or_(
                    WebhookDeliveryRow.next_attempt_at.is_(None),
                    WebhookDeliveryRow.next_attempt_at <= now,
                )
            )
            .order_by(WebhookDeliveryRow.created_at, WebhookDeliveryRow.delivery_id)
            .limit(limit)
        )
        return [(_delivery(row), row.body) for row in self._session.scalars(stmt)]

    def record_attempt(
        self,
        delivery_id: str,
        *,
        status: DeliveryStatus,
        attempts: int,
        error: str | None,
        next_attempt_at: datetime | None,
        delivered_at: datetime | None,
    ) -> None:
        self._session.execute(
            update(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.delivery_id == delivery_id)
            .values(
                status=status.value,
                attempts=attempts,
                last_error=error,
                next_attempt_at=next_attempt_at,
                delivered_at=delivered_at,
            )
        )

    def deliveries(self, webhook_id: str, limit: int) -> Sequence[Delivery]:
        stmt = (
            select(WebhookDeliveryRow)
            .where(WebhookDeliveryRow.webhook_id == webhook_id)
            .order_by(WebhookDeliveryRow.created_at.desc(), WebhookDeliveryRow.delivery_id)
            .limit(limit)
        )
        return [_delivery(row) for row in self._session.scalars(stmt)]


def _webhook(row: WebhookRow) -> Webhook:
    return Webhook(
        webhook_id=row.webhook_id,
        district=row.district,
        url=row.url,
        flavour=WebhookFlavour(row.flavour),
        created_at=row.created_at,
        created_by=row.created_by,
    )


def _delivery(row: WebhookDeliveryRow) -> Delivery:
    return Delivery(
        delivery_id=row.delivery_id,
        webhook_id=row.webhook_id,
        alert_id=row.alert_id,
        transition=row.transition,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=row.created_at,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
    )
