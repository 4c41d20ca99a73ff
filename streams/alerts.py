"""Alert lifecycle: a condition must hold for a grace period before anyone is told, and must
stay clear for a grace period before the alert resolves, so a flapping station does not flood
the union's feed. One alert per (kind, subject) while it is pending or open."""

from __future__ import annotations

import uuid
from collections.abc import MutableMapping
from datetime import datetime, timedelta

from schemas.alerts import (
    Alert,
    AlertEvent,
    AlertEvidence,
    AlertKind,
    AlertStatus,
    AlertTransition,
    alert_key,
)
from waystation.settings import Settings

_ALERT_NAMESPACE = uuid.UUID("6f1c2a52-35a4-4c4e-9a51-6c7d1a0b7e11")


def alert_id(kind: AlertKind, subject: str, since: datetime) -> str:
    """Deterministic, so that both runtimes name the same alert the same way."""
    return str(uuid.uuid5(_ALERT_NAMESPACE, f"{alert_key(kind, subject)}@{since.isoformat()}"))


class AlertBook:
    """Holds pending and open alerts by key; resolved ones leave the book."""

    def __init__(self, alerts: MutableMapping[str, Alert], settings: Settings) -> None:
        self.alerts = alerts
        self.open_grace = timedelta(minutes=settings.alert_open_grace_minutes)
        self.resolve_grace = timedelta(minutes=settings.alert_resolve_grace_minutes)

    def observe(
        self,
        kind: AlertKind,
        subject: str,
        *,
        active: bool,
        evidence: AlertEvidence,
        now: datetime,
        district: str | None = None,
    ) -> list[AlertEvent]:
        key = alert_key(kind, subject)
        alert = self.alerts.get(key)
        if alert is None:
            if not active:
                return []
            alert = Alert(
                alert_id=alert_id(kind, subject, now),
                kind=kind,
                subject=subject,
                district=district,
                status=AlertStatus.pending,
                condition_since=now,
                updated_at=now,
                evidence=evidence,
            )
            self.alerts[key] = alert
            return self._advance(key, now)
        if alert.status is AlertStatus.pending and not active:
            del self.alerts[key]  # cleared within its grace period: nobody was told
            return []
        changes: dict[str, object] = {}
        if active and alert.clear_since is not None:
            changes["clear_since"] = None
        if not active and alert.clear_since is None:
            changes["clear_since"] = now
        evidence_changed = active and evidence != alert.evidence
        if evidence_changed:
            changes["evidence"] = evidence
        if changes:
            alert = alert.model_copy(update={**changes, "updated_at": now})
            self.alerts[key] = alert
        events = self._advance(key, now)
        if not events and evidence_changed and alert.status is AlertStatus.open:
            events.append(AlertEvent(transition=AlertTransition.updated, alert=alert))
        return events

    def settled(self, kind: AlertKind, subject: str, *, active: bool) -> bool:
        """Whether observing would change nothing: the condition is clear and no alert of it
        is held. Most observations are such, and the caller can then skip building their
        evidence."""
        return not active and alert_key(kind, subject) not in self.alerts

    def on_tick(self, now: datetime) -> list[AlertEvent]:
        events: list[AlertEvent] = []
        for key in sorted(self.alerts):
            events.extend(self._advance(key, now))
        return events

    def is_active(self, kind: AlertKind, subject: str) -> bool:
        """Pending or open: used for hysteresis by whoever judges the condition."""
        return alert_key(kind, subject) in self.alerts

    def _advance(self, key: str, now: datetime) -> list[AlertEvent]:
        alert = self.alerts[key]
        if alert.status is AlertStatus.pending and now - alert.condition_since >= self.open_grace:
            opened = alert.model_copy(
                update={"status": AlertStatus.open, "opened_at": now, "updated_at": now}
            )
            self.alerts[key] = opened
            return [AlertEvent(transition=AlertTransition.opened, alert=opened)]
        if (
            alert.status is AlertStatus.open
            and alert.clear_since is not None
            and now - alert.clear_since >= self.resolve_grace
        ):
            resolved = alert.model_copy(
                update={"status": AlertStatus.resolved, "resolved_at": now, "updated_at": now}
            )
            del self.alerts[key]
            return [AlertEvent(transition=AlertTransition.resolved, alert=resolved)]
        return []
